//! The stage plan: which passes run each layer, fused or not, decided once per model and read
//! by the GPU trainer, the CPU network, bench's pass labels and the dispatch count. Also the
//! `Params` of each layer's passes, derived from its `LayerPlan`, and the batch-size rules both
//! trainers follow.

use std::ops::Range;

use crate::layers::{
    Avgpool2dParams, BatchnormParams, Conv2dParams, Conv2dPooledParams, DenseChainParams,
    DenseParams, DropoutParams, Maxpool2dParams, Pad2dParams, ReluParams, Subsample2dParams,
};
use crate::model::{ConvGeometry, Layer, LayerPlan, Model};

/// How one layer, or a fused pair of layers, runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Layer `i` with its own forward and backward passes.
    Single(usize),
    /// The unstrided conv `conv` and the max-pool with disjoint windows after it: the pool's
    /// backward pass in the conv's (`conv2d_backward_pooled`) and, with `forward` (2x2 windows,
    /// stride 2), its forward pass too (`conv2d_forward_pooled`): the conv's output and its
    /// gradient are then never stored.
    ConvPool { conv: usize, forward: bool },
    /// Dense `first` and the dense layer after it, both at most `DenseChainParams::MAX_OUTPUTS`
    /// wide: the forward passes in one dispatch (`dense_forward_chain`), the backward apart.
    DenseChain(usize),
}

impl Stage {
    /// The layers this stage runs.
    pub fn layers(&self) -> Range<usize> {
        match *self {
            Stage::Single(i) => i..i + 1,
            Stage::ConvPool { conv, .. } => conv..conv + 2,
            Stage::DenseChain(first) => first..first + 2,
        }
    }
}

/// The stages of `model`, in order, each layer in exactly one. Without `fuse` every layer is a
/// `Single` stage (the unfused passes; the same numbers).
pub fn plan(model: &Model, fuse: bool) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut i = 0;
    while i < model.layers.len() {
        let stage = match fuse.then(|| fused_at(model, i)).flatten() {
            Some(s) => s,
            None => Stage::Single(i),
        };
        i = stage.layers().end;
        stages.push(stage);
    }
    stages
}

/// The fused stage that starts at layer `i`, if its pattern occurs there.
fn fused_at(model: &Model, i: usize) -> Option<Stage> {
    let (a, b) = (model.layers.get(i)?, model.layers.get(i + 1)?);
    match (a.layer, b.layer) {
        (Layer::Conv2d { stride: 1, .. }, Layer::MaxPool2d { .. }) => {
            let (c, p) = (conv_params(a, 1), pool_params(b, 1));
            Conv2dPooledParams::fits(&c, &p).then(|| Stage::ConvPool {
                conv: i,
                forward: Conv2dPooledParams::fits_forward(&c, &p),
            })
        }
        (Layer::Dense { .. }, Layer::Dense { .. }) => {
            DenseChainParams::fits(&dense_params(a, 1), &dense_params(b, 1))
                .then_some(Stage::DenseChain(i))
        }
        _ => None,
    }
}

/// Whether each layer's output is stored: all but a conv whose pool runs in its forward pass.
pub fn written(stages: &[Stage], layers: usize) -> Vec<bool> {
    let mut w = vec![true; layers];
    for s in stages {
        if let Stage::ConvPool {
            conv,
            forward: true,
        } = *s
        {
            w[conv] = false;
        }
    }
    w
}

/// The geometry of a conv layer: padding, the stride-1 convolution's output, the stride.
pub fn conv_geometry(l: &LayerPlan) -> ConvGeometry {
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            ..
        } => ConvGeometry::of(l.input, out_channels, kernel, stride, padding)
            .expect("Model::new checked the geometry"),
        _ => unreachable!("conv_geometry on {:?}", l.layer),
    }
}

/// The stride-1, unpadded convolution at the heart of a conv layer: over the padded input, to
/// the output before the stride.
pub fn conv_params(l: &LayerPlan, batch: usize) -> Conv2dParams {
    let g = conv_geometry(l);
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            relu,
            ..
        } => Conv2dParams::new(
            batch,
            g.padded.c,
            g.padded.h,
            g.padded.w,
            out_channels,
            kernel,
            relu,
        ),
        _ => unreachable!("conv_params on {:?}", l.layer),
    }
}

/// The zero padding of a `same` conv layer, if it pads.
pub fn pad_params(l: &LayerPlan, batch: usize) -> Option<Pad2dParams> {
    let g = conv_geometry(l);
    g.padded_input()
        .then(|| Pad2dParams::new(batch, l.input.c, l.input.h, l.input.w, g.pad))
}

/// The stride of a strided conv layer, if it strides.
pub fn subsample_params(l: &LayerPlan, batch: usize) -> Option<Subsample2dParams> {
    let g = conv_geometry(l);
    g.strided()
        .then(|| Subsample2dParams::new(batch, g.full.c, g.full.h, g.full.w, g.stride))
}

pub fn pool_params(l: &LayerPlan, batch: usize) -> Maxpool2dParams {
    match l.layer {
        Layer::MaxPool2d { size, stride } => {
            Maxpool2dParams::new(batch, l.input.c, l.input.h, l.input.w, size, stride)
        }
        _ => unreachable!("pool_params on {:?}", l.layer),
    }
}

pub fn avgpool_params(l: &LayerPlan, batch: usize) -> Avgpool2dParams {
    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
    match l.layer {
        Layer::AvgPool2d { size, stride } => {
            Avgpool2dParams::new(batch, c, h, w, size, size, stride)
        }
        Layer::GlobalAvgPool2d => Avgpool2dParams::new(batch, c, h, w, h, w, 1),
        _ => unreachable!("avgpool_params on {:?}", l.layer),
    }
}

/// `salt` tells the dropout layers apart: the layer's index in the model.
pub fn dropout_params(l: &LayerPlan, batch: usize, salt: usize, training: bool) -> DropoutParams {
    match l.layer {
        Layer::Dropout { rate } => DropoutParams::new(batch, l.input.len(), rate, salt, training),
        _ => unreachable!("dropout_params on {:?}", l.layer),
    }
}

pub fn batchnorm_params(l: &LayerPlan, batch: usize, training: bool) -> BatchnormParams {
    match l.layer {
        Layer::BatchNorm { momentum, epsilon } => BatchnormParams::new(
            batch,
            l.input.c,
            l.input.h * l.input.w,
            momentum,
            epsilon,
            training,
        ),
        _ => unreachable!("batchnorm_params on {:?}", l.layer),
    }
}

pub fn dense_params(l: &LayerPlan, batch: usize) -> DenseParams {
    match l.layer {
        Layer::Dense { out, relu } => DenseParams::new(batch, l.input.len(), out, relu),
        _ => unreachable!("dense_params on {:?}", l.layer),
    }
}

/// A separate ReLU layer's shapes.
pub fn relu_params(l: &LayerPlan, batch: usize) -> ReluParams {
    ReluParams::new(batch * l.input.len())
}

/// Smallest batch used for evaluation (forward only, so larger batches are cheap).
pub const MIN_EVAL_BATCH: usize = 256;

/// The evaluation batch: forward only, so larger than the training batch (at least
/// `MIN_EVAL_BATCH`), but no larger than the evaluation set or than `fits`.
pub fn eval_batch(batch: usize, eval_len: usize, fits: usize) -> usize {
    batch.max(MIN_EVAL_BATCH).min(eval_len).min(fits).max(1)
}

/// Bytes of forward buffers an evaluation batch may take in all (activations, pool winners, the
/// channel-last conv inputs): evaluation takes the largest batch that fits in them (and in the
/// storage binding limit), up to the whole set. Bounded so that one evaluation step stays a
/// short submit on a slow adapter (1,587 images for the seed model).
pub const EVAL_BYTES: usize = 128 << 20;

/// The forward pass's buffers per image (`written[i]`: layer i's output is stored; a conv fused
/// with its pool is not): the largest (name, bytes) and the sum of bytes. Every conv's input is
/// counted twice (its channel-last copy), an upper bound where the portable kernels run.
pub fn forward_buffers(model: &Model, written: &[bool]) -> ((String, usize), usize) {
    let mut sizes = vec![("input".to_string(), model.input)];
    for (l, &w) in model.layers.iter().zip(written) {
        if w {
            sizes.push((l.name.clone(), l.output));
        }
        match l.layer {
            Layer::Conv2d { .. } => {
                let g = conv_geometry(l);
                // The channel-last copy of the stride-1 conv's input.
                let xin = if g.padded_input() { g.padded } else { l.input };
                sizes.push((format!("{}.input", l.name), xin));
                if g.padded_input() {
                    sizes.push((format!("{}.padded", l.name), g.padded));
                }
                if g.strided() {
                    sizes.push((format!("{}.full", l.name), g.full));
                }
            }
            Layer::MaxPool2d { .. } => sizes.push((format!("{}.argmax", l.name), l.output)),
            _ => {}
        }
    }
    let sum = sizes.iter().map(|(_, s)| s.len() * 4).sum();
    let largest =
        sizes
            .into_iter()
            .map(|(n, s)| (n, s.len() * 4))
            .fold(
                ("input".to_string(), 0),
                |a, b| if b.1 > a.1 { b } else { a },
            );
    (largest, sum)
}

/// The evaluation batch on the GPU: the largest that fits the binding `limit` and `EVAL_BYTES`,
/// up to the whole set of `eval_len`, and no smaller than the training batch.
pub fn gpu_eval_batch(
    model: &Model,
    written: &[bool],
    batch: usize,
    eval_len: usize,
    limit: u64,
) -> usize {
    let ((_, largest), sum) = forward_buffers(model, written);
    let fits = usize::try_from(limit / largest.max(1) as u64).unwrap_or(usize::MAX);
    fits.min(EVAL_BYTES / sum.max(1))
        .min(eval_len)
        .max(batch)
        .max(1)
}

/// The largest per-batch buffer for one image: its name and bytes (activations and their
/// gradients; the conv scratch buffers are no larger, output channels padded to 4).
pub fn largest_activation(model: &Model) -> (String, usize) {
    let mut best = ("input".to_string(), model.input.len() * 4);
    for l in &model.layers {
        let mut sizes = vec![(l.name.clone(), l.output)];
        if let Layer::Conv2d { .. } = l.layer {
            // A padded or strided conv's padded input and output before the stride.
            let g = conv_geometry(l);
            sizes.push((format!("{}.padded", l.name), g.padded));
            sizes.push((format!("{}.full", l.name), g.full));
        }
        for (name, s) in sizes {
            let bytes = s.c.div_ceil(4) * 4 * s.h * s.w * 4;
            if bytes > best.1 {
                best = (name, bytes);
            }
        }
    }
    best
}

/// The largest batch whose buffers each fit in `limit` bytes.
pub fn max_batch(model: &Model, limit: u64) -> usize {
    let per_image = largest_activation(model).1.max(1) as u64;
    usize::try_from(limit / per_image).unwrap_or(usize::MAX)
}
