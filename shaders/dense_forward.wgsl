// dense_forward: out = act(inp @ weight^T + bias)
//   inp (batch, n_in) (a (batch, c, h, w) tensor is read flattened in C,H,W order),
//   weight (n_out, n_in), bias (n_out), out (batch, n_out); act = ReLU when params.relu != 0.
// Register tile: each invocation computes 8 rows x 8 outputs (16 loads per 64 multiply-adds).
// Variants (src/shaders.rs): dense_forward, and dense_forward_subgroup (SUBGROUP), the same
// bindings, params and result: the 8 input values a step needs (rows n0..n0+7 at input i) are
// the same for every invocation of the workgroup (one row tile per workgroup), so each of 8
// lanes loads one and subgroupBroadcast shares them.
// In the SUBGROUP variant a workgroup takes 8 * RB rows (RB a pipeline-overridable constant,
// 1, 2 or 4: tiling only, every sum in the same order), so each weight load serves 8 * RB rows:
// y = ceil(batch / (8 * RB)).
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).
// Dispatch: x = ceil(n_out / 8 / WG), y = ceil(batch / 8) (WG invocations per workgroup, a
// pipeline-overridable constant: tiling only).

#include "dense_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

#include "lanes"

fn weight4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(weight[i.x], weight[i.y], weight[i.z], weight[i.w]);
}

#if !SUBGROUP
fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}
#else
#include "share8"
#include "chan8"
#include "blocks8"

// Blocks of 8 rows per workgroup (tiling only).
override RB: u32 = 1u;

// The weights dense_rows_acc reads.
fn tile_weight4(i: vec4<u32>) -> vec4<f32> {
    return weight4(i);
}

// Rows n0 .. n0 + 7 of a tile (those in range) into out.
fn out_rows8(n0: u32, o0: u32, t: array<vec4<f32>, 16>) {
    out_row(n0 + 0u, o0, t[0], t[1]);
    out_row(n0 + 1u, o0, t[2], t[3]);
    out_row(n0 + 2u, o0, t[4], t[5]);
    out_row(n0 + 3u, o0, t[6], t[7]);
    out_row(n0 + 4u, o0, t[8], t[9]);
    out_row(n0 + 5u, o0, t[10], t[11]);
    out_row(n0 + 6u, o0, t[12], t[13]);
    out_row(n0 + 7u, o0, t[14], t[15]);
}
#endif

// Invocations per workgroup (tiling only).
override WG: u32 = 64u;

@compute @workgroup_size(WG)
#if !SUBGROUP
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
#else
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
#endif
    let o0 = gid.x * 8u;
#if !SUBGROUP
    let n0 = gid.y * 8u;
    if (o0 >= params.n_out || n0 >= params.batch) {
#else
    let n0 = wid.y * 8u * RB;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last output stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (n0 >= params.batch) {
#endif
        return;
    }
    // Rows and outputs past the end are clamped; their results are not stored.
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(params.n_out - 1u)) * params.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(params.n_out - 1u)) * params.n_in;
#if SUBGROUP
    // This lane's input row in block B: n0 + 8 B + lane % 8 (clamped); blocks8 shares them.
    let xl = min(vec4<u32>(n0 + lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(params.batch - 1u)) * params.n_in;
    let n_in = params.n_in;
    // accB: rows n0 + 8 B .. + 7, row r's outputs o0..o0+3 at 2r and o0+4..o0+7 at 2r + 1.
#include "dense_rows_acc"
    out_rows8(n0, o0, acc0);
    if (RB > 1u) {
        out_rows8(n0 + 8u, o0, acc1);
    }
    if (RB > 2u) {
        out_rows8(n0 + 16u, o0, acc2);
        out_rows8(n0 + 24u, o0, acc3);
    }
#else
    let xa = min(vec4<u32>(n0) + LANES_A, vec4<u32>(params.batch - 1u)) * params.n_in;
    let xb = min(vec4<u32>(n0) + LANES_B, vec4<u32>(params.batch - 1u)) * params.n_in;
    // accR{a,b}: row n0 + R for outputs a (o0..o0+3) and b (o0+4..o0+7).
    #include "acc8x2_zero"
    for (var i = 0u; i < params.n_in; i++) {
        let w_a = weight4(wa + vec4<u32>(i));
        let w_b = weight4(wb + vec4<u32>(i));
        let x_lo = inp4(xa + vec4<u32>(i));
        let x_hi = inp4(xb + vec4<u32>(i));
        #include "dense_acc8x2"
    }
    out_row(n0 + 0u, o0, acc0a, acc0b);
    out_row(n0 + 1u, o0, acc1a, acc1b);
    out_row(n0 + 2u, o0, acc2a, acc2b);
    out_row(n0 + 3u, o0, acc3a, acc3b);
    out_row(n0 + 4u, o0, acc4a, acc4b);
    out_row(n0 + 5u, o0, acc5a, acc5b);
    out_row(n0 + 6u, o0, acc6a, acc6b);
    out_row(n0 + 7u, o0, acc7a, acc7b);
#endif
}

// out[n, o0 + t] = act(a, b's lane t + bias) for the outputs in range, if row n is.
fn out_row(n: u32, o0: u32, a: vec4<f32>, b: vec4<f32>) {
    if (n >= params.batch) {
        return;
    }
    let m = select(0u, min(params.n_out - o0, 8u), o0 < params.n_out);
    for (var t = 0u; t < m; t++) {
        var v = select(b[t % 4u], a[t % 4u], t < 4u) + bias[o0 + t];
        if (params.relu != 0u) {
            v = max(v, 0.0);
        }
        out[n * params.n_out + o0 + t] = v;
    }
}
