// conv2d_forward: out = act(conv2d(inp, weight) + bias), stride 1, no padding ("valid").
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw), bias (c_out)
//   out (batch, c_out, h_out, w_out), h_out = h_in - kh + 1, w_out = w_in - kw + 1
//   act = ReLU when params.relu != 0, identity otherwise.
// Implicit GEMM with a register tile: each invocation computes 4 consecutive output pixels
// (flattened over batch, y, x) for 4 consecutive output channels.
// Dispatch: x = ceil(batch * h_out * w_out / 4 / 64), y = ceil(c_out / 4).

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
    chunk: u32, // pixels per split-K chunk in conv2d_backward (unused here)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TILE: u32 = 4u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let p0 = gid.x * TILE;
    let c0 = gid.y * TILE;
    if (p0 >= npix || c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let ksize = params.c_in * params.kh * params.kw;

    // Offsets of the top-left input tap (ib) and of the output (ob) for each pixel of the tile.
    // Pixels past the end are clamped; their results are not stored.
    var ib = vec4<u32>();
    var ob = vec4<u32>();
    for (var t = 0u; t < TILE; t++) {
        let m = min(p0 + t, npix - 1u);
        let n = m / plane_out;
        let r = m % plane_out;
        ib[t] = n * params.c_in * plane_in + (r / params.w_out) * params.w_in + r % params.w_out;
        ob[t] = n * params.c_out * plane_out + r;
    }
    let wb = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_out - 1u)) * ksize;

    // acc_j holds output channel c0 + j for the 4 pixels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < params.c_in; ci++) {
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let xi = ib + vec4<u32>(ci * plane_in + ky * params.w_in + kx);
                let xv = vec4<f32>(inp[xi.x], inp[xi.y], inp[xi.z], inp[xi.w]);
                acc0 += weight[wb.x + k] * xv;
                acc1 += weight[wb.y + k] * xv;
                acc2 += weight[wb.z + k] * xv;
                acc3 += weight[wb.w + k] * xv;
                k++;
            }
        }
    }

    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < TILE; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var t = 0u; t < TILE; t++) {
            if (p0 + t >= npix) {
                break;
            }
            var v = acc[j][t] + b;
            if (params.relu != 0u) {
                v = max(v, 0.0);
            }
            out[ob[t] + co * plane_out] = v;
        }
    }
}
