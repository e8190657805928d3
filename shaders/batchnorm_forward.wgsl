// batchnorm_forward: per-channel batch normalisation, Keras' BatchNormalization (axis -1):
//   out[n, c, j] = gamma[c] * (inp[n, c, j] - mean[c]) * inv[c] + beta[c],  inv = 1 / sqrt(var + eps)
//   inp and out (batch, channels, plane), plane = height * width; saved (channels, 2) = (mean, inv).
// Entry points, two dispatches per forward pass:
//   stats (training): mean and biased variance of each channel over (batch, plane), one workgroup
//     per channel reducing in a fixed order (strided partial sums, then a tree: no atomics, the
//     same bits every run); the moving statistics become momentum * moving + (1 - momentum) * batch.
//   stats_eval (evaluation): saved from the moving statistics, one invocation per channel.
//   normalize: one invocation per element.
// Dispatch: stats x = channels; stats_eval and normalize 1-D = gid.x + gid.y * 64 * num_workgroups.x.

#include "batchnorm_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read_write> saved: array<f32>;
@group(0) @binding(2) var<storage, read_write> moving_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> moving_var: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

var<workgroup> part: array<f32, 64>;

// The sum of part[0..64] into part[0]; every invocation of the workgroup calls it.
fn tree(lid: u32) {
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (lid < w) {
            part[lid] += part[lid + w];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let c = wid.x;
    let lid = lid3.x;
    let m = params.batch * params.plane;
    var s = 0.0;
    for (var e = lid; e < m; e += 64u) {
        s += inp[((e / params.plane) * params.channels + c) * params.plane + e % params.plane];
    }
    part[lid] = s;
    tree(lid);
    let mean = part[0] / f32(m);
    workgroupBarrier();
    var q = 0.0;
    for (var e = lid; e < m; e += 64u) {
        let d = inp[((e / params.plane) * params.channels + c) * params.plane + e % params.plane] - mean;
        q += d * d;
    }
    part[lid] = q;
    tree(lid);
    if (lid == 0u) {
        let variance = part[0] / f32(m);
        saved[2u * c] = mean;
        saved[2u * c + 1u] = 1.0 / sqrt(variance + params.epsilon);
        let k = params.momentum;
        moving_mean[c] = k * moving_mean[c] + (1.0 - k) * mean;
        moving_var[c] = k * moving_var[c] + (1.0 - k) * variance;
    }
}

@compute @workgroup_size(64)
fn stats_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * 64u;
    if (c >= params.channels) {
        return;
    }
    saved[2u * c] = moving_mean[c];
    saved[2u * c + 1u] = 1.0 / sqrt(moving_var[c] + params.epsilon);
}

@compute @workgroup_size(64)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.batch * params.channels * params.plane) {
        return;
    }
    let c = (i / params.plane) % params.channels;
    out[i] = gamma[c] * ((inp[i] - saved[2u * c]) * saved[2u * c + 1u]) + beta[c];
}
