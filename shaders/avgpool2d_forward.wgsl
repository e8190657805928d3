// avgpool2d_forward: out[n, c, oy, ox] = mean of the kh x kw window at (oy*stride, ox*stride)
//   inp (batch, channels, h_in, w_in), out (batch, channels, h_out, w_out),
//   h_out = (h_in - kh) / stride + 1 (floor, as Keras' "valid"; windows never read padding).
//   Global average pooling is the one window of the whole plane (kh = h_in, kw = w_in).
// Dispatch: one invocation per output element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "avgpool2d_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_pool_window"
    var sum = 0.0;
    for (var ky = 0u; ky < params.kh; ky++) {
        for (var kx = 0u; kx < params.kw; kx++) {
            sum += inp[base + (y0 + ky) * params.w_in + x0 + kx];
        }
    }
    out[i] = sum * (1.0 / f32(params.kh * params.kw));
}
