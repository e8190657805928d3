// dense_backward: gradients of dense_forward.
//   inp (batch, n_in), weight (n_out, n_in), out and dout (batch, n_out): forward output (after
//   ReLU) and its gradient; g = dout * (out > 0) when params.relu != 0, else dout.
// Entry points (each overwrites its outputs):
//   backward_input:  dinp[n, i] = sum_o g[n, o] * weight[o, i]
//                    tile 8 rows x 8 inputs. Dispatch: x = ceil(n_in / 8 / WG), y = ceil(batch / 8).
//   backward_weight: dweight[o, i] = sum_n g[n, o] * inp[n, i], dbias[o] = sum_n g[n, o]
//                    (the bias is column i = n_in, whose input is 1)
//                    tile 8 outputs x 8 columns. Dispatch: x = ceil((n_in + 1) / 8 / WG), y = ceil(n_out / 8).
//   backward:        backward_weight and backward_input in one dispatch (the same code per
//                    tile, so the same bits): x = the weight grid's workgroups and the
//                    input grid's, interleaved; y = 1.
// WG invocations per workgroup (an override, tiling only): 64 on GPUs, 8 on CPU adapters, where
// a workgroup's invocations past the last input or column still run (the broadcasts need every
// lane) and 8 leave fewest of them (fc1's 1,600 inputs fill 200 of 256 invocations at 64).
// Variants (src/shaders.rs): dense_backward, and dense_backward_subgroup (SUBGROUP), the same
// bindings, params, entry points and results: in both tile kinds the 8 gradient values a step
// needs are the same for every invocation of the workgroup (one row or output tile per
// workgroup), so each of 8 lanes loads one (dout, and out for the ReLU mask) and
// subgroupBroadcast shares them, instead of every lane loading all 8 twice.
// SUBGROUP: for adapters with subgroups of at least 8 invocations (the host checks); no
// `enable subgroups;` (naga, wgpu 30, rejects the directive and takes the subgroup builtins
// when the device has wgpu::Features::SUBGROUP).

#include "dense_params"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

#include "lanes"

// Invocations per workgroup (a pipeline-overridable constant: tiling only).
override WG: u32 = 64u;
// SUBGROUP: blocks of 8 rows (input tiles) or outputs (weight tiles) per invocation, 1, 2 or 4
// (tiling only: each sum runs in the same order).
override RB: u32 = 1u;

#if !SUBGROUP
// Gradient at the pre-activation for 4 output elements.
fn grad4(i: vec4<u32>) -> vec4<f32> {
    let g = vec4<f32>(dout[i.x], dout[i.y], dout[i.z], dout[i.w]);
#else
// Gradient at the pre-activation for one output element.
fn grad1(i: u32) -> f32 {
    let g = dout[i];
#endif
    if (params.relu == 0u) {
        return g;
    }
#if !SUBGROUP
    let o = vec4<f32>(out[i.x], out[i.y], out[i.z], out[i.w]);
    return select(vec4<f32>(0.0), g, o > vec4<f32>(0.0));
}
#else
    return select(0.0, g, out[i] > 0.0);
}

#include "share8"
#endif

fn weight4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(weight[i.x], weight[i.y], weight[i.z], weight[i.w]);
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

#if !SUBGROUP
fn input_tile(gid: vec3<u32>) {
    let i0 = gid.x * 8u;
    let n0 = gid.y * 8u;
    if (i0 >= params.n_in || n0 >= params.batch) {
        return;
    }
    let ga = min(vec4<u32>(n0) + LANES_A, vec4<u32>(params.batch - 1u)) * params.n_out;
    let gb = min(vec4<u32>(n0) + LANES_B, vec4<u32>(params.batch - 1u)) * params.n_out;
    let ia = min(vec4<u32>(i0) + LANES_A, vec4<u32>(params.n_in - 1u));
    let ib = min(vec4<u32>(i0) + LANES_B, vec4<u32>(params.n_in - 1u));
    // accR{a,b}: row n0 + R for inputs a (i0..i0+3) and b (i0+4..i0+7).
    #include "acc8x2_zero"
    for (var o = 0u; o < params.n_out; o++) {
        let w_a = weight4(ia + vec4<u32>(o * params.n_in));
        let w_b = weight4(ib + vec4<u32>(o * params.n_in));
        let g_lo = grad4(ga + vec4<u32>(o));
        let g_hi = grad4(gb + vec4<u32>(o));
        acc0a += g_lo.x * w_a; acc0b += g_lo.x * w_b;
        acc1a += g_lo.y * w_a; acc1b += g_lo.y * w_b;
        acc2a += g_lo.z * w_a; acc2b += g_lo.z * w_b;
        acc3a += g_lo.w * w_a; acc3b += g_lo.w * w_b;
        acc4a += g_hi.x * w_a; acc4b += g_hi.x * w_b;
        acc5a += g_hi.y * w_a; acc5b += g_hi.y * w_b;
        acc6a += g_hi.z * w_a; acc6b += g_hi.z * w_b;
        acc7a += g_hi.w * w_a; acc7b += g_hi.w * w_b;
    }
    input_row(n0 + 0u, i0, acc0a, acc0b);
    input_row(n0 + 1u, i0, acc1a, acc1b);
    input_row(n0 + 2u, i0, acc2a, acc2b);
    input_row(n0 + 3u, i0, acc3a, acc3b);
    input_row(n0 + 4u, i0, acc4a, acc4b);
    input_row(n0 + 5u, i0, acc5a, acc5b);
    input_row(n0 + 6u, i0, acc6a, acc6b);
    input_row(n0 + 7u, i0, acc7a, acc7b);
}

fn weight_tile(gid: vec3<u32>) {
    let cols = params.n_in + 1u;
    let j0 = gid.x * 8u;
    let o0 = gid.y * 8u;
    if (j0 >= cols || o0 >= params.n_out) {
        return;
    }
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(params.n_in));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(params.n_in));
    let bias_a = ja == vec4<u32>(params.n_in);
    let bias_b = jb == vec4<u32>(params.n_in);
    let xa = min(ja, vec4<u32>(params.n_in - 1u));
    let xb = min(jb, vec4<u32>(params.n_in - 1u));
    let oa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(params.n_out - 1u));
    let ob = min(vec4<u32>(o0) + LANES_B, vec4<u32>(params.n_out - 1u));
    // accR{a,b}: output o0 + R for columns a and b.
    #include "acc8x2_zero"
    for (var n = 0u; n < params.batch; n++) {
        let x_a = select(inp4(xa + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_a);
        let x_b = select(inp4(xb + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_b);
        let g_lo = grad4(oa + vec4<u32>(n * params.n_out));
        let g_hi = grad4(ob + vec4<u32>(n * params.n_out));
        acc0a += g_lo.x * x_a; acc0b += g_lo.x * x_b;
        acc1a += g_lo.y * x_a; acc1b += g_lo.y * x_b;
        acc2a += g_lo.z * x_a; acc2b += g_lo.z * x_b;
        acc3a += g_lo.w * x_a; acc3b += g_lo.w * x_b;
        acc4a += g_hi.x * x_a; acc4b += g_hi.x * x_b;
        acc5a += g_hi.y * x_a; acc5b += g_hi.y * x_b;
        acc6a += g_hi.z * x_a; acc6b += g_hi.z * x_b;
        acc7a += g_hi.w * x_a; acc7b += g_hi.w * x_b;
    }
    weight_row(o0 + 0u, j0, acc0a, acc0b);
    weight_row(o0 + 1u, j0, acc1a, acc1b);
    weight_row(o0 + 2u, j0, acc2a, acc2b);
    weight_row(o0 + 3u, j0, acc3a, acc3b);
    weight_row(o0 + 4u, j0, acc4a, acc4b);
    weight_row(o0 + 5u, j0, acc5a, acc5b);
    weight_row(o0 + 6u, j0, acc6a, acc6b);
    weight_row(o0 + 7u, j0, acc7a, acc7b);
}

#else
#include "chan8"
#include "blocks8"

// Rows n0 .. n0 + 7 of an input tile into dinp (those in range).
fn store_input8(n0: u32, i0: u32, t: array<vec4<f32>, 16>) {
    input_row(n0 + 0u, i0, t[0], t[1]);
    input_row(n0 + 1u, i0, t[2], t[3]);
    input_row(n0 + 2u, i0, t[4], t[5]);
    input_row(n0 + 3u, i0, t[6], t[7]);
    input_row(n0 + 4u, i0, t[8], t[9]);
    input_row(n0 + 5u, i0, t[10], t[11]);
    input_row(n0 + 6u, i0, t[12], t[13]);
    input_row(n0 + 7u, i0, t[14], t[15]);
}

// Outputs o0 .. o0 + 7 of a weight tile into dweight and dbias (those in range).
fn store_weight8(o0: u32, j0: u32, t: array<vec4<f32>, 16>) {
    weight_row(o0 + 0u, j0, t[0], t[1]);
    weight_row(o0 + 1u, j0, t[2], t[3]);
    weight_row(o0 + 2u, j0, t[4], t[5]);
    weight_row(o0 + 3u, j0, t[6], t[7]);
    weight_row(o0 + 4u, j0, t[8], t[9]);
    weight_row(o0 + 5u, j0, t[10], t[11]);
    weight_row(o0 + 6u, j0, t[12], t[13]);
    weight_row(o0 + 7u, j0, t[14], t[15]);
}

// 8 * RB rows x 8 inputs: each weight load serves RB blocks of 8 rows, whose gradient values
// lanes 0..7 load and share8 hands round.
fn input_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let i0 = gid.x * 8u;
    let n0 = wid.y * 8u * RB;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last input stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (n0 >= params.batch) {
        return;
    }
    // This lane's gradient row in each block: n0 + 8 B + lane % 8 (clamped).
    let gl = min(vec4<u32>(n0 + lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(params.batch - 1u)) * params.n_out;
    let ia = min(vec4<u32>(i0) + LANES_A, vec4<u32>(params.n_in - 1u));
    let ib = min(vec4<u32>(i0) + LANES_B, vec4<u32>(params.n_in - 1u));
    // accB: rows n0 + 8 B .. + 7, row r's inputs i0..i0+3 at 2r and i0+4..i0+7 at 2r + 1.
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    for (var o = 0u; o < params.n_out; o++) {
        let w_a = weight4(ia + vec4<u32>(o * params.n_in));
        let w_b = weight4(ib + vec4<u32>(o * params.n_in));
        let g = vec4<f32>(grad1(gl.x + o), grad1(gl.y + o), grad1(gl.z + o), grad1(gl.w + o));
        blocks8(&acc0, &acc1, &acc2, &acc3, g, w_a, w_b);
    }
    store_input8(n0, i0, acc0);
    if (RB > 1u) {
        store_input8(n0 + 8u, i0, acc1);
    }
    if (RB > 2u) {
        store_input8(n0 + 16u, i0, acc2);
        store_input8(n0 + 24u, i0, acc3);
    }
}

// 8 * RB outputs x 8 columns: each input load serves RB blocks of 8 outputs, whose gradient
// values lanes 0..7 load and share8 hands round.
fn weight_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let j0 = gid.x * 8u;
    let o0 = wid.y * 8u * RB;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last column stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (o0 >= params.n_out) {
        return;
    }
    // This lane's gradient column in each block: output o0 + 8 B + lane % 8 (clamped).
    let gl = min(vec4<u32>(o0 + lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u), vec4<u32>(params.n_out - 1u));
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(params.n_in));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(params.n_in));
    let bias_a = ja == vec4<u32>(params.n_in);
    let bias_b = jb == vec4<u32>(params.n_in);
    let xa = min(ja, vec4<u32>(params.n_in - 1u));
    let xb = min(jb, vec4<u32>(params.n_in - 1u));
    // accB: outputs o0 + 8 B .. + 7, output r's columns j0..j0+3 at 2r and j0+4..j0+7 at 2r + 1.
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    for (var n = 0u; n < params.batch; n++) {
        let x_a = select(inp4(xa + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_a);
        let x_b = select(inp4(xb + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_b);
        let row = n * params.n_out;
        let g = vec4<f32>(grad1(row + gl.x), grad1(row + gl.y), grad1(row + gl.z), grad1(row + gl.w));
        blocks8(&acc0, &acc1, &acc2, &acc3, g, x_a, x_b);
    }
    store_weight8(o0, j0, acc0);
    if (RB > 1u) {
        store_weight8(o0 + 8u, j0, acc1);
    }
    if (RB > 2u) {
        store_weight8(o0 + 16u, j0, acc2);
        store_weight8(o0 + 24u, j0, acc3);
    }
}
#endif

// dinp[n, i0 + t] = a, b's lane t for the inputs in range, if row n is. Row by row, with the
// tile's rows passed as values: indexing the tile dynamically would put it in memory.
fn input_row(n: u32, i0: u32, a: vec4<f32>, b: vec4<f32>) {
    if (n >= params.batch) {
        return;
    }
    let m = select(0u, min(params.n_in - i0, 8u), i0 < params.n_in);
    for (var t = 0u; t < m; t++) {
        dinp[n * params.n_in + i0 + t] = select(b[t % 4u], a[t % 4u], t < 4u);
    }
}

// dweight[o, j0 + t] (dbias[o] at column n_in) = a, b's lane t for the columns in range, if
// output o is.
fn weight_row(o: u32, j0: u32, a: vec4<f32>, b: vec4<f32>) {
    if (o >= params.n_out) {
        return;
    }
    // The weights' columns, then the bias column if this tile has it (no branch per column).
    let m = select(0u, min(params.n_in - j0, 8u), j0 < params.n_in);
    for (var t = 0u; t < m; t++) {
        dweight[o * params.n_in + j0 + t] = select(b[t % 4u], a[t % 4u], t < 4u);
    }
    if (params.n_in >= j0 && params.n_in - j0 < 8u) {
        let t = params.n_in - j0;
        dbias[o] = select(b[t % 4u], a[t % 4u], t < 4u);
    }
}

#include "backward_input_entry"

@compute @workgroup_size(WG)
#if !SUBGROUP
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    weight_tile(gid);
#else
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(subgroup_invocation_id) lane: u32) {
    weight_tile(gid, wid, lane);
#endif
}

#if !SUBGROUP
// backward_weight's and backward_input's workgroups in one 1-D grid, the input tiles spread
// evenly among the weight tiles (a CPU adapter that hands each thread a contiguous range of
// workgroups then gets an even share of both): workgroup k is input tile a(k) when
// a(k + 1) > a(k), a(k) = floor(k * ni / (nw + ni)), else weight tile k - a(k).
#else
// backward_weight's and backward_input's workgroups in one 1-D grid, interleaved as in
// dense_backward.wgsl (the branch is uniform over each workgroup).
#endif
@compute @workgroup_size(WG)
#if !SUBGROUP
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
#else
fn backward(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
#endif
    let wx = (params.n_in + 8u * WG) / (8u * WG);
    let ix = (params.n_in + 8u * WG - 1u) / (8u * WG);
#if !SUBGROUP
    let nw = wx * ((params.n_out + 7u) / 8u);
    let ni = ix * ((params.batch + 7u) / 8u);
#else
    let nw = wx * ((params.n_out + 8u * RB - 1u) / (8u * RB));
    let ni = ix * ((params.batch + 8u * RB - 1u) / (8u * RB));
#endif
    let a = (wid.x * ni) / (nw + ni);
    if ((wid.x + 1u) * ni / (nw + ni) == a) {
        let k = wid.x - a;
#if !SUBGROUP
        weight_tile(vec3<u32>((k % wx) * WG + lid.x, k / wx, 0u));
#else
        let w = vec3<u32>(k % wx, k / wx, 0u);
        weight_tile(vec3<u32>(w.x * WG + lid.x, w.y, 0u), w, lane);
#endif
    } else {
#if !SUBGROUP
        input_tile(vec3<u32>((a % ix) * WG + lid.x, a / ix, 0u));
#else
        let w = vec3<u32>(a % ix, a / ix, 0u);
        input_tile(vec3<u32>(w.x * WG + lid.x, w.y, 0u), w, lane);
#endif
    }
}
