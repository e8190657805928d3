// conv2d_backward: gradients of conv2d_forward (stride 1, valid padding, optional ReLU).
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw)
//   out, dout (batch, c_out, h_out, w_out): the forward output (after ReLU) and its gradient
// Scratch in channel-last layouts, channels padded to c4 = ceil(c_out / 4) vec4s (zeros):
//   gv (batch * h_out * w_out, c4) vec4: the gradient at the pre-activation,
//      g = dout * (out > 0) with ReLU, else dout
//   wt (kh * kw, c_in, c4) vec4: the weights with the output channel innermost (written by
//      conv2d_transpose_weight)
// Entry points, in dispatch order (each overwrites its outputs):
//   prepare_grad:     gv from dout (and out). 1-D index over batch * h_out * w_out * c4.
//   prepare_grad_vec4 (instead, when h_out * w_out % 4 == 0): the same, 4 pixels per load.
//   backward_weight:  split-K partial sums over chunks of params.chunk output pixels:
//                     partial[z, co, j] = sum_{m in chunk z} g[m, co] * col[m, j], j < K = c_in*kh*kw,
//                     and the extra column j = K holds the bias gradient (col = 1).
//                     tile: 8 output channels x 8 columns.
//                     Dispatch: x = ceil(ceil((K + 1) / 8) * chunks / 64), y = ceil(c_out / 8).
//   (conv2d_backward_subgroup.wgsl has the subgroup variants of backward_input and, for
//   params.channel_last = 1, backward_weight.)
//   reduce_weight:    dweight[co, j] = sum_z partial[z, co, j], dbias[co] = sum_z partial[z, co, K]
//                     (column j mapped back from (ky, kx, ci) order when channel_last)
//                     Dispatch: x = ceil(c_out * (K + 1) / 64).
//   backward_input:   dinp[n, ci, y, x] = sum_{ky, kx, co} g[n, co, y - ky, x - kx] * weight[co, ci, ky, kx]
//                     tile: 8 input pixels x 8 input channels, 4 output channels per step.
//                     Dispatch: x = ceil(batch * h_in * w_in / 8 / 64), y = ceil(c_in / 8).
//   backward:         backward_weight and backward_input in one dispatch (the same code per
//                     tile, so the same bits; they are independent): x = the weight grid's
//                     workgroups and the input grid's, interleaved; y = 1. reduce_weight
//                     follows.
// Gather formulation throughout: no atomics. Register tiles and vec4 loads along channels keep
// storage loads (the expensive part on CPU adapters such as lavapipe) few per multiply-add.

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

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;
@group(0) @binding(9) var<storage, read_write> gv: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> out4: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> dout4: array<vec4<f32>>;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

// Per-lane dot products: (dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3)).
fn dots(w: vec4<f32>, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(w, a0), dot(w, a1), dot(w, a2), dot(w, a3));
}

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
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_in;
    let p0 = gid.x * 8u;
    let c0 = gid.y * 8u;
    if (p0 >= npix || c0 >= params.c_in) {
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
            }
        }
    }

    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    var ib = array<vec4<u32>, 2>((ma / plane_in) * params.c_in * plane_in + ra,
                                 (mb / plane_in) * params.c_in * plane_in + rb);
    for (var j = 0u; j < 8u; j++) {
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

fn weight_tile(gid: vec3<u32>) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    // x runs over (chunk, column tile) pairs, so that a layer with few columns (a first conv
    // has c_in * kh * kw + 1 = 10) still fills the workgroup.
    let tiles = (cols + 7u) / 8u;
    let chunks = (npix + params.chunk - 1u) / params.chunk;
    let z = gid.x / tiles;
    let j0 = (gid.x % tiles) * 8u;
    let c0 = gid.y * 8u;
    if (z >= chunks || c0 >= params.c_out) {
        return;
    }
    let m_begin = z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);
    let nc4 = c4();
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);

    // Offset of each column's tap from the top-left input pixel; the bias column reads 1.
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(ksize));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(ksize));
    let bias_a = ja == vec4<u32>(ksize);
    let bias_b = jb == vec4<u32>(ksize);
    let xoa = select((ja / kk) * plane_in + ((ja % kk) / params.kw) * params.w_in + (ja % kk) % params.kw, vec4<u32>(0u), bias_a);
    let xob = select((jb / kk) * plane_in + ((jb % kk) / params.kw) * params.w_in + (jb % kk) % params.kw, vec4<u32>(0u), bias_b);

    // accJ{a,b}: output channel c0 + J for columns a and b.
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    var n = m_begin / plane_out;
    var r = m_begin % plane_out;
    var oy = r / params.w_out;
    var ox = r % params.w_out;
    for (var m = m_begin; m < m_end; m++) {
        let ib = n * params.c_in * plane_in + oy * params.w_in + ox;
        let xa = select(inp4(vec4<u32>(ib) + xoa), vec4<f32>(1.0), bias_a);
        let xb = select(inp4(vec4<u32>(ib) + xob), vec4<f32>(1.0), bias_b);
        let g_lo = gv[m * nc4 + q_lo];
        let g_hi = gv[m * nc4 + q_hi];
        acc0a += g_lo.x * xa; acc0b += g_lo.x * xb;
        acc1a += g_lo.y * xa; acc1b += g_lo.y * xb;
        acc2a += g_lo.z * xa; acc2b += g_lo.z * xb;
        acc3a += g_lo.w * xa; acc3b += g_lo.w * xb;
        acc4a += g_hi.x * xa; acc4b += g_hi.x * xb;
        acc5a += g_hi.y * xa; acc5b += g_hi.y * xb;
        acc6a += g_hi.z * xa; acc6b += g_hi.z * xb;
        acc7a += g_hi.w * xa; acc7b += g_hi.w * xb;
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

    store_partial(z, c0, j0, cols, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                            acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b));
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

@compute @workgroup_size(64)
fn reduce_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ksize = params.c_in * params.kh * params.kw;
    let cols = ksize + 1u;
    let i = gid.x;
    if (i >= params.c_out * cols) {
        return;
    }
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
    }
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    input_tile(gid);
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    weight_tile(gid);
}

// backward_weight's and backward_input's workgroups in one 1-D grid, the input tiles spread
// evenly among the weight tiles (a CPU adapter that hands each thread a contiguous range of
// workgroups then gets an even share of both): workgroup k is input tile a(k) when
// a(k + 1) > a(k), a(k) = floor(k * ni / (nw + ni)), else weight tile k - a(k).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let cols = params.c_in * params.kh * params.kw + 1u;
    let chunks = (params.batch * params.h_out * params.w_out + params.chunk - 1u) / params.chunk;
    let wx = (((cols + 7u) / 8u) * chunks + 63u) / 64u;
    let nw = wx * ((params.c_out + 7u) / 8u);
    let ix = (params.batch * params.h_in * params.w_in + 511u) / 512u;
    let ni = ix * ((params.c_in + 7u) / 8u);
    let a = (wid.x * ni) / (nw + ni);
    if ((wid.x + 1u) * ni / (nw + ni) == a) {
        let k = wid.x - a;
        weight_tile(vec3<u32>((k % wx) * 64u + lid.x, k / wx, 0u));
    } else {
        input_tile(vec3<u32>((a % ix) * 64u + lid.x, a / ix, 0u));
    }
}
