// sgd_update: one SGD step over a flat parameter buffer, in Keras' form (keras.optimizers.SGD),
// lr the step's learning rate (steps[state[1]].alpha, the step the loss pass handed on):
//   momentum 0:  w -= lr * g
//   else:        m = momentum * m - lr * g;  w += m  (Nesterov: w += momentum * m - lr * g)
// weights, grads, m (len, a multiple of 4), 4 elements per vec4. The conv weight copies:
// parts/weight_copies.wgsl. Dispatch: 1-D index over len / 4 = gid.x + gid.y * 64 * num_workgroups.x.

struct Params {
    len: u32,
    momentum: f32,
    nesterov: u32,
    _pad0: u32,
    copies: u32,
    lo: u32,
    hi: u32,
    _pad1: u32,
    table: array<Copy, 8>,
}

#include "step"

@group(0) @binding(0) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<storage, read_write> wt: array<f32>;

#include "weight_copies"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len / 4u) {
        return;
    }
    let lr = steps[state[1]].alpha;
    let g = grads[i];
    var w = weights[i];
    if (params.momentum == 0.0) {
        w = w - g * lr;
    } else {
        let mi = m[i] * params.momentum - g * lr;
        m[i] = mi;
        if (params.nesterov != 0u) {
            w = w + (mi * params.momentum - g * lr);
        } else {
            w = w + mi;
        }
    }
    weights[i] = w;
    keep_copies(i, w);
}
