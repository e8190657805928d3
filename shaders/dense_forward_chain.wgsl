// dense_forward_chain: two dense layers in one pass (the second reads the first's output):
//   hid = act1(inp @ w1^T + b1), out = act2(hid @ w2^T + b2)
//   inp (batch, n_in), w1 (n_mid, n_in), b1 (n_mid), hid (batch, n_mid) (written: the backward
//   passes read it), w2 (n_out, n_mid), b2 (n_out), out (batch, n_out); act = ReLU when relu != 0.
// One workgroup per 8 rows: its first ceil(n_mid / 8) invocations compute the hidden layer's
// 8 x 8 tiles as dense_forward.wgsl's main does (the same loop, the same sums), keep the 8 rows
// in workgroup memory as well, and after a barrier the first ceil(n_out / 8) compute the second
// layer's tiles from there. Hence n_mid, n_out <= 512 (the host checks).
// Dispatch: x = ceil(batch / 8).

struct Layer {
    batch: u32,
    n_in: u32,
    n_out: u32,
    relu: u32,
}

struct Params {
    first: Layer,
    second: Layer,
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> w1: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read_write> hid: array<f32>;
@group(0) @binding(4) var<storage, read> w2: array<f32>;
@group(0) @binding(5) var<storage, read> b2: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

#include "lanes"

// The workgroup's 8 rows of the hidden layer (rows past the batch hold a clamped row's values).
var<workgroup> hid_sh: array<f32, 4096>;

fn w1_4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(w1[i.x], w1[i.y], w1[i.z], w1[i.w]);
}

fn w2_4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(w2[i.x], w2[i.y], w2[i.z], w2[i.w]);
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

fn sh4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(hid_sh[i.x], hid_sh[i.y], hid_sh[i.z], hid_sh[i.w]);
}

fn act(v: f32, relu: u32) -> f32 {
    if (relu != 0u) {
        return max(v, 0.0);
    }
    return v;
}

fn first_tile(n0: u32, o0: u32) {
    let l = params.first;
    let xa = min(vec4<u32>(n0) + LANES_A, vec4<u32>(l.batch - 1u)) * l.n_in;
    let xb = min(vec4<u32>(n0) + LANES_B, vec4<u32>(l.batch - 1u)) * l.n_in;
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(l.n_out - 1u)) * l.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(l.n_out - 1u)) * l.n_in;
    #include "acc8x2_zero"
    for (var i = 0u; i < l.n_in; i++) {
        let w_a = w1_4(wa + vec4<u32>(i));
        let w_b = w1_4(wb + vec4<u32>(i));
        let x_lo = inp4(xa + vec4<u32>(i));
        let x_hi = inp4(xb + vec4<u32>(i));
        #include "dense_acc8x2"
    }
    #include "acc8x2_array"
    for (var r = 0u; r < 8u; r++) {
        let n = n0 + r;
        for (var t = 0u; t < 8u; t++) {
            let o = o0 + t;
            if (o >= l.n_out) {
                break;
            }
            let v = act(acc[2u * r + t / 4u][t % 4u] + b1[o], l.relu);
            hid_sh[r * l.n_out + o] = v;
            if (n < l.batch) {
                hid[n * l.n_out + o] = v;
            }
        }
    }
}

fn second_tile(n0: u32, o0: u32) {
    let l = params.second;
    // Row r of the tile is row r of hid_sh (clamped rows are never stored).
    let xa = LANES_A * l.n_in;
    let xb = LANES_B * l.n_in;
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(l.n_out - 1u)) * l.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(l.n_out - 1u)) * l.n_in;
    #include "acc8x2_zero"
    for (var i = 0u; i < l.n_in; i++) {
        let w_a = w2_4(wa + vec4<u32>(i));
        let w_b = w2_4(wb + vec4<u32>(i));
        let x_lo = sh4(xa + vec4<u32>(i));
        let x_hi = sh4(xb + vec4<u32>(i));
        #include "dense_acc8x2"
    }
    #include "acc8x2_array"
    for (var r = 0u; r < 8u; r++) {
        let n = n0 + r;
        if (n >= l.batch) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            let o = o0 + t;
            if (o >= l.n_out) {
                break;
            }
            out[n * l.n_out + o] = act(acc[2u * r + t / 4u][t % 4u] + b2[o], l.relu);
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n0 = wid.x * 8u;
    if (lid.x * 8u < params.first.n_out) {
        first_tile(n0, lid.x * 8u);
    }
    workgroupBarrier();
    if (lid.x * 8u < params.second.n_out) {
        second_tile(n0, lid.x * 8u);
    }
}
