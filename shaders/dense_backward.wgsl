// dense_backward: gradients of dense_forward.
//   inp (batch, n_in), weight (n_out, n_in), out and dout (batch, n_out): forward output (after
//   ReLU) and its gradient; g = dout * (out > 0) when params.relu != 0, else dout.
// Entry points (each overwrites its outputs):
//   backward_input:  dinp[n, i] = sum_o g[n, o] * weight[o, i]
//                    tile 4 rows x 4 inputs. Dispatch: x = ceil(n_in / 4 / 64), y = ceil(batch / 4).
//   backward_weight: dweight[o, i] = sum_n g[n, o] * inp[n, i], dbias[o] = sum_n g[n, o]
//                    (the bias is column i = n_in, whose input is 1)
//                    tile 4 outputs x 4 columns. Dispatch: x = ceil((n_in + 1) / 4 / 64), y = ceil(n_out / 4).

struct Params {
    batch: u32,
    n_in: u32,
    n_out: u32,
    relu: u32,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

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
    let i0 = gid.x * TILE;
    let n0 = gid.y * TILE;
    if (i0 >= params.n_in || n0 >= params.batch) {
        return;
    }
    let step = vec4<u32>(0u, 1u, 2u, 3u);
    let gr = min(vec4<u32>(n0) + step, vec4<u32>(params.batch - 1u)) * params.n_out;
    let ic = min(vec4<u32>(i0) + step, vec4<u32>(params.n_in - 1u));
    // acc_r holds row n0 + r for the 4 inputs.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var o = 0u; o < params.n_out; o++) {
        let wi = ic + vec4<u32>(o * params.n_in);
        let wv = vec4<f32>(weight[wi.x], weight[wi.y], weight[wi.z], weight[wi.w]);
        let g = grad4(gr + vec4<u32>(o));
        acc0 += g.x * wv;
        acc1 += g.y * wv;
        acc2 += g.z * wv;
        acc3 += g.w * wv;
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < TILE; r++) {
        let n = n0 + r;
        if (n >= params.batch) {
            break;
        }
        for (var t = 0u; t < TILE; t++) {
            let i = i0 + t;
            if (i >= params.n_in) {
                break;
            }
            dinp[n * params.n_in + i] = acc[r][t];
        }
    }
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cols = params.n_in + 1u;
    let j0 = gid.x * TILE;
    let o0 = gid.y * TILE;
    if (j0 >= cols || o0 >= params.n_out) {
        return;
    }
    let step = vec4<u32>(0u, 1u, 2u, 3u);
    let jc = min(vec4<u32>(j0) + step, vec4<u32>(params.n_in));
    let is_bias = jc == vec4<u32>(params.n_in);
    let xc = min(jc, vec4<u32>(params.n_in - 1u));
    let oc = min(vec4<u32>(o0) + step, vec4<u32>(params.n_out - 1u));
    // acc_r holds output o0 + r for the 4 columns.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var n = 0u; n < params.batch; n++) {
        let xi = xc + vec4<u32>(n * params.n_in);
        let xv = select(vec4<f32>(inp[xi.x], inp[xi.y], inp[xi.z], inp[xi.w]), vec4<f32>(1.0), is_bias);
        let g = grad4(oc + vec4<u32>(n * params.n_out));
        acc0 += g.x * xv;
        acc1 += g.y * xv;
        acc2 += g.z * xv;
        acc3 += g.w * xv;
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < TILE; r++) {
        let o = o0 + r;
        if (o >= params.n_out) {
            break;
        }
        for (var t = 0u; t < TILE; t++) {
            let j = j0 + t;
            if (j > params.n_in) {
                break;
            }
            if (j == params.n_in) {
                dbias[o] = acc[r][t];
            } else {
                dweight[o * params.n_in + j] = acc[r][t];
            }
        }
    }
}
