// The shapes of the loss passes, `SoftmaxXentParams` in src/layers.rs: logits are
// (batch, classes).
struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}
