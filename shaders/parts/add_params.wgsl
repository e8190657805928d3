// The shape of add_forward and add_backward, `AddParams` in src/layers/merge.rs: len values.
struct Params {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
