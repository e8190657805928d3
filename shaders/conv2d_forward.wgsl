// conv2d_forward: out = act(conv2d(inp, weight) + bias), stride 1, no padding ("valid").
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw), bias (c_out)
//   out (batch, c_out, h_out, w_out), h_out = h_in - kh + 1, w_out = w_in - kw + 1
//   act = ReLU when params.relu != 0, identity otherwise.
//   wt (kh * kw, c_in, c4) vec4: the weights with the output channel innermost, written by
//   conv2d_transpose_weight (or kept by Adam), so that 8 channels' weights are two vec4 loads.
// Implicit GEMM with a register tile. Variants (src/shaders.rs):
//   conv2d_forward, main: any c_in, no subgroup operations; each invocation computes 8
//     consecutive output pixels (flattened over batch, y, x) for 8 consecutive output
//     channels. Dispatch: x = ceil(batch * h_out * w_out / 8 / 64), y = ceil(c_out / 8).
//   conv2d_forward_subgroup (SUBGROUP), for c_in % 4 == 0 (params.channel_last = 1):
//     prepare_input:     xt (batch * h_in * w_in, c_in / 4) vec4 = inp with the channel
//                        innermost. 1-D index over batch * h_in * w_in * c_in / 4.
//                        conv2d_backward's weight pass reads xt too.
//     main_channel_last: 8 output pixels x 16 output channels per invocation, reading 4 input
//                        channels per vec4 load from xt. The 16 weight vec4s a step needs are
//                        the same for every invocation of the workgroup (one channel tile per
//                        workgroup): each of 8 lanes loads two and subgroupBroadcast shares
//                        them, instead of every lane loading all 16 (on CPU adapters such as
//                        lavapipe every storage load costs a per-lane loop; the broadcast is a
//                        register move).
//                        Dispatch: x = ceil(batch * h_out * w_out / 8 / 64), y = ceil(c_out / 16).
// The accumulation loops are parts shared with conv2d_forward_pooled (conv2d_acc,
// conv2d_acc_channel_last), so the fused pass computes the same bits.
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

#include "conv2d_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
#if SUBGROUP
@group(0) @binding(6) var<storage, read_write> xt: array<vec4<f32>>;
#endif

#include "lanes"

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

// out[pixel p0 + t, channel c0 + j] = act(tile[2 * j + t / 4][t % 4] + bias[c0 + j]), in
// range; ob: each pixel's channel-0 offset in out. Row by row, with the tile's rows passed as
// values: indexing the tile dynamically would put it in memory.
fn store_tile(p0: u32, c0: u32, npix: u32, ob: array<vec4<u32>, 2>, tile: array<vec4<f32>, 16>) {
    let n = select(0u, min(npix - p0, 8u), p0 < npix);
    out_row(c0 + 0u, n, ob[0], ob[1], tile[0], tile[1]);
    out_row(c0 + 1u, n, ob[0], ob[1], tile[2], tile[3]);
    out_row(c0 + 2u, n, ob[0], ob[1], tile[4], tile[5]);
    out_row(c0 + 3u, n, ob[0], ob[1], tile[6], tile[7]);
    out_row(c0 + 4u, n, ob[0], ob[1], tile[8], tile[9]);
    out_row(c0 + 5u, n, ob[0], ob[1], tile[10], tile[11]);
    out_row(c0 + 6u, n, ob[0], ob[1], tile[12], tile[13]);
    out_row(c0 + 7u, n, ob[0], ob[1], tile[14], tile[15]);
}

// Channel co (if in range) of the first n of the 8 pixels at offsets oa, ob: values a, b.
fn out_row(co: u32, n: u32, oa: vec4<u32>, ob: vec4<u32>, a: vec4<f32>, b: vec4<f32>) {
    if (co >= params.c_out) {
        return;
    }
    let o = co * params.h_out * params.w_out;
    let bias_co = bias[co];
    for (var t = 0u; t < n; t++) {
        let i = t % 4u;
        var v = select(b[i], a[i], t < 4u) + bias_co;
        if (params.relu != 0u) {
            v = max(v, 0.0);
        }
        out[select(ob[i], oa[i], t < 4u) + o] = v;
    }
}

#if !SUBGROUP
fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let p0 = gid.x * 8u;
    let c0 = gid.y * 8u;
    if (p0 >= npix || c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let nc4 = c4();
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);

    // Pixels p0..p0+3 in the lanes of *a, p0+4..p0+7 in *b (clamped past the end, not stored):
    // offsets of their top-left input tap (ib*) and of their output (ob).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let iba = (ma / plane_out) * params.c_in * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out;
    let ibb = (mb / plane_out) * params.c_in * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out;

    // accJ{a,b}: output channel c0 + J for pixels a and b.
#include "conv2d_acc"

    let ob = array<vec4<u32>, 2>((ma / plane_out) * params.c_out * plane_out + ra,
                                 (mb / plane_out) * params.c_out * plane_out + rb);
    store_tile(p0, c0, npix, ob, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                      acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b));
}
#else
@compute @workgroup_size(64)
fn prepare_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.h_in * params.w_in;
    let ci4 = params.c_in / 4u;
    if (i >= params.batch * plane * ci4) {
        return;
    }
    let m = i / ci4;
    let base = ((m / plane) * params.c_in + (i % ci4) * 4u) * plane + m % plane;
    xt[i] = vec4<f32>(inp[base], inp[base + plane], inp[base + 2u * plane], inp[base + 3u * plane]);
}

// acc += x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3: 4 input channels into 4 output channels.
fn fma4(acc: vec4<f32>, x: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return acc + x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3;
}

@compute @workgroup_size(64)
fn main_channel_last(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(subgroup_invocation_id) lane: u32) {
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let p0 = gid.x * 8u;
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow). Invocations past the last pixel stay (clamped, storing
    // nothing): the broadcasts need every lane.
    if (c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let ci4 = params.c_in / 4u;
    let nc4 = c4();
    // This lane's share of the 16 weight vec4s of a step: k = lane % 8 and k + 8, where vec4 k
    // holds input channel 4q + k / 4 for output channels c0 + 4 (k % 4) .. + 3.
    let wl = (lane % 8u) / 4u;
    let wq = min(c0 / 4u + lane % 4u, nc4 - 1u);

    // xt rows of the top-left input tap of pixels p0..p0+3 (*a) and p0+4..p0+7 (*b), clamped
    // past the end (not stored).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let ia = ((ma / plane_out) * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out) * ci4;
    let ib = ((mb / plane_out) * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out) * ci4;

    // accTC: pixel p0 + T, output channels c0 + 4C .. c0 + 4C + 3.
#include "conv2d_acc_channel_last"
    let ob = array<vec4<u32>, 2>((ma / plane_out) * params.c_out * plane_out + ra,
                                 (mb / plane_out) * params.c_out * plane_out + rb);
    store_tile(p0, c0 + 0u, npix, ob, array<vec4<f32>, 16>(lo0[0], hi0[0], lo0[1], hi0[1], lo0[2], hi0[2], lo0[3], hi0[3], lo1[0], hi1[0], lo1[1], hi1[1], lo1[2], hi1[2], lo1[3], hi1[3]));
    store_tile(p0, c0 + 8u, npix, ob, array<vec4<f32>, 16>(lo2[0], hi2[0], lo2[1], hi2[1], lo2[2], hi2[2], lo2[3], hi2[3], lo3[0], hi3[0], lo3[1], hi3[1], lo3[2], hi3[2], lo3[3], hi3[3]));
}
#endif
