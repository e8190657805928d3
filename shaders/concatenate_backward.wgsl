// concatenate_backward: the gradient of one input of a Concatenate, its channels' part of
// the output's gradient:
//   dinp[n, c, k] = dout[n, c_off + c, k]   for n < batch, c < c_in, k < plane
//   dout (batch, c_out, plane), dinp (batch, c_in, plane). One dispatch per input.
// Dispatch: one invocation per input value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "concatenate_params"

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let per_image = params.c_in * params.plane;
    if (i >= params.batch * per_image) {
        return;
    }
    // u32 division: per_image may pass divmod's 2^24 (a copy pass; its cost is the copy).
    let nk = vec2<u32>(i / per_image, i % per_image);
    dinp[i] = dout[nk.x * params.c_out * params.plane + params.c_off * params.plane + nk.y];
}
