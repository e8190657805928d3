// conv2d_forward_pooled, channel-last variant with subgroup operations: the same pass as
// conv2d_forward_pooled.wgsl (same bindings, params and results), for c_in % 4 == 0 on adapters
// with subgroups of at least 8 invocations (the host checks both). It reads the channel-last
// input xt that conv2d_forward_subgroup.wgsl's prepare_input writes (recorded just before).
//   main_channel_last: conv2d_forward_subgroup's main_channel_last with its 8 pixels taken as
//                      the windows of 2 pool cells, the bias, act and the 2x2 max-pool applied
//                      before storing: the same loop and arithmetic per pixel, so the same
//                      bits as the unfused passes.
//                      Dispatch: x = ceil(ceil(batch * h_pool * w_pool / 2) / 64), y = ceil(c_out / 16).

// No `enable subgroups;`: naga (wgpu 30) rejects that directive and takes the subgroup
// builtins when the device has wgpu::Features::SUBGROUP.

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

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> xt: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> argmax: array<u32>;

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

// The conv output pixels (flattened over batch, y, x) of pool cell `cell`'s window, in scan
// order.
fn window(cell: u32) -> vec4<u32> {
    let pool_plane = params.h_pool * params.w_pool;
    let r = cell % pool_plane;
    let m = (cell / pool_plane) * params.h_out * params.w_out
        + (r / params.w_pool) * 2u * params.w_out + (r % params.w_pool) * 2u;
    return vec4<u32>(m, m + 1u, m + params.w_out, m + params.w_out + 1u);
}

fn act(v: f32) -> f32 {
    if (params.relu != 0u) {
        return max(v, 0.0);
    }
    return v;
}

// For channels c0 + j and cells cell0 + h (in range): tile[2 * j + h] holds the sums of the
// cell's 4 window pixels; adds the bias, applies act, pools and stores.
fn pool_store(c0: u32, cell0: u32, tile: array<vec4<f32>, 16>) {
    var acc = tile;
    let cells = params.batch * params.h_pool * params.w_pool;
    let pool_plane = params.h_pool * params.w_pool;
    for (var j = 0u; j < 8u; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var h = 0u; h < 2u; h++) {
            let cell = cell0 + h;
            if (cell >= cells) {
                break;
            }
            let r = cell % pool_plane;
            let at0 = (r / params.w_pool) * 2u * params.w_out + (r % params.w_pool) * 2u;
            let s = acc[2u * j + h];
            var best = act(s.x + b);
            var best_at = at0;
            let v1 = act(s.y + b);
            if (v1 > best) {
                best = v1;
                best_at = at0 + 1u;
            }
            let v2 = act(s.z + b);
            if (v2 > best) {
                best = v2;
                best_at = at0 + params.w_out;
            }
            let v3 = act(s.w + b);
            if (v3 > best) {
                best = v3;
                best_at = at0 + params.w_out + 1u;
            }
            let o = ((cell / pool_plane) * params.c_out + co) * pool_plane + r;
            pooled[o] = best;
            argmax[o] = best_at;
        }
    }
}

// acc += x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3: 4 input channels into 4 output channels.
fn fma4(acc: vec4<f32>, x: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return acc + x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3;
}

@compute @workgroup_size(64)
fn main_channel_last(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(subgroup_invocation_id) lane: u32) {
    let plane_out = params.h_out * params.w_out;
    let cells = params.batch * params.h_pool * params.w_pool;
    let cell0 = gid.x * 2u;
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow).
    // Invocations past the last cell stay (clamped, storing nothing): the broadcasts need every
    // lane.
    if (c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let ci4 = params.c_in / 4u;
    let nc4 = c4();
    // This lane's share of the 16 weight vec4s of a step: k = lane % 8 and k + 8, where vec4 k
    // holds input channel 4q + k / 4 for output channels c0 + 4 (k % 4) .. + 3.
    let wl = (lane % 8u) / 4u;
    let wq = min(c0 / 4u + lane % 4u, nc4 - 1u);

    // xt rows of the top-left input tap of the window pixels of cells cell0 (*a) and cell0 + 1
    // (*b), clamped past the end (not stored).
    let ma = window(min(cell0, cells - 1u));
    let mb = window(min(cell0 + 1u, cells - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let ia = ((ma / plane_out) * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out) * ci4;
    let ib = ((mb / plane_out) * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out) * ci4;

    // accTC: window pixel T (cell cell0 + T / 4), output channels c0 + 4C .. c0 + 4C + 3.
    let z4 = vec4<f32>(0.0);
    var acc00 = z4; var acc01 = z4; var acc02 = z4; var acc03 = z4;
    var acc10 = z4; var acc11 = z4; var acc12 = z4; var acc13 = z4;
    var acc20 = z4; var acc21 = z4; var acc22 = z4; var acc23 = z4;
    var acc30 = z4; var acc31 = z4; var acc32 = z4; var acc33 = z4;
    var acc40 = z4; var acc41 = z4; var acc42 = z4; var acc43 = z4;
    var acc50 = z4; var acc51 = z4; var acc52 = z4; var acc53 = z4;
    var acc60 = z4; var acc61 = z4; var acc62 = z4; var acc63 = z4;
    var acc70 = z4; var acc71 = z4; var acc72 = z4; var acc73 = z4;
    for (var ky = 0u; ky < params.kh; ky++) {
        for (var kx = 0u; kx < params.kw; kx++) {
            let o = (ky * params.w_in + kx) * ci4;
            let wrow = (ky * params.kw + kx) * params.c_in;
            for (var q = 0u; q < ci4; q++) {
                let x0 = xt[ia.x + o + q];
                let x1 = xt[ia.y + o + q];
                let x2 = xt[ia.z + o + q];
                let x3 = xt[ia.w + o + q];
                let x4 = xt[ib.x + o + q];
                let x5 = xt[ib.y + o + q];
                let x6 = xt[ib.z + o + q];
                let x7 = xt[ib.w + o + q];
                let r = (wrow + 4u * q + wl) * nc4 + wq;
                let mine0 = wt[r];
                let mine1 = wt[r + 2u * nc4];
                let w00 = subgroupBroadcast(mine0, 0u);
                let w01 = subgroupBroadcast(mine0, 1u);
                let w02 = subgroupBroadcast(mine0, 2u);
                let w03 = subgroupBroadcast(mine0, 3u);
                let w10 = subgroupBroadcast(mine0, 4u);
                let w11 = subgroupBroadcast(mine0, 5u);
                let w12 = subgroupBroadcast(mine0, 6u);
                let w13 = subgroupBroadcast(mine0, 7u);
                let w20 = subgroupBroadcast(mine1, 0u);
                let w21 = subgroupBroadcast(mine1, 1u);
                let w22 = subgroupBroadcast(mine1, 2u);
                let w23 = subgroupBroadcast(mine1, 3u);
                let w30 = subgroupBroadcast(mine1, 4u);
                let w31 = subgroupBroadcast(mine1, 5u);
                let w32 = subgroupBroadcast(mine1, 6u);
                let w33 = subgroupBroadcast(mine1, 7u);
                acc00 = fma4(acc00, x0, w00, w10, w20, w30); acc01 = fma4(acc01, x0, w01, w11, w21, w31); acc02 = fma4(acc02, x0, w02, w12, w22, w32); acc03 = fma4(acc03, x0, w03, w13, w23, w33);
                acc10 = fma4(acc10, x1, w00, w10, w20, w30); acc11 = fma4(acc11, x1, w01, w11, w21, w31); acc12 = fma4(acc12, x1, w02, w12, w22, w32); acc13 = fma4(acc13, x1, w03, w13, w23, w33);
                acc20 = fma4(acc20, x2, w00, w10, w20, w30); acc21 = fma4(acc21, x2, w01, w11, w21, w31); acc22 = fma4(acc22, x2, w02, w12, w22, w32); acc23 = fma4(acc23, x2, w03, w13, w23, w33);
                acc30 = fma4(acc30, x3, w00, w10, w20, w30); acc31 = fma4(acc31, x3, w01, w11, w21, w31); acc32 = fma4(acc32, x3, w02, w12, w22, w32); acc33 = fma4(acc33, x3, w03, w13, w23, w33);
                acc40 = fma4(acc40, x4, w00, w10, w20, w30); acc41 = fma4(acc41, x4, w01, w11, w21, w31); acc42 = fma4(acc42, x4, w02, w12, w22, w32); acc43 = fma4(acc43, x4, w03, w13, w23, w33);
                acc50 = fma4(acc50, x5, w00, w10, w20, w30); acc51 = fma4(acc51, x5, w01, w11, w21, w31); acc52 = fma4(acc52, x5, w02, w12, w22, w32); acc53 = fma4(acc53, x5, w03, w13, w23, w33);
                acc60 = fma4(acc60, x6, w00, w10, w20, w30); acc61 = fma4(acc61, x6, w01, w11, w21, w31); acc62 = fma4(acc62, x6, w02, w12, w22, w32); acc63 = fma4(acc63, x6, w03, w13, w23, w33);
                acc70 = fma4(acc70, x7, w00, w10, w20, w30); acc71 = fma4(acc71, x7, w01, w11, w21, w31); acc72 = fma4(acc72, x7, w02, w12, w22, w32); acc73 = fma4(acc73, x7, w03, w13, w23, w33);
            }
        }
    }

    // Regroup from (pixel, channel vec4) to pool_store's (channel, pixel vec4), 8 channels at
    // a time.
    let lo0 = transpose(mat4x4<f32>(acc00, acc10, acc20, acc30));
    let hi0 = transpose(mat4x4<f32>(acc40, acc50, acc60, acc70));
    let lo1 = transpose(mat4x4<f32>(acc01, acc11, acc21, acc31));
    let hi1 = transpose(mat4x4<f32>(acc41, acc51, acc61, acc71));
    let lo2 = transpose(mat4x4<f32>(acc02, acc12, acc22, acc32));
    let hi2 = transpose(mat4x4<f32>(acc42, acc52, acc62, acc72));
    let lo3 = transpose(mat4x4<f32>(acc03, acc13, acc23, acc33));
    let hi3 = transpose(mat4x4<f32>(acc43, acc53, acc63, acc73));
    pool_store(c0 + 0u, cell0, array<vec4<f32>, 16>(lo0[0], hi0[0], lo0[1], hi0[1], lo0[2], hi0[2], lo0[3], hi0[3], lo1[0], hi1[0], lo1[1], hi1[1], lo1[2], hi1[2], lo1[3], hi1[3]));
    pool_store(c0 + 8u, cell0, array<vec4<f32>, 16>(lo2[0], hi2[0], lo2[1], hi2[1], lo2[2], hi2[2], lo2[3], hi2[3], lo3[0], hi3[0], lo3[1], hi3[1], lo3[2], hi3[2], lo3[3], hi3[3]));
}
