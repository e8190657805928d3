// dense_forward, subgroup variant: the same pass as dense_forward.wgsl (same bindings, params
// and result) for adapters with subgroups of at least 8 invocations (the host checks). The 8
// input values a step needs (rows n0..n0+7 at input i) are the same for every invocation of
// the workgroup (one row tile per workgroup): each of 8 lanes loads one and subgroupBroadcast
// shares them.
// Register tile: 8 rows x 8 outputs per invocation.
// Dispatch: x = ceil(n_out / 8 / 64), y = ceil(batch / 8).
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
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn weight4(i: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(weight[i.x], weight[i.y], weight[i.z], weight[i.w]);
}

// The 8 values of `mine` in lanes 0..7, as two vec4s.
fn share8(mine: f32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(
        vec4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                  subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u)),
        vec4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                  subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u)));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let o0 = gid.x * 8u;
    let n0 = wid.y * 8u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last output stay (clamped, storing nothing): the broadcasts need
    // every lane.
    if (n0 >= params.batch) {
        return;
    }
    // This lane's input row: n0 + lane % 8.
    let xl = min(n0 + lane % 8u, params.batch - 1u) * params.n_in;
    // Rows and outputs past the end are clamped; their results are not stored.
    let wa = min(vec4<u32>(o0) + LANES_A, vec4<u32>(params.n_out - 1u)) * params.n_in;
    let wb = min(vec4<u32>(o0) + LANES_B, vec4<u32>(params.n_out - 1u)) * params.n_in;
    // accR{a,b}: row n0 + R for outputs a (o0..o0+3) and b (o0+4..o0+7).
    var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
    var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
    var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
    var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
    var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
    var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
    var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
    var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);
    for (var i = 0u; i < params.n_in; i++) {
        let w_a = weight4(wa + vec4<u32>(i));
        let w_b = weight4(wb + vec4<u32>(i));
        let x = share8(inp[xl + i]);
        let x_lo = x[0];
        let x_hi = x[1];
        acc0a += x_lo.x * w_a; acc0b += x_lo.x * w_b;
        acc1a += x_lo.y * w_a; acc1b += x_lo.y * w_b;
        acc2a += x_lo.z * w_a; acc2b += x_lo.z * w_b;
        acc3a += x_lo.w * w_a; acc3b += x_lo.w * w_b;
        acc4a += x_hi.x * w_a; acc4b += x_hi.x * w_b;
        acc5a += x_hi.y * w_a; acc5b += x_hi.y * w_b;
        acc6a += x_hi.z * w_a; acc6b += x_hi.z * w_b;
        acc7a += x_hi.w * w_a; acc7b += x_hi.w * w_b;
    }
    var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                                   acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);
    for (var r = 0u; r < 8u; r++) {
        let n = n0 + r;
        if (n >= params.batch) {
            break;
        }
        for (var t = 0u; t < 8u; t++) {
            let o = o0 + t;
            if (o >= params.n_out) {
                break;
            }
            var v = acc[2u * r + t / 4u][t % 4u] + bias[o];
            if (params.relu != 0u) {
                v = max(v, 0.0);
            }
            out[n * params.n_out + o] = v;
        }
    }
}
