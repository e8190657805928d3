// batchnorm_backward: the gradients of training-mode batchnorm_forward, per channel c over
//   (batch, plane), with xhat = (inp - mean) * inv and M = batch * plane:
//   dgamma[c] = sum(dout * xhat), dbeta[c] = sum(dout),
//   dinp = gamma[c] * inv / M * (M * dout - dbeta[c] - xhat * dgamma[c]).
//   inp, dout and dinp (batch, channels, plane); saved (channels, 2) = (mean, inv) of the forward pass.
// Entry points: reduce (dgamma, dbeta; one workgroup per channel, fixed-order sums, no atomics);
//   input (dinp; one invocation per element, after reduce).
// Dispatch: reduce x = channels; input 1-D = gid.x + gid.y * 64 * num_workgroups.x.

#include "batchnorm_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

var<workgroup> part_g: array<f32, 64>;
var<workgroup> part_b: array<f32, 64>;

@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let c = wid.x;
    let lid = lid3.x;
    let m = params.batch * params.plane;
    let mean = saved[2u * c];
    let inv = saved[2u * c + 1u];
    var g = 0.0;
    var b = 0.0;
    for (var e = lid; e < m; e += 64u) {
        let i = ((e / params.plane) * params.channels + c) * params.plane + e % params.plane;
        g += dout[i] * ((inp[i] - mean) * inv);
        b += dout[i];
    }
    part_g[lid] = g;
    part_b[lid] = b;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w >>= 1u) {
        if (lid < w) {
            part_g[lid] += part_g[lid + w];
            part_b[lid] += part_b[lid + w];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        dgamma[c] = part_g[0];
        dbeta[c] = part_b[0];
    }
}

@compute @workgroup_size(64)
fn input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.batch * params.channels * params.plane) {
        return;
    }
    let c = (i / params.plane) % params.channels;
    let m = f32(params.batch * params.plane);
    let mean = saved[2u * c];
    let inv = saved[2u * c + 1u];
    let xhat = (inp[i] - mean) * inv;
    dinp[i] = gamma[c] * inv / m * (m * dout[i] - dbeta[c] - xhat * dgamma[c]);
}
