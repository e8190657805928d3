// conv2d_backward: gradients of conv2d_forward (stride 1, valid padding, optional ReLU).
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw)
//   out, dout (batch, c_out, h_out, w_out): the forward output (after ReLU) and its gradient
// Entry points (each overwrites its outputs):
//   relu_mask:       g = dout * (out > 0), the gradient at the pre-activation (only when
//                    params.relu != 0; otherwise the launcher binds dout itself as g).
//                    Dispatch: 1-D index = gid.x + gid.y * 64 * num_workgroups.x over batch*c_out*h_out*w_out.
//   backward_input:  dinp[n, ci, y, x] = sum_{co, ky, kx} g[n, co, y - ky, x - kx] * weight[co, ci, ky, kx]
//                    tile: 8 input pixels x 8 input channels.
//                    Dispatch: x = ceil(batch * h_in * w_in / 8 / 64), y = ceil(c_in / 8).
//   backward_weight: split-K partial sums over chunks of params.chunk output pixels:
//                    partial[z, co, j] = sum_{m in chunk z} g[m, co] * col[m, j], j < K = c_in*kh*kw,
//                    and the extra column j = K holds the bias gradient (col = 1).
//                    tile: 8 output channels x 8 columns.
//                    Dispatch: x = ceil((K + 1) / 8 / 64), y = ceil(c_out / 8), z = chunks.
//   reduce_weight:   dweight[co, j] = sum_z partial[z, co, j], dbias[co] = sum_z partial[z, co, K]
//                    Dispatch: x = ceil(c_out * (K + 1) / 64).
// Gather formulation throughout: no atomics. The 8x8 register tiles keep storage loads (the
// expensive part on CPU adapters such as lavapipe) at 16 per 64 multiply-adds.

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
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;
@group(0) @binding(9) var<storage, read_write> g: array<f32>;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

fn g4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(g[i.x], g[i.y], g[i.z], g[i.w]);
}

fn weight4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(weight[i.x], weight[i.y], weight[i.z], weight[i.w]);
}

@compute @workgroup_size(64)
fn relu_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.batch * params.c_out * params.h_out * params.w_out) {
        return;
    }
    g[i] = select(0.0, dout[i], out[i] > 0.0);
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_in;
    let p0 = gid.x * 8u;
    let c0 = gid.y * 8u;
    if (p0 >= npix || c0 >= params.c_in) {
        return;
    }
    // Pixels p0..p0+3 in the lanes of *a, p0+4..p0+7 in *b (clamped past the end, not stored).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_in;
    let rb = mb % plane_in;
    let ya = vec4<i32>(ra / params.w_in);
    let xa = vec4<i32>(ra % params.w_in);
    let yb = vec4<i32>(rb / params.w_in);
    let xb = vec4<i32>(rb % params.w_in);
    let gba = (ma / plane_in) * params.c_out * plane_out; // image start in g
    let gbb = (mb / plane_in) * params.c_out * plane_out;
    let kk = params.kh * params.kw;
    let wa = min(vec4<u32>(c0) + LANES_A, vec4<u32>(params.c_in - 1u)) * kk;
    let wb = min(vec4<u32>(c0) + LANES_B, vec4<u32>(params.c_in - 1u)) * kk;
    let hmax = vec4<i32>(i32(params.h_out) - 1);
    let wmax = vec4<i32>(i32(params.w_out) - 1);
    let zero = vec4<i32>(0);

    // accJ{a,b}: input channel c0 + J for pixels a and b.
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    for (var ky = 0u; ky < params.kh; ky++) {
        for (var kx = 0u; kx < params.kw; kx++) {
            let oya = ya - vec4<i32>(i32(ky));
            let oxa = xa - vec4<i32>(i32(kx));
            let oyb = yb - vec4<i32>(i32(ky));
            let oxb = xb - vec4<i32>(i32(kx));
            let va = (oya >= zero) & (oya <= hmax) & (oxa >= zero) & (oxa <= wmax);
            let vb = (oyb >= zero) & (oyb <= hmax) & (oxb >= zero) & (oxb <= wmax);
            let oa = gba + vec4<u32>(clamp(oya, zero, hmax)) * params.w_out + vec4<u32>(clamp(oxa, zero, wmax));
            let ob = gbb + vec4<u32>(clamp(oyb, zero, hmax)) * params.w_out + vec4<u32>(clamp(oxb, zero, wmax));
            let tap = ky * params.kw + kx;
            for (var co = 0u; co < params.c_out; co++) {
                let ga = select(vec4<f32>(0.0), g4(oa + vec4<u32>(co * plane_out)), va);
                let gb = select(vec4<f32>(0.0), g4(ob + vec4<u32>(co * plane_out)), vb);
                let w_lo = weight4(wa + vec4<u32>(co * params.c_in * kk + tap));
                let w_hi = weight4(wb + vec4<u32>(co * params.c_in * kk + tap));
                acc0a += w_lo.x * ga; acc0b += w_lo.x * gb;
                acc1a += w_lo.y * ga; acc1b += w_lo.y * gb;
                acc2a += w_lo.z * ga; acc2b += w_lo.z * gb;
                acc3a += w_lo.w * ga; acc3b += w_lo.w * gb;
                acc4a += w_hi.x * ga; acc4b += w_hi.x * gb;
                acc5a += w_hi.y * ga; acc5b += w_hi.y * gb;
                acc6a += w_hi.z * ga; acc6b += w_hi.z * gb;
                acc7a += w_hi.w * ga; acc7b += w_hi.w * gb;
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

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let j0 = gid.x * 8u;
    let c0 = gid.y * 8u;
    if (j0 >= cols || c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let m_begin = gid.z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);

    // Offset of each column's tap from the top-left input pixel; the bias column reads 1.
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(ksize));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(ksize));
    let bias_a = ja == vec4<u32>(ksize);
    let bias_b = jb == vec4<u32>(ksize);
    let xoa = select((ja / kk) * plane_in + ((ja % kk) / params.kw) * params.w_in + (ja % kk) % params.kw, vec4<u32>(0u), bias_a);
    let xob = select((jb / kk) * plane_in + ((jb % kk) / params.kw) * params.w_in + (jb % kk) % params.kw, vec4<u32>(0u), bias_b);
    let gca = min(vec4<u32>(c0) + LANES_A, vec4<u32>(params.c_out - 1u)) * plane_out;
    let gcb = min(vec4<u32>(c0) + LANES_B, vec4<u32>(params.c_out - 1u)) * plane_out;

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
        let gb = n * params.c_out * plane_out + oy * params.w_out + ox;
        let g_lo = g4(vec4<u32>(gb) + gca);
        let g_hi = g4(vec4<u32>(gb) + gcb);
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

    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    for (var i = 0u; i < 8u; i++) {
        let co = c0 + i;
        if (co >= params.c_out) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            if (j0 + t >= cols) {
                break;
            }
            partial[(gid.z * params.c_out + co) * cols + j0 + t] = acc[2u * i + t / 4u][t % 4u];
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
    } else {
        dweight[co * ksize + j] = s;
    }
}
