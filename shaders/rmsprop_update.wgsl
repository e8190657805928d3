// rmsprop_update: one RMSprop step over a flat parameter buffer, in Keras' form
// (keras.optimizers.RMSprop), lr the step's learning rate (steps[state[1]].alpha, the step the
// loss pass handed on):
//   v = rho * v + (1 - rho) * g^2
//   centered:  a = rho * a + (1 - rho) * g;  d = v - a^2 + eps   else d = v + eps
//   increment = lr * g / sqrt(d)
//   momentum 0:  w -= increment   else  m = momentum * m + increment;  w -= m
// weights, grads, m (momentum), v (velocity), a (average gradient, centered only) (len, a
// multiple of 4), 4 elements per vec4. The conv weight copies: parts/weight_copies.wgsl.
// Dispatch: 1-D index over len / 4 = gid.x + gid.y * 64 * num_workgroups.x.

struct Params {
    len: u32,
    rho: f32,
    momentum: f32,
    eps: f32,
    copies: u32,
    lo: u32,
    hi: u32,
    centered: u32,
    table: array<Copy, 8>,
}

#include "step"

@group(0) @binding(0) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<storage, read_write> wt: array<f32>;
@group(0) @binding(8) var<storage, read_write> a: array<vec4<f32>>;

#include "weight_copies"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len / 4u) {
        return;
    }
    let lr = steps[state[1]].alpha;
    let g = grads[i];
    let vi = params.rho * v[i] + (1.0 - params.rho) * (g * g);
    v[i] = vi;
    var d = vi + params.eps;
    if (params.centered != 0u) {
        let ai = params.rho * a[i] + (1.0 - params.rho) * g;
        a[i] = ai;
        d = vi - ai * ai + params.eps;
    }
    let increment = lr * g / sqrt(d);
    var w = weights[i];
    if (params.momentum > 0.0) {
        let mi = params.momentum * m[i] + increment;
        m[i] = mi;
        w = w - mi;
    } else {
        w = w - increment;
    }
    weights[i] = w;
    keep_copies(i, w);
}
