// conv2d_backward: gradients of conv2d_forward (stride 1, valid padding, optional ReLU).
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw)
//   out, dout (batch, c_out, h_out, w_out): the forward output (after ReLU) and its gradient
//   g = dout * (out > 0) when params.relu != 0, else dout
// Entry points (each overwrites its outputs):
//   backward_input:  dinp[n, ci, y, x] = sum_{co, ky, kx} g[n, co, y - ky, x - kx] * weight[co, ci, ky, kx]
//                    tile: 4 input pixels x 4 input channels.
//                    Dispatch: x = ceil(batch * h_in * w_in / 4 / 64), y = ceil(c_in / 4).
//   backward_weight: split-K partial sums over chunks of params.chunk output pixels:
//                    partial[z, co, j] = sum_{m in chunk z} g[m, co] * col[m, j], j < K = c_in*kh*kw,
//                    and the extra column j = K holds the bias gradient (col = 1).
//                    tile: 4 output channels x 4 columns.
//                    Dispatch: x = ceil((K + 1) / 4 / 64), y = ceil(c_out / 4), z = chunks.
//   reduce_weight:   dweight[co, j] = sum_z partial[z, co, j], dbias[co] = sum_z partial[z, co, K]
//                    Dispatch: x = ceil(c_out * (K + 1) / 64).
// Gather formulation throughout: no atomics.

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

const TILE: u32 = 4u;

// Gradient at the pre-activation for 4 output elements.
fn grad4(i: vec4<u32>) -> vec4<f32> {
    let g = vec4<f32>(dout[i.x], dout[i.y], dout[i.z], dout[i.w]);
    if (params.relu == 0u) {
        return g;
    }
    let o = vec4<f32>(out[i.x], out[i.y], out[i.z], out[i.w]);
    return select(vec4<f32>(0.0), g, o > vec4<f32>(0.0));
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_in;
    let p0 = gid.x * TILE;
    let c0 = gid.y * TILE;
    if (p0 >= npix || c0 >= params.c_in) {
        return;
    }
    var py = vec4<i32>();
    var px = vec4<i32>();
    var gb = vec4<u32>(); // start of image n in out/dout
    var ib = vec4<u32>(); // (n, 0, y, x) in dinp
    for (var t = 0u; t < TILE; t++) {
        let m = min(p0 + t, npix - 1u);
        let n = m / plane_in;
        let r = m % plane_in;
        py[t] = i32(r / params.w_in);
        px[t] = i32(r % params.w_in);
        gb[t] = n * params.c_out * plane_out;
        ib[t] = n * params.c_in * plane_in + r;
    }
    let cc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_in - 1u));
    let kk = params.kh * params.kw;
    let hmax = vec4<i32>(i32(params.h_out) - 1);
    let wmax = vec4<i32>(i32(params.w_out) - 1);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var co = 0u; co < params.c_out; co++) {
        let wco = co * params.c_in * kk;
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let oy = py - vec4<i32>(i32(ky));
                let ox = px - vec4<i32>(i32(kx));
                let valid = (oy >= vec4<i32>(0)) & (oy <= hmax) & (ox >= vec4<i32>(0)) & (ox <= wmax);
                let oi = vec4<u32>(clamp(oy, vec4<i32>(0), hmax)) * params.w_out
                    + vec4<u32>(clamp(ox, vec4<i32>(0), wmax));
                let g = select(vec4<f32>(0.0), grad4(gb + vec4<u32>(co * plane_out) + oi), valid);
                let k = wco + ky * params.kw + kx;
                acc0 += weight[k + cc.x * kk] * g;
                acc1 += weight[k + cc.y * kk] * g;
                acc2 += weight[k + cc.z * kk] * g;
                acc3 += weight[k + cc.w * kk] * g;
            }
        }
    }

    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < TILE; j++) {
        let ci = c0 + j;
        if (ci >= params.c_in) {
            break;
        }
        for (var t = 0u; t < TILE; t++) {
            if (p0 + t >= npix) {
                break;
            }
            dinp[ib[t] + ci * plane_in] = acc[j][t];
        }
    }
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let j0 = gid.x * TILE;
    let c0 = gid.y * TILE;
    if (j0 >= cols || c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let m_begin = gid.z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);

    // Offset of each column's tap from the top-left input pixel; the bias column reads 1.
    var xo = vec4<u32>();
    var is_bias = vec4<bool>();
    for (var t = 0u; t < TILE; t++) {
        let j = min(j0 + t, ksize);
        let r = j % kk;
        xo[t] = select((j / kk) * plane_in + (r / params.kw) * params.w_in + r % params.kw, 0u, j == ksize);
        is_bias[t] = j == ksize;
    }
    let gc = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_out - 1u)) * plane_out;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var n = m_begin / plane_out;
    var r = m_begin % plane_out;
    var oy = r / params.w_out;
    var ox = r % params.w_out;
    for (var m = m_begin; m < m_end; m++) {
        let xi = vec4<u32>(n * params.c_in * plane_in + oy * params.w_in + ox) + xo;
        let xv = select(vec4<f32>(inp[xi.x], inp[xi.y], inp[xi.z], inp[xi.w]), vec4<f32>(1.0), is_bias);
        let g = grad4(vec4<u32>(n * params.c_out * plane_out + oy * params.w_out + ox) + gc);
        acc0 += g.x * xv;
        acc1 += g.y * xv;
        acc2 += g.z * xv;
        acc3 += g.w * xv;
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

    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < TILE; i++) {
        let co = c0 + i;
        if (co >= params.c_out) {
            break;
        }
        for (var t = 0u; t < TILE; t++) {
            if (j0 + t >= cols) {
                break;
            }
            partial[(gid.z * params.c_out + co) * cols + j0 + t] = acc[i][t];
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
