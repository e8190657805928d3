// avgpool2d_backward: dinp[n, c, y, x] = sum over the windows holding (y, x) of
//   dout[n, c, oy, ox] / (kh * kw); pixels in no window (stride > size) get 0.
//   dinp (batch, channels, h_in, w_in), dout (batch, channels, h_out, w_out).
// Gathers per input element (no atomics): the windows holding y are oy in
//   [ceil((y - kh + 1) / stride), floor(y / stride)] clipped to [0, h_out).
// Dispatch: one invocation per input element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "avgpool2d_params"

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// The first and one past the last window start covering coordinate v (window k, stride s, n windows).
fn windows(v: u32, k: u32, s: u32, n: u32) -> vec2<u32> {
    var lo = 0u;
    if (v + 1u > k) {
        lo = (v + 1u - k + s - 1u) / s;
    }
    let hi = min(v / s + 1u, n);
    return vec2<u32>(lo, max(hi, lo));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_input_pixel"
    let wy = windows(y, params.kh, params.stride, params.h_out);
    let wx = windows(x, params.kw, params.stride, params.w_out);
    let base = nc * params.h_out * params.w_out;
    var sum = 0.0;
    for (var oy = wy.x; oy < wy.y; oy++) {
        for (var ox = wx.x; ox < wx.y; ox++) {
            sum += dout[base + oy * params.w_out + ox];
        }
    }
    dinp[i] = sum * (1.0 / f32(params.kh * params.kw));
}
