// random_contrast_forward: the RandomContrast layer. Training: image n's factor f is drawn from
//   [1 - lo, 1 + hi] (hash of seed, t, salt, n), and each channel's values v become
//   clamp((v - mean) * f + mean, range_lo, range_hi), the mean taken over the height, then the
//   width, as Keras does. Otherwise out = inp.
// Dispatch: one invocation per (image, channel) plane, 1-D index = gid.x + gid.y * 64 *
//   num_workgroups.x = n * channels + c.

#include "random_contrast_params"

#include "step"

@group(0) @binding(0) var<storage, read> inp: array<f32>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

#include "dropout_hash"

#include "augment_draw"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= params.batch * params.channels) {
        return;
    }
    let h = params.height;
    let w = params.width;
    let base = i * h * w;
    if (params.training == 0u) {
        for (var p = 0u; p < h * w; p++) {
            out[base + p] = inp[base + p];
        }
        return;
    }
    let step = steps[state[0]];
    let u = augment_draw(step, i / params.channels, 0u);
    let f = u * ((1.0 + params.hi) - (1.0 - params.lo)) + (1.0 - params.lo);
    var mean = 0.0;
    for (var x = 0u; x < w; x++) {
        var col = 0.0;
        for (var y = 0u; y < h; y++) {
            col += inp[base + y * w + x];
        }
        mean += col / f32(h);
    }
    mean /= f32(w);
    for (var p = 0u; p < h * w; p++) {
        out[base + p] = clamp((inp[base + p] - mean) * f + mean, params.range_lo, params.range_hi);
    }
}
