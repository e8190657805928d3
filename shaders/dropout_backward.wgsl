// dropout_backward: the gradient of dropout_forward, which it mirrors: dinp[i] = dout[i] * scale
//   where the forward pass kept value i (the same counter-based draw from seed, t, salt and i),
//   0 where it dropped it.
// Dispatch: one invocation per value, 1-D index = gid.x + gid.y * 64 * num_workgroups.x.

struct Params {
    len: u32,
    threshold: u32,
    scale: f32,
    salt: u32,
    training: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    offset: u32,
    alpha: f32,
    t: u32,
    seed: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn mix(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.len) {
        return;
    }
    let step = steps[state[1]];
    let h = mix(i ^ mix(step.t ^ mix(params.salt ^ mix(step.seed))));
    if ((h >> 8u) >= params.threshold) {
        dinp[i] = dout[i] * params.scale;
    } else {
        dinp[i] = 0.0;
    }
}
