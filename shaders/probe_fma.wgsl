// probe_fma: measures the adapter's multiply-add throughput for bench's "% of peak" column.
// Each invocation runs cfg[0] steps of 8 independent vec4 multiply-adds (a = a * m + c, with m
// and c read at run time so nothing folds), kept in registers, and writes their sum so nothing
// is dropped: 64 FLOPs per step per invocation (2 per multiply-add).
//   cfg (3): steps, bits of m, bits of c; out: one value per invocation.
// Dispatch: x workgroups of 64, any x.

@group(0) @binding(0) var<storage, read> cfg: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = vec4<f32>(bitcast<f32>(cfg[1]));
    let c = vec4<f32>(bitcast<f32>(cfg[2]));
    var a0 = vec4<f32>(f32(gid.x));
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var i = 0u; i < cfg[0]; i++) {
        a0 = a0 * m + c;
        a1 = a1 * m + c;
        a2 = a2 * m + c;
        a3 = a3 * m + c;
        a4 = a4 * m + c;
        a5 = a5 * m + c;
        a6 = a6 * m + c;
        a7 = a7 * m + c;
    }
    let s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    out[gid.x] = s.x + s.y + s.z + s.w;
}
