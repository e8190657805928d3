// conv2d_forward, channel-last variant with subgroup operations: the same pass as
// conv2d_forward.wgsl (same bindings, params and result), for c_in % 4 == 0 on adapters with
// subgroups of at least 8 invocations (the host checks both).
//   prepare_input:     xt (batch * h_in * w_in, c_in / 4) vec4 = inp with the channel innermost.
//                      1-D index over batch * h_in * w_in * c_in / 4.
//   main_channel_last: 8 output pixels x 8 output channels per invocation, reading 4 input
//                      channels per vec4 load from xt. The 8 weight vec4s a step needs are the
//                      same for every invocation of the workgroup (one channel tile per
//                      workgroup): each of 8 lanes loads one and subgroupBroadcast shares them,
//                      instead of every lane loading all 8 (on CPU adapters such as lavapipe
//                      every storage load costs a per-lane loop; the broadcast is a register move).
//                      Dispatch: x = ceil(batch * h_out * w_out / 8 / 64), y = ceil(c_out / 8).
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
                     @builtin(subgroup_invocation_id) lane: u32) {
    let plane_out = params.h_out * params.w_out;
    let npix = params.batch * plane_out;
    let p0 = gid.x * 8u;
    let c0 = gid.y * 8u;
    // Uniform over the workgroup. Invocations past the last pixel stay (clamped, storing
    // nothing): the broadcasts need every lane.
    if (c0 >= params.c_out) {
        return;
    }
    let plane_in = params.h_in * params.w_in;
    let ci4 = params.c_in / 4u;
    let nc4 = c4();
    let q_lo = min(c0 / 4u, nc4 - 1u);
    let q_hi = min(c0 / 4u + 1u, nc4 - 1u);
    let wl = (lane % 8u) / 2u;
    let wq = select(q_lo, q_hi, (lane & 1u) == 1u);

    // xt rows of the top-left input tap of pixels p0..p0+3 (*a) and p0+4..p0+7 (*b), clamped
    // past the end (not stored).
    let ma = min(vec4<u32>(p0) + LANES_A, vec4<u32>(npix - 1u));
    let mb = min(vec4<u32>(p0) + LANES_B, vec4<u32>(npix - 1u));
    let ra = ma % plane_out;
    let rb = mb % plane_out;
    let ia = ((ma / plane_out) * plane_in + (ra / params.w_out) * params.w_in + ra % params.w_out) * ci4;
    let ib = ((mb / plane_out) * plane_in + (rb / params.w_out) * params.w_in + rb % params.w_out) * ci4;

    // accT{l,h}: pixel p0 + T, output channels c0..c0+3 (l) and c0+4..c0+7 (h).
    let z4 = vec4<f32>(0.0);
    var acc0l = z4; var acc0h = z4;
    var acc1l = z4; var acc1h = z4;
    var acc2l = z4; var acc2h = z4;
    var acc3l = z4; var acc3h = z4;
    var acc4l = z4; var acc4h = z4;
    var acc5l = z4; var acc5h = z4;
    var acc6l = z4; var acc6h = z4;
    var acc7l = z4; var acc7h = z4;
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
                // Lane k % 8 loads weight vec4 k = 2 * l + h (input channel 4q + l, output
                // channels c0 + 4h .. c0 + 4h + 3); broadcasts hand them to every lane.
                let mine = wt[(wrow + 4u * q + wl) * nc4 + wq];
                let w0l = subgroupBroadcast(mine, 0u);
                let w0h = subgroupBroadcast(mine, 1u);
                let w1l = subgroupBroadcast(mine, 2u);
                let w1h = subgroupBroadcast(mine, 3u);
                let w2l = subgroupBroadcast(mine, 4u);
                let w2h = subgroupBroadcast(mine, 5u);
                let w3l = subgroupBroadcast(mine, 6u);
                let w3h = subgroupBroadcast(mine, 7u);
                acc0l = fma4(acc0l, x0, w0l, w1l, w2l, w3l); acc0h = fma4(acc0h, x0, w0h, w1h, w2h, w3h);
                acc1l = fma4(acc1l, x1, w0l, w1l, w2l, w3l); acc1h = fma4(acc1h, x1, w0h, w1h, w2h, w3h);
                acc2l = fma4(acc2l, x2, w0l, w1l, w2l, w3l); acc2h = fma4(acc2h, x2, w0h, w1h, w2h, w3h);
                acc3l = fma4(acc3l, x3, w0l, w1l, w2l, w3l); acc3h = fma4(acc3h, x3, w0h, w1h, w2h, w3h);
                acc4l = fma4(acc4l, x4, w0l, w1l, w2l, w3l); acc4h = fma4(acc4h, x4, w0h, w1h, w2h, w3h);
                acc5l = fma4(acc5l, x5, w0l, w1l, w2l, w3l); acc5h = fma4(acc5h, x5, w0h, w1h, w2h, w3h);
                acc6l = fma4(acc6l, x6, w0l, w1l, w2l, w3l); acc6h = fma4(acc6h, x6, w0h, w1h, w2h, w3h);
                acc7l = fma4(acc7l, x7, w0l, w1l, w2l, w3l); acc7h = fma4(acc7h, x7, w0h, w1h, w2h, w3h);
            }
        }
    }

    // Regroup from (pixel, channel vec4) to store_tile's (channel, pixel vec4).
    let l0 = transpose(mat4x4<f32>(acc0l, acc1l, acc2l, acc3l));
    let l1 = transpose(mat4x4<f32>(acc4l, acc5l, acc6l, acc7l));
    let h0 = transpose(mat4x4<f32>(acc0h, acc1h, acc2h, acc3h));
    let h1 = transpose(mat4x4<f32>(acc4h, acc5h, acc6h, acc7h));
    store_tile(p0, c0, npix, array<vec4<f32>, 16>(l0[0], l1[0], l0[1], l1[1], l0[2], l1[2], l0[3], l1[3],
                                                h0[0], h1[0], h0[1], h1[1], h0[2], h1[2], h0[3], h1[3]));
}
