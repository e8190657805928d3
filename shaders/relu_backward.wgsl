// relu_backward: dinp[i] = dout[i] where the forward output out[i] > 0, else 0. len values.
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "relu_params"

@group(0) @binding(0) var<storage, read> out: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    dinp[i] = select(0.0, dout[i], out[i] > 0.0);
}
