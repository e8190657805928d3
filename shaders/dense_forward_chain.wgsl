// dense_forward_chain: two dense layers in one pass (the second reads the first's output):
//   hid = act1(inp @ w1^T + b1), out = act2(hid @ w2^T + b2)
//   inp (batch, n_in), w1 (n_mid, n_in), b1 (n_mid), hid (batch, n_mid) (written: the backward
//   passes read it), w2 (n_out, n_mid), b2 (n_out), out (batch, n_out); act = ReLU when relu != 0.
// One workgroup per 8 rows: its first ceil(n_mid / 8) invocations compute the hidden layer's
// 8 x 8 tiles as dense_forward.wgsl's main does (the same loop, the same sums), keep the 8 rows
// in workgroup memory as well, and after a barrier the first ceil(n_out / 8) compute the second
// layer's tiles from there. Hence n_mid, n_out <= 512 (the host checks).
// Dispatch: x = ceil(batch / 8).
// Variants (src/shaders.rs): dense_forward_chain, and dense_forward_chain_subgroup (SUBGROUP),
// the same bindings, params and sums: a workgroup takes 8 * RB rows (RB a pipeline-overridable
// constant, 1, 2 or 4, with 8 * RB * n_mid <= 4096), each invocation 8 outputs of all of them;
// the row values a step needs are the same across a subgroup, so lanes 0..7 load them and
// share8 hands them round, and each weight load serves 8 * RB rows. Dispatch: x =
// ceil(batch / (8 * RB)).
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

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

// Blocks of 8 rows per workgroup (SUBGROUP; 1 in the portable variant).
override RB: u32 = 1u;

// The workgroup's 8 * RB rows of the hidden layer (rows past the batch hold a clamped row's
// values).
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

#if !SUBGROUP
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

#else
#include "share8"

#include "chan8"
#include "blocks8"

fn first_rows8(n0: u32, r0: u32, o0: u32, t: array<vec4<f32>, 16>) {
    first_row(n0, r0 + 0u, o0, t[0], t[1]);
    first_row(n0, r0 + 1u, o0, t[2], t[3]);
    first_row(n0, r0 + 2u, o0, t[4], t[5]);
    first_row(n0, r0 + 3u, o0, t[6], t[7]);
    first_row(n0, r0 + 4u, o0, t[8], t[9]);
    first_row(n0, r0 + 5u, o0, t[10], t[11]);
    first_row(n0, r0 + 6u, o0, t[12], t[13]);
    first_row(n0, r0 + 7u, o0, t[14], t[15]);
}

fn second_rows8(n0: u32, r0: u32, o0: u32, t: array<vec4<f32>, 16>) {
    second_row(n0, r0 + 0u, o0, t[0], t[1]);
    second_row(n0, r0 + 1u, o0, t[2], t[3]);
    second_row(n0, r0 + 2u, o0, t[4], t[5]);
    second_row(n0, r0 + 3u, o0, t[6], t[7]);
    second_row(n0, r0 + 4u, o0, t[8], t[9]);
    second_row(n0, r0 + 5u, o0, t[10], t[11]);
    second_row(n0, r0 + 6u, o0, t[12], t[13]);
    second_row(n0, r0 + 7u, o0, t[14], t[15]);
}

// Rows n0 .. n0 + 8 RB - 1, outputs o0 .. o0 + 7 of the first layer: the row values by share8
// (lane l loads row n0 + 8 B + l % 8 of block B), each weight load serving every row.
// The weights dense_rows_acc reads: the first layer's.
fn tile_weight4(i: vec4<u32>) -> vec4<f32> {
    return w1_4(i);
}

fn first_tile(n0: u32, o0: u32, lane: u32) {
    let l = params.first;
    let xl = min(vec4<u32>(n0 + lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(l.batch - 1u)) * l.n_in;
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(l.n_out - 1u)) * l.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(l.n_out - 1u)) * l.n_in;
    let n_in = l.n_in;
#include "dense_rows_acc"
    first_rows8(n0, 0u, o0, acc0);
    if (RB > 1u) {
        first_rows8(n0, 8u, o0, acc1);
    }
    if (RB > 2u) {
        first_rows8(n0, 16u, o0, acc2);
        first_rows8(n0, 24u, o0, acc3);
    }
}

// The second layer's tile from hid_sh, as first_tile.
fn second_tile(n0: u32, o0: u32, lane: u32) {
    let l = params.second;
    let xl = (vec4<u32>(lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u)) * l.n_in;
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(l.n_out - 1u)) * l.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(l.n_out - 1u)) * l.n_in;
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    for (var i = 0u; i < l.n_in; i++) {
        let w_a = w2_4(wa + vec4<u32>(i));
        let w_b = w2_4(wb + vec4<u32>(i));
        let x = vec4<f32>(hid_sh[xl.x + i], hid_sh[xl.y + i], hid_sh[xl.z + i], hid_sh[xl.w + i]);
        blocks8(&acc0, &acc1, &acc2, &acc3, x, w_a, w_b);
    }
    second_rows8(n0, 0u, o0, acc0);
    if (RB > 1u) {
        second_rows8(n0, 8u, o0, acc1);
    }
    if (RB > 2u) {
        second_rows8(n0, 16u, o0, acc2);
        second_rows8(n0, 24u, o0, acc3);
    }
}
#endif

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

#if !SUBGROUP
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
#else
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let n0 = wid.x * 8u * RB;
    // A subgroup works if any of its invocations has outputs (the broadcasts need every lane;
    // the others compute clamped outputs and store nothing).
    if (subgroupAny(lid.x * 8u < params.first.n_out)) {
        first_tile(n0, lid.x * 8u, lane);
    }
    workgroupBarrier();
    if (subgroupAny(lid.x * 8u < params.second.n_out)) {
        second_tile(n0, lid.x * 8u, lane);
    }
}
#endif
