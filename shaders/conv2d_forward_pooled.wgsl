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
//   conv2d_forward_pooled_subgroup, main_blocks, for any c_in (the host uses it where c_in % 4
//     != 0): main's sums, 8 * CB output channels per invocation (CB an override, 1 to 4), the
//     weights shared by broadcast. Dispatch: as main, y = ceil(c_out / (8 * CB)).
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

#include "conv2d_params"
#include "divmod"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
#if SUBGROUP
@group(0) @binding(6) var<storage, read> xt: array<vec4<f32>>;
#endif
@group(0) @binding(7) var<storage, read_write> argmax: array<u32>;
// With XT = 1 the pooled values also go channel-last into xt_out ((batch * h_pool * w_pool,
// c_out / 4) vec4, c_out % 4 == 0): the layout conv2d_forward_subgroup's prepare_input writes
// for a next conv that reads this output, which then need not (the same values). Otherwise
// xt_out is a placeholder, never written.
@group(0) @binding(8) var<storage, read_write> xt_out: array<vec4<f32>>;
override XT: u32 = 0u;

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

// Pool cell `cell` as (image, y, x of its window's top-left conv pixel).
fn cell_pixel(cell: u32) -> vec3<u32> {
    let nr = divmod(cell, params.h_pool * params.w_pool);
    let yx = divmod(nr.y, params.w_pool);
    return vec3<u32>(nr.x, 2u * yx.x, 2u * yx.y);
}

// The offsets of the top-left input taps of the window pixels of the cell at `c`
// (cell_pixel), in scan order, in the input's own layout: (batch, c_in, h_in, w_in) for the
// portable kernel, xt rows (batch, h_in, w_in) for the channel-last one.
fn window_taps(c: vec3<u32>, image: u32) -> vec4<u32> {
    let t = c.x * image + c.y * params.w_in + c.z;
    return vec4<u32>(t, t + 1u, t + params.w_in, t + params.w_in + 1u);
}

fn act(v: f32) -> f32 {
    if (params.relu != 0u) {
        return max(v, 0.0);
    }
    return v;
}

// Where a pool cell's results go: `at` its window's top-left conv pixel within the image
// (the winners are stored relative to it), `o` its index in pooled and argmax for channel 0
// (channel co adds co * h_pool * w_pool), `ok` whether the cell exists. Computed once per cell:
// integer division runs lane by lane on CPU adapters.
// `cell` is the cell's own index, (image, pool row, pool column), its row in xt_out.
struct Cell {
    at: u32,
    o: u32,
    ok: bool,
    cell: u32,
}

fn cell_of(cell: u32) -> Cell {
    let pool_plane = params.h_pool * params.w_pool;
    let c = cell_pixel(cell);
    let at = c.y * params.w_out + c.z;
    let o = c.x * params.c_out * pool_plane + (c.y / 2u) * params.w_pool + c.z / 2u;
    return Cell(at, o, cell < params.batch * pool_plane, cell);
}

// Pools one cell's window sums s for channel co (if it and the cell exist): adds the bias,
// applies act, keeps the first maximum in scan order and stores the value and the winner.
// Returns the pooled value (0 where nothing is stored).
fn pool_one(co: u32, c: Cell, s: vec4<f32>, b: f32) -> f32 {
    if (co >= params.c_out || !c.ok) {
        return 0.0;
    }
    var best = act(s.x + b);
    var best_at = c.at;
    let v1 = act(s.y + b);
    if (v1 > best) {
        best = v1;
        best_at = c.at + 1u;
    }
    let v2 = act(s.z + b);
    if (v2 > best) {
        best = v2;
        best_at = c.at + params.w_out;
    }
    let v3 = act(s.w + b);
    if (v3 > best) {
        best = v3;
        best_at = c.at + params.w_out + 1u;
    }
    let o = c.o + co * params.h_pool * params.w_pool;
    pooled[o] = best;
    argmax[o] = best_at;
    return best;
}

// With XT, channels c0 .. c0 + 3 (lo) and c0 + 4 .. c0 + 7 (hi) of cell c into xt_out (those
// that exist).
fn xt_store(c0: u32, c: Cell, lo: vec4<f32>, hi: vec4<f32>) {
    if (XT == 0u || !c.ok) {
        return;
    }
    let row = c.cell * (params.c_out / 4u) + c0 / 4u;
    if (c0 < params.c_out) {
        xt_out[row] = lo;
    }
    if (c0 + 4u < params.c_out) {
        xt_out[row + 1u] = hi;
    }
}

// For channels c0 + j and cells cell0 + h: tile[2 * j + h] holds the sums of the cell's 4
// window pixels; pools and stores those in range (unrolled: indexing the tile dynamically would
// put it in memory).
// The biases bs (biases8) of the 8 channels, each loaded once for both cells.
fn pool_store(c0: u32, cell0: u32, tile: array<vec4<f32>, 16>, bs: array<vec4<f32>, 2>) {
    let a = cell_of(cell0);
    let b = cell_of(cell0 + 1u);
    let a_lo = vec4<f32>(pool_one(c0 + 0u, a, tile[0], bs[0].x), pool_one(c0 + 1u, a, tile[2], bs[0].y),
                         pool_one(c0 + 2u, a, tile[4], bs[0].z), pool_one(c0 + 3u, a, tile[6], bs[0].w));
    let a_hi = vec4<f32>(pool_one(c0 + 4u, a, tile[8], bs[1].x), pool_one(c0 + 5u, a, tile[10], bs[1].y),
                         pool_one(c0 + 6u, a, tile[12], bs[1].z), pool_one(c0 + 7u, a, tile[14], bs[1].w));
    let b_lo = vec4<f32>(pool_one(c0 + 0u, b, tile[1], bs[0].x), pool_one(c0 + 1u, b, tile[3], bs[0].y),
                         pool_one(c0 + 2u, b, tile[5], bs[0].z), pool_one(c0 + 3u, b, tile[7], bs[0].w));
    let b_hi = vec4<f32>(pool_one(c0 + 4u, b, tile[9], bs[1].x), pool_one(c0 + 5u, b, tile[11], bs[1].y),
                         pool_one(c0 + 6u, b, tile[13], bs[1].z), pool_one(c0 + 7u, b, tile[15], bs[1].w));
    xt_store(c0, a, a_lo, a_hi);
    xt_store(c0, b, b_lo, b_hi);
}

#if !SUBGROUP
// The biases of channels c0 .. c0 + 7 (clamped past c_out: those are not stored).
fn biases8(c0: u32) -> array<vec4<f32>, 2> {
    let m = params.c_out - 1u;
    return array<vec4<f32>, 2>(
        vec4<f32>(bias[min(c0, m)], bias[min(c0 + 1u, m)], bias[min(c0 + 2u, m)], bias[min(c0 + 3u, m)]),
        vec4<f32>(bias[min(c0 + 4u, m)], bias[min(c0 + 5u, m)], bias[min(c0 + 6u, m)], bias[min(c0 + 7u, m)]));
}
#else
#include "share8"

// The biases of channels c0 .. c0 + 7 (clamped past c_out: those are not stored), the same for
// the whole subgroup: lanes 0..7 load one each and share8 hands them round.
fn biases8(c0: u32, lane: u32) -> array<vec4<f32>, 2> {
    return share8(bias[min(c0 + lane % 8u, params.c_out - 1u)]);
}
#endif

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
#endif
    let plane_in = params.h_in * params.w_in;
#if SUBGROUP
    let ci4 = params.c_in / 4u;
#endif
    let nc4 = c4();
#if !SUBGROUP
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);

    // Offsets of the top-left input taps of the window pixels of cells cell0 (*a) and
    // cell0 + 1 (*b, clamped past the end, not stored).
    let iba = window_taps(cell_pixel(cell0), params.c_in * plane_in);
    let ibb = window_taps(cell_pixel(min(cell0 + 1u, cells - 1u)), params.c_in * plane_in);
#else
    // This lane's share of the 16 weight vec4s of a step: k = lane % 8 and k + 8, where vec4 k
    // holds input channel 4q + k / 4 for output channels c0 + 4 (k % 4) .. + 3.
    let wl = (lane % 8u) / 4u;
    let wq = min(c0 / 4u + lane % 4u, nc4 - 1u);

    // xt rows of the top-left input tap of the window pixels of cells cell0 (*a) and cell0 + 1
    // (*b), clamped past the end (not stored).
    let ia = window_taps(cell_pixel(min(cell0, cells - 1u)), plane_in) * ci4;
    let ib = window_taps(cell_pixel(min(cell0 + 1u, cells - 1u)), plane_in) * ci4;
#endif

#if !SUBGROUP
    // accJ{a,b}: output channel c0 + J for the pixels of cells a and b.
#include "conv2d_acc"
    pool_store(c0, cell0, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b),
               biases8(c0));
#else
    // accTC: window pixel T (cell cell0 + T / 4), output channels c0 + 4C .. c0 + 4C + 3.
#include "conv2d_acc_channel_last"
    pool_store(c0 + 0u, cell0, array<vec4<f32>, 16>(lo0[0], hi0[0], lo0[1], hi0[1], lo0[2], hi0[2], lo0[3], hi0[3], lo1[0], hi1[0], lo1[1], hi1[1], lo1[2], hi1[2], lo1[3], hi1[3]), biases8(c0, lane));
    pool_store(c0 + 8u, cell0, array<vec4<f32>, 16>(lo2[0], hi2[0], lo2[1], hi2[1], lo2[2], hi2[2], lo2[3], hi2[3], lo3[0], hi3[0], lo3[1], hi3[1], lo3[2], hi3[2], lo3[3], hi3[3]), biases8(c0 + 8u, lane));
#endif
}

#if SUBGROUP
// Blocks of 8 output channels per invocation of main_blocks (1 to 4; tiling only).
override CB: u32 = 1u;

#include "chan8"

// main's sums for any c_in, 8 * CB output channels per invocation: the 2 * CB weight vec4s a
// step needs are the same for every invocation of the workgroup (one channel tile per
// workgroup), so lanes 0..7 load one each and subgroupBroadcast shares them, and each input
// load serves 8 * CB channels. The same terms in the same order as main: the same bits.
// Dispatch: x = ceil(ceil(batch * h_pool * w_pool / 2) / 64), y = ceil(c_out / (8 * CB)).
@compute @workgroup_size(64)
fn main_blocks(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(subgroup_invocation_id) lane: u32) {
    let cells = params.batch * params.h_pool * params.w_pool;
    let cell0 = gid.x * 2u;
    let c0 = wid.y * 8u * CB;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last cell stay (clamped, storing nothing): the broadcasts need every
    // lane.
    if (c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let nc4 = c4();
    // Lane k % 8 loads weight vec4 k of a step (output channels c0 + 4k .. + 3, clamped as
    // main clamps them); block B takes vec4s 2B and 2B + 1.
    let wq = min(c0 / 4u + lane % 8u, nc4 - 1u);
    let iba = window_taps(cell_pixel(min(cell0, cells - 1u)), params.c_in * plane_in);
    let ibb = window_taps(cell_pixel(min(cell0 + 1u, cells - 1u)), params.c_in * plane_in);
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    for (var ci = 0u; ci < params.c_in; ci++) {
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let o = vec4<u32>(ci * plane_in + ky * params.w_in + kx);
                let xa = inp4(iba + o);
                let xb = inp4(ibb + o);
                let mine = wt[((ky * params.kw + kx) * params.c_in + ci) * nc4 + wq];
                chan8(&acc0, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), xa, xb);
                if (CB > 1u) {
                    chan8(&acc1, subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u), xa, xb);
                }
                if (CB > 2u) {
                    chan8(&acc2, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u), xa, xb);
                    chan8(&acc3, subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u), xa, xb);
                }
            }
        }
    }
    pool_store(c0, cell0, acc0, biases8(c0, lane));
    if (CB > 1u) {
        pool_store(c0 + 8u, cell0, acc1, biases8(c0 + 8u, lane));
    }
    if (CB > 2u) {
        pool_store(c0 + 16u, cell0, acc2, biases8(c0 + 16u, lane));
        pool_store(c0 + 24u, cell0, acc3, biases8(c0 + 24u, lane));
    }
}
#endif
