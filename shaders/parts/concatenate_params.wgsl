// The shape of concatenate_forward and concatenate_backward for one input,
// `ConcatenateParams` in src/layers/merge.rs: the input's c_in channels are channels
// c_off .. c_off + c_in of the output's c_out, each channel a plane of `plane` values, for
// `batch` images.
struct Params {
    batch: u32,
    c_in: u32,
    c_out: u32,
    c_off: u32,
    plane: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
