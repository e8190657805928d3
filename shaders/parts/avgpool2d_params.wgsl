// Average pooling's shapes, `Avgpool2dParams` in src/layers.rs: kh x kw windows every stride
// pixels over (batch, channels, h_in, w_in), output (batch, channels, h_out, w_out).
struct Params {
#include "plane_shapes"
    kh: u32,
    kw: u32,
    stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
