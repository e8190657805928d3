// maxpool2d_backward: routes each output gradient to the input that won its window.
//   argmax, dout (batch, channels, h_out, w_out) from maxpool2d_forward; dinp (batch, channels, h_in, w_in)
//   dinp[n, c, y, x] = sum over windows (oy, ox) that contain (y, x) and whose argmax is (y, x) of dout
// Gather form, so no atomics; overwrites dinp, including rows and columns that no window
// covers (zero). Entry points:
//   main:     any size and stride: one invocation per input element, looping over the windows
//             that could hold it. 1-D index over batch * channels * h_in * w_in.
//   disjoint: stride >= size (windows do not overlap, as in the usual 2x2 stride 2): one
//             invocation per window writes its stride x stride block of dinp (the last row and
//             column of windows also the uncovered rest), 2 loads per window instead of 2 per
//             input element. 1-D index over batch * channels * h_out * w_out.
// Dispatch: 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "maxpool2d_params"

@group(0) @binding(0) var<storage, read> argmax: array<u32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// Windows o (along one axis) with o*stride <= p < o*stride + size, clipped to [0, n_out).
fn window_range(p: u32, n_out: u32) -> vec2<u32> {
    var lo = 0u;
    if (p + 1u > params.size) {
        lo = (p + 1u - params.size + params.stride - 1u) / params.stride;
    }
    let hi = min(p / params.stride + 1u, n_out);
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane_in = params.h_in * params.w_in;
    if (i >= params.batch * params.channels * plane_in) {
        return;
    }
    let nc = i / plane_in;
    let r = i % plane_in;
    let ys = window_range(r / params.w_in, params.h_out);
    let xs = window_range(r % params.w_in, params.w_out);
    let base = nc * params.h_out * params.w_out;
    var g = 0.0;
    for (var oy = ys.x; oy < ys.y; oy++) {
        for (var ox = xs.x; ox < xs.y; ox++) {
            let o = base + oy * params.w_out + ox;
            if (argmax[o] == r) {
                g += dout[o];
            }
        }
    }
    dinp[i] = g;
}

@compute @workgroup_size(64)
fn disjoint(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane_out = params.h_out * params.w_out;
    if (i >= params.batch * params.channels * plane_out) {
        return;
    }
    let nc = i / plane_out;
    let oy = (i % plane_out) / params.w_out;
    let ox = i % params.w_out;
    let win = argmax[i];
    let g = dout[i];
    let y0 = oy * params.stride;
    let x0 = ox * params.stride;
    let y1 = select(y0 + params.stride, params.h_in, oy + 1u == params.h_out);
    let x1 = select(x0 + params.stride, params.w_in, ox + 1u == params.w_out);
    let base = nc * params.h_in * params.w_in;
    for (var y = y0; y < y1; y++) {
        for (var x = x0; x < x1; x++) {
            let at = y * params.w_in + x;
            dinp[base + at] = select(0.0, g, at == win);
        }
    }
}
