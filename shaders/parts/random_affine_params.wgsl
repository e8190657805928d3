// The shapes and options of the geometric augmentation passes, `RandomAffineParams` in
// src/layers/augment.rs. kind: 0 flip, 1 translation, 2 rotation, 3 zoom; mode: a flip's axes
// (1 horizontal, 2 vertical), a zoom's own width factor (1); fill: 0 reflect, 1 wrap,
// 2 constant, 3 nearest.
struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    kind: u32,
    mode: u32,
    fill: u32,
    salt: u32,
    training: u32,
    lo0: f32,
    hi0: f32,
    lo1: f32,
    hi1: f32,
    fill_value: f32,
    _pad0: u32,
    _pad1: u32,
}
