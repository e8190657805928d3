// Batch norm's shapes, `BatchnormParams` in src/layers.rs: (batch, channels, plane) values,
// statistics per channel; training: batch statistics and the moving ones updated with momentum.
struct Params {
    batch: u32,
    channels: u32,
    plane: u32,
    training: u32,
    momentum: f32,
    epsilon: f32,
    _pad0: u32,
    _pad1: u32,
}
