// dropout_backward: the gradient of dropout_forward, which it mirrors: dinp[i] = dout[i] * scale
//   where the forward pass kept value i (the same counter-based draw from seed, t, salt and i),
//   0 where it dropped it.
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "dropout_params"

#include "step"

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

#include "dropout_hash"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    let step = steps[state[1]];
    let h = mix(i ^ mix(step.t ^ mix(params.salt ^ mix(step.seed))));
    if ((h >> 8u) >= params.threshold) {
        dinp[i] = dout[i] * params.scale;
    } else {
        dinp[i] = 0.0;
    }
}
