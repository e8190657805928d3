// SUBGROUP only: the 8 values of `mine` in lanes 0..7, as two vec4s.
fn share8(mine: f32) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(
        vec4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                  subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u)),
        vec4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                  subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u)));
}
