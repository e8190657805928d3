// conv2d_transpose_weight: copies conv weights into the channel-last layout the conv kernels load
// as vec4s: wt[(tap * c_in + ci) * c4 + q][l] = weight[co = 4q + l, ci, tap], tap = ky * kw + kx,
// c4 = ceil(c_out / 4), zeros past c_out.
//   weight (c_out, c_in, kh, kw), wt (kh * kw, c_in, c4) vec4
// Dispatch: 1-D index = gid.x + gid.y * 64 * num_workgroups.x over kh * kw * c_in * c4.

#include "conv2d_params"

@group(0) @binding(0) var<storage, read> weight: array<f32>;
@group(0) @binding(1) var<storage, read_write> wt: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: Params;

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let kk = params.kh * params.kw;
    if (i >= kk * params.c_in * c4()) {
        return;
    }
    let r = i / c4();
    let ci = r % params.c_in;
    let tap = r / params.c_in;
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        let co = (i % c4()) * 4u + l;
        if (co < params.c_out) {
            v[l] = weight[(co * params.c_in + ci) * kk + tap];
        }
    }
    wt[i] = v;
}
