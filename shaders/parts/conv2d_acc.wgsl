// The portable conv accumulation shared by conv2d_forward and conv2d_forward_pooled (one loop,
// so both give the same bits): accJa and accJb sum output channel c0 + J (J = 0..7) over the
// taps for the 4 pixels whose top-left input taps are the lanes of iba and ibb. Reads
// plane_in, nc4, q_lo, q_hi, iba, ibb, inp4, wt and params from the including function.
    #include "acc8x2_zero"
    for (var ci = 0u; ci < params.c_in; ci++) {
        for (var ky = 0u; ky < params.kh; ky++) {
            for (var kx = 0u; kx < params.kw; kx++) {
                let o = vec4<u32>(ci * plane_in + ky * params.w_in + kx);
                let xa = inp4(iba + o);
                let xb = inp4(ibb + o);
                let row = ((ky * params.kw + kx) * params.c_in + ci) * nc4;
                let w_lo = wt[row + q_lo];
                let w_hi = wt[row + q_hi];
                acc0a += w_lo.x * xa; acc0b += w_lo.x * xb;
                acc1a += w_lo.y * xa; acc1b += w_lo.y * xb;
                acc2a += w_lo.z * xa; acc2b += w_lo.z * xb;
                acc3a += w_lo.w * xa; acc3b += w_lo.w * xb;
                acc4a += w_hi.x * xa; acc4b += w_hi.x * xb;
                acc5a += w_hi.y * xa; acc5b += w_hi.y * xb;
                acc6a += w_hi.z * xa; acc6b += w_hi.z * xb;
                acc7a += w_hi.w * xa; acc7b += w_hi.w * xb;
            }
        }
    }
