// maxpool2d_forward: out[n, c, oy, ox] = max over the size x size window at (oy*stride, ox*stride)
//   inp (batch, channels, h_in, w_in), out and argmax (batch, channels, h_out, w_out),
//   h_out = (h_in - size) / stride + 1 (floor, as Keras' "valid").
//   argmax holds the winner's index y * w_in + x within its input plane; ties keep the first.
// Entry points: main (any size and stride); main_2x2 (size 2, stride 2, even w_in: each window
// row is one vec2 load from inp bound again as inp2).
// Dispatch: one invocation per output element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "maxpool2d_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> inp2: array<vec2<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_pool_window"
    var best_at = y0 * params.w_in + x0;
    var best = inp[base + best_at];
    for (var ky = 0u; ky < params.size; ky++) {
        for (var kx = 0u; kx < params.size; kx++) {
            let at = (y0 + ky) * params.w_in + x0 + kx;
            let v = inp[base + at];
            if (v > best) {
                best = v;
                best_at = at;
            }
        }
    }
    out[i] = best;
    argmax[i] = best_at;
}

@compute @workgroup_size(64)
fn main_2x2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane_out = params.h_out * params.w_out;
    if (i >= params.batch * params.channels * plane_out) {
        return;
    }
    let nc = i / plane_out;
    let r = i % plane_out;
    let at0 = (r / params.w_out) * 2u * params.w_in + (r % params.w_out) * 2u;
    let base = nc * params.h_in * params.w_in; // even, as w_in is
    let top = inp2[(base + at0) / 2u];
    let bottom = inp2[(base + at0 + params.w_in) / 2u];
    // Scan order (0,0), (0,1), (1,0), (1,1); a tie keeps the first, as main does.
    var best = top.x;
    var best_at = at0;
    if (top.y > best) {
        best = top.y;
        best_at = at0 + 1u;
    }
    if (bottom.x > best) {
        best = bottom.x;
        best_at = at0 + params.w_in;
    }
    if (bottom.y > best) {
        best = bottom.y;
        best_at = at0 + params.w_in + 1u;
    }
    out[i] = best;
    argmax[i] = best_at;
}
