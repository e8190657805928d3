// Zero padding's shapes, `Pad2dParams` in src/layers.rs: (batch, channels, h_in, w_in) placed at
// (top, left) in a zero (batch, channels, h_out, w_out).
struct Params {
#include "plane_shapes"
    top: u32,
    left: u32,
}
