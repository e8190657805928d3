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

#include "conv2d_params"
#include "divmod"

@group(0) @binding(0) var<storage, read> pooled: array<f32>;
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> dpool: array<f32>;
@group(0) @binding(3) var<storage, read_write> gv: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;

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
