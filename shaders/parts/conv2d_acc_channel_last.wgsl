// The channel-last conv accumulation shared by the SUBGROUP variants of conv2d_forward and
// conv2d_forward_pooled (one loop, so both give the same bits): 8 pixels (xt rows ia and ib,
// their top-left taps) times 16 output channels (c0 ..), the weights a step needs loaded once
// per 8 lanes and handed round with subgroupBroadcast. Reads ci4, nc4, wl, wq, ia, ib, xt, wt,
// fma4 and params from the including function; leaves lo0..lo3 and hi0..hi3.
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

    // Regroup from (pixel, channel vec4) to (channel, pixel vec4), 8 channels at a time: loT[i],
    // hiT[i] are channel c0 + 4T + i (T = 0..3) for pixels 0..3 and 4..7.
    let lo0 = transpose(mat4x4<f32>(acc00, acc10, acc20, acc30));
    let hi0 = transpose(mat4x4<f32>(acc40, acc50, acc60, acc70));
    let lo1 = transpose(mat4x4<f32>(acc01, acc11, acc21, acc31));
    let hi1 = transpose(mat4x4<f32>(acc41, acc51, acc61, acc71));
    let lo2 = transpose(mat4x4<f32>(acc02, acc12, acc22, acc32));
    let hi2 = transpose(mat4x4<f32>(acc42, acc52, acc62, acc72));
    let lo3 = transpose(mat4x4<f32>(acc03, acc13, acc23, acc33));
    let hi3 = transpose(mat4x4<f32>(acc43, acc53, acc63, acc73));
