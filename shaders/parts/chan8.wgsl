// One step of an 8 x 8 register tile held as an array: row j (vec4s 2j and 2j + 1) += lane j of
// (w_lo, w_hi) times (xa, xb), the statements conv2d_acc and dense_acc8x2 write out for named
// accumulators (so kernels that hold their tiles either way compute the same bits).
fn chan8(acc: ptr<function, array<vec4<f32>, 16>>, w_lo: vec4<f32>, w_hi: vec4<f32>, xa: vec4<f32>, xb: vec4<f32>) {
    (*acc)[0] += w_lo.x * xa; (*acc)[1] += w_lo.x * xb;
    (*acc)[2] += w_lo.y * xa; (*acc)[3] += w_lo.y * xb;
    (*acc)[4] += w_lo.z * xa; (*acc)[5] += w_lo.z * xb;
    (*acc)[6] += w_lo.w * xa; (*acc)[7] += w_lo.w * xb;
    (*acc)[8] += w_hi.x * xa; (*acc)[9] += w_hi.x * xb;
    (*acc)[10] += w_hi.y * xa; (*acc)[11] += w_hi.y * xb;
    (*acc)[12] += w_hi.z * xa; (*acc)[13] += w_hi.z * xb;
    (*acc)[14] += w_hi.w * xa; (*acc)[15] += w_hi.w * xb;
}
