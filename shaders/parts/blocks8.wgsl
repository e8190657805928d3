// SUBGROUP only, after chan8 and share8, in a file with the override RB (1, 2 or 4): one step of
// a tile of RB blocks of 8 rows (or outputs). Block B's 8 values are in lanes 0..7 of `mine`'s
// component B (share8 hands them round); row r of the block (vec4s 2r and 2r + 1 of accB)
// adds value r times (a, b), as chan8 does. The components of blocks past RB are never read,
// so their loads fold away.
fn blocks8(acc0: ptr<function, array<vec4<f32>, 16>>, acc1: ptr<function, array<vec4<f32>, 16>>,
           acc2: ptr<function, array<vec4<f32>, 16>>, acc3: ptr<function, array<vec4<f32>, 16>>,
           mine: vec4<f32>, a: vec4<f32>, b: vec4<f32>) {
    let g0 = share8(mine.x);
    chan8(acc0, g0[0], g0[1], a, b);
    if (RB > 1u) {
        let g1 = share8(mine.y);
        chan8(acc1, g1[0], g1[1], a, b);
    }
    if (RB > 2u) {
        let g2 = share8(mine.z);
        chan8(acc2, g2[0], g2[1], a, b);
        let g3 = share8(mine.w);
        chan8(acc3, g3[0], g3[1], a, b);
    }
}
