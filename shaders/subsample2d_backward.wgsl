// subsample2d_backward: the gradient of subsample2d_forward: dinp[n, c, y, x] is
//   dout[n, c, y / stride, x / stride] where both divide evenly, zero elsewhere (gathered per
//   input element, so every element is written).
// Dispatch: one invocation per input element, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "subsample2d_params"

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    #include "each_input_pixel"
    var v = 0.0;
    if (y % params.stride == 0u && x % params.stride == 0u) {
        v = dout[(nc * params.h_out + y / params.stride) * params.w_out + x / params.stride];
    }
    dinp[i] = v;
}
