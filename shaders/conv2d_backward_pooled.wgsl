// conv2d_backward_pooled: the first step of conv2d_backward for a conv whose output feeds a
// max-pool with disjoint windows (stride >= size), fused with that pool's backward pass:
//   g[n, co, y, x] = dpool[n, co, y / stride, x / stride]   where (y, x) is its window's argmax
//                  = 0                                       elsewhere (and outside every window)
//   times (out > 0) with the conv's ReLU. The pool's input gradient is never written.
//   out (batch, c_out, h_out, w_out): the conv's output; argmax, dpool (batch, c_out, h_pool,
//   w_pool): the pool's winners (index y * w_out + x in the plane) and output gradient.
// Writes gv (batch * h_out * w_out, c4) vec4, as conv2d_backward's prepare_grad does; the rest
// of the backward pass (backward_weight, reduce_weight, backward_input) is conv2d_backward's.
// Dispatch: 1-D index over batch * h_out * w_out * c4 = gid.x + gid.y * 64 * num_workgroups.x.

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

@group(0) @binding(0) var<storage, read> out: array<f32>;
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> dpool: array<f32>;
@group(0) @binding(3) var<storage, read_write> gv: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.h_out * params.w_out;
    let nc4 = (params.c_out + 3u) / 4u;
    if (i >= params.batch * plane * nc4) {
        return;
    }
    let m = i / nc4;
    let n = m / plane;
    let r = m % plane;
    let y = r / params.w_out;
    let x = r % params.w_out;
    let s = params.pool_stride;
    let oy = y / s;
    let ox = x / s;
    let pooled = y % s < params.pool_size && x % s < params.pool_size && oy < params.h_pool
        && ox < params.w_pool;
    let pool_plane = params.h_pool * params.w_pool;
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        let co = (i % nc4) * 4u + l;
        if (co < params.c_out && pooled) {
            let o = (n * params.c_out + co) * pool_plane + oy * params.w_pool + ox;
            if (argmax[o] == r) {
                let d = dpool[o];
                let a = out[(n * params.c_out + co) * plane + r];
                v[l] = select(d, select(0.0, d, a > 0.0), params.relu != 0u);
            }
        }
    }
    gv[i] = v;
}
