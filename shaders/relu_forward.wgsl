// relu_forward: out[i] = max(inp[i], 0), a ReLU of its own (after batch norm, say; conv and dense
//   apply theirs in their own pass). len values.
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "relu_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    out[i] = select(0.0, inp[i], inp[i] > 0.0);
}
