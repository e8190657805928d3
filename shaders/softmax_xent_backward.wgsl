// softmax_xent_backward: gradient of the batch-mean cross-entropy with respect to the logits.
//   logits, dlogits (batch, classes), labels (batch)
//   dlogits[n, c] = (softmax(logits[n])[c] - (c == labels[n])) / batch   (overwrites)
// Dispatch: x = ceil(batch / 64), one invocation per row.

#include "softmax_xent_params"

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= params.batch) {
        return;
    }
    let base = n * params.classes;
    var mx = logits[base];
    for (var c = 1u; c < params.classes; c++) {
        mx = max(mx, logits[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < params.classes; c++) {
        s += exp(logits[base + c] - mx);
    }
    let y = labels[n];
    let scale = 1.0 / f32(params.batch);
    for (var c = 0u; c < params.classes; c++) {
        let p = exp(logits[base + c] - mx) / s;
        dlogits[base + c] = (p - select(0.0, 1.0, c == y)) * scale;
    }
}
