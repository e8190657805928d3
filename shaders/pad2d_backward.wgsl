// pad2d_backward: the gradient of pad2d_forward: dinp (batch, channels, h_in, w_in) is dout
//   (batch, channels, h_out, w_out) cropped at (top, left).
// Dispatch: one invocation per input element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "pad2d_params"

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_input_pixel"
    dinp[i] = dout[(nc * params.h_out + y + params.top) * params.w_out + x + params.left];
}
