// divmod_check: runs the divmod part on given operands, for the test that checks it against u32
// division (tests/passes.rs); no training pass uses this file.
//   a, b (n): operands; out (n * 6): divmod(a, b) as (q, r), then div4 of
//   (a, a / 2, a / 3, a / 5) by b.
// Dispatch: 1-D index over n = gid.x + gid.y * 64 * num_workgroups.x.

#include "divmod"

@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= arrayLength(&a)) {
        return;
    }
    let x = a[i];
    let qr = divmod(x, b[i]);
    let q4 = div4(vec4<u32>(x, x / 2u, x / 3u, x / 5u), b[i]);
    out[6u * i] = qr.x;
    out[6u * i + 1u] = qr.y;
    out[6u * i + 2u] = q4.x;
    out[6u * i + 3u] = q4.y;
    out[6u * i + 4u] = q4.z;
    out[6u * i + 5u] = q4.w;
}
