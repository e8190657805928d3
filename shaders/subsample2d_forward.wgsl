// subsample2d_forward: a strided convolution's output from its stride-1 one:
//   out[n, c, oy, ox] = inp[n, c, oy * stride, ox * stride],
//   inp (batch, channels, h_in, w_in), out (batch, channels, (h_in - 1) / stride + 1, ...).
// Dispatch: one invocation per output element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "subsample2d_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_output_pixel"
    let oy = (i % plane) / params.w_out;
    let ox = i % params.w_out;
    out[i] = inp[(nc * params.h_in + oy * params.stride) * params.w_in + ox * params.stride];
}
