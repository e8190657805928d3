// dense_backward, subgroup variant: the same pass as dense_backward.wgsl (same bindings,
// params, entry points and results) for adapters with subgroups of at least 8 invocations (the
// host checks). In both entry points the 8 gradient values a step needs are the same for every
// invocation of the workgroup (one row or output tile per workgroup): each of 8 lanes loads
// one (dout, and out for the ReLU mask) and subgroupBroadcast shares them, instead of every
// lane loading all 8 twice.
//   backward_input:  dinp[n, i] = sum_o g[n, o] * weight[o, i]
//                    tile 8 rows x 8 inputs. Dispatch: x = ceil(n_in / 8 / 64), y = ceil(batch / 8).
//   backward_weight: dweight[o, i] = sum_n g[n, o] * inp[n, i], dbias[o] = sum_n g[n, o]
//                    (the bias is column i = n_in, whose input is 1)
//                    tile 8 outputs x 8 columns. Dispatch: x = ceil((n_in + 1) / 8 / 64), y = ceil(n_out / 8).
//   backward:        both in one dispatch, as in dense_backward.wgsl.
// No `enable subgroups;`: naga (wgpu 30) rejects that directive and takes the subgroup
// builtins when the device has wgpu::Features::SUBGROUP.

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

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

// Gradient at the pre-activation for one output element.
fn grad1(i: u32) -> f32 {
    let g = dout[i];
    if (params.relu == 0u) {
        return g;
    }
    return select(0.0, g, out[i] > 0.0);
}

// The 8 values of `mine` in lanes 0..7, as two vec4s.
fn share8(mine: f32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(
        vec4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                  subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u)),
        vec4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                  subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u)));
}

fn weight4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(weight[i.x], weight[i.y], weight[i.z], weight[i.w]);
}

fn inp4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(inp[i.x], inp[i.y], inp[i.z], inp[i.w]);
}

fn input_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let i0 = gid.x * 8u;
    let n0 = wid.y * 8u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last input stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (n0 >= params.batch) {
        return;
    }
    // This lane's gradient row: n0 + lane % 8.
    let gl = min(n0 + lane % 8u, params.batch - 1u) * params.n_out;
    let ia = min(vec4<u32>(i0) + LANES_A, vec4<u32>(params.n_in - 1u));
    let ib = min(vec4<u32>(i0) + LANES_B, vec4<u32>(params.n_in - 1u));
    // accR{a,b}: row n0 + R for inputs a (i0..i0+3) and b (i0+4..i0+7).
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    for (var o = 0u; o < params.n_out; o++) {
        let w_a = weight4(ia + vec4<u32>(o * params.n_in));
        let w_b = weight4(ib + vec4<u32>(o * params.n_in));
        let g = share8(grad1(gl + o));
        let g_lo = g[0];
        let g_hi = g[1];
        acc0a += g_lo.x * w_a; acc0b += g_lo.x * w_b;
        acc1a += g_lo.y * w_a; acc1b += g_lo.y * w_b;
        acc2a += g_lo.z * w_a; acc2b += g_lo.z * w_b;
        acc3a += g_lo.w * w_a; acc3b += g_lo.w * w_b;
        acc4a += g_hi.x * w_a; acc4b += g_hi.x * w_b;
        acc5a += g_hi.y * w_a; acc5b += g_hi.y * w_b;
        acc6a += g_hi.z * w_a; acc6b += g_hi.z * w_b;
        acc7a += g_hi.w * w_a; acc7b += g_hi.w * w_b;
    }
    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    for (var r = 0u; r < 8u; r++) {
        let n = n0 + r;
        if (n >= params.batch) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            let i = i0 + t;
            if (i >= params.n_in) {
                break;
            }
            dinp[n * params.n_in + i] = acc[2u * r + t / 4u][t % 4u];
        }
    }
}

fn weight_tile(gid: vec3<u32>, wid: vec3<u32>, lane: u32) {
    let cols = params.n_in + 1u;
    let j0 = gid.x * 8u;
    let o0 = wid.y * 8u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last column stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (o0 >= params.n_out) {
        return;
    }
    // This lane's gradient column: output o0 + lane % 8.
    let gl = min(o0 + lane % 8u, params.n_out - 1u);
    let ja = min(vec4<u32>(j0) + LANES_A, vec4<u32>(params.n_in));
    let jb = min(vec4<u32>(j0) + LANES_B, vec4<u32>(params.n_in));
    let bias_a = ja == vec4<u32>(params.n_in);
    let bias_b = jb == vec4<u32>(params.n_in);
    let xa = min(ja, vec4<u32>(params.n_in - 1u));
    let xb = min(jb, vec4<u32>(params.n_in - 1u));
    // accR{a,b}: output o0 + R for columns a and b.
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    for (var n = 0u; n < params.batch; n++) {
        let x_a = select(inp4(xa + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_a);
        let x_b = select(inp4(xb + vec4<u32>(n * params.n_in)), vec4<f32>(1.0), bias_b);
        let g = share8(grad1(n * params.n_out + gl));
        let g_lo = g[0];
        let g_hi = g[1];
        acc0a += g_lo.x * x_a; acc0b += g_lo.x * x_b;
        acc1a += g_lo.y * x_a; acc1b += g_lo.y * x_b;
        acc2a += g_lo.z * x_a; acc2b += g_lo.z * x_b;
        acc3a += g_lo.w * x_a; acc3b += g_lo.w * x_b;
        acc4a += g_hi.x * x_a; acc4b += g_hi.x * x_b;
        acc5a += g_hi.y * x_a; acc5b += g_hi.y * x_b;
        acc6a += g_hi.z * x_a; acc6b += g_hi.z * x_b;
        acc7a += g_hi.w * x_a; acc7b += g_hi.w * x_b;
    }
    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    for (var r = 0u; r < 8u; r++) {
        let o = o0 + r;
        if (o >= params.n_out) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            let j = j0 + t;
            if (j > params.n_in) {
                break;
            }
            if (j == params.n_in) {
                dbias[o] = acc[2u * r + t / 4u][t % 4u];
            } else {
                dweight[o * params.n_in + j] = acc[2u * r + t / 4u][t % 4u];
            }
        }
    }
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(subgroup_invocation_id) lane: u32) {
    input_tile(gid, wid, lane);
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(subgroup_invocation_id) lane: u32) {
    weight_tile(gid, wid, lane);
}

// backward_weight's and backward_input's workgroups in one 1-D grid, interleaved as in
// dense_backward.wgsl (the branch is uniform over each workgroup).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
    let wx = (params.n_in + 1u + 511u) / 512u;
    let nw = wx * ((params.n_out + 7u) / 8u);
    let ix = (params.n_in + 511u) / 512u;
    let ni = ix * ((params.batch + 7u) / 8u);
    let a = (wid.x * ni) / (nw + ni);
    if ((wid.x + 1u) * ni / (nw + ni) == a) {
        let k = wid.x - a;
        let w = vec3<u32>(k % wx, k / wx, 0u);
        weight_tile(vec3<u32>(w.x * 64u + lid.x, w.y, 0u), w, lane);
    } else {
        let w = vec3<u32>(a % ix, a / ix, 0u);
        input_tile(vec3<u32>(w.x * 64u + lid.x, w.y, 0u), w, lane);
    }
}
