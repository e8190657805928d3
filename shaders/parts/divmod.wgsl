// Integer division by a value known only at run time, for index arithmetic. CPU adapters run
// u32 division lane by lane (as slow as the loads it indexes) and run both sides of a branch,
// while f32 division is one vector instruction: so the quotient comes from f32 division,
// refined once with the remainder, then corrected by one either way. Exact for a < 2^31 and
// 0 < b < 2^24 (tests/passes.rs checks edge cases against u32 division):
//   q0 = trunc(f32(a) / f32(b)) is within a / b * 2^-21 + 1 of a / b (f32(a) and the division,
//   2.5 ULP in Vulkan, each off by a few parts in 2^24), so |a - q0 * b| < 2^10 + b < 2^25: an
//   i32, and f32 holds it to 1 part in 2^24; q0 + floor(that / b) is then within one of a / b.

// (a / b, a % b).
fn divmod(a: u32, b: u32) -> vec2<u32> {
    let fb = f32(b);
    let q0 = u32(f32(a) / fb);
    let r0 = bitcast<i32>(a - q0 * b);
    var q = bitcast<u32>(bitcast<i32>(q0) + i32(floor(f32(r0) / fb)));
    q = select(q, q - 1u, bitcast<i32>(a - q * b) < 0);
    q = select(q, q + 1u, a - q * b >= b);
    return vec2<u32>(q, a - q * b);
}

// a / b, lane by lane.
fn div4(a: vec4<u32>, b: u32) -> vec4<u32> {
    let fb = f32(b);
    let bv = vec4<u32>(b);
    let q0 = vec4<u32>(vec4<f32>(a) / fb);
    let r0 = bitcast<vec4<i32>>(a - q0 * bv);
    var q = bitcast<vec4<u32>>(bitcast<vec4<i32>>(q0) + vec4<i32>(floor(vec4<f32>(r0) / fb)));
    q = select(q, q - 1u, bitcast<vec4<i32>>(a - q * bv) < vec4<i32>(0));
    return select(q, q + 1u, a - q * bv >= bv);
}
