// add_forward: the element-wise sum of two tensors of len values (Keras' Add; also the sum of
// the gradients a tensor read by several layers gets, in the order the stage plan fixes).
//   main: out[i] = a[i] + b[i]
//   into: out[i] = out[i] + a[i]  (a third input and on: ((a + b) + c) + ...)
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

#include "add_params"

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> b: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    out[i] = a[i] + b[i];
}

@compute @workgroup_size(64)
fn into(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    out[i] = out[i] + a[i];
}
