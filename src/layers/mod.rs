//! The layer kinds, one module each: what a kind is, the same for the GPU and the CPU (its
//! options, output shape, tensors, text form, Keras class and summary row, and the `Params` of
//! its passes), read by `model`, `spec` and `summary` through the dispatch below; and the
//! shapes of the other passes (`data`, `loss`, `adam`). `layer` holds the `Layer` enum whose
//! variants the kinds are; `read` what their readers share.
//!
//! The `Params` structs are `#[repr(C)]` mirrors of each shader's `Params` uniform, shared by
//! the GPU launchers (`gpu::layers`) and the CPU reference (`reference`), so one set of
//! dimension names describes a pass everywhere (`tests/params_layout.rs` holds them against the
//! WGSL). The shapes are u32, as in WGSL. The `new` functions cast from usize without checks:
//! every size reaching them is bounded first (`Model::new` caps each tensor and activation at
//! `MAX_TENSOR` values per image, and the trainers cap the batch so that each buffer fits the
//! adapter's binding limit, or 1 GiB on the CPU), so every product fits in u32.

pub mod augment;
pub mod batchnorm;
pub mod conv2d;
pub mod data;
pub mod dense;
pub mod elementwise;
pub mod layer;
pub mod loss;
pub mod merge;
pub mod onnx;
pub mod optimizer;
pub mod pool;
pub mod read;
pub mod shape;

pub use augment::{
    random_affine_params, random_contrast_params, RandomAffineParams, RandomContrastParams,
};
pub use batchnorm::{batchnorm_params, BatchnormParams};
pub use conv2d::{
    conv_geometry, conv_params, pad_params, subsample_params, Conv2dParams, Conv2dPooledParams,
    Pad2dParams, Subsample2dParams,
};
pub use data::{GatherParams, StepRecord};
pub use dense::{dense_params, DenseChainParams, DenseParams};
pub use elementwise::{dropout_hash, dropout_params, relu_params, DropoutParams, ReluParams};
pub use layer::{Augment, Fill, Layer, LayerPlan, Placement, TensorSpec};
pub use loss::SoftmaxXentParams;
pub use merge::{concatenate_params, AddParams, ConcatenateParams};
pub use optimizer::{
    AdamCopy, AdamParams, Optimizer, OptimizerKind, RmspropParams, SgdParams, MAX_ADAM_COPIES,
};
pub use pool::{avgpool_params, pool_params, Avgpool2dParams, Maxpool2dParams};
pub use shape::{ConvGeometry, Init, Padding, Shape, MAX_TENSOR, PARAM_ALIGN};

use crate::error::Result;
use read::{CallReader, KerasLayer};

/// The text form's layer names, as errors and help list them.
pub const TEXT_NAMES: &str =
    "conv2d, maxpool, avgpool, globalavgpool, dropout, batchnorm, relu, flatten, dense, randomflip, randomtranslation, randomrotation, randomzoom, randomcontrast; add(x), concatenate(x), as(x), from(x) for graphs";
/// `--model`'s help: what it takes, with the text form's layer names.
pub const MODEL_HELP: &str = "A preset (keras-mnist, keras-cifar10, resnet20-cifar10, resnet-mini), a Keras model.to_json() file (.json), or the one-line text form of conv2d, maxpool, avgpool, globalavgpool, dropout, batchnorm, relu, flatten and dense (after randomflip, randomtranslation, randomrotation, randomzoom, randomcontrast if any), e.g. \"conv2d(32,3,padding=same) batchnorm relu maxpool(2) dropout(0.25) flatten dense(10)\"; as(x) names the tensor so far, from(x) goes on from x, add(x) and concatenate(x) join it to the tensor so far (residual connections)";
/// The Keras classes a model file may hold.
pub const KERAS_CLASSES: &str = "InputLayer, RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dropout, BatchNormalization, Activation, ReLU, Flatten, Dense, Add, Concatenate";

/// The layer of the text form's call `r`, by its name; `None` when no kind has that name.
pub fn read_text(name: &str, r: &CallReader) -> Option<Result<Layer>> {
    Some(match name {
        "conv2d" => conv2d::read_text(r),
        "maxpool" | "avgpool" => pool::read_text(r),
        "globalavgpool" => pool::read_global_text(r),
        "dense" => dense::read_text(r),
        "dropout" => elementwise::read_dropout_text(r),
        "relu" => elementwise::read_relu_text(r),
        "batchnorm" => batchnorm::read_text(r),
        "randomflip" | "randomtranslation" | "randomrotation" | "randomzoom" | "randomcontrast" => {
            augment::read_text(name, r)
        }
        _ => return None,
    })
}

/// The layer of a Keras file's layer `k`, by its class (`Ok(None)`: a class that is no layer
/// here, such as a linear `Activation`); `None` when no kind reads that class.
pub fn read_keras(class: &str, k: &KerasLayer) -> Option<Result<Option<Layer>>> {
    let some = |l: Result<Layer>| l.map(Some);
    Some(match class {
        "Conv2D" => some(conv2d::read_keras(k)),
        "MaxPooling2D" | "AveragePooling2D" => some(pool::read_keras(k)),
        "GlobalAveragePooling2D" => some(pool::read_global_keras(k)),
        "Dense" => some(dense::read_keras(k)),
        "Dropout" => some(elementwise::read_dropout_keras(k)),
        "Activation" => elementwise::read_activation_keras(k),
        "ReLU" => some(elementwise::read_relu_keras(k)),
        "BatchNormalization" => some(batchnorm::read_keras(k)),
        "RandomFlip" | "RandomTranslation" | "RandomRotation" | "RandomZoom" | "RandomContrast" => {
            some(augment::read_keras(k))
        }
        "Add" => some(merge::read_add_keras(k)),
        "Concatenate" => some(merge::read_concatenate_keras(k)),
        _ => return None,
    })
}

impl Layer {
    /// A stride-1, `valid`, biased convolution: the seed model's kind.
    pub fn conv(out_channels: usize, kernel: usize, relu: bool) -> Layer {
        conv2d::conv(out_channels, kernel, relu)
    }

    /// The prefix of the layer's tensor names, numbered per prefix (`conv1`, `pool2`, `fc1`).
    pub fn prefix(&self) -> &'static str {
        match self {
            Layer::Conv2d { .. } => "conv",
            Layer::MaxPool2d { .. } | Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => "pool",
            Layer::Dense { .. } => "fc",
            Layer::Dropout { .. } => "dropout",
            Layer::BatchNorm { .. } => "bn",
            Layer::Relu => "relu",
            Layer::Augment(a) => a.prefix(),
            Layer::Add => "add",
            Layer::Concatenate => "concat",
        }
    }

    /// The output shape on `input`, or why the options or the input do not fit.
    pub fn output(&self, input: Shape) -> std::result::Result<Shape, String> {
        match *self {
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => conv2d::output(input, out_channels, kernel, stride, padding),
            Layer::MaxPool2d { size, stride } => pool::output("max-pool", input, size, stride),
            Layer::AvgPool2d { size, stride } => pool::output("average pool", input, size, stride),
            Layer::GlobalAvgPool2d => Ok(Shape::new(input.c, 1, 1)),
            Layer::Dense { out, .. } => dense::output(out),
            Layer::Dropout { rate } => elementwise::check_rate(rate).map(|_| input),
            Layer::BatchNorm { momentum, epsilon } => {
                batchnorm::check(momentum, epsilon).map(|_| input)
            }
            // A join's shape follows from all its inputs (`merge::output`, by `Model::graph`).
            Layer::Relu | Layer::Augment(_) | Layer::Add | Layer::Concatenate => Ok(input),
        }
    }

    /// The tensors the layer owns on `input`, in the order they are laid out.
    pub fn tensors(&self, input: Shape) -> Vec<TensorSpec> {
        match *self {
            Layer::Conv2d {
                out_channels,
                kernel,
                bias,
                ..
            } => conv2d::tensors(input, out_channels, kernel, bias),
            Layer::Dense { out, .. } => dense::tensors(input, out),
            Layer::BatchNorm { .. } => batchnorm::tensors(input),
            _ => Vec::new(),
        }
    }

    /// The text form (`conv2d(32,3,relu)`).
    pub fn to_text(&self) -> String {
        match *self {
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                relu,
            } => conv2d::to_text(out_channels, kernel, stride, padding, bias, relu),
            Layer::MaxPool2d { size, stride } => pool::to_text(false, size, stride),
            Layer::AvgPool2d { size, stride } => pool::to_text(true, size, stride),
            Layer::GlobalAvgPool2d => "globalavgpool".to_string(),
            Layer::Dense { out, relu } => dense::to_text(out, relu),
            // `{}` of an f32 is the shortest text that reads back as the same value.
            Layer::Dropout { rate } => format!("dropout({rate})"),
            Layer::BatchNorm { momentum, epsilon } => batchnorm::to_text(momentum, epsilon),
            Layer::Relu => "relu".to_string(),
            Layer::Augment(a) => a.to_text(),
            // The tensors joined are the text form's (`spec`): `add(x)`.
            Layer::Add => "add".to_string(),
            Layer::Concatenate => "concatenate".to_string(),
        }
    }

    /// Its ONNX nodes on `input` (`onnx::export` chains them): none for dropout and
    /// augmentation, the identity outside training.
    pub fn onnx(&self, input: Shape) -> Vec<onnx::Op> {
        use onnx::Op;
        match *self {
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                relu,
            } => conv2d::onnx(input, out_channels, kernel, stride, padding, bias, relu),
            Layer::MaxPool2d { size, stride } => pool::onnx(false, Some(size), stride),
            Layer::AvgPool2d { size, stride } => pool::onnx(true, Some(size), stride),
            Layer::GlobalAvgPool2d => pool::onnx(true, None, 1),
            Layer::Dense { relu, .. } => dense::onnx(relu),
            Layer::Dropout { .. } | Layer::Augment(_) => Vec::new(),
            Layer::BatchNorm { epsilon, .. } => batchnorm::onnx(epsilon),
            Layer::Relu => vec![Op::new("Relu")],
            Layer::Add | Layer::Concatenate => merge::onnx(*self),
        }
    }

    /// Keras' default name stem and class, as `model.summary()` prints them.
    pub fn keras_names(&self) -> (&'static str, &'static str) {
        match self {
            Layer::Conv2d { .. } => ("conv2d", "Conv2D"),
            Layer::MaxPool2d { .. } => ("max_pooling2d", "MaxPooling2D"),
            Layer::AvgPool2d { .. } => ("average_pooling2d", "AveragePooling2D"),
            Layer::GlobalAvgPool2d => ("global_average_pooling2d", "GlobalAveragePooling2D"),
            Layer::Dense { .. } => ("dense", "Dense"),
            Layer::Dropout { .. } => ("dropout", "Dropout"),
            Layer::Relu => ("activation", "Activation"),
            Layer::BatchNorm { .. } => ("batch_normalization", "BatchNormalization"),
            Layer::Augment(a) => a.keras_names(),
            Layer::Add => ("add", "Add"),
            Layer::Concatenate => ("concatenate", "Concatenate"),
        }
    }

    /// Where the kind may stand in a model description.
    pub fn placement(&self) -> Placement {
        match self {
            Layer::Conv2d { .. } | Layer::MaxPool2d { .. } | Layer::AvgPool2d { .. } => {
                Placement::Spatial
            }
            Layer::GlobalAvgPool2d => Placement::Flattening,
            Layer::Dense { .. } => Placement::Flat,
            Layer::Dropout { .. } | Layer::Relu => Placement::Elementwise,
            Layer::BatchNorm { .. } => Placement::PerChannel,
            Layer::Augment(_) => Placement::First,
            Layer::Add | Layer::Concatenate => Placement::Merge,
        }
    }
}
