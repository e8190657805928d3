// dropout_forward: inverted dropout. Training: out[i] = inp[i] * scale where value i is kept,
//   0 where it is dropped; otherwise out = inp. Value i of step t is kept when
//   hash(seed, t, salt, i) >> 8 >= threshold (threshold = rate * 2^24): a counter-based draw, so
//   the mask needs no storage, the backward pass draws the same one, and a run is reproducible.
//   t and seed come from steps[state[0]]; salt tells the model's dropout layers apart.
// The hash is layers::dropout_hash on the CPU.
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "dropout_params"

#include "step"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

#include "dropout_hash"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    if (params.training == 0u) {
        out[i] = inp[i];
        return;
    }
    let step = steps[state[0]];
    let h = mix(i ^ mix(step.t ^ mix(params.salt ^ mix(step.seed))));
    if ((h >> 8u) >= params.threshold) {
        out[i] = inp[i] * params.scale;
    } else {
        out[i] = 0.0;
    }
}
