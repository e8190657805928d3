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
// Each invocation computes 2 pool cells (the 8 pixels of their windows) for 8 output channels,
// every pixel with the same loop and the same arithmetic as conv2d_forward's main, so the
// values and the winners are those of the two unfused passes, bit for bit.
// conv2d_forward_pooled_subgroup.wgsl is the channel-last variant (params.channel_last = 1).
// Dispatch: x = ceil(ceil(batch * h_pool * w_pool / 2) / 64), y = ceil(c_out / 8).

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
    pool_size: u32,
    pool_stride: u32,
    h_pool: u32,
    w_pool: u32,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> argmax: array<u32>;

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cells = params.batch * params.h_pool * params.w_pool;
    let cell0 = gid.x * 2u;
    let c0 = gid.y * 8u;
    if (cell0 >= cells || c0 >= params.c_out) {
        return;
    }
    let plane_out = params.h_out * params.w_out;
    let plane_in = params.h_in * params.w_in;
    let nc4 = c4();
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);

    // The window pixels of cells cell0 (*a) and cell0 + 1 (*b, clamped past the end, not
    // stored): offsets of their top-left input tap.
    let ma = window(cell0);
    let mb = window(min(cell0 + 1u, cells - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let iba = (ma / plane_out) * params.c_in * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out;
    let ibb = (mb / plane_out) * params.c_in * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out;

    // accJ{a,b}: output channel c0 + J for the pixels of cells a and b.
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
    pool_store(c0, cell0, array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                                acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b));
}
