// The dense layers' row-block accumulation (SUBGROUP only), shared by dense_forward's tile and
// dense_forward_chain's first layer so that the two cannot drift apart (the chain's bits are two
// dense_forwards'): over the n_in inputs, the 8 outputs' weights (tile_weight4 at wa, wb: this
// invocation's) times RB blocks of 8 rows (lane l loads row xl's component B of block B, blocks8
// shares them). Reads n_in, xl, wa, wb, inp, tile_weight4 and blocks8 from the including
// function and file; leaves acc0..acc3 (block B's row r, outputs 0..3 at 2r, 4..7 at 2r + 1).
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    var acc2: array<vec4<f32>, 16>;
    var acc3: array<vec4<f32>, 16>;
    for (var i = 0u; i < n_in; i++) {
        let w_a = tile_weight4(wa + vec4<u32>(i));
        let w_b = tile_weight4(wb + vec4<u32>(i));
        let x = vec4<f32>(inp[xl.x + i], inp[xl.y + i], inp[xl.z + i], inp[xl.w + i]);
        blocks8(&acc0, &acc1, &acc2, &acc3, x, w_a, w_b);
    }
