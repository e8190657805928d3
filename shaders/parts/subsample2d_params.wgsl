// Subsampling's shapes, `Subsample2dParams` in src/layers.rs: every stride-th pixel of
// (batch, channels, h_in, w_in), output (batch, channels, h_out, w_out).
struct Params {
#include "plane_shapes"
    stride: u32,
    _pad0: u32,
}
