// conv2d_backward_pooled: the first step of conv2d_backward for a conv whose output feeds a
// max-pool with disjoint windows (stride >= size), fused with that pool's backward pass:
//   g[n, co, y, x] = dpool[n, co, y / stride, x / stride]   where (y, x) is its window's argmax
//                  = 0                                       elsewhere (and outside every window)
//   times (out > 0) with the conv's ReLU. The pool's input gradient is never written.
//   pooled, argmax, dpool (batch, c_out, h_pool, w_pool): the pool's output, winners (index
//   y * w_out + x in the plane) and output gradient. The conv's output matters only at the
//   winners, where it is the pool's output (out[winner] > 0 is pooled > 0), so it is not read
//   (conv2d_forward_pooled does not write it).
// Writes gv (batch * h_out * w_out, c4) vec4, as conv2d_backward's prepare_grad does; the rest
// of the backward pass (backward_weight, reduce_weight, backward_input) is conv2d_backward's.
// Since stride >= size, the plane splits into cells of stride x stride pixels (clipped at the
// edges), each holding at most one window: one invocation per (cell, 4 output channels) loads
// the window's winner, gradient and activation once per channel and writes the cell's pixels,
// the winner's gradient and zeros elsewhere (pixels in no window included).
// Dispatch: 1-D index over batch * cells_h * cells_w * c4 = gid.x + gid.y * 64 * num_workgroups.x,
// cells_h = ceil(h_out / stride).
//
// backward_weight: instead of main and conv2d_backward's weight pass, for a conv that needs no
// input gradient (a first layer) with 2x2 windows and at most 12 weight columns
// (c_in * kh * kw + 1: a one-channel 3x3 conv has 10): conv2d_backward's split-K partial sums,
//   partial[z, co, j] = sum over the pixels m of chunk z, in order, of g[m, co] * col[m, j],
// straight from the pool's winners. g is zero but at the winners, and a zero term adds +-0 to
// a sum that never is -0, so only the winners' terms count; they come in the pixel order when
// the loop runs each conv row of the chunk and, along it, each window of that row: the winner
// of a window lies in the row or it does not. So the sums are those of main followed by
// backward_weight (TILE_COLS 12), bit for bit, while every winner's gradient and pool value is
// loaded once per window row and no gradient plane is written (at batch 32 on lavapipe, conv1's
// routing pass and weight pass took 0.93 + 0.91 ms, this pass about 1.2). One invocation per
// chunk and 16 output channels. Dispatch: x = ceil(chunks / WG), y = ceil(c_out / 16);
// reduce_weight follows.

#include "conv2d_params"
#include "divmod"
#include "lanes"

@group(0) @binding(0) var<storage, read> pooled: array<f32>;
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> dpool: array<f32>;
@group(0) @binding(3) var<storage, read_write> gv: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> inp: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let s = params.pool_stride;
    let cells_h = (params.h_out + s - 1u) / s;
    let cells_w = (params.w_out + s - 1u) / s;
    let nc4 = (params.c_out + 3u) / 4u;
    if (i >= params.batch * cells_h * cells_w * nc4) {
        return;
    }
    let cq = divmod(i, nc4);
    let q = cq.y;
    let nr = divmod(cq.x, cells_h * cells_w);
    let n = nr.x;
    let yx = divmod(nr.y, cells_w);
    let cy = yx.x;
    let cx = yx.y;
    let plane = params.h_out * params.w_out;
    let pool_plane = params.h_pool * params.w_pool;
    // Each channel's winner in the cell's window (none: past the plane) and its gradient.
    var win = vec4<u32>(plane);
    var val = vec4<f32>(0.0);
    if (cy < params.h_pool && cx < params.w_pool) {
        for (var l = 0u; l < 4u; l++) {
            let co = q * 4u + l;
            if (co < params.c_out) {
                let o = (n * params.c_out + co) * pool_plane + cy * params.w_pool + cx;
                let a = argmax[o];
                let d = dpool[o];
                win[l] = a;
                val[l] = select(d, select(0.0, d, pooled[o] > 0.0), params.relu != 0u);
            }
        }
    }
    let y_end = min(cy * s + s, params.h_out);
    let x_end = min(cx * s + s, params.w_out);
    for (var y = cy * s; y < y_end; y++) {
        for (var x = cx * s; x < x_end; x++) {
            let r = y * params.w_out + x;
            gv[(n * plane + r) * nc4 + q] = select(vec4<f32>(0.0), val, win == vec4<u32>(r));
        }
    }
}

#include "conv2d_partial"

// Invocations per workgroup of backward_weight (tiling only).
override WG: u32 = 64u;
// 1 for a conv with one input channel and 3x3 taps (the host sets it): the columns' loads are
// shared between a window row's two candidates. The same values either way.
override K3: u32 = 0u;

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

// Four channels' part in one window's visit from one of its rows: g, their gradient (as main
// routes it) where the winner is one of the row's two candidate pixels (at0 and at0 + 1 in the
// plane, in the chunk where ok0 and ok1), else 0; second, whether it is at0 + 1.
struct Winners {
    g: vec4<f32>,
    second: vec4<bool>,
}

fn winners4(o: vec4<u32>, at0: u32, ok0: bool, ok1: bool) -> Winners {
    let a = vec4<u32>(argmax[o.x], argmax[o.y], argmax[o.z], argmax[o.w]);
    let d = vec4<f32>(dpool[o.x], dpool[o.y], dpool[o.z], dpool[o.w]);
    let v = vec4<f32>(pooled[o.x], pooled[o.y], pooled[o.z], pooled[o.w]);
    let g = select(d, select(vec4<f32>(0.0), d, v > vec4<f32>(0.0)), params.relu != 0u);
    let first = (a == vec4<u32>(at0)) & vec4<bool>(ok0);
    let second = (a == vec4<u32>(at0 + 1u)) & vec4<bool>(ok1);
    return Winners(select(vec4<f32>(0.0), g, first | second), second);
}

// One window visit into 8 channels' tile (columns 0..7 in acc as the portable weight tile holds
// them, 8..11 in accc): channel i adds g[i] times its candidate's columns, (xa1, xb1, xc1) where
// second[i], else (xa0, xb0, xc0). The same statements as chan8 and chan8c.
fn winners8(acc: ptr<function, array<vec4<f32>, 16>>, accc: ptr<function, array<vec4<f32>, 8>>,
            lo: Winners, hi: Winners,
            xa0: vec4<f32>, xb0: vec4<f32>, xc0: vec4<f32>,
            xa1: vec4<f32>, xb1: vec4<f32>, xc1: vec4<f32>) {
    (*acc)[0] += lo.g.x * select(xa0, xa1, lo.second.x); (*acc)[1] += lo.g.x * select(xb0, xb1, lo.second.x);
    (*acc)[2] += lo.g.y * select(xa0, xa1, lo.second.y); (*acc)[3] += lo.g.y * select(xb0, xb1, lo.second.y);
    (*acc)[4] += lo.g.z * select(xa0, xa1, lo.second.z); (*acc)[5] += lo.g.z * select(xb0, xb1, lo.second.z);
    (*acc)[6] += lo.g.w * select(xa0, xa1, lo.second.w); (*acc)[7] += lo.g.w * select(xb0, xb1, lo.second.w);
    (*acc)[8] += hi.g.x * select(xa0, xa1, hi.second.x); (*acc)[9] += hi.g.x * select(xb0, xb1, hi.second.x);
    (*acc)[10] += hi.g.y * select(xa0, xa1, hi.second.y); (*acc)[11] += hi.g.y * select(xb0, xb1, hi.second.y);
    (*acc)[12] += hi.g.z * select(xa0, xa1, hi.second.z); (*acc)[13] += hi.g.z * select(xb0, xb1, hi.second.z);
    (*acc)[14] += hi.g.w * select(xa0, xa1, hi.second.w); (*acc)[15] += hi.g.w * select(xb0, xb1, hi.second.w);
    (*accc)[0] += lo.g.x * select(xc0, xc1, lo.second.x); (*accc)[1] += lo.g.y * select(xc0, xc1, lo.second.y);
    (*accc)[2] += lo.g.z * select(xc0, xc1, lo.second.z); (*accc)[3] += lo.g.w * select(xc0, xc1, lo.second.w);
    (*accc)[4] += hi.g.x * select(xc0, xc1, hi.second.x); (*accc)[5] += hi.g.y * select(xc0, xc1, hi.second.y);
    (*accc)[6] += hi.g.z * select(xc0, xc1, hi.second.z); (*accc)[7] += hi.g.w * select(xc0, xc1, hi.second.w);
}

@compute @workgroup_size(WG)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let kk = params.kh * params.kw;
    let ksize = params.c_in * kk;
    let cols = ksize + 1u;
    let plane_in = params.h_in * params.w_in;
    let plane_out = params.h_out * params.w_out;
    let pool_plane = params.h_pool * params.w_pool;
    let npix = params.batch * plane_out;
    let chunks = (npix + params.chunk - 1u) / params.chunk;
    let z = gid.x;
    let c0 = gid.y * 16u;
    if (z >= chunks || c0 >= params.c_out) {
        return;
    }
    let m_begin = z * params.chunk;
    let m_end = min(m_begin + params.chunk, npix);
    // Each column's tap offset from the pixel's top-left input tap; from column ksize on the
    // column reads 1 (the bias; columns past it are not stored).
    let ja = min(LANES_A, vec4<u32>(ksize));
    let jb = min(LANES_B, vec4<u32>(ksize));
    let jc = min(LANES_A + vec4<u32>(8u), vec4<u32>(ksize));
    let bias_a = ja == vec4<u32>(ksize);
    let bias_b = jb == vec4<u32>(ksize);
    let bias_c = jc == vec4<u32>(ksize);
    let xoa = select((ja / kk) * plane_in + ((ja % kk) / params.kw) * params.w_in + (ja % kk) % params.kw, vec4<u32>(0u), bias_a);
    let xob = select((jb / kk) * plane_in + ((jb % kk) / params.kw) * params.w_in + (jb % kk) % params.kw, vec4<u32>(0u), bias_b);
    let xoc = select((jc / kk) * plane_in + ((jc % kk) / params.kw) * params.w_in + (jc % kk) % params.kw, vec4<u32>(0u), bias_c);
    let one = vec4<f32>(1.0);
    // Channel c0 + 4Q + i's offset in the pool's arrays (clamped past c_out: not stored).
    let cm = vec4<u32>(params.c_out - 1u);
    let oc0 = min(vec4<u32>(c0) + LANES_A, cm) * pool_plane;
    let oc1 = min(vec4<u32>(c0) + LANES_B, cm) * pool_plane;
    let oc2 = min(vec4<u32>(c0 + 8u) + LANES_A, cm) * pool_plane;
    let oc3 = min(vec4<u32>(c0 + 8u) + LANES_B, cm) * pool_plane;
    // Channels c0 .. c0 + 7 (acc0, acc0c) and c0 + 8 .. c0 + 15 (acc1, acc1c), columns 0..7
    // and 8..11 (16 channels per invocation: 8 and 32 were slower on lavapipe).
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc0c: array<vec4<f32>, 8>;
    var acc1c: array<vec4<f32>, 8>;
    let s = params.pool_stride;
    var n = m_begin / plane_out;
    var oy = (m_begin % plane_out) / params.w_out;
    loop {
        let row0 = n * plane_out + oy * params.w_out;
        if (row0 >= m_end) {
            break;
        }
        let py = oy / s;
        // Rows in a window: the first two of each stride.
        if (oy - py * s < 2u && py < params.h_pool) {
            let cells = n * params.c_out * pool_plane + py * params.w_pool;
            let row_in = n * params.c_in * plane_in + oy * params.w_in;
            for (var px = 0u; px < params.w_pool; px++) {
                let x0 = px * s;
                let m0 = row0 + x0;
                let ok0 = m0 >= m_begin && m0 < m_end;
                let ok1 = m0 + 1u >= m_begin && m0 + 1u < m_end;
                let at0 = oy * params.w_out + x0;
                // Each candidate's columns (the second candidate's: the taps one to the right).
                var xa0: vec4<f32>;
                var xb0: vec4<f32>;
                var xc0: vec4<f32>;
                var xa1: vec4<f32>;
                var xb1: vec4<f32>;
                var xc1: vec4<f32>;
                if (K3 != 0u) {
                    // One input channel, 3x3 taps: columns (ky, kx) row-major, the bias at 9.
                    // The second candidate's taps are the first's one to the right: only those
                    // at kx = 3 are loaded anew (12 loads, not 24).
                    let r0 = row_in + x0;
                    let r1 = r0 + params.w_in;
                    let r2 = r1 + params.w_in;
                    xa0 = vec4<f32>(inp[r0], inp[r0 + 1u], inp[r0 + 2u], inp[r1]);
                    xb0 = vec4<f32>(inp[r1 + 1u], inp[r1 + 2u], inp[r2], inp[r2 + 1u]);
                    xc0 = vec4<f32>(inp[r2 + 2u], 1.0, 1.0, 1.0);
                    xa1 = vec4<f32>(xa0.y, xa0.z, inp[r0 + 3u], xb0.x);
                    xb1 = vec4<f32>(xb0.y, inp[r1 + 3u], xb0.w, xc0.x);
                    xc1 = vec4<f32>(inp[r2 + 3u], 1.0, 1.0, 1.0);
                } else {
                    let ib = vec4<u32>(row_in + x0);
                    xa0 = select(inp4(ib + xoa), one, bias_a);
                    xb0 = select(inp4(ib + xob), one, bias_b);
                    xc0 = select(inp4(ib + xoc), one, bias_c);
                    xa1 = select(inp4(ib + xoa + 1u), one, bias_a);
                    xb1 = select(inp4(ib + xob + 1u), one, bias_b);
                    xc1 = select(inp4(ib + xoc + 1u), one, bias_c);
                }
                let c = vec4<u32>(cells + px);
                winners8(&acc0, &acc0c, winners4(c + oc0, at0, ok0, ok1), winners4(c + oc1, at0, ok0, ok1),
                         xa0, xb0, xc0, xa1, xb1, xc1);
                winners8(&acc1, &acc1c, winners4(c + oc2, at0, ok0, ok1), winners4(c + oc3, at0, ok0, ok1),
                         xa0, xb0, xc0, xa1, xb1, xc1);
            }
        }
        oy++;
        if (oy == params.h_out) {
            oy = 0u;
            n++;
        }
    }
    store_partial(z, c0, 0u, cols, acc0);
    store_partial4(z, c0, 8u, cols, acc0c);
    store_partial(z, c0 + 8u, 0u, cols, acc1);
    store_partial4(z, c0 + 8u, 8u, cols, acc1c);
}
