//! Per-pass parameter structs: `#[repr(C)]` mirrors of each shader's `Params` uniform, shared by
//! the GPU launchers (`gpu::layers`) and the CPU reference (`reference`), so one set of dimension
//! names describes a pass everywhere.
//!
//! The shapes are u32, as in WGSL. The `new` functions cast from usize without checks: every
//! size reaching them is bounded first (`Model::new` caps each tensor and activation at
//! `model::MAX_TENSOR` values per image, and the trainers cap the batch so that each buffer
//! fits the adapter's binding limit, or 1 GiB on the CPU), so every product fits in u32.

use bytemuck::{Pod, Zeroable};

/// Shapes of `gather_batch`: `x` is (batch, pixels). On the GPU the images may be split over
/// several buffers: one dispatch reads the part holding rows `first..first + rows` and fills only
/// the batch rows that fall there. The CPU reference reads one whole image set (first 0, every row).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GatherParams {
    pub batch: u32,
    pub pixels: u32,
    pub first: u32,
    pub rows: u32,
}

impl GatherParams {
    /// One whole image set: first row 0, every row.
    pub fn new(batch: usize, pixels: usize) -> Self {
        GatherParams {
            batch: batch as u32,
            pixels: pixels as u32,
            first: 0,
            rows: u32::MAX,
        }
    }
}

/// Shapes of `conv2d_forward` / `conv2d_backward` (stride 1, valid padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Conv2dParams {
    pub batch: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub kh: u32,
    pub kw: u32,
    /// 1: ReLU after the bias; 0: identity.
    pub relu: u32,
    /// Output pixels per split-K chunk in `conv2d_backward`'s weight pass.
    pub chunk: u32,
    /// 1: channel-last kernels (`conv2d_forward_subgroup`,
    /// `conv2d_backward.backward_weight_channel_last`); needs c_in % 4 == 0 and a device with
    /// subgroups. `new` leaves it 0 (portable kernels); `gpu::layers::conv2d_select` sets it.
    pub channel_last: u32,
}

impl Conv2dParams {
    pub fn new(
        batch: usize,
        c_in: usize,
        h_in: usize,
        w_in: usize,
        c_out: usize,
        k: usize,
        relu: bool,
    ) -> Self {
        let h_out = h_in + 1 - k;
        let w_out = w_in + 1 - k;
        Conv2dParams {
            batch: batch as u32,
            c_in: c_in as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            c_out: c_out as u32,
            h_out: h_out as u32,
            w_out: w_out as u32,
            kh: k as u32,
            kw: k as u32,
            relu: relu as u32,
            chunk: 256,
            channel_last: 0,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.c_in * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.c_out * self.h_out * self.w_out) as usize
    }
    /// Columns of the weight gradient GEMM: c_in * kh * kw.
    pub fn ksize(&self) -> usize {
        (self.c_in * self.kh * self.kw) as usize
    }
    pub fn weight_len(&self) -> usize {
        self.c_out as usize * self.ksize()
    }
    /// Number of split-K chunks of the weight gradient.
    pub fn chunks(&self) -> usize {
        ((self.batch * self.h_out * self.w_out) as usize).div_ceil(self.chunk as usize)
    }
}

/// Shapes of `maxpool2d_forward` / `maxpool2d_backward` (floor mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Maxpool2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub size: u32,
    pub stride: u32,
}

impl Maxpool2dParams {
    pub fn new(
        batch: usize,
        channels: usize,
        h_in: usize,
        w_in: usize,
        size: usize,
        stride: usize,
    ) -> Self {
        Maxpool2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - size) / stride + 1) as u32,
            w_out: ((w_in - size) / stride + 1) as u32,
            size: size as u32,
            stride: stride as u32,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `dense_forward` / `dense_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DenseParams {
    pub batch: u32,
    pub n_in: u32,
    pub n_out: u32,
    /// 1: ReLU after the bias; 0: identity.
    pub relu: u32,
}

impl DenseParams {
    pub fn new(batch: usize, n_in: usize, n_out: usize, relu: bool) -> Self {
        DenseParams {
            batch: batch as u32,
            n_in: n_in as u32,
            n_out: n_out as u32,
            relu: relu as u32,
        }
    }
}

/// Shapes of `dense_forward_chain`: two dense layers, the second reading the first's output.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DenseChainParams {
    pub first: DenseParams,
    pub second: DenseParams,
}

impl DenseChainParams {
    /// Most outputs of either layer: one workgroup computes a row tile of both (8 outputs per
    /// invocation, the hidden rows in workgroup memory).
    pub const MAX_OUTPUTS: u32 = 512;
    /// Whether `second` reads `first`'s output and both fit one workgroup.
    pub fn fits(first: &DenseParams, second: &DenseParams) -> bool {
        first.batch == second.batch
            && first.n_out == second.n_in
            && first.n_out <= Self::MAX_OUTPUTS
            && second.n_out <= Self::MAX_OUTPUTS
    }
}

/// Shapes of `softmax_xent_forward` / `softmax_xent_backward`: logits are (batch, classes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SoftmaxXentParams {
    pub batch: u32,
    pub classes: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl SoftmaxXentParams {
    pub fn new(batch: usize, classes: usize) -> Self {
        SoftmaxXentParams {
            batch: batch as u32,
            classes: classes as u32,
            ..Default::default()
        }
    }
}

/// Constants of `adam_update`; the per-step size `alpha` comes from the step records.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct AdamParams {
    pub len: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Entries of `table` in use: conv weights whose channel-last copy (`wt`, the layout of
    /// conv2d_transpose_weight) Adam writes along with the weights. 0: none.
    pub copies: u32,
    /// The flat range [lo, hi) the entries cover (the shader skips the table outside it).
    pub lo: u32,
    pub hi: u32,
    pub _pad: u32,
    /// In the uniform, not a storage buffer: CPU adapters load uniforms once per workgroup.
    pub table: [AdamCopy; MAX_ADAM_COPIES],
}

/// Most conv weight tensors whose copies one `adam_update` keeps (the rest keep their
/// transposition passes).
pub const MAX_ADAM_COPIES: usize = 8;

impl AdamParams {
    /// These params with `table` as the copies to keep (at most `MAX_ADAM_COPIES`).
    pub fn with_copies(self, table: &[AdamCopy]) -> AdamParams {
        assert!(table.len() <= MAX_ADAM_COPIES, "{} copies", table.len());
        let mut p = AdamParams {
            copies: table.len() as u32,
            lo: table.iter().map(|c| c.offset).min().unwrap_or(0),
            hi: table
                .iter()
                .map(|c| c.offset + c.weight_len())
                .max()
                .unwrap_or(0),
            ..self
        };
        p.table[..table.len()].copy_from_slice(table);
        p
    }
}

/// One conv weight tensor whose channel-last copy `adam_update` keeps: the weights
/// (c_out, c_in, taps) at `offset` of the flat parameters, the copy (taps, c_in, c4 * 4) at
/// `wt_offset` of the copies buffer (elements).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamCopy {
    pub offset: u32,
    pub c_out: u32,
    pub c_in: u32,
    pub taps: u32,
    pub wt_offset: u32,
    pub c4: u32,
    pub _pad: [u32; 2],
}

impl AdamCopy {
    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> u32 {
        self.c_out * self.c_in * self.taps
    }
}

/// One entry of the per-step records read by `gather_batch`, `adam_update` and the dropout passes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepRecord {
    /// First entry of the index buffer this step gathers.
    pub offset: u32,
    /// Adam's step size for this step.
    pub alpha: f32,
    /// The training step's number (Adam's t, from 1; 0 in evaluation): with `seed`, what the
    /// dropout masks are drawn from.
    pub t: u32,
    /// The run's seed (its low 32 bits).
    pub seed: u32,
}

/// Shapes of `avgpool2d_forward` / `avgpool2d_backward`: (N, C, H, W) -> (N, C, OH, OW), the mean
/// of each `kh` x `kw` window every `stride` pixels (floor; no padding). Global average pooling is
/// the one window of the whole plane.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Avgpool2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl Avgpool2dParams {
    pub fn new(
        batch: usize,
        channels: usize,
        h_in: usize,
        w_in: usize,
        kh: usize,
        kw: usize,
        stride: usize,
    ) -> Self {
        Avgpool2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - kh) / stride + 1) as u32,
            w_out: ((w_in - kw) / stride + 1) as u32,
            kh: kh as u32,
            kw: kw as u32,
            stride: stride as u32,
            ..Default::default()
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `dropout_forward` / `dropout_backward`: `len` values per step (batch x values per
/// image). Value i of step t is kept when `dropout_hash(seed, t, salt, i) >> 8 >= threshold`
/// (threshold = rate * 2^24, rounded), and then scaled by 1 / (1 - rate).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DropoutParams {
    pub len: u32,
    pub threshold: u32,
    pub scale: f32,
    /// Tells the model's dropout layers apart (their index in the model).
    pub salt: u32,
    /// 1: training (mask and scale); 0: identity.
    pub training: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl DropoutParams {
    pub fn new(batch: usize, per_image: usize, rate: f32, salt: usize, training: bool) -> Self {
        DropoutParams {
            len: (batch * per_image) as u32,
            threshold: (rate as f64 * 16_777_216.0).round() as u32,
            scale: 1.0 / (1.0 - rate),
            salt: salt as u32,
            training: training as u32,
            ..Default::default()
        }
    }
}

/// The counter-based hash of the dropout masks (the same in `dropout_*.wgsl`): value `i` of
/// step `t` in the layer `salt` of the run `seed`, each 32-bit input mixed in turn.
pub fn dropout_hash(seed: u32, t: u32, salt: u32, i: u32) -> u32 {
    fn mix(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^= x >> 16;
        x
    }
    mix(i ^ mix(t ^ mix(salt ^ mix(seed))))
}

/// Shapes of `conv2d_backward_pooled`: the conv's, then the max-pool's that follows it (disjoint
/// windows: stride >= size) over the conv's output.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Conv2dPooledParams {
    pub conv: Conv2dParams,
    pub pool_size: u32,
    pub pool_stride: u32,
    pub h_pool: u32,
    pub w_pool: u32,
}

impl Conv2dPooledParams {
    pub fn new(conv: Conv2dParams, pool: &Maxpool2dParams) -> Self {
        Conv2dPooledParams {
            conv,
            pool_size: pool.size,
            pool_stride: pool.stride,
            h_pool: pool.h_out,
            w_pool: pool.w_out,
        }
    }
    /// Whether `pool` can be fused into the backward pass of the conv of `conv`: disjoint windows
    /// over exactly that conv's output.
    pub fn fits(conv: &Conv2dParams, pool: &Maxpool2dParams) -> bool {
        pool.stride >= pool.size
            && (pool.batch, pool.channels, pool.h_in, pool.w_in)
                == (conv.batch, conv.c_out, conv.h_out, conv.w_out)
    }
    /// Whether the pool can also be fused into the conv's forward pass (`conv2d_forward_pooled`):
    /// 2x2 windows, stride 2.
    pub fn fits_forward(conv: &Conv2dParams, pool: &Maxpool2dParams) -> bool {
        pool.size == 2 && pool.stride == 2 && Self::fits(conv, pool)
    }
    pub fn pool_len(&self) -> usize {
        (self.conv.batch * self.conv.c_out * self.h_pool * self.w_pool) as usize
    }
    /// The max-pool's own shapes.
    pub fn pool_params(&self) -> Maxpool2dParams {
        Maxpool2dParams::new(
            self.conv.batch as usize,
            self.conv.c_out as usize,
            self.conv.h_out as usize,
            self.conv.w_out as usize,
            self.pool_size as usize,
            self.pool_stride as usize,
        )
    }
}

/// Shapes of `pad2d_forward` / `pad2d_backward`: (N, C, H, W) placed at (top, left) in a
/// zero (N, C, OH, OW), the `same` padding of a convolution.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Pad2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub top: u32,
    pub left: u32,
}

impl Pad2dParams {
    /// `pad` is (top, left, bottom, right).
    pub fn new(batch: usize, channels: usize, h_in: usize, w_in: usize, pad: [usize; 4]) -> Self {
        Pad2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: (h_in + pad[0] + pad[2]) as u32,
            w_out: (w_in + pad[1] + pad[3]) as u32,
            top: pad[0] as u32,
            left: pad[1] as u32,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `subsample2d_forward` / `subsample2d_backward`: every `stride`-th pixel of
/// (N, C, H, W), from (0, 0): (N, C, (H - 1) / stride + 1, (W - 1) / stride + 1), a strided
/// convolution's output taken from its stride-1 one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Subsample2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub stride: u32,
    pub _pad0: u32,
}

impl Subsample2dParams {
    pub fn new(batch: usize, channels: usize, h_in: usize, w_in: usize, stride: usize) -> Self {
        Subsample2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - 1) / stride + 1) as u32,
            w_out: ((w_in - 1) / stride + 1) as u32,
            stride: stride as u32,
            _pad0: 0,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `relu_forward` / `relu_backward`: `len` values per step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ReluParams {
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl ReluParams {
    pub fn new(len: usize) -> Self {
        ReluParams {
            len: len as u32,
            ..Default::default()
        }
    }
}

/// Shapes of `batchnorm_forward` / `batchnorm_backward`: (N, C, H, W) normalised per channel
/// over (N, H, W), `plane` = H * W.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BatchnormParams {
    pub batch: u32,
    pub channels: u32,
    pub plane: u32,
    /// 1: batch statistics, moving statistics updated; 0: moving statistics.
    pub training: u32,
    pub momentum: f32,
    pub epsilon: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl BatchnormParams {
    pub fn new(
        batch: usize,
        channels: usize,
        plane: usize,
        momentum: f32,
        epsilon: f32,
        training: bool,
    ) -> Self {
        BatchnormParams {
            batch: batch as u32,
            channels: channels as u32,
            plane: plane as u32,
            training: training as u32,
            momentum,
            epsilon,
            ..Default::default()
        }
    }
    pub fn len(&self) -> usize {
        (self.batch * self.channels * self.plane) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Adam hyper-parameters, Keras' defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

impl Adam {
    /// Keras' step size for step t (1-based): lr * sqrt(1 - beta2^t) / (1 - beta1^t).
    pub fn alpha(&self, t: u64) -> f32 {
        let t = t as f64;
        (self.lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t))) as f32
    }
    pub fn params(&self, len: usize) -> AdamParams {
        AdamParams {
            len: len as u32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.eps as f32,
            copies: 0,
            lo: 0,
            hi: 0,
            _pad: 0,
            table: [AdamCopy::default(); MAX_ADAM_COPIES],
        }
    }
}
