//! The layer kinds a model is made of, as written (`Layer`) and as placed in a model, with its
//! shapes and tensors (`LayerPlan`). What each kind is and does lives in its own module beside
//! this one; `layers/mod.rs` dispatches to them.

use super::shape::{Init, Padding, Shape};

/// A layer kind with its options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer {
    /// 2-D convolution, square kernel, optional bias and ReLU. On the GPU and the CPU a padded
    /// or strided convolution runs as zero-padding, the stride-1 convolution, then every
    /// `stride`-th output (`ConvGeometry`).
    Conv2d {
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        bias: bool,
        relu: bool,
    },
    /// Max pooling, `size` x `size` windows every `stride` pixels (floor; no padding).
    MaxPool2d { size: usize, stride: usize },
    /// Fully connected layer on the flattened (C, H, W) input, optional ReLU.
    Dense { out: usize, relu: bool },
    /// Average pooling, `size` x `size` windows every `stride` pixels (floor; no padding).
    AvgPool2d { size: usize, stride: usize },
    /// The mean of each channel's plane: (C, H, W) -> (C, 1, 1).
    GlobalAvgPool2d,
    /// Inverted dropout in training (kept values scaled by 1 / (1 - rate)); identity otherwise.
    Dropout { rate: f32 },
    /// Batch normalisation per channel (Keras' BatchNormalization, axis -1, center and scale):
    /// batch statistics over (N, H, W) in training, moving statistics otherwise.
    BatchNorm { momentum: f32, epsilon: f32 },
    /// A separate ReLU (Keras' `Activation("relu")` or `ReLU()`), e.g. after batch norm.
    Relu,
    /// A random flip, translation, rotation, zoom or contrast change per image in training; the
    /// identity otherwise (`augment`). Only at the start of a model.
    Augment(Augment),
    /// The element-wise sum of its inputs, all of one shape (Keras' `Add`): the join of a
    /// residual connection. Only in a graph (`merge`).
    Add,
    /// Its inputs one after the other along the channels (Keras' `Concatenate`, axis -1), all
    /// of one height and width. Only in a graph (`merge`).
    Concatenate,
}

/// A layer with its inferred shapes and the indices of its tensors in `Model::params`: conv and
/// dense have a weight and a bias (a conv without bias: none); batch norm has gamma (`weight`), beta (`bias`) and the moving
/// mean and variance (`stats`, the variance right after the mean).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    pub layer: Layer,
    pub name: String,
    /// The tensors it reads, in order: 0 is the model's input, `j + 1` the output of layer j
    /// (always an earlier layer). A chain's layer i reads `[i]`; only `Add` and `Concatenate`
    /// read more than one.
    pub inputs: Vec<usize>,
    /// The shape of its first input.
    pub input: Shape,
    pub output: Shape,
    pub weight: Option<usize>,
    pub bias: Option<usize>,
    pub stats: Option<usize>,
}

/// What a layer's tensor is to the trainers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Weight,
    Bias,
    /// Updated by the forward pass, never by Adam (its gradient stays zero): batch norm's moving
    /// statistics. A layer's statistics follow each other.
    Statistic,
}

/// A tensor a layer owns, before it is placed in the flat parameter buffer: its name after the
/// layer's (`weight`, `bias`, `running_mean`, ...), its dims, how it starts and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub suffix: &'static str,
    pub dims: Vec<usize>,
    pub init: Init,
    pub role: Role,
}

impl TensorSpec {
    pub fn new(suffix: &'static str, dims: Vec<usize>, init: Init, role: Role) -> Self {
        TensorSpec {
            suffix,
            dims,
            init,
            role,
        }
    }
}

/// Where a kind may stand in the text form and Keras files, as Keras builds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Over an image (before flatten): conv, pooling.
    Spatial,
    /// Element-wise, anywhere: dropout, a separate ReLU.
    Elementwise,
    /// Per channel, anywhere but right after a flatten of an image: batch norm.
    PerChannel,
    /// Over an image, making it flat: global pooling.
    Flattening,
    /// On a flat input (after flatten, global pooling or dense): dense.
    Flat,
    /// Before every other kind (augmentation).
    First,
    /// Joining two or more tensors of the graph (add, concatenate).
    Merge,
}

/// Where a sample outside the image reads from, as Keras' `fill_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// d c b a | a b c d | d c b a (Keras' default).
    Reflect,
    /// a b c d | a b c d | a b c d.
    Wrap,
    /// `fill_value` outside.
    Constant,
    /// a a a a | a b c d | d d d d.
    Nearest,
}

/// A range [lo, hi] a factor is drawn from, uniformly.
pub type Range = (f32, f32);

/// An augmentation layer with its options, as Keras holds them (factors as (lower, upper)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Augment {
    /// Flips each image with probability 1/2: horizontally, vertically, or both at once (Keras
    /// 3 draws one coin per image for both).
    Flip { horizontal: bool, vertical: bool },
    /// Shifts by a fraction of the height (drawn from `height`) and of the width.
    Translation {
        height: Range,
        width: Range,
        fill: Fill,
        fill_value: f32,
    },
    /// Rotates about the centre by a fraction of a full turn drawn from `factor`.
    Rotation {
        factor: Range,
        fill: Fill,
        fill_value: f32,
    },
    /// Scales by 1 + a factor drawn from `height` (and from `width`, or the same factor when
    /// `None`) about the centre: positive factors zoom out, negative zoom in.
    Zoom {
        height: Range,
        width: Option<Range>,
        fill: Fill,
        fill_value: f32,
    },
    /// Scales each channel's deviation from its mean by a factor drawn from [1 - lo, 1 + hi],
    /// then clips to `value_range`.
    Contrast { factor: Range, value_range: Range },
}
