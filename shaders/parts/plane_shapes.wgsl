// Struct members: the (batch, channels, h_in, w_in) input and (h_out, w_out) output of a
// per-plane pass (pooling, padding, subsampling), first in each of their Params.
    batch: u32,
    channels: u32,
    h_in: u32,
    w_in: u32,
    h_out: u32,
    w_out: u32,
