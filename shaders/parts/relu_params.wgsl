// A separate ReLU's shape, `ReluParams` in src/layers.rs: len values.
struct Params {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
