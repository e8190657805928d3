// The lane offsets of an 8-wide register tile's two vec4 halves.
const LANES_A = vec4<u32>(0u, 1u, 2u, 3u);
const LANES_B = vec4<u32>(4u, 5u, 6u, 7u);
