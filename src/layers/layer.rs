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
    Augment(super::augment::Augment),
}

/// A layer with its inferred shapes and the indices of its tensors in `Model::params`: conv and
/// dense have a weight and a bias (a conv without bias: none); batch norm has gamma (`weight`), beta (`bias`) and the moving
/// mean and variance (`stats`, the variance right after the mean).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    pub layer: Layer,
    pub name: String,
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
}
