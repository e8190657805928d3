// A dense layer's shapes, `DenseParams` in src/layers.rs: (batch, n_in) inputs, (n_out, n_in)
// weights, (batch, n_out) outputs; ReLU when relu != 0.
struct Params {
    batch: u32,
    n_in: u32,
    n_out: u32,
    relu: u32,
}
