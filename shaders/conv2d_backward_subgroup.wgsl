// conv2d_backward, subgroup variants: the same pass as conv2d_backward.wgsl (same bindings,
// params and results) for adapters with subgroups of at least 8 invocations (the host checks).
// Entry points, replacing the portable ones of the same role:
//   backward_input:   as conv2d_backward.wgsl's, but 8 input pixels x 16 input channels per
//                     invocation. The 16 weight vec4s a step needs are the same for every
//                     invocation of the workgroup (one input-channel tile per workgroup): each
//                     of 8 lanes loads two and subgroupBroadcast shares them.
//                     Dispatch: x = ceil(batch * h_in * w_in / 8 / 64), y = ceil(c_in / 16).
//   backward_weight_channel_last (params.channel_last = 1, c_in % 4 == 0): split-K partial sums
//                     of the weight gradient with the columns in (ky, kx, ci) order, so that 4
//                     columns are one vec4 load from xt (batch * h_in * w_in, c_in / 4), the
//                     channel-last input conv2d_forward_subgroup's prepare_input wrote; the
//                     bias is column K. reduce_weight (portable file) maps the columns back.
//                     8 columns x 16 output channels per invocation; the gradient rows, the
//                     same for the whole workgroup, are loaded once per subgroup and broadcast.
//                     Dispatch: x = ceil((K + 1) / 8 / 64), y = ceil(c_out / 16), z = chunks.
//   backward:         backward_weight_channel_last and backward_input in one dispatch (the
//                     same code per tile, so the same bits; they are independent): x = the
//                     weight grid's workgroups and the input grid's, interleaved; y = 1.
// No `enable subgroups;`: naga (wgpu 30) rejects that directive and takes the subgroup
// builtins when the device has wgpu::Features::SUBGROUP.

struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    kh: u32,
    kw: u32,
    relu: u32,
    chunk: u32,
    channel_last: u32,
}

@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;
@group(0) @binding(9) var<storage, read> gv: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> xt: array<vec4<f32>>;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

// Per-lane dot products: (dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3)).
fn dots(w: vec4<f32>, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3));
}

fn input_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_in;
    let p0 = gid.x * 8u;
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow). Invocations past the last pixel stay (clamped, storing
    // nothing): the broadcasts need every lane.
    if (c0 >= params.c_in) {
        return;
    }
    let nc4 = c4();
    // Pixels p0..p0+3 in the lanes of *a, p0+4..p0+7 in *b (clamped past the end, not stored).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_in;
    let rb = mb % plane_in;
    let ya = vec4<i32>(ra / params.w_in);
    let xa = vec4<i32>(ra % params.w_in);
    let yb = vec4<i32>(rb / params.w_in);
    let xb = vec4<i32>(rb % params.w_in);
    let gba = (ma / plane_in) * plane_out; // first output pixel of the image
    let gbb = (mb / plane_in) * plane_out;
    let cm = params.c_in - 1u;
    let hmax = vec4<i32>(i32(params.h_out) - 1);
    let wmax = vec4<i32>(i32(params.w_out) - 1);
    let zero = vec4<i32>(0);
    let z4 = vec4<f32>(0.0);

    // accJ{a,b}: input channel c0 + J for pixels a and b.
    var acc0a = z4; var acc0b = z4;
    var acc1a = z4; var acc1b = z4;
    var acc2a = z4; var acc2b = z4;
    var acc3a = z4; var acc3b = z4;
    var acc4a = z4; var acc4b = z4;
    var acc5a = z4; var acc5b = z4;
    var acc6a = z4; var acc6b = z4;
    var acc7a = z4; var acc7b = z4;
    var acc8a = z4; var acc8b = z4;
    var acc9a = z4; var acc9b = z4;
    var acc10a = z4; var acc10b = z4;
    var acc11a = z4; var acc11b = z4;
    var acc12a = z4; var acc12b = z4;
    var acc13a = z4; var acc13b = z4;
    var acc14a = z4; var acc14b = z4;
    var acc15a = z4; var acc15b = z4;
    for (var ky = 0u; ky < params.kh; ky++) {
        for (var kx = 0u; kx < params.kw; kx++) {
            let oya = ya - vec4<i32>(i32(ky));
            let oxa = xa - vec4<i32>(i32(kx));
            let oyb = yb - vec4<i32>(i32(ky));
            let oxb = xb - vec4<i32>(i32(kx));
            let va = (oya >= zero) & (oya <= hmax) & (oxa >= zero) & (oxa <= wmax);
            let vb = (oyb >= zero) & (oyb <= hmax) & (oxb >= zero) & (oxb <= wmax);
            // Rows of gv for the 8 pixels' output positions at this tap.
            let oa = (gba + vec4<u32>(clamp(oya, zero, hmax)) * params.w_out + vec4<u32>(clamp(oxa, zero, wmax))) * nc4;
            let ob = (gbb + vec4<u32>(clamp(oyb, zero, hmax)) * params.w_out + vec4<u32>(clamp(oxb, zero, wmax))) * nc4;
            let wrow = (ky * params.kw + kx) * params.c_in;
            for (var q = 0u; q < nc4; q++) {
                let g0 = select(z4, gv[oa.x + q], va.x);
                let g1 = select(z4, gv[oa.y + q], va.y);
                let g2 = select(z4, gv[oa.z + q], va.z);
                let g3 = select(z4, gv[oa.w + q], va.w);
                let g4 = select(z4, gv[ob.x + q], vb.x);
                let g5 = select(z4, gv[ob.y + q], vb.y);
                let g6 = select(z4, gv[ob.z + q], vb.z);
                let g7 = select(z4, gv[ob.w + q], vb.w);
                // Lane k % 8 loads input channels c0 + k and c0 + 8 + k; broadcasts share them.
                let mine0 = wt[(wrow + min(c0 + lane % 8u, cm)) * nc4 + q];
                let mine1 = wt[(wrow + min(c0 + 8u + lane % 8u, cm)) * nc4 + q];
                var w = subgroupBroadcast(mine0, 0u);
                acc0a += dots(w, g0, g1, g2, g3); acc0b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 1u);
                acc1a += dots(w, g0, g1, g2, g3); acc1b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 2u);
                acc2a += dots(w, g0, g1, g2, g3); acc2b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 3u);
                acc3a += dots(w, g0, g1, g2, g3); acc3b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 4u);
                acc4a += dots(w, g0, g1, g2, g3); acc4b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 5u);
                acc5a += dots(w, g0, g1, g2, g3); acc5b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 6u);
                acc6a += dots(w, g0, g1, g2, g3); acc6b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine0, 7u);
                acc7a += dots(w, g0, g1, g2, g3); acc7b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 0u);
                acc8a += dots(w, g0, g1, g2, g3); acc8b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 1u);
                acc9a += dots(w, g0, g1, g2, g3); acc9b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 2u);
                acc10a += dots(w, g0, g1, g2, g3); acc10b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 3u);
                acc11a += dots(w, g0, g1, g2, g3); acc11b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 4u);
                acc12a += dots(w, g0, g1, g2, g3); acc12b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 5u);
                acc13a += dots(w, g0, g1, g2, g3); acc13b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 6u);
                acc14a += dots(w, g0, g1, g2, g3); acc14b += dots(w, g4, g5, g6, g7);
                w = subgroupBroadcast(mine1, 7u);
                acc15a += dots(w, g0, g1, g2, g3); acc15b += dots(w, g4, g5, g6, g7);
            }
        }
    }

    var acc = array<vec4<f32>, 32>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b, acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b, acc8a, acc8b, acc9a, acc9b, acc10a, acc10b, acc11a, acc11b, acc12a, acc12b, acc13a, acc13b, acc14a, acc14b, acc15a, acc15b);
    var ib = array<vec4<u32>, 2>((ma / plane_in) * params.c_in * plane_in + ra,
                                 (mb / plane_in) * params.c_in * plane_in + rb);
    for (var j = 0u; j < 16u; j++) {
        let ci = c0 + j;
        if (ci >= params.c_in) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            if (p0 + t >= npix) {
                break;
            }
            dinp[ib[t / 4u][t % 4u] + ci * plane_in] = acc[2u * j + t / 4u][t % 4u];
        }
    }
}

// partial[z, c0 + i, j0 + t] = acc[2 * i + t / 4][t % 4], in range.
fn store_partial(z: u32, c0: u32, j0: u32, cols: u32, tile: array<vec4<f32>, 16>) {
    // Indexed through a variable: indexing a value array dynamically makes naga copy it each time.
    var acc = tile;
    for (var i = 0u; i < 8u; i++) {
        let co = c0 + i;
        if (co >= params.c_out) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            if (j0 + t >= cols) {
                break;
            }
            partial[(z * params.c_out + co) * cols + j0 + t] = acc[2u * i + t / 4u][t % 4u];
        }
    }
}

// One pixel of the weight-gradient GEMM: acc[2 * i + h] += g[c0 + i] * x(column group h) for
// the 16 output channels i (g0..g3: channels c0 + 4C .. + 3), with the xt rows of the current
// pixel (n, oy, ox), which it then advances by one.
fn weight_pixel(acc: ptr<function, array<vec4<f32>, 32>>,
                g0: vec4<f32>, g1: vec4<f32>, g2: vec4<f32>, g3: vec4<f32>,
                n: ptr<function, u32>, oy: ptr<function, u32>, ox: ptr<function, u32>,
                oa: u32, ob: u32, bias_a: bool, bias_b: bool) {
    let ci4 = params.c_in / 4u;
    let ib = ((*n * params.h_in + *oy) * params.w_in + *ox) * ci4;
    let e0 = vec4<f32>(1.0, 0.0, 0.0, 0.0);
    let xa = select(xt[ib + oa], e0, bias_a);
    let xb = select(xt[ib + ob], e0, bias_b);
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
    *ox += 1u;
    if (*ox == params.w_out) {
        *ox = 0u;
        *oy += 1u;
        if (*oy == params.h_out) {
            *oy = 0u;
            *n += 1u;
        }
    }
}

fn weight_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let j0 = gid.x * 8u;
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last column stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (c0 >= params.c_out) {
        return;
    }
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

    var acc: array<vec4<f32>, 32>;
    var n = m_begin / plane_out;
    var r = m_begin % plane_out;
    var oy = r / params.w_out;
    var ox = r % params.w_out;
    // 2 pixels per step: lane k % 8 loads gradient vec4 k % 4 (channels c0 + 4 (k % 4) .. + 3)
    // of pixel m + (k % 8) / 4, and broadcasts share them; the gradient rows are the same for
    // the whole workgroup (one chunk and channel tile per workgroup).
    let gi = (lane % 8u) / 4u;
    let gq = min(c0 / 4u + lane % 4u, nc4 - 1u);
    let q0 = min(c0 / 4u, nc4 - 1u);
    let q1 = min(c0 / 4u + 1u, nc4 - 1u);
    let q2 = min(c0 / 4u + 2u, nc4 - 1u);
    let q3 = min(c0 / 4u + 3u, nc4 - 1u);
    var m = m_begin;
    for (; m + 2u <= m_end; m += 2u) {
        let mine = gv[(m + gi) * nc4 + gq];
        weight_pixel(&acc, subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                     subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
                     &n, &oy, &ox, oa, ob, bias_a, bias_b);
        weight_pixel(&acc, subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                     subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u),
                     &n, &oy, &ox, oa, ob, bias_a, bias_b);
    }
    if (m < m_end) {
        let row = m * nc4;
        weight_pixel(&acc, gv[row + q0], gv[row + q1], gv[row + q2], gv[row + q3],
                     &n, &oy, &ox, oa, ob, bias_a, bias_b);
    }
    store_partial(wid.z, c0, j0, cols, array<vec4<f32>, 16>(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7], acc[8], acc[9], acc[10], acc[11], acc[12], acc[13], acc[14], acc[15]));
    store_partial(wid.z, c0 + 8u, j0, cols, array<vec4<f32>, 16>(acc[16], acc[17], acc[18], acc[19], acc[20], acc[21], acc[22], acc[23], acc[24], acc[25], acc[26], acc[27], acc[28], acc[29], acc[30], acc[31]));
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(subgroup_invocation_id) lane: u32) {
    input_tile(gid, wid, lane);
}

@compute @workgroup_size(64)
fn backward_weight_channel_last(@builtin(global_invocation_id) gid: vec3<u32>,
                                @builtin(workgroup_id) wid: vec3<u32>,
                                @builtin(subgroup_invocation_id) lane: u32) {
    weight_tile(gid, wid, lane);
}

// backward_weight_channel_last's and backward_input's workgroups in one 1-D grid, interleaved
// as in conv2d_backward.wgsl (the branch is uniform over each workgroup).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
    let cols = params.c_in * params.kh * params.kw + 1u;
    let chunks = (params.batch * params.h_out * params.w_out + params.chunk - 1u) / params.chunk;
    let wx = (cols + 511u) / 512u;
    let wy = (params.c_out + 15u) / 16u;
    let nw = wx * wy * chunks;
    let ix = (params.batch * params.h_in * params.w_in + 511u) / 512u;
    let ni = ix * ((params.c_in + 15u) / 16u);
    let a = (wid.x * ni) / (nw + ni);
    if ((wid.x + 1u) * ni / (nw + ni) == a) {
        let k = wid.x - a;
        let w = vec3<u32>(k % wx, (k / wx) % wy, k / (wx * wy));
        weight_tile(vec3<u32>(w.x * 64u + lid.x, w.y, w.z), w, lane);
    } else {
        let w = vec3<u32>(a % ix, a / ix, 0u);
        input_tile(vec3<u32>(w.x * 64u + lid.x, w.y, 0u), w, lane);
    }
}
