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
    first_row(n0, 0u, o0, acc0a, acc0b);
    first_row(n0, 1u, o0, acc1a, acc1b);
    first_row(n0, 2u, o0, acc2a, acc2b);
    first_row(n0, 3u, o0, acc3a, acc3b);
    first_row(n0, 4u, o0, acc4a, acc4b);
    first_row(n0, 5u, o0, acc5a, acc5b);
    first_row(n0, 6u, o0, acc6a, acc6b);
    first_row(n0, 7u, o0, acc7a, acc7b);
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
    second_row(n0, 0u, o0, acc0a, acc0b);
    second_row(n0, 1u, o0, acc1a, acc1b);
    second_row(n0, 2u, o0, acc2a, acc2b);
    second_row(n0, 3u, o0, acc3a, acc3b);
    second_row(n0, 4u, o0, acc4a, acc4b);
    second_row(n0, 5u, o0, acc5a, acc5b);
    second_row(n0, 6u, o0, acc6a, acc6b);
    second_row(n0, 7u, o0, acc7a, acc7b);
}

// Row r of a first-layer tile (values a, b; outputs o0 .. in range): into hid_sh, and into hid
// if row n0 + r is in the batch. Row by row, with the tile's rows passed as values: indexing
// the tile dynamically would put it in memory.
fn first_row(n0: u32, r: u32, o0: u32, a: vec4<f32>, b: vec4<f32>) {
    let l = params.first;
    let n = n0 + r;
    let m = select(0u, min(l.n_out - o0, 8u), o0 < l.n_out);
    for (var t = 0u; t < m; t++) {
        let o = o0 + t;
        let v = act(select(b[t % 4u], a[t % 4u], t < 4u) + b1[o], l.relu);
        hid_sh[r * l.n_out + o] = v;
        if (n < l.batch) {
            hid[n * l.n_out + o] = v;
        }
    }
}

// Row r of a second-layer tile into out, if row n0 + r is in the batch.
fn second_row(n0: u32, r: u32, o0: u32, a: vec4<f32>, b: vec4<f32>) {
    let l = params.second;
    let n = n0 + r;
    if (n >= l.batch) {
        return;
    }
    let m = select(0u, min(l.n_out - o0, 8u), o0 < l.n_out);
    for (var t = 0u; t < m; t++) {
        let o = o0 + t;
        out[n * l.n_out + o] = act(select(b[t % 4u], a[t % 4u], t < 4u) + b2[o], l.relu);
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
