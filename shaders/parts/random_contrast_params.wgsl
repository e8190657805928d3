// The shapes and options of random_contrast_forward, `RandomContrastParams` in
// src/layers/augment.rs: per image a factor drawn from [1 - lo, 1 + hi]; values clipped to
// [range_lo, range_hi].
struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    salt: u32,
    training: u32,
    lo: f32,
    hi: f32,
    range_lo: f32,
    range_hi: f32,
    _pad0: u32,
    _pad1: u32,
}
