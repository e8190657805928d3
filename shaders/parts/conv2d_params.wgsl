// The shapes of the stride-1 conv passes, `Conv2dParams` in src/layers.rs; with POOLED, those of
// a conv fused with the max-pool after it (`Conv2dPooledParams`). Not every pass reads every
// member: `chunk` is the pixels per split-K chunk of conv2d_backward's weight gradient,
// `channel_last` 1 when the host runs the channel-last (subgroup) kernels.
struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    kh: u32,
    kw: u32,
    relu: u32,
    chunk: u32,
    channel_last: u32,
#if POOLED
    // The max-pool over the conv's output (pool_size x pool_size windows every pool_stride).
    pool_size: u32,
    pool_stride: u32,
    h_pool: u32,
    w_pool: u32,
#endif
}
