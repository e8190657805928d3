// pad2d_forward: a convolution's zero padding. out (batch, channels, h_out, w_out) is zero but
//   for inp (batch, channels, h_in, w_in) placed at (top, left).
// Dispatch: one invocation per output element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "pad2d_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_output_pixel"
    let y = (i % plane) / params.w_out;
    let x = i % params.w_out;
    var v = 0.0;
    if (y >= params.top && y - params.top < params.h_in && x >= params.left && x - params.left < params.w_in) {
        v = inp[(nc * params.h_in + y - params.top) * params.w_in + x - params.left];
    }
    out[i] = v;
}
