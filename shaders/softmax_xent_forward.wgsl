// softmax_xent_forward: sparse categorical cross-entropy of softmax(logits), summed over the batch,
// and the number of correct predictions; written to this step's slot of the metrics buffer.
//   logits (batch, classes), labels (batch)
//   loss_n = logsumexp(logits[n]) - logits[n, labels[n]]   (max-subtracted)
//   metrics[2 * s] = sum_n loss_n, metrics[2 * s + 1] = #{n : argmax(logits[n]) == labels[n]}
//   s = state[0], the step index of the running program (the host sums the slots once per epoch).
//   The loss pass ends every step: it then advances the counter (state[0] = s + 1) and leaves s
//   in state[1] for the backward passes that follow it (dropout_backward, adam_update).
// One workgroup of 64 invocations strides over the batch, then reduces in workgroup memory.
// Dispatch: (1, 1, 1).

struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const WG: u32 = 64u;
var<workgroup> loss_sh: array<f32, WG>;
var<workgroup> correct_sh: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    var loss = 0.0;
    var correct = 0.0;
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
