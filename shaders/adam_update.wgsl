// adam_update: one Adam step over a flat parameter buffer, in Keras' form
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed by the host per step and read from
//   steps[state[1]].alpha (the step the loss pass handed on) so that a whole epoch can be recorded up front.
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   weights -= alpha * m / (sqrt(v) + eps)
// weights, grads, m, v (len, a multiple of 4), read and written 4 elements per vec4 (fewer,
// wider storage accesses).
// AdamW (params.weight_decay > 0), as Keras applies it before the update: w -= w * wd * lr, lr
// the step's learning rate (steps[..].lr).
// AMSGrad (params.amsgrad): v_hat = max(v_hat, v) in `a`, and the step divides by sqrt(v_hat).
// The conv weight copies: parts/weight_copies.wgsl. Dispatch: 1-D index over len / 4 = gid.x + gid.y * 64 * num_workgroups.x.

struct Params {
    len: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    copies: u32,
    lo: u32,
    hi: u32,
    // AdamW's decoupled decay (0: Adam): first w -= w * weight_decay * lr.
    weight_decay: f32,
    // 1: AMSGrad, dividing by v_hat = max(v_hat, v) (in `a`).
    amsgrad: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
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

// The run's options as pipeline-overridable constants (1: on), so that the branches of those
// off fold away: AdamW's decay (params.weight_decay > 0) and AMSGrad (params.amsgrad).
override DECAY: u32 = 1u;
override AMSGRAD: u32 = 1u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len / 4u) {
        return;
    }
    let step = steps[state[1]];
    let g = grads[i];
    let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
    let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    var w0 = weights[i];
    if (DECAY != 0u && params.weight_decay != 0.0) {
        w0 = w0 - w0 * params.weight_decay * step.lr;
    }
    var vh = vi;
    if (AMSGRAD != 0u && params.amsgrad != 0u) {
        vh = max(a[i], vi);
        a[i] = vh;
    }
    let w = w0 - step.alpha * mi / (sqrt(vh) + params.eps);
    weights[i] = w;
    keep_copies(i, w);
}
