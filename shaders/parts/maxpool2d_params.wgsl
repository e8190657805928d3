// Max pooling's shapes, `Maxpool2dParams` in src/layers.rs: size x size windows every stride
// pixels over (batch, channels, h_in, w_in), output (batch, channels, h_out, w_out).
struct Params {
#include "plane_shapes"
    size: u32,
    stride: u32,
}
