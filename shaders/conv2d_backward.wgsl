// conv2d_backward: gradients of conv2d_forward (stride 1, valid padding, optional ReLU).
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw)
//   out, dout (batch, c_out, h_out, w_out): the forward output (after ReLU) and its gradient
// Scratch in channel-last layouts, channels padded to c4 = ceil(c_out / 4) vec4s (zeros):
//   gv (batch * h_out * w_out, c4) vec4: the gradient at the pre-activation,
//      g = dout * (out > 0) with ReLU, else dout
//   wt (kh * kw, c_in, c4) vec4: the weights with the output channel innermost (written by
//      conv2d_transpose_weight, or kept by Adam)
// Entry points, in dispatch order (each overwrites its outputs):
//   prepare_grad:     gv from dout (and out). 1-D index over batch * h_out * w_out * c4.
//   prepare_grad_vec4 (instead, when h_out * w_out % 4 == 0): the same, 4 pixels per load.
//   backward_weight:  split-K partial sums over chunks of params.chunk output pixels:
//                     partial[z, co, j] = sum_{m in chunk z} g[m, co] * col[m, j], j < K = c_in*kh*kw,
//                     and the extra column j = K holds the bias gradient (col = 1).
//                     tile: 8 CO_GROUPS output channels x 8 columns.
//                     Dispatch: x = ceil(ceil((K + 1) / 8) * chunks / 64),
//                     y = ceil(c_out / (8 CO_GROUPS)).
//   reduce_weight:    dweight[co, j] = sum_z partial[z, co, j], dbias[co] = sum_z partial[z, co, K]
//                     (column j mapped back from (ky, kx, ci) order when channel_last)
//                     Dispatch: x = ceil(c_out * (K + 1) / 64).
//   backward_input:   dinp[n, ci, y, x] = sum_{ky, kx, co} g[n, co, y - ky, x - kx] * weight[co, ci, ky, kx]
//                     over the taps that reach an output pixel.
//                     tile: 8 images at one input pixel x 8 input channels, 4 output channels
//                     per step; blocks position-major (pixel, then 8 images), so neighbouring
//                     invocations need the same taps.
//                     Dispatch: x = ceil(h_in * w_in * ceil(batch / 8) / 64), y = ceil(c_in / 8).
//   backward:         backward_weight and backward_input in one dispatch (the same code per
//                     tile, so the same bits; they are independent): x = the weight grid's
//                     workgroups and the input grid's, interleaved; y = 1. reduce_weight
//                     follows.
// The SUBGROUP variant (conv2d_backward_subgroup in src/shaders.rs) replaces:
//   backward_input:   8 images x 16 input channels per invocation. The 16 weight vec4s a
//                     step needs are the same for every invocation of the workgroup (one
//                     input-channel tile per workgroup): each of 8 lanes loads two and
//                     subgroupBroadcast shares them.
//                     The tap loop runs the union of the subgroup's tap ranges.
//                     Dispatch: x = ceil(h_in * w_in * ceil(batch / 8) / 64), y = ceil(c_in / 16).
//   backward_weight_channel_last (params.channel_last = 1, c_in % 4 == 0): split-K partial sums
//                     of the weight gradient with the columns in (ky, kx, ci) order, so that 4
//                     columns are one vec4 load from xt (batch * h_in * w_in, c_in / 4), the
//                     channel-last input conv2d_forward_subgroup's prepare_input wrote; the
//                     bias is column K. reduce_weight (the portable variant) maps the columns
//                     back. 8 columns x 16 output channels per invocation; the gradient rows,
//                     the same for the whole workgroup, are loaded once per subgroup and
//                     broadcast. Dispatch: x = ceil((K + 1) / 8 / 64), y = ceil(c_out / 16),
//                     z = chunks.
//   backward:         backward_weight_channel_last and backward_input in one dispatch.
// Tiling (WGSL override constants, set per pipeline by src/gpu/tuning.rs; none changes what an
// output sums or the order): WG invocations per workgroup replaces the 64 in the dispatch sizes
// above; CO_GROUPS x 8 output channels per weight invocation in the portable variant (above),
// CO_GROUPS x 16 in the SUBGROUP one (y = ceil(c_out / (16 CO_GROUPS))), and there CI_GROUPS x
// 16 input channels per input invocation (y = ceil(c_in / (16 CI_GROUPS))).
// Gather formulation throughout: no atomics. Register tiles and vec4 loads along channels keep
// storage loads (the expensive part on CPU adapters such as lavapipe) few per multiply-add.
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

#include "conv2d_params"

#if !SUBGROUP
@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
#endif
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
#if !SUBGROUP
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;
#endif
@group(0) @binding(8) var<uniform> params: Params;
#if !SUBGROUP
@group(0) @binding(9) var<storage, read_write> gv: array<vec4<f32>>;
#else
@group(0) @binding(9) var<storage, read> gv: array<vec4<f32>>;
#endif
@group(0) @binding(10) var<storage, read> wt: array<vec4<f32>>;
#if !SUBGROUP
@group(0) @binding(12) var<storage, read> out4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> dout4: array<vec4<f32>>;
#else
@group(0) @binding(11) var<storage, read> xt: array<vec4<f32>>;
#endif

#include "lanes"

// Tiling, set per pipeline (src/gpu/tuning.rs); none changes what one output sums, or in
// which order. WG: invocations per workgroup of backward_input, backward_weight* and backward.
override WG: u32 = 64u;
// Groups of output channels per invocation of the weight tile (1 to 4): of 16 channels in the
// SUBGROUP variant, of 8 in the portable one.
override CO_GROUPS: u32 = 1u;
#if SUBGROUP
// 16-channel groups of input channels per invocation of the input tile (1 or 2).
override CI_GROUPS: u32 = 1u;
#endif

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

#if !SUBGROUP
fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

#endif
// Per-lane dot products: (dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3)).
fn dots(w: vec4<f32>, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3));
}

#if !SUBGROUP
@compute @workgroup_size(64)
fn prepare_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.h_out * params.w_out;
    if (i >= params.batch * plane * c4()) {
        return;
    }
    let m = i / c4();
    let base = (m / plane) * params.c_out * plane + m % plane;
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        let co = (i % c4()) * 4u + l;
        if (co < params.c_out) {
            let d = dout[base + co * plane];
            v[l] = select(d, select(0.0, d, out[base + co * plane] > 0.0), params.relu != 0u);
        }
    }
    gv[i] = v;
}

// prepare_grad for h_out * w_out % 4 == 0: 4 pixels x 4 channels per invocation, reading out
// and dout (bound again as out4, dout4) 4 pixels per vec4 load and transposing.
// 1-D index over batch * h_out * w_out / 4 * c4.
@compute @workgroup_size(64)
fn prepare_grad_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.h_out * params.w_out;
    let nc4 = c4();
    if (i >= params.batch * plane / 4u * nc4) {
        return;
    }
    let m = (i / nc4) * 4u; // first of the 4 pixels, all in one image
    let q = i % nc4;
    let base = (m / plane) * params.c_out * plane + m % plane;
    var g = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var l = 0u; l < 4u; l++) {
        let co = q * 4u + l;
        if (co < params.c_out) {
            let at = (base + co * plane) / 4u;
            let d = dout4[at];
            g[l] = select(d, select(vec4<f32>(0.0), d, out4[at] > vec4<f32>(0.0)), params.relu != 0u);
        }
    }
    for (var t = 0u; t < 4u; t++) {
        gv[(m + t) * nc4 + q] = vec4<f32>(g[0][t], g[1][t], g[2][t], g[3][t]);
    }
}

fn input_tile(gid: vec3<u32>) {
#else
fn input_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
#endif
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    // Block gid.x: 8 images (n0 .. n0 + 7, clamped past the batch, not stored) at one input
    // pixel, position-major, so the invocation's 8 pixels need the same taps.
    let nb = (params.batch + 7u) / 8u;
    let pos_raw = gid.x / nb;
    let n0 = (gid.x % nb) * 8u;
#if !SUBGROUP
    let c0 = gid.y * 8u;
    if (pos_raw >= plane_in || c0 >= params.c_in) {
#else
    let c0 = wid.y * 16u * CI_GROUPS;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last pixel stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (c0 >= params.c_in) {
#endif
        return;
    }
    let pos = min(pos_raw, plane_in - 1u);
    let y = pos / params.w_in;
    let x = pos % params.w_in;
    let nmax = vec4<u32>(params.batch - 1u);
    let na = min(vec4<u32>(n0) + LANES_A, nmax);
    let nbv = min(vec4<u32>(n0) + LANES_B, nmax);
    let nc4 = c4();
    // Each image's first gv row.
    let ga = na * plane_out * nc4;
    let gb = nbv * plane_out * nc4;
    let cm = params.c_in - 1u;
    let z4 = vec4<f32>(0.0);
    // The taps that reach an output pixel: oy = y - ky in [0, h_out), ox = x - kx in [0, w_out).
    // Skipping the others drops only zero terms (+-0 added to a sum that never is -0), so the
    // bits are those of the full 3x3 loop.
    var ky_lo = select(0u, y + 1u - params.h_out, y + 1u > params.h_out);
    var ky_hi = min(params.kh, y + 1u);
    var kx_lo = select(0u, x + 1u - params.w_out, x + 1u > params.w_out);
    var kx_hi = min(params.kw, x + 1u);
#if SUBGROUP
    // The broadcasts need the whole subgroup in the loop: run the union of its ranges, and
    // zero the taps outside a lane's own.
    let own = vec4<u32>(ky_lo, ky_hi, kx_lo, kx_hi);
    ky_lo = subgroupMin(ky_lo);
    ky_hi = subgroupMax(ky_hi);
    kx_lo = subgroupMin(kx_lo);
    kx_hi = subgroupMax(kx_hi);
#endif

    // accJ{a,b}: input channel c0 + J for images a and b.
    var acc0a = z4; var acc0b = z4;
    var acc1a = z4; var acc1b = z4;
    var acc2a = z4; var acc2b = z4;
    var acc3a = z4; var acc3b = z4;
    var acc4a = z4; var acc4b = z4;
    var acc5a = z4; var acc5b = z4;
    var acc6a = z4; var acc6b = z4;
    var acc7a = z4; var acc7b = z4;
#if SUBGROUP
    // acc0 (channels c0 ..), acc1 (c0 + 16 ..): channel J of the group for images a and b at
    // 2J and 2J + 1.
    var acc0: array<vec4<f32>, 32>;
    var acc1: array<vec4<f32>, 32>;
#endif
    for (var ky = ky_lo; ky < ky_hi; ky++) {
        for (var kx = kx_lo; kx < kx_hi; kx++) {
#if SUBGROUP
            let valid = ky >= own.x && ky < own.y && kx >= own.z && kx < own.w;
            let o = (min(y - ky, params.h_out - 1u) * params.w_out + min(x - kx, params.w_out - 1u)) * nc4;
#else
            let o = ((y - ky) * params.w_out + (x - kx)) * nc4;
#endif
            let oa = ga + vec4<u32>(o);
            let ob = gb + vec4<u32>(o);
            let wrow = (ky * params.kw + kx) * params.c_in;
            for (var q = 0u; q < nc4; q++) {
#if !SUBGROUP
                let g0 = gv[oa.x + q];
                let g1 = gv[oa.y + q];
                let g2 = gv[oa.z + q];
                let g3 = gv[oa.w + q];
                let g4 = gv[ob.x + q];
                let g5 = gv[ob.y + q];
                let g6 = gv[ob.z + q];
                let g7 = gv[ob.w + q];
                var w = wt[(wrow + min(c0, cm)) * nc4 + q];
                acc0a += dots(w, g0, g1, g2, g3); acc0b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 1u, cm)) * nc4 + q];
                acc1a += dots(w, g0, g1, g2, g3); acc1b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 2u, cm)) * nc4 + q];
                acc2a += dots(w, g0, g1, g2, g3); acc2b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 3u, cm)) * nc4 + q];
                acc3a += dots(w, g0, g1, g2, g3); acc3b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 4u, cm)) * nc4 + q];
                acc4a += dots(w, g0, g1, g2, g3); acc4b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 5u, cm)) * nc4 + q];
                acc5a += dots(w, g0, g1, g2, g3); acc5b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 6u, cm)) * nc4 + q];
                acc6a += dots(w, g0, g1, g2, g3); acc6b += dots(w, g4, g5, g6, g7);
                w = wt[(wrow + min(c0 + 7u, cm)) * nc4 + q];
                acc7a += dots(w, g0, g1, g2, g3); acc7b += dots(w, g4, g5, g6, g7);
#else
                let g0 = select(z4, gv[oa.x + q], valid);
                let g1 = select(z4, gv[oa.y + q], valid);
                let g2 = select(z4, gv[oa.z + q], valid);
                let g3 = select(z4, gv[oa.w + q], valid);
                let g4 = select(z4, gv[ob.x + q], valid);
                let g5 = select(z4, gv[ob.y + q], valid);
                let g6 = select(z4, gv[ob.z + q], valid);
                let g7 = select(z4, gv[ob.w + q], valid);
                // Lane k % 8 loads input channels c0 + k and c0 + 8 + k of each group;
                // broadcasts share them.
                let wl = lane % 8u;
                input_group(&acc0, wt[(wrow + min(c0 + wl, cm)) * nc4 + q],
                            wt[(wrow + min(c0 + 8u + wl, cm)) * nc4 + q], g0, g1, g2, g3, g4, g5, g6, g7);
                if (CI_GROUPS > 1u) {
                    input_group(&acc1, wt[(wrow + min(c0 + 16u + wl, cm)) * nc4 + q],
                                wt[(wrow + min(c0 + 24u + wl, cm)) * nc4 + q], g0, g1, g2, g3, g4, g5, g6, g7);
                }
#endif
            }
        }
    }

    // Each image's channel-0 offset at this pixel; the images in the batch, none past the end.
    let ib = array<vec4<u32>, 2>(na * params.c_in * plane_in + pos, nbv * params.c_in * plane_in + pos);
    let n = select(0u, min(params.batch - n0, 8u), pos_raw < plane_in);
#if !SUBGROUP
    store_input(n, c0, 8u, plane_in, ib, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                              acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b));
#else
    store_input(n, c0, 16u, plane_in, ib, acc0);
    if (CI_GROUPS > 1u) {
        store_input(n, c0 + 16u, 16u, plane_in, ib, acc1);
    }
#endif
}

// dinp for channels c0 .. c0 + count - 1 (count 8 or 16) and the first n of the 8 pixels
// from a tile laid out as tile[2 * j + t / 4][t % 4] (channel j, pixel t); ib: each pixel's
// channel-0 offset. Unrolled over the channels: indexing a tile dynamically puts it in memory.
#if !SUBGROUP
fn store_input(n: u32, c0: u32, count: u32, plane_in: u32, ib: array<vec4<u32>, 2>,
               tile: array<vec4<f32>, 16>) {
#else
fn store_input(n: u32, c0: u32, count: u32, plane_in: u32, ib: array<vec4<u32>, 2>,
               tile: array<vec4<f32>, 32>) {
#endif
    input_row(c0 + 0u, n, plane_in, ib[0], ib[1], tile[0], tile[1]);
    input_row(c0 + 1u, n, plane_in, ib[0], ib[1], tile[2], tile[3]);
    input_row(c0 + 2u, n, plane_in, ib[0], ib[1], tile[4], tile[5]);
    input_row(c0 + 3u, n, plane_in, ib[0], ib[1], tile[6], tile[7]);
    input_row(c0 + 4u, n, plane_in, ib[0], ib[1], tile[8], tile[9]);
    input_row(c0 + 5u, n, plane_in, ib[0], ib[1], tile[10], tile[11]);
    input_row(c0 + 6u, n, plane_in, ib[0], ib[1], tile[12], tile[13]);
    input_row(c0 + 7u, n, plane_in, ib[0], ib[1], tile[14], tile[15]);
#if SUBGROUP
    if (count > 8u) {
        input_row(c0 + 8u, n, plane_in, ib[0], ib[1], tile[16], tile[17]);
        input_row(c0 + 9u, n, plane_in, ib[0], ib[1], tile[18], tile[19]);
        input_row(c0 + 10u, n, plane_in, ib[0], ib[1], tile[20], tile[21]);
        input_row(c0 + 11u, n, plane_in, ib[0], ib[1], tile[22], tile[23]);
        input_row(c0 + 12u, n, plane_in, ib[0], ib[1], tile[24], tile[25]);
        input_row(c0 + 13u, n, plane_in, ib[0], ib[1], tile[26], tile[27]);
        input_row(c0 + 14u, n, plane_in, ib[0], ib[1], tile[28], tile[29]);
        input_row(c0 + 15u, n, plane_in, ib[0], ib[1], tile[30], tile[31]);
    }
#endif
}

// Channel ci (if in range) of the first n of the 8 pixels at offsets ia, ib: values a, b.
fn input_row(ci: u32, n: u32, plane_in: u32, ia: vec4<u32>, ib: vec4<u32>, a: vec4<f32>, b: vec4<f32>) {
    if (ci >= params.c_in) {
        return;
    }
    let o = ci * plane_in;
    for (var t = 0u; t < n; t++) {
        let i = t % 4u;
        dinp[select(ib[i], ia[i], t < 4u) + o] = select(b[i], a[i], t < 4u);
    }
}

#if SUBGROUP
// One step of 4 output channels into a 16-input-channel group's tile: channel J's weights are
// lane J % 8's mine0 (J < 8) or mine1, shared by broadcast; g0..g7 the 8 pixels' gradients.
fn input_group(acc: ptr<function, array<vec4<f32>, 32>>, mine0: vec4<f32>, mine1: vec4<f32>,
               g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>,
               g4: vec4<f32>, g5: vec4<f32>, g6: vec4<f32>, g7: vec4<f32>) {
    { let w = subgroupBroadcast(mine0, 0u); (*acc)[0] += dots(w, g0, g1, g2, g3); (*acc)[1] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 1u); (*acc)[2] += dots(w, g0, g1, g2, g3); (*acc)[3] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 2u); (*acc)[4] += dots(w, g0, g1, g2, g3); (*acc)[5] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 3u); (*acc)[6] += dots(w, g0, g1, g2, g3); (*acc)[7] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 4u); (*acc)[8] += dots(w, g0, g1, g2, g3); (*acc)[9] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 5u); (*acc)[10] += dots(w, g0, g1, g2, g3); (*acc)[11] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 6u); (*acc)[12] += dots(w, g0, g1, g2, g3); (*acc)[13] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine0, 7u); (*acc)[14] += dots(w, g0, g1, g2, g3); (*acc)[15] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 0u); (*acc)[16] += dots(w, g0, g1, g2, g3); (*acc)[17] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 1u); (*acc)[18] += dots(w, g0, g1, g2, g3); (*acc)[19] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 2u); (*acc)[20] += dots(w, g0, g1, g2, g3); (*acc)[21] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 3u); (*acc)[22] += dots(w, g0, g1, g2, g3); (*acc)[23] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 4u); (*acc)[24] += dots(w, g0, g1, g2, g3); (*acc)[25] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 5u); (*acc)[26] += dots(w, g0, g1, g2, g3); (*acc)[27] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 6u); (*acc)[28] += dots(w, g0, g1, g2, g3); (*acc)[29] += dots(w, g4, g5, g6, g7); }
    { let w = subgroupBroadcast(mine1, 7u); (*acc)[30] += dots(w, g0, g1, g2, g3); (*acc)[31] += dots(w, g4, g5, g6, g7); }
}
#endif

#if !SUBGROUP
#include "chan8"

// Columns per weight tile of the portable variant: 8, or 12 where that computes fewer
// (a first conv's c_in * kh * kw + 1 = 10 columns: one tile of 12, not two of 8). Tiling
// only: each sum runs over the same pixels in the same order.
override TILE_COLS: u32 = 8u;

// Channels c0 .. c0 + 7 (w_lo, w_hi) times columns j0 + 8 .. + 11 (xc) into acc[channel].
fn chan8c(acc: ptr<function, array<vec4<f32>, 8>>, w_lo: vec4<f32>, w_hi: vec4<f32>, xc: vec4<f32>) {
    (*acc)[0] += w_lo.x * xc; (*acc)[1] += w_lo.y * xc;
    (*acc)[2] += w_lo.z * xc; (*acc)[3] += w_lo.w * xc;
    (*acc)[4] += w_hi.x * xc; (*acc)[5] += w_hi.y * xc;
    (*acc)[6] += w_hi.z * xc; (*acc)[7] += w_hi.w * xc;
}

// 8 CO_GROUPS output channels x TILE_COLS columns over one chunk of pixels: each column load
// serves every channel.
fn weight_tile(gid: vec3<u32>) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    // x runs over (chunk, column tile) pairs, so that a layer with few columns (a first conv
    // has c_in * kh * kw + 1 = 10) still fills the workgroup.
    let tiles = (cols + TILE_COLS - 1u) / TILE_COLS;
    let chunks = (npix + params.chunk - 1u) / params.chunk;
    let z = gid.x / tiles;
    let j0 = (gid.x % tiles) * TILE_COLS;
    let c0 = gid.y * 8u * CO_GROUPS;
    if (z >= chunks || c0 >= params.c_out) {
        return;
    }
    let m_begin = z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);
    let nc4 = c4();
    // The gradient vec4s of group G: channels c0 + 8G .. + 3 and + 4 .. + 7 (clamped).
    let q = min(vec4<u32>(c0 / 4u) + vec4<u32>(0u, 2u, 4u, 6u), vec4<u32>(nc4 - 1u));
    let q_hi = min(vec4<u32>(c0 / 4u) + vec4<u32>(1u, 3u, 5u, 7u), vec4<u32>(nc4 - 1u));

    // Offset of each column's tap from the top-left input pixel; the bias column reads 1.
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(ksize));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(ksize));
    let bias_a = ja == vec4<u32>(ksize);
    let bias_b = jb == vec4<u32>(ksize);
    let xoa = select((ja / kk) * plane_in + ((ja % kk) / params.kw) * params.w_in + (ja % kk) % params.kw, vec4<u32>(0u), bias_a);
    let xob = select((jb / kk) * plane_in + ((jb % kk) / params.kw) * params.w_in + (jb % kk) % params.kw, vec4<u32>(0u), bias_b);
    let jc = min(vec4<u32>(j0 + 8u) + LANES_A, vec4<u32>(ksize));
    let bias_c = jc == vec4<u32>(ksize);
    let xoc = select((jc / kk) * plane_in + ((jc % kk) / params.kw) * params.w_in + (jc % kk) % params.kw, vec4<u32>(0u), bias_c);

    // accG: output channels c0 + 8G .. + 7, channel j's columns a at 2j and b at 2j + 1.
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    // With TILE_COLS 12, columns j0 + 8 .. + 11 of channels c0 + 8G + i at accGc[i].
    var acc0c: array<vec4<f32>, 8>;
    var acc1c: array<vec4<f32>, 8>;
    var acc2c: array<vec4<f32>, 8>;
    var acc3c: array<vec4<f32>, 8>;
    var n = m_begin / plane_out;
    var r = m_begin % plane_out;
    var oy = r / params.w_out;
    var ox = r % params.w_out;
    for (var m = m_begin; m < m_end; m++) {
        let ib = n * params.c_in * plane_in + oy * params.w_in + ox;
        let xa = select(inp4(vec4<u32>(ib) + xoa), vec4<f32>(1.0), bias_a);
        let xb = select(inp4(vec4<u32>(ib) + xob), vec4<f32>(1.0), bias_b);
        let g0 = array<vec4<f32>, 2>(gv[m * nc4 + q.x], gv[m * nc4 + q_hi.x]);
        chan8(&acc0, g0[0], g0[1], xa, xb);
        var g1 = g0;
        var g2 = g0;
        var g3 = g0;
        if (CO_GROUPS > 1u) {
            g1 = array<vec4<f32>, 2>(gv[m * nc4 + q.y], gv[m * nc4 + q_hi.y]);
            chan8(&acc1, g1[0], g1[1], xa, xb);
        }
        if (CO_GROUPS > 2u) {
            g2 = array<vec4<f32>, 2>(gv[m * nc4 + q.z], gv[m * nc4 + q_hi.z]);
            chan8(&acc2, g2[0], g2[1], xa, xb);
        }
        if (CO_GROUPS > 3u) {
            g3 = array<vec4<f32>, 2>(gv[m * nc4 + q.w], gv[m * nc4 + q_hi.w]);
            chan8(&acc3, g3[0], g3[1], xa, xb);
        }
        if (TILE_COLS > 8u) {
            let xc = select(inp4(vec4<u32>(ib) + xoc), vec4<f32>(1.0), bias_c);
            chan8c(&acc0c, g0[0], g0[1], xc);
            if (CO_GROUPS > 1u) {
                chan8c(&acc1c, g1[0], g1[1], xc);
            }
            if (CO_GROUPS > 2u) {
                chan8c(&acc2c, g2[0], g2[1], xc);
            }
            if (CO_GROUPS > 3u) {
                chan8c(&acc3c, g3[0], g3[1], xc);
            }
        }
        ox++;
        if (ox == params.w_out) {
            ox = 0u;
            oy++;
            if (oy == params.h_out) {
                oy = 0u;
                n++;
            }
        }
    }

    store_partial(z, c0, j0, cols, acc0);
    if (CO_GROUPS > 1u) {
        store_partial(z, c0 + 8u, j0, cols, acc1);
    }
    if (CO_GROUPS > 2u) {
        store_partial(z, c0 + 16u, j0, cols, acc2);
    }
    if (CO_GROUPS > 3u) {
        store_partial(z, c0 + 24u, j0, cols, acc3);
    }
    if (TILE_COLS > 8u) {
        store_partial4(z, c0, j0 + 8u, cols, acc0c);
        if (CO_GROUPS > 1u) {
            store_partial4(z, c0 + 8u, j0 + 8u, cols, acc1c);
        }
        if (CO_GROUPS > 2u) {
            store_partial4(z, c0 + 16u, j0 + 8u, cols, acc2c);
        }
        if (CO_GROUPS > 3u) {
            store_partial4(z, c0 + 24u, j0 + 8u, cols, acc3c);
        }
    }
}

#endif
#include "conv2d_partial"

#if SUBGROUP
// The 16 channels c0 .. c0 + 15 of a weight tile (in range) into partial.
fn store_group(z: u32, c0: u32, j0: u32, cols: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    store_partial(z, c0, j0, cols, array<vec4<f32>, 16>((*acc)[0], (*acc)[1], (*acc)[2], (*acc)[3], (*acc)[4], (*acc)[5], (*acc)[6], (*acc)[7], (*acc)[8], (*acc)[9], (*acc)[10], (*acc)[11], (*acc)[12], (*acc)[13], (*acc)[14], (*acc)[15]));
    store_partial(z, c0 + 8u, j0, cols, array<vec4<f32>, 16>((*acc)[16], (*acc)[17], (*acc)[18], (*acc)[19], (*acc)[20], (*acc)[21], (*acc)[22], (*acc)[23], (*acc)[24], (*acc)[25], (*acc)[26], (*acc)[27], (*acc)[28], (*acc)[29], (*acc)[30], (*acc)[31]));
}

#endif
#if !SUBGROUP
@compute @workgroup_size(64)
fn reduce_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ksize = params.c_in * params.kh * params.kw;
#else
// 16 output channels of one pixel of the weight-gradient GEMM: acc[2 * i + h] += g[i] * x_h
// for the channels i of g0..g3 (channels 4C .. 4C + 3 of the group in gC) and the column
// groups h (xa, xb).
fn weight_group(acc: ptr<function, array<vec4<f32>, 32>>,
                g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>,
                xa: vec4<f32>, xb: vec4<f32>) {
    (*acc)[0] += g0.x * xa; (*acc)[1] += g0.x * xb;
    (*acc)[2] += g0.y * xa; (*acc)[3] += g0.y * xb;
    (*acc)[4] += g0.z * xa; (*acc)[5] += g0.z * xb;
    (*acc)[6] += g0.w * xa; (*acc)[7] += g0.w * xb;
    (*acc)[8] += g1.x * xa; (*acc)[9] += g1.x * xb;
    (*acc)[10] += g1.y * xa; (*acc)[11] += g1.y * xb;
    (*acc)[12] += g1.z * xa; (*acc)[13] += g1.z * xb;
    (*acc)[14] += g1.w * xa; (*acc)[15] += g1.w * xb;
    (*acc)[16] += g2.x * xa; (*acc)[17] += g2.x * xb;
    (*acc)[18] += g2.y * xa; (*acc)[19] += g2.y * xb;
    (*acc)[20] += g2.z * xa; (*acc)[21] += g2.z * xb;
    (*acc)[22] += g2.w * xa; (*acc)[23] += g2.w * xb;
    (*acc)[24] += g3.x * xa; (*acc)[25] += g3.x * xb;
    (*acc)[26] += g3.y * xa; (*acc)[27] += g3.y * xb;
    (*acc)[28] += g3.z * xa; (*acc)[29] += g3.z * xb;
    (*acc)[30] += g3.w * xa; (*acc)[31] += g3.w * xb;
}

// Two pixels (xt columns xa0, xb0 and xa1, xb1) into one 16-channel group's tile: lane
// k % 8 of the subgroup loaded `mine`, gradient vec4 k % 4 of pixel (k % 8) / 4.
fn weight_pair(acc: ptr<function, array<vec4<f32>, 32>>, mine: vec4<f32>,
               xa0: vec4<f32>, xb0: vec4<f32>, xa1: vec4<f32>, xb1: vec4<f32>) {
    weight_group(acc, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                 subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u), xa0, xb0);
    weight_group(acc, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                 subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u), xa1, xb1);
}

// The xt columns (a, b) of pixel m = (n, oy, ox), which it then advances by one.
fn weight_columns(n: ptr<function, u32>, oy: ptr<function, u32>, ox: ptr<function, u32>,
                  oa: u32, ob: u32, bias_a: bool, bias_b: bool) -> array<vec4<f32>, 2> {
    let ci4 = params.c_in / 4u;
    let ib = ((*n * params.h_in + *oy) * params.w_in + *ox) * ci4;
    let e0 = vec4<f32>(1.0, 0.0, 0.0, 0.0);
    let x = array<vec4<f32>, 2>(select(xt[ib + oa], e0, bias_a), select(xt[ib + ob], e0, bias_b));
    *ox += 1u;
    if (*ox == params.w_out) {
        *ox = 0u;
        *oy += 1u;
        if (*oy == params.h_out) {
            *oy = 0u;
            *n += 1u;
        }
    }
    return x;
}

fn weight_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
#endif
    let cols = ksize + 1u;
#if !SUBGROUP
    let i = gid.x;
    if (i >= params.c_out * cols) {
#else
    let j0 = gid.x * 8u;
    let c0 = wid.y * 16u * CO_GROUPS;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last column stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (c0 >= params.c_out) {
#endif
        return;
    }
#if !SUBGROUP
    let npix = params.batch * params.h_out * params.w_out;
    let chunks = (npix + params.chunk - 1u) / params.chunk;
    var s = 0.0;
    for (var z = 0u; z < chunks; z++) {
        s += partial[z * params.c_out * cols + i];
    }
    let co = i / cols;
    let j = i % cols;
    if (j == ksize) {
        dbias[co] = s;
    } else if (params.channel_last != 0u) {
        let kk = params.kh * params.kw;
        dweight[co * ksize + (j % params.c_in) * kk + j / params.c_in] = s;
    } else {
        dweight[co * ksize + j] = s;
#else
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let m_begin = wid.z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);
    let nc4 = c4();
    let ci4 = params.c_in / 4u;

    // Columns j0..j0+3 (a) and j0+4..j0+7 (b) are one tap and 4 channels each: their xt offset
    // from the top-left input pixel. From column K on, a group reads (1, 0, 0, 0): the bias.
    let bias_a = j0 >= ksize;
    let bias_b = j0 + 4u >= ksize;
    let ta = min(j0, ksize - 4u);
    let tb = min(j0 + 4u, ksize - 4u);
    let oa = (((ta / params.c_in) / params.kw) * params.w_in + (ta / params.c_in) % params.kw) * ci4 + (ta % params.c_in) / 4u;
    let ob = (((tb / params.c_in) / params.kw) * params.w_in + (tb / params.c_in) % params.kw) * ci4 + (tb % params.c_in) / 4u;

    var acc0: array<vec4<f32>, 32>;
    var acc1: array<vec4<f32>, 32>;
    var acc2: array<vec4<f32>, 32>;
    var acc3: array<vec4<f32>, 32>;
    var n = m_begin / plane_out;
    var r = m_begin % plane_out;
    var oy = r / params.w_out;
    var ox = r % params.w_out;
    // 2 pixels per step: lane k % 8 loads gradient vec4 k % 4 of a group (channels
    // 4 (k % 4) .. + 3 of it) of pixel m + (k % 8) / 4, and broadcasts share them; the gradient
    // rows are the same for the whole workgroup (one chunk and channel tile per workgroup).
    // Channels past c_out read the last vec4 (clamped) and are not stored.
    let gi = (lane % 8u) / 4u;
    let gq = c0 / 4u + lane % 4u;
    let last = nc4 - 1u;
    var m = m_begin;
    for (; m + 2u <= m_end; m += 2u) {
        let x0 = weight_columns(&n, &oy, &ox, oa, ob, bias_a, bias_b);
        let x1 = weight_columns(&n, &oy, &ox, oa, ob, bias_a, bias_b);
        let row = (m + gi) * nc4;
        weight_pair(&acc0, gv[row + min(gq, last)], x0[0], x0[1], x1[0], x1[1]);
        if (CO_GROUPS > 1u) {
            weight_pair(&acc1, gv[row + min(gq + 4u, last)], x0[0], x0[1], x1[0], x1[1]);
        }
        if (CO_GROUPS > 2u) {
            weight_pair(&acc2, gv[row + min(gq + 8u, last)], x0[0], x0[1], x1[0], x1[1]);
        }
        if (CO_GROUPS > 3u) {
            weight_pair(&acc3, gv[row + min(gq + 12u, last)], x0[0], x0[1], x1[0], x1[1]);
        }
    }
    if (m < m_end) {
        let x = weight_columns(&n, &oy, &ox, oa, ob, bias_a, bias_b);
        let row = m * nc4;
        let q = c0 / 4u;
        weight_group(&acc0, gv[row + min(q, last)], gv[row + min(q + 1u, last)],
                     gv[row + min(q + 2u, last)], gv[row + min(q + 3u, last)], x[0], x[1]);
        if (CO_GROUPS > 1u) {
            weight_group(&acc1, gv[row + min(q + 4u, last)], gv[row + min(q + 5u, last)],
                         gv[row + min(q + 6u, last)], gv[row + min(q + 7u, last)], x[0], x[1]);
        }
        if (CO_GROUPS > 2u) {
            weight_group(&acc2, gv[row + min(q + 8u, last)], gv[row + min(q + 9u, last)],
                         gv[row + min(q + 10u, last)], gv[row + min(q + 11u, last)], x[0], x[1]);
        }
        if (CO_GROUPS > 3u) {
            weight_group(&acc3, gv[row + min(q + 12u, last)], gv[row + min(q + 13u, last)],
                         gv[row + min(q + 14u, last)], gv[row + min(q + 15u, last)], x[0], x[1]);
        }
#endif
    }
#if SUBGROUP
    store_group(wid.z, c0, j0, cols, &acc0);
    if (CO_GROUPS > 1u) {
        store_group(wid.z, c0 + 16u, j0, cols, &acc1);
    }
    if (CO_GROUPS > 2u) {
        store_group(wid.z, c0 + 32u, j0, cols, &acc2);
    }
    if (CO_GROUPS > 3u) {
        store_group(wid.z, c0 + 48u, j0, cols, &acc3);
    }
#endif
}

#include "backward_input_entry"

@compute @workgroup_size(WG)
#if !SUBGROUP
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    weight_tile(gid);
#else
fn backward_weight_channel_last(@builtin(global_invocation_id) gid: vec3<u32>,
                                @builtin(workgroup_id) wid: vec3<u32>,
                                @builtin(subgroup_invocation_id) lane: u32) {
    weight_tile(gid, wid, lane);
#endif
}

#if !SUBGROUP
// backward_weight's and backward_input's workgroups in one 1-D grid, the input tiles spread
// evenly among the weight tiles (a CPU adapter that hands each thread a contiguous range of
// workgroups then gets an even share of both): workgroup k is input tile a(k) when
// a(k + 1) > a(k), a(k) = floor(k * ni / (nw + ni)), else weight tile k - a(k).
#else
// backward_weight_channel_last's and backward_input's workgroups in one 1-D grid, interleaved
// as in conv2d_backward.wgsl (the branch is uniform over each workgroup).
#endif
@compute @workgroup_size(WG)
#if !SUBGROUP
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
#else
fn backward(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
#endif
    let cols = params.c_in * params.kh * params.kw + 1u;
    let chunks = (params.batch * params.h_out * params.w_out + params.chunk - 1u) / params.chunk;
#if !SUBGROUP
    let wx = (((cols + TILE_COLS - 1u) / TILE_COLS) * chunks + WG - 1u) / WG;
    let nw = wx * ((params.c_out + 8u * CO_GROUPS - 1u) / (8u * CO_GROUPS));
#else
    let wx = (cols + 8u * WG - 1u) / (8u * WG);
    let wy = (params.c_out + 16u * CO_GROUPS - 1u) / (16u * CO_GROUPS);
    let nw = wx * wy * chunks;
#endif
    let ix = (params.h_in * params.w_in * ((params.batch + 7u) / 8u) + WG - 1u) / WG;
#if !SUBGROUP
    let ni = ix * ((params.c_in + 7u) / 8u);
#else
    let ni = ix * ((params.c_in + 16u * CI_GROUPS - 1u) / (16u * CI_GROUPS));
#endif
    let a = (wid.x * ni) / (nw + ni);
    if ((wid.x + 1u) * ni / (nw + ni) == a) {
        let k = wid.x - a;
#if !SUBGROUP
        weight_tile(vec3<u32>((k % wx) * WG + lid.x, k / wx, 0u));
#else
        let w = vec3<u32>(k % wx, (k / wx) % wy, k / (wx * wy));
        weight_tile(vec3<u32>(w.x * WG + lid.x, w.y, w.z), w, lane);
#endif
    } else {
#if !SUBGROUP
        input_tile(vec3<u32>((a % ix) * WG + lid.x, a / ix, 0u));
#else
        let w = vec3<u32>(a % ix, a / ix, 0u);
        input_tile(vec3<u32>(w.x * WG + lid.x, w.y, 0u), w, lane);
#endif
    }
}
