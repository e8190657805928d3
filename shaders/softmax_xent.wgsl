// softmax_xent_forward: sparse categorical cross-entropy of softmax(logits), summed over the
// batch, and the number of correct predictions, written to this step's slot of the metrics
// buffer. softmax_xent (GRADIENT): the same, and the gradient of the batch-mean loss with
// respect to the logits, in one pass (a training step's loss: the values of softmax_xent_forward
// and softmax_xent_backward, bit for bit, computed in the same order).
//   logits (batch, classes), labels (batch); GRADIENT: dlogits (batch, classes)
//   loss_n = logsumexp(logits[n]) - logits[n, labels[n]]   (max-subtracted)
//   metrics[2 * s] = sum_n loss_n, metrics[2 * s + 1] = #{n : argmax(logits[n]) == labels[n]}
//   dlogits[n, c] = (softmax(logits[n])[c] - (c == labels[n])) / batch   (overwrites)
//   s = state[0], the step index of the running program (the host sums the slots once per epoch).
//   The loss pass ends every step: it then advances the counter (state[0] = s + 1) and leaves s
//   in state[1] for the backward passes that follow it (dropout_backward, adam_update).
// One workgroup of 64 invocations strides over the batch, then reduces in workgroup memory.
// Dispatch: (1, 1, 1).

#include "softmax_xent_params"

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<f32>;
#if !GRADIENT
@group(0) @binding(4) var<uniform> params: Params;
#else
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;
#endif

const WG: u32 = 64u;
var<workgroup> loss_sh: array<f32, WG>;
var<workgroup> correct_sh: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var loss = 0.0;
    var correct = 0.0;
#if GRADIENT
    let scale = 1.0 / f32(params.batch);
#endif
    for (var n = lid.x; n < params.batch; n += WG) {
        let base = n * params.classes;
        var mx = logits[base];
        var arg = 0u;
        for (var c = 1u; c < params.classes; c++) {
            let v = logits[base + c];
            if (v > mx) {
                mx = v;
                arg = c;
            }
        }
        var s = 0.0;
        for (var c = 0u; c < params.classes; c++) {
            s += exp(logits[base + c] - mx);
        }
        let y = labels[n];
        loss += log(s) + mx - logits[base + y];
        if (arg == y) {
            correct += 1.0;
        }
#if GRADIENT
        for (var c = 0u; c < params.classes; c++) {
            let p = exp(logits[base + c] - mx) / s;
            dlogits[base + c] = (p - select(0.0, 1.0, c == y)) * scale;
        }
#endif
    }
    loss_sh[lid.x] = loss;
    correct_sh[lid.x] = correct;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w /= 2u) {
        if (lid.x < w) {
            loss_sh[lid.x] += loss_sh[lid.x + w];
            correct_sh[lid.x] += correct_sh[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        let s = state[0];
        metrics[2u * s] = loss_sh[0];
        metrics[2u * s + 1u] = correct_sh[0];
        // Hand the step on: the backward passes read it from state[1], the next step's forward
        // passes from state[0].
        state[1] = s;
        state[0] = s + 1u;
    }
}
