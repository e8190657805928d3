//! The layer sequence, shape inference, the flat parameter layout, Keras' glorot-uniform init and
//! checkpoint I/O (safetensors, PyTorch layouts and names).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Floats between tensor starts in the flat parameter buffer: 256 bytes, the largest
/// `min_storage_buffer_offset_alignment` wgpu allows, so each tensor can be bound on its own.
pub const PARAM_ALIGN: usize = 64;
/// Most values one parameter tensor or activation may hold (2^28 floats, 1 GiB), so that every
/// size derived from a model fits the GPU's 32-bit indices.
pub const MAX_TENSOR: usize = 1 << 28;

/// An activation shape (channels, height, width) of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.c, self.h, self.w)
    }
}

/// How a convolution pads its input, as Keras' `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: the output is (in - kernel) / stride + 1.
    Valid,
    /// TensorFlow's: output ceil(in / stride), total padding max((out - 1) * stride + kernel -
    /// in, 0), the smaller half before, the larger after.
    Same,
}

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
}

/// Where a convolution's work happens: `input` zero-padded by (top, left, bottom, right) to
/// `padded`, the stride-1 convolution over it to `full` (H x W), and every `stride`-th pixel of
/// that the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub pad: [usize; 4],
    pub padded: Shape,
    pub full: Shape,
    pub out: Shape,
    pub stride: usize,
}

impl ConvGeometry {
    pub fn of(
        input: Shape,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
    ) -> std::result::Result<ConvGeometry, String> {
        if kernel == 0 || stride == 0 || out_channels == 0 {
            return Err(format!(
                "conv {kernel}x{kernel} stride {stride} -> {out_channels} has a zero size"
            ));
        }
        let pads = |n: usize| -> (usize, usize) {
            match padding {
                Padding::Valid => (0, 0),
                Padding::Same => {
                    let out = n.div_ceil(stride);
                    let total = ((out - 1) * stride + kernel).saturating_sub(n);
                    (total / 2, total - total / 2)
                }
            }
        };
        let ((top, bottom), (left, right)) = (pads(input.h), pads(input.w));
        let padded = Shape::new(input.c, input.h + top + bottom, input.w + left + right);
        if kernel > padded.h || kernel > padded.w {
            return Err(format!(
                "conv {kernel}x{kernel} -> {out_channels} does not fit input {input}"
            ));
        }
        let full = Shape::new(out_channels, padded.h + 1 - kernel, padded.w + 1 - kernel);
        let out = Shape::new(
            out_channels,
            (full.h - 1) / stride + 1,
            (full.w - 1) / stride + 1,
        );
        Ok(ConvGeometry {
            pad: [top, left, bottom, right],
            padded,
            full,
            out,
            stride,
        })
    }
    pub fn padded_input(&self) -> bool {
        self.pad.iter().any(|&p| p > 0)
    }
    pub fn strided(&self) -> bool {
        self.stride > 1
    }
}

impl Layer {
    /// A stride-1, `valid`, biased convolution: the seed model's kind.
    pub fn conv(out_channels: usize, kernel: usize, relu: bool) -> Layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            stride: 1,
            padding: Padding::Valid,
            bias: true,
            relu,
        }
    }

    /// Dropout rates gpu-cnn trains with: [0, 1).
    pub fn check_rate(rate: f32) -> std::result::Result<(), String> {
        if rate.is_finite() && (0.0..1.0).contains(&rate) {
            Ok(())
        } else {
            Err(format!("dropout rate {rate} is not in [0, 1)"))
        }
    }
    /// Batch-norm options gpu-cnn trains with: momentum in [0, 1], epsilon > 0.
    pub fn check_batchnorm(momentum: f32, epsilon: f32) -> std::result::Result<(), String> {
        if !(momentum.is_finite() && (0.0..=1.0).contains(&momentum)) {
            return Err(format!("batchnorm momentum {momentum} is not in [0, 1]"));
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(format!("batchnorm epsilon {epsilon} is not above 0"));
        }
        Ok(())
    }
}

/// Whether a per-image shape fits `MAX_TENSOR` (and `usize`).
fn fits_tensor(s: Shape) -> bool {
    s.c.checked_mul(s.h)
        .and_then(|v| v.checked_mul(s.w))
        .is_some_and(|n| n <= MAX_TENSOR)
}

/// The flat parameter buffer being laid out: tensors in order, each 256-byte aligned.
#[derive(Default)]
struct Layout {
    params: Vec<ParamTensor>,
    flat_len: usize,
}

impl Layout {
    /// Adds a tensor; returns its index.
    fn add(&mut self, name: String, dims: Vec<usize>, init: Init) -> Result<usize> {
        let len = dims.iter().product();
        if len > MAX_TENSOR {
            return Err(Error::Model(format!(
                "tensor {name} {dims:?} has {len} values, more than {MAX_TENSOR}"
            )));
        }
        self.params.push(ParamTensor {
            trainable: !name.contains(".running_"),
            name,
            shape: dims,
            offset: self.flat_len,
            len,
            init,
        });
        self.flat_len += usize::div_ceil(len, PARAM_ALIGN) * PARAM_ALIGN;
        Ok(self.params.len() - 1)
    }
}

impl Layer {
    /// The prefix of the layer's tensor names, numbered per prefix (`conv1`, `pool2`, `fc1`).
    fn name_prefix(&self) -> &'static str {
        match self {
            Layer::Conv2d { .. } => "conv",
            Layer::MaxPool2d { .. } | Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => "pool",
            Layer::Dense { .. } => "fc",
            Layer::Dropout { .. } => "dropout",
            Layer::BatchNorm { .. } => "bn",
            Layer::Relu => "relu",
        }
    }

    /// Layer `i`, named `name`, on `input`: its output shape, and its tensors added to `layout`.
    /// Errors name the layer.
    fn plan(self, i: usize, name: String, input: Shape, layout: &mut Layout) -> Result<LayerPlan> {
        let at = |e: String| Error::Model(format!("layer {}: {e}", i + 1));
        let mut p = LayerPlan {
            layer: self,
            name,
            input,
            output: input,
            weight: None,
            bias: None,
            stats: None,
        };
        let tensor = |what: &str| format!("{}.{what}", p.name);
        match self {
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                ..
            } => {
                let g =
                    ConvGeometry::of(input, out_channels, kernel, stride, padding).map_err(at)?;
                for (what, s) in [
                    ("padded input", g.padded),
                    ("output before the stride", g.full),
                ] {
                    if !fits_tensor(s) {
                        return Err(at(format!(
                            "the conv's {what} {s} per image is larger than {MAX_TENSOR} values"
                        )));
                    }
                }
                let dims = vec![out_channels, input.c, kernel, kernel];
                p.weight = Some(layout.add(tensor("weight"), dims, Init::Glorot)?);
                if bias {
                    p.bias = Some(layout.add(tensor("bias"), vec![out_channels], Init::Zeros)?);
                }
                p.output = g.out;
            }
            Layer::MaxPool2d { size, stride } | Layer::AvgPool2d { size, stride } => {
                if size == 0 || stride == 0 || size > input.h || size > input.w {
                    let kind = match self {
                        Layer::MaxPool2d { .. } => "max-pool",
                        _ => "average pool",
                    };
                    return Err(at(format!(
                        "{kind} {size}x{size} stride {stride} does not fit input {input}"
                    )));
                }
                let out = |n: usize| (n - size) / stride + 1;
                p.output = Shape::new(input.c, out(input.h), out(input.w));
            }
            Layer::Dense { out, .. } => {
                if out == 0 {
                    return Err(at("dense layer with 0 outputs".into()));
                }
                let dims = vec![out, input.len()];
                p.weight = Some(layout.add(tensor("weight"), dims, Init::Glorot)?);
                p.bias = Some(layout.add(tensor("bias"), vec![out], Init::Zeros)?);
                p.output = Shape::new(out, 1, 1);
            }
            Layer::GlobalAvgPool2d => p.output = Shape::new(input.c, 1, 1),
            Layer::Relu => {}
            Layer::Dropout { rate } => Layer::check_rate(rate).map_err(at)?,
            Layer::BatchNorm { momentum, epsilon } => {
                Layer::check_batchnorm(momentum, epsilon).map_err(at)?;
                let c = vec![input.c];
                p.weight = Some(layout.add(tensor("weight"), c.clone(), Init::Ones)?);
                p.bias = Some(layout.add(tensor("bias"), c.clone(), Init::Zeros)?);
                p.stats = Some(layout.add(tensor("running_mean"), c.clone(), Init::Zeros)?);
                layout.add(tensor("running_var"), c, Init::Ones)?;
            }
        }
        Ok(p)
    }
}

/// How a parameter tensor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Keras' glorot_uniform (kernels).
    Glorot,
    Zeros,
    /// Batch norm's gamma and moving variance.
    Ones,
}

/// One tensor of the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
    pub init: Init,
    /// False for batch norm's moving statistics: updated by the forward pass, never by Adam
    /// (their gradient stays zero, so Adam leaves them as they are).
    pub trainable: bool,
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

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub input: Shape,
    pub classes: usize,
    pub layers: Vec<LayerPlan>,
    pub params: Vec<ParamTensor>,
    /// Length of the flat parameter buffer, alignment padding included.
    pub flat_len: usize,
}

impl Model {
    /// Infers every shape and lays out the parameters. The last layer must be a Dense layer
    /// without ReLU: its outputs are the logits of the softmax cross-entropy.
    pub fn new(input: Shape, layers: &[Layer]) -> Result<Model> {
        if input.is_empty() {
            return Err(Error::Model(format!("input shape {input} is empty")));
        }
        if !fits_tensor(input) {
            return Err(Error::Model(format!(
                "input shape {input} is larger than {MAX_TENSOR} values"
            )));
        }
        let mut layout = Layout::default();
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        let mut plans = Vec::new();
        let mut shape = input;
        for (i, &layer) in layers.iter().enumerate() {
            let kind = layer.name_prefix();
            let n = counts.entry(kind).or_default();
            *n += 1;
            let name = format!("{kind}{n}");
            let plan = layer.plan(i, name, shape, &mut layout)?;
            if !fits_tensor(plan.output) {
                return Err(Error::Model(format!(
                    "layer {} ({}): output {} per image is larger than {MAX_TENSOR} values",
                    i + 1,
                    plan.name,
                    plan.output
                )));
            }
            shape = plan.output;
            plans.push(plan);
        }
        let classes = match layers.last() {
            Some(Layer::Dense { out, relu: false }) => *out,
            _ => {
                return Err(Error::Model(
                    "the last layer must be a Dense layer without ReLU (the logits)".into(),
                ))
            }
        };
        Ok(Model {
            input,
            classes,
            layers: plans,
            params: layout.params,
            flat_len: layout.flat_len,
        })
    }

    /// The Keras tutorial model: Conv(32,3x3,relu) - Pool2 - Conv(64,3x3,relu) - Pool2 - Flatten -
    /// Dense(128,relu) - Dense(classes) (softmax in the loss), on `input`. An error names the
    /// layer when the input is too small for it.
    pub fn seed(input: Shape, classes: usize) -> Result<Model> {
        let layers = [
            Layer::conv(32, 3, true),
            Layer::MaxPool2d { size: 2, stride: 2 },
            Layer::conv(64, 3, true),
            Layer::MaxPool2d { size: 2, stride: 2 },
            Layer::Dense {
                out: 128,
                relu: true,
            },
            Layer::Dense {
                out: classes,
                relu: false,
            },
        ];
        Model::new(input, &layers).map_err(|e| {
            Error::Model(format!(
                "the seed CNN does not fit {input} images: {}",
                e.to_string().trim_start_matches("model: ")
            ))
        })
    }

    /// The seed model on MNIST's 1x28x28 images and 10 classes.
    pub fn keras_mnist() -> Model {
        Model::seed(Shape::new(1, 28, 28), 10).expect("the built-in model is valid")
    }

    /// Where Keras' Flatten goes: before layer `i`, after the last spatial layer that precedes the
    /// first dense one (element-wise dropout and relu layers in between come after it, as in
    /// `flatten dropout(0.5) dense(10)`). `None` when global pooling already made the output flat.
    pub fn flatten_at(&self) -> Option<usize> {
        let first_dense = self
            .layers
            .iter()
            .position(|l| matches!(l.layer, Layer::Dense { .. }))?;
        if self.layers[..first_dense]
            .iter()
            .any(|l| l.layer == Layer::GlobalAvgPool2d)
        {
            return None;
        }
        let mut at = first_dense;
        while at > 0
            && matches!(
                self.layers[at - 1].layer,
                Layer::Dropout { .. } | Layer::Relu
            )
        {
            at -= 1;
        }
        Some(at)
    }

    /// Checks that `d`'s images have this model's input shape and its labels are below the class
    /// count; `what` names the set in errors. Both the GPU and the CPU trainers rely on it.
    pub fn check_data(&self, what: &str, d: &crate::data::Dataset) -> Result<()> {
        if d.is_empty() {
            return Err(Error::Dataset(format!("the {what} set is empty")));
        }
        let shape = Shape::new(d.channels, d.rows, d.cols);
        if shape != self.input {
            return Err(Error::Dataset(format!(
                "{what} images are {shape} (channels x rows x cols), the model takes {}",
                self.input
            )));
        }
        if d.images.len() != d.len() * d.pixels() {
            return Err(Error::Dataset(format!(
                "the {what} set holds {} bytes of images, {} images of {shape} need {}",
                d.images.len(),
                d.len(),
                d.len() * d.pixels()
            )));
        }
        if let Some(i) = d.labels.iter().position(|&l| l as usize >= self.classes) {
            return Err(Error::Dataset(format!(
                "{what} label of record {i} is {}, but the model has {} classes",
                d.labels[i], self.classes
            )));
        }
        Ok(())
    }

    /// Number of parameters, trainable or not (no padding).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.len).sum()
    }

    /// Number of trainable parameters (batch norm's moving statistics excluded).
    pub fn trainable_count(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.len)
            .sum()
    }

    pub fn tensor<'a>(&self, flat: &'a [f32], index: usize) -> &'a [f32] {
        let p = &self.params[index];
        &flat[p.offset..p.offset + p.len]
    }

    /// Keras' glorot_uniform for weights (conv: fan_in = c_in*kh*kw, fan_out = c_out*kh*kw),
    /// zero biases, from a seeded generator. Padding stays zero.
    pub fn init_glorot(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut flat = vec![0.0f32; self.flat_len];
        for p in &self.params {
            match p.init {
                Init::Zeros => continue,
                Init::Ones => {
                    flat[p.offset..p.offset + p.len].fill(1.0);
                    continue;
                }
                Init::Glorot => {}
            }
            let receptive: usize = p.shape[2..].iter().product();
            let fan_in = p.shape[1] * receptive;
            let fan_out = p.shape[0] * receptive;
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            for x in &mut flat[p.offset..p.offset + p.len] {
                *x = rng.uniform(-limit, limit) as f32;
            }
        }
        flat
    }
}
