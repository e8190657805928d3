// dense_forward: out = act(inp @ weight^T + bias)
//   inp (batch, n_in) (a (batch, c, h, w) tensor is read flattened in C,H,W order),
//   weight (n_out, n_in), bias (n_out), out (batch, n_out); act = ReLU when params.relu != 0.
// Register tile: each invocation computes 4 rows x 4 outputs.
// Dispatch: x = ceil(n_out / 4 / 64), y = ceil(batch / 4).

struct Params {
    batch: u32,
    n_in: u32,
    n_out: u32,
    relu: u32,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TILE: u32 = 4u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o0 = gid.x * TILE;
    let n0 = gid.y * TILE;
    if (o0 >= params.n_out || n0 >= params.batch) {
        return;
    }
    let step = vec4<u32>(0u, 1u, 2u, 3u);
    let xr = min(vec4<u32>(n0) + step, vec4<u32>(params.batch - 1u)) * params.n_in;
    let wr = min(vec4<u32>(o0) + step, vec4<u32>(params.n_out - 1u)) * params.n_in;
    // acc_r holds row n0 + r for the 4 outputs.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var i = 0u; i < params.n_in; i++) {
        let wv = vec4<f32>(weight[wr.x + i], weight[wr.y + i], weight[wr.z + i], weight[wr.w + i]);
        acc0 += inp[xr.x + i] * wv;
        acc1 += inp[xr.y + i] * wv;
        acc2 += inp[xr.z + i] * wv;
        acc3 += inp[xr.w + i] * wv;
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < TILE; r++) {
        let n = n0 + r;
        if (n >= params.batch) {
            break;
        }
        for (var t = 0u; t < TILE; t++) {
            let o = o0 + t;
            if (o >= params.n_out) {
                break;
            }
            var v = acc[r][t] + bias[o];
            if (params.relu != 0u) {
                v = max(v, 0.0);
            }
            out[n * params.n_out + o] = v;
        }
    }
}
