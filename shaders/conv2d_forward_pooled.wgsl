// conv2d_forward_pooled: conv2d_forward (stride 1, valid, bias, optional ReLU) and the 2x2,
// stride 2 max-pool after it in one pass. The conv's output is never written:
//   pooled[n, co, py, px] = max over the window (2py..2py+1, 2px..2px+1) of
//                           act(conv2d(inp, weight) + bias)[n, co, y, x]
//   argmax[n, co, py, px] = the winner's y * w_out + x, ties keeping the first in the scan
//                           order (0,0), (0,1), (1,0), (1,1), as maxpool2d_forward does.
//   inp (batch, c_in, h_in, w_in), wt (kh * kw, c_in, c4) vec4 (conv2d_transpose_weight's
//   layout), bias (c_out); pooled and argmax (batch, c_out, h_pool, w_pool), h_pool =
//   floor(h_out / 2) (floor mode: a last odd row or column of the conv's output is in no window
//   and not computed).
// Each invocation computes 2 pool cells (the 8 pixels of their windows) with conv2d_forward's
// own accumulation (the parts conv2d_acc and conv2d_acc_channel_last), then adds the bias,
// applies act and pools (pool_store): the values and the winners are those of the two unfused
// passes, bit for bit. Variants (src/shaders.rs), both with POOLED (the pool's members in
// Params):
//   conv2d_forward_pooled, main: 8 output channels per invocation.
//     Dispatch: x = ceil(ceil(batch * h_pool * w_pool / 2) / 64), y = ceil(c_out / 8).
//   conv2d_forward_pooled_subgroup (SUBGROUP), main_channel_last, for c_in % 4 == 0
//     (params.channel_last = 1): 16 output channels per invocation, from the channel-last input
//     xt that conv2d_forward_subgroup's prepare_input writes (recorded just before).
//     Dispatch: x = ceil(ceil(batch * h_pool * w_pool / 2) / 64), y = ceil(c_out / 16).
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

#include "conv2d_params"

#if !SUBGROUP
@group(0) @binding(0) var<storage, read> inp: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
#if SUBGROUP
@group(0) @binding(6) var<storage, read> xt: array<vec4<f32>>;
#endif
@group(0) @binding(7) var<storage, read_write> argmax: array<u32>;

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

#if !SUBGROUP
fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

#endif
// The conv output pixels (flattened over batch, y, x) of pool cell `cell`'s window, in scan
// order.
fn window(cell: u32) -> vec4<u32> {
    let pool_plane = params.h_pool * params.w_pool;
    let r = cell % pool_plane;
    let m = (cell / pool_plane) * params.h_out * params.w_out
        + (r / params.w_pool) * 2u * params.w_out + (r % params.w_pool) * 2u;
    return vec4<u32>(m, m + 1u, m + params.w_out, m + params.w_out + 1u);
}

fn act(v: f32) -> f32 {
    if (params.relu != 0u) {
        return max(v, 0.0);
    }
    return v;
}

// For channels c0 + j and cells cell0 + h (in range): tile[2 * j + h] holds the sums of the
// cell's 4 window pixels; adds the bias, applies act, pools and stores.
fn pool_store(c0: u32, cell0: u32, tile: array<vec4<f32>, 16>) {
    var acc = tile;
    let cells = params.batch * params.h_pool * params.w_pool;
    let pool_plane = params.h_pool * params.w_pool;
    for (var j = 0u; j < 8u; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var h = 0u; h < 2u; h++) {
            let cell = cell0 + h;
            if (cell >= cells) {
                break;
            }
            let r = cell % pool_plane;
            let at0 = (r / params.w_pool) * 2u * params.w_out + (r % params.w_pool) * 2u;
            let s = acc[2u * j + h];
            var best = act(s.x + b);
            var best_at = at0;
            let v1 = act(s.y + b);
            if (v1 > best) {
                best = v1;
                best_at = at0 + 1u;
            }
            let v2 = act(s.z + b);
            if (v2 > best) {
                best = v2;
                best_at = at0 + params.w_out;
            }
            let v3 = act(s.w + b);
            if (v3 > best) {
                best = v3;
                best_at = at0 + params.w_out + 1u;
            }
            let o = ((cell / pool_plane) * params.c_out + co) * pool_plane + r;
            pooled[o] = best;
            argmax[o] = best_at;
        }
    }
}

#if SUBGROUP
// acc += x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3: 4 input channels into 4 output channels.
fn fma4(acc: vec4<f32>, x: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return acc + x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3;
}

#endif
@compute @workgroup_size(64)
#if !SUBGROUP
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
#else
fn main_channel_last(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(subgroup_invocation_id) lane: u32) {
    let plane_out = params.h_out * params.w_out;
#endif
    let cells = params.batch * params.h_pool * params.w_pool;
    let cell0 = gid.x * 2u;
#if !SUBGROUP
    let c0 = gid.y * 8u;
    if (cell0 >= cells || c0 >= params.c_out) {
#else
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last cell stay (clamped, storing nothing): the broadcasts need every
    // lane.
    if (c0 >= params.c_out) {
#endif
        return;
    }
#if !SUBGROUP
    let plane_out = params.h_out * params.w_out;
#endif
    let plane_in = params.h_in * params.w_in;
#if SUBGROUP
    let ci4 = params.c_in / 4u;
#endif
    let nc4 = c4();
#if !SUBGROUP
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);

    // The window pixels of cells cell0 (*a) and cell0 + 1 (*b, clamped past the end, not
    // stored): offsets of their top-left input tap.
    let ma = window(cell0);
#else
    // This lane's share of the 16 weight vec4s of a step: k = lane % 8 and k + 8, where vec4 k
    // holds input channel 4q + k / 4 for output channels c0 + 4 (k % 4) .. + 3.
    let wl = (lane % 8u) / 4u;
    let wq = min(c0 / 4u + lane % 4u, nc4 - 1u);

    // xt rows of the top-left input tap of the window pixels of cells cell0 (*a) and cell0 + 1
    // (*b), clamped past the end (not stored).
    let ma = window(min(cell0, cells - 1u));
#endif
    let mb = window(min(cell0 + 1u, cells - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
#if !SUBGROUP
    let iba = (ma / plane_out) * params.c_in * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out;
    let ibb = (mb / plane_out) * params.c_in * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out;
#else
    let ia = ((ma / plane_out) * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out) * ci4;
    let ib = ((mb / plane_out) * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out) * ci4;
#endif

#if !SUBGROUP
    // accJ{a,b}: output channel c0 + J for the pixels of cells a and b.
#include "conv2d_acc"
    pool_store(c0, cell0, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b));
#else
    // accTC: window pixel T (cell cell0 + T / 4), output channels c0 + 4C .. c0 + 4C + 3.
#include "conv2d_acc_channel_last"
    pool_store(c0 + 0u, cell0, array<vec4<f32>, 16>(lo0[0], hi0[0], lo0[1], hi0[1], lo0[2], hi0[2], lo0[3], hi0[3], lo1[0], hi1[0], lo1[1], hi1[1], lo1[2], hi1[2], lo1[3], hi1[3]));
    pool_store(c0 + 8u, cell0, array<vec4<f32>, 16>(lo2[0], hi2[0], lo2[1], hi2[1], lo2[2], hi2[2], lo2[3], hi2[3], lo3[0], hi3[0], lo3[1], hi3[1], lo3[2], hi3[2], lo3[3], hi3[3]));
#endif
}
