// adam_update: one Adam step over a flat parameter buffer, in Keras' form
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed by the host per step and read from
//   steps[state[1]].alpha (the step the loss pass handed on) so that a whole epoch can be recorded up front.
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   weights -= alpha * m / (sqrt(v) + eps)
// weights, grads, m, v (len, a multiple of 4), read and written 4 elements per vec4 (fewer,
// wider storage accesses).
// With params.copies > 0, the new weights of each conv in params.table[..copies] also go to their
// channel-last copy in `wt` (the layout of conv2d_transpose_weight:
// wt[wt_offset + (tap * c_in + ci) * c4 * 4 + co] = weight[co, ci, tap]), so the conv passes of
// the next step need no transposition of their own. Dispatch: 1-D index over len / 4 = gid.x + gid.y * 64 * num_workgroups.x.

struct Params {
    len: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    copies: u32,
    lo: u32,
    hi: u32,
    _pad0: u32,
    table: array<Copy, 8>,
}

struct Copy {
    offset: u32,
    c_out: u32,
    c_in: u32,
    taps: u32,
    wt_offset: u32,
    c4: u32,
    _pad0: u32,
    _pad1: u32,
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

#include "divmod"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len / 4u) {
        return;
    }
    let alpha = steps[state[1]].alpha;
    let g = grads[i];
    let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
    let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let w = weights[i] - alpha * mi / (sqrt(vi) + params.eps);
    weights[i] = w;
    if (4u * i + 3u < params.lo || 4u * i >= params.hi) {
        return;
    }
    for (var r = 0u; r < params.copies; r++) {
        let c = params.table[r];
        let per = c.c_in * c.taps;
        let end = c.offset + c.c_out * per;
        if (4u * i + 3u < c.offset || 4u * i >= end) {
            continue;
        }
        // The first element of the 4 in this conv, as (co, ci, tap), then step through the rest.
        let k0 = max(4u * i, c.offset);
        let k1 = min(4u * i + 4u, end);
        let co_rest = divmod(k0 - c.offset, per);
        let ci_tap = divmod(co_rest.y, c.taps);
        var co = co_rest.x;
        var ci = ci_tap.x;
        var tap = ci_tap.y;
        for (var k = k0; k < k1; k++) {
            wt[c.wt_offset + (tap * c.c_in + ci) * c.c4 * 4u + co] = w[k - 4u * i];
            tap++;
            if (tap == c.taps) {
                tap = 0u;
                ci++;
                if (ci == c.c_in) {
                    ci = 0u;
                    co++;
                }
            }
        }
    }
}
