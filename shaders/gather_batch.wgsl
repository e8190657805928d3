// gather_batch: copies one batch out of the dataset resident on the GPU and normalises it.
//   row = indices[steps[state[0]].offset + b]
//   x[b, p] = f32(images[row, p]) / 255     x is (batch, pixels)
//   y[b]    = labels[row]                   y is (batch)
// images holds rows first..first+rows of the dataset (rows * pixels bytes) and labels all
// n_images bytes, each packed four to a u32 (little-endian), so the dataset stays u8 on the GPU.
// A dataset larger than one storage binding is split into parts of whole rows (a multiple of
// four rows, so each part starts on a u32): one dispatch per part, each filling the batch rows
// it holds and leaving the others alone.
// Dispatch: x = ceil(pixels / 64), y = batch.

struct Params {
    batch: u32,
    pixels: u32,
    first: u32, // first dataset row in `images`
    rows: u32,  // rows in `images`
}

#include "step"

@group(0) @binding(0) var<storage, read> images: array<u32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> steps: array<Step>;
@group(0) @binding(4) var<storage, read> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;
@group(0) @binding(7) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let b = gid.y;
    if (p >= params.pixels || b >= params.batch) {
        return;
    }
    let row = indices[steps[state[0]].offset + b];
    if (row < params.first || row - params.first >= params.rows) {
        return;
    }
    let byte = (row - params.first) * params.pixels + p;
    let v = (images[byte / 4u] >> ((byte % 4u) * 8u)) & 0xffu;
    x[b * params.pixels + p] = f32(v) / 255.0;
    if (p == 0u) {
        y[b] = (labels[row / 4u] >> ((row % 4u) * 8u)) & 0xffu;
    }
}
