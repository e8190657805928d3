// conv2d_forward, channel-last variant with subgroup operations: the same pass as
// conv2d_forward.wgsl (same bindings, params and result), for c_in % 4 == 0 on adapters with
// subgroups of at least 8 invocations (the host checks both).
//   prepare_input:     xt (batch * h_in * w_in, c_in / 4) vec4 = inp with the channel innermost.
//                      1-D index over batch * h_in * w_in * c_in / 4.
//   main_channel_last: 8 output pixels x 16 output channels per invocation, reading 4 input
//                      channels per vec4 load from xt. The 16 weight vec4s a step needs are the
//                      same for every invocation of the workgroup (one channel tile per
//                      workgroup): each of 8 lanes loads two and subgroupBroadcast shares them,
//                      instead of every lane loading all 16 (on CPU adapters such as lavapipe
//                      every storage load costs a per-lane loop; the broadcast is a register move).
//                      Dispatch: x = ceil(batch * h_out * w_out / 8 / 64), y = ceil(c_out / 16).
// conv2d_backward's weight pass reads xt too.

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
    chunk: u32, // pixels per split-K chunk in conv2d_backward (unused here)
    channel_last: u32, // 1 when the host uses this file (needs c_in % 4 == 0)
}

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> xt: array<vec4<f32>>;

const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);

fn c4() -> u32 {
    return (params.c_out + 3u) / 4u;
}

// out[pixel p0 + t, channel c0 + j] = act(acc[2 * j + t / 4][t % 4] + bias[c0 + j]), in range.
fn store_tile(p0: u32, c0: u32, npix: u32, tile: array<vec4<f32>, 16>) {
    // Indexed through a variable: indexing a value array dynamically makes naga copy it each time.
    var acc = tile;
    let plane_out = params.h_out * params.w_out;
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ob = array<vec4<u32>, 2>((ma / plane_out) * params.c_out * plane_out + ma % plane_out,
                                 (mb / plane_out) * params.c_out * plane_out + mb % plane_out);
    for (var j = 0u; j < 8u; j++) {
        let co = c0 + j;
        if (co >= params.c_out) {
            break;
        }
        let b = bias[co];
        for (var t = 0u; t < 8u; t++) {
            if (p0 + t >= npix) {
                break;
            }
            var v = acc[2u * j + t / 4u][t % 4u] + b;
            if (params.relu != 0u) {
                v = max(v, 0.0);
            }
            out[ob[t / 4u][t % 4u] + co * plane_out] = v;
        }
    }
}

@compute @workgroup_size(64)
fn prepare_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let plane = params.h_in * params.w_in;
    let ci4 = params.c_in / 4u;
    if (i >= params.batch * plane * ci4) {
        return;
    }
    let m = i / ci4;
    let base = ((m / plane) * params.c_in + (i % ci4) * 4u) * plane + m % plane;
    xt[i] = vec4<f32>(inp[base], inp[base + plane], inp[base + 2u * plane], inp[base + 3u * plane]);
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
    let npix = params.batch * plane_out;
    let p0 = gid.x * 8u;
    let c0 = wid.y * 16u;
    // Uniform over the workgroup (from workgroup_id, so subgroup operations may follow). Invocations past the last pixel stay (clamped, storing
    // nothing): the broadcasts need every lane.
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

    // xt rows of the top-left input tap of pixels p0..p0+3 (*a) and p0+4..p0+7 (*b), clamped
    // past the end (not stored).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let ia = ((ma / plane_out) * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out) * ci4;
    let ib = ((mb / plane_out) * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out) * ci4;

    // accTC: pixel p0 + T, output channels c0 + 4C .. c0 + 4C + 3.
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

    // Regroup from (pixel, channel vec4) to store_tile's (channel, pixel vec4), 8 channels at
    // a time.
    let lo0 = transpose(mat4x4<f32>(acc00, acc10, acc20, acc30));
    let hi0 = transpose(mat4x4<f32>(acc40, acc50, acc60, acc70));
    let lo1 = transpose(mat4x4<f32>(acc01, acc11, acc21, acc31));
    let hi1 = transpose(mat4x4<f32>(acc41, acc51, acc61, acc71));
    let lo2 = transpose(mat4x4<f32>(acc02, acc12, acc22, acc32));
    let hi2 = transpose(mat4x4<f32>(acc42, acc52, acc62, acc72));
    let lo3 = transpose(mat4x4<f32>(acc03, acc13, acc23, acc33));
    let hi3 = transpose(mat4x4<f32>(acc43, acc53, acc63, acc73));
    store_tile(p0, c0 + 0u, npix, array<vec4<f32>, 16>(lo0[0], hi0[0], lo0[1], hi0[1], lo0[2], hi0[2], lo0[3], hi0[3], lo1[0], hi1[0], lo1[1], hi1[1], lo1[2], hi1[2], lo1[3], hi1[3]));
    store_tile(p0, c0 + 8u, npix, array<vec4<f32>, 16>(lo2[0], hi2[0], lo2[1], hi2[1], lo2[2], hi2[2], lo2[3], hi2[3], lo3[0], hi3[0], lo3[1], hi3[1], lo3[2], hi3[2], lo3[3], hi3[3]));
}
