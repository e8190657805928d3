// conv2d_forward: out = act(conv2d(inp, weight) + bias), stride 1, no padding ("valid").
//   inp (batch, c_in, h_in, w_in), weight (c_out, c_in, kh, kw), bias (c_out)
//   out (batch, c_out, h_out, w_out), h_out = h_in - kh + 1, w_out = w_in - kw + 1
//   act = ReLU when params.relu != 0, identity otherwise.
//   wt (kh * kw, c_in, c4) vec4: the weights with the output channel innermost, written by
//   conv2d_transpose_weight just before, so that 8 channels' weights are two vec4 loads.
// Implicit GEMM with a register tile: each invocation computes 8 consecutive output pixels
// (flattened over batch, y, x) for 8 consecutive output channels.
// Portable: any c_in, no subgroup operations. conv2d_forward_subgroup.wgsl is the faster
// variant the host uses instead when params.channel_last = 1.
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
    channel_last: u32, // 1: the host uses conv2d_forward_subgroup.wgsl instead of this file
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

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
    // offsets of their top-left input tap (ib*) and of their output (ob*).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let iba = (ma / plane_out) * params.c_in * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out;
    let ibb = (mb / plane_out) * params.c_in * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out;

    // accJ{a,b}: output channel c0 + J for pixels a and b.
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    for (var ci = 0u; ci < params.c_in; ci++) {
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let o = vec4<u32>(ci * plane_in + ky * params.w_in + kx);
                let xa = inp4(iba + o);
                let xb = inp4(ibb + o);
                let row = ((ky * params.kw + kx) * params.c_in + ci) * nc4;
                let w_lo = wt[row + q_lo];
                let w_hi = wt[row + q_hi];
                acc0a += w_lo.x * xa; acc0b += w_lo.x * xb;
                acc1a += w_lo.y * xa; acc1b += w_lo.y * xb;
                acc2a += w_lo.z * xa; acc2b += w_lo.z * xb;
                acc3a += w_lo.w * xa; acc3b += w_lo.w * xb;
                acc4a += w_hi.x * xa; acc4b += w_hi.x * xb;
                acc5a += w_hi.y * xa; acc5b += w_hi.y * xb;
                acc6a += w_hi.z * xa; acc6b += w_hi.z * xb;
                acc7a += w_hi.w * xa; acc7b += w_hi.w * xb;
            }
        }
    }

    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    var ob = array<vec4<u32>, 2>((ma / plane_out) * params.c_out * plane_out + ra,
                                 (mb / plane_out) * params.c_out * plane_out + rb);
    for (var j = 0u; j < 8u; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var t = 0u; t < 8u; t++) {
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
