// conv2d_forward: out = act(conv2d(inp, weight) + bias), stride 1, no padding ("valid").
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw), bias (c_out)
//   out (batch, c_out, h_out, w_out), h_out = h_in - kh + 1, w_out = w_in - kw + 1
//   act = ReLU when params.relu != 0, identity otherwise.
// Implicit GEMM with a register tile: each invocation computes 8 consecutive output pixels
// (flattened over batch, y, x) for 8 consecutive output channels.
// Dispatch: x = ceil(batch * h_out * w_out / 8 / 64), y = ceil(c_out / 8).

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

const TP: u32 = 8u; // output pixels per invocation
const TC: u32 = 8u; // output channels per invocation

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let p0 = gid.x * TP;
    let c0 = gid.y * TC;
    if (p0 >= npix || c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let ksize = params.c_in * params.kh * params.kw;

    // Offsets of the top-left input tap (ib*) and of the output (ob*) for each pixel of the tile,
    // pixels p0..p0+3 in lanes of *a, p0+4..p0+7 in *b. Pixels past the end are clamped; their
    // results are not stored.
    var iba = vec4<u32>();
    var ibb = vec4<u32>();
    var oba = vec4<u32>();
    var obb = vec4<u32>();
    for (var t = 0u; t < 4u; t++) {
        let ma = min(p0 + t, npix - 1u);
        let mb = min(p0 + 4u + t, npix - 1u);
        iba[t] = (ma / plane_out) * params.c_in * plane_in + ((ma % plane_out) / params.w_out) * params.w_in + (ma % plane_out) % params.w_out;
        ibb[t] = (mb / plane_out) * params.c_in * plane_in + ((mb % plane_out) / params.w_out) * params.w_in + (mb % plane_out) % params.w_out;
        oba[t] = (ma / plane_out) * params.c_out * plane_out + ma % plane_out;
        obb[t] = (mb / plane_out) * params.c_out * plane_out + mb % plane_out;
    }
    let cm = params.c_out - 1u;
    let wa = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(cm)) * ksize;
    let wb = min(vec4<u32>(c0) + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(cm)) * ksize;

    // accJ{a,b}: output channel c0 + J for pixels a (0..3) and b (4..7).
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < params.c_in; ci++) {
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let o = ci * plane_in + ky * params.w_in + kx;
                let xa = vec4<f32>(inp[iba.x + o], inp[iba.y + o], inp[iba.z + o], inp[iba.w + o]);
                let xb = vec4<f32>(inp[ibb.x + o], inp[ibb.y + o], inp[ibb.z + o], inp[ibb.w + o]);
                let w0 = weight[wa.x + k]; acc0a += w0 * xa; acc0b += w0 * xb;
                let w1 = weight[wa.y + k]; acc1a += w1 * xa; acc1b += w1 * xb;
                let w2 = weight[wa.z + k]; acc2a += w2 * xa; acc2b += w2 * xb;
                let w3 = weight[wa.w + k]; acc3a += w3 * xa; acc3b += w3 * xb;
                let w4 = weight[wb.x + k]; acc4a += w4 * xa; acc4b += w4 * xb;
                let w5 = weight[wb.y + k]; acc5a += w5 * xa; acc5b += w5 * xb;
                let w6 = weight[wb.z + k]; acc6a += w6 * xa; acc6b += w6 * xb;
                let w7 = weight[wb.w + k]; acc7a += w7 * xa; acc7b += w7 * xb;
                k++;
            }
        }
    }

    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    var ob = array<vec4<u32>, 2>(oba, obb);
    for (var j = 0u; j < TC; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var t = 0u; t < TP; t++) {
            if (p0 + t >= npix) {
                break;
            }
            var v = acc[2u * j + t / 4u][t % 4u] + b;
            if (params.relu != 0u) {
                v = max(v, 0.0);
            }
            out[ob[t / 4u][t % 4u] + co * plane_out] = v;
        }
    }
}
