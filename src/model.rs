//! The layer sequence, shape inference, the flat parameter layout, Keras' glorot-uniform init and
//! checkpoint I/O (safetensors, PyTorch layouts and names).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::files::write_atomic;
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
        if input
            .c
            .checked_mul(input.h)
            .and_then(|v| v.checked_mul(input.w))
            .is_none_or(|n| n > MAX_TENSOR)
        {
            return Err(Error::Model(format!(
                "input shape {input} is larger than {MAX_TENSOR} values"
            )));
        }
        let mut plans = Vec::new();
        let mut params = Vec::new();
        let mut flat_len = 0;
        let (mut n_conv, mut n_pool, mut n_dense) = (0, 0, 0);
        let (mut n_bn, mut n_drop, mut n_relu) = (0, 0, 0);
        let mut shape = input;
        let mut add =
            |params: &mut Vec<ParamTensor>, name: String, dims: Vec<usize>, init: Init| {
                let len = dims.iter().product();
                if len > MAX_TENSOR {
                    return Err(Error::Model(format!(
                        "tensor {name} {dims:?} has {len} values, more than {MAX_TENSOR}"
                    )));
                }
                params.push(ParamTensor {
                    trainable: !name.contains(".running_"),
                    name,
                    shape: dims,
                    offset: flat_len,
                    len,
                    init,
                });
                flat_len += usize::div_ceil(len, PARAM_ALIGN) * PARAM_ALIGN;
                Ok(params.len() - 1)
            };
        for (i, &layer) in layers.iter().enumerate() {
            let mut stats = None;
            let (name, output, weight, bias) = match layer {
                Layer::Conv2d {
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    bias,
                    ..
                } => {
                    let g = ConvGeometry::of(shape, out_channels, kernel, stride, padding)
                        .map_err(|e| Error::Model(format!("layer {}: {e}", i + 1)))?;
                    for (what, s) in [
                        ("padded input", g.padded),
                        ("output before the stride", g.full),
                    ] {
                        if s.c
                            .checked_mul(s.h)
                            .and_then(|v| v.checked_mul(s.w))
                            .is_none_or(|n| n > MAX_TENSOR)
                        {
                            return Err(Error::Model(format!(
                                "layer {}: the conv's {what} {s} per image is larger than {MAX_TENSOR} values",
                                i + 1
                            )));
                        }
                    }
                    n_conv += 1;
                    let name = format!("conv{n_conv}");
                    let w = add(
                        &mut params,
                        format!("{name}.weight"),
                        vec![out_channels, shape.c, kernel, kernel],
                        Init::Glorot,
                    )?;
                    let b = if bias {
                        Some(add(
                            &mut params,
                            format!("{name}.bias"),
                            vec![out_channels],
                            Init::Zeros,
                        )?)
                    } else {
                        None
                    };
                    (name, g.out, Some(w), b)
                }
                Layer::MaxPool2d { size, stride } | Layer::AvgPool2d { size, stride } => {
                    if size == 0 || stride == 0 || size > shape.h || size > shape.w {
                        let kind = if matches!(layer, Layer::MaxPool2d { .. }) {
                            "max-pool"
                        } else {
                            "average pool"
                        };
                        return Err(Error::Model(format!(
                            "layer {}: {kind} {size}x{size} stride {stride} does not fit input {shape}",
                            i + 1
                        )));
                    }
                    let out = Shape::new(
                        shape.c,
                        (shape.h - size) / stride + 1,
                        (shape.w - size) / stride + 1,
                    );
                    n_pool += 1;
                    (format!("pool{n_pool}"), out, None, None)
                }
                Layer::Dense { out, .. } => {
                    if out == 0 {
                        return Err(Error::Model(format!(
                            "layer {}: dense layer with 0 outputs",
                            i + 1
                        )));
                    }
                    n_dense += 1;
                    let name = format!("fc{n_dense}");
                    let w = add(
                        &mut params,
                        format!("{name}.weight"),
                        vec![out, shape.len()],
                        Init::Glorot,
                    )?;
                    let b = add(&mut params, format!("{name}.bias"), vec![out], Init::Zeros)?;
                    (name, Shape::new(out, 1, 1), Some(w), Some(b))
                }
                Layer::GlobalAvgPool2d => {
                    n_pool += 1;
                    (
                        format!("pool{n_pool}"),
                        Shape::new(shape.c, 1, 1),
                        None,
                        None,
                    )
                }
                Layer::Relu => {
                    n_relu += 1;
                    (format!("relu{n_relu}"), shape, None, None)
                }
                Layer::Dropout { rate } => {
                    Layer::check_rate(rate)
                        .map_err(|e| Error::Model(format!("layer {}: {e}", i + 1)))?;
                    n_drop += 1;
                    (format!("dropout{n_drop}"), shape, None, None)
                }
                Layer::BatchNorm { momentum, epsilon } => {
                    Layer::check_batchnorm(momentum, epsilon)
                        .map_err(|e| Error::Model(format!("layer {}: {e}", i + 1)))?;
                    n_bn += 1;
                    let name = format!("bn{n_bn}");
                    let c = vec![shape.c];
                    let w = add(&mut params, format!("{name}.weight"), c.clone(), Init::Ones)?;
                    let b = add(&mut params, format!("{name}.bias"), c.clone(), Init::Zeros)?;
                    stats = Some(add(
                        &mut params,
                        format!("{name}.running_mean"),
                        c.clone(),
                        Init::Zeros,
                    )?);
                    add(&mut params, format!("{name}.running_var"), c, Init::Ones)?;
                    (name, shape, Some(w), Some(b))
                }
            };
            if output
                .c
                .checked_mul(output.h)
                .and_then(|v| v.checked_mul(output.w))
                .is_none_or(|n| n > MAX_TENSOR)
            {
                return Err(Error::Model(format!(
                    "layer {} ({name}): output {output} per image is larger than {MAX_TENSOR} values",
                    i + 1
                )));
            }
            plans.push(LayerPlan {
                layer,
                name,
                input: shape,
                output,
                weight,
                bias,
                stats,
            });
            shape = output;
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
            params,
            flat_len,
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

    /// The layers in the one-line text form (`spec`): `conv2d(32,3,relu) maxpool(2) ... flatten
    /// dense(128,relu) dense(10)`.
    pub fn describe(&self) -> String {
        use crate::spec::LayerSpec;
        let mut specs = Vec::new();
        let at = self.flatten_at();
        for (i, l) in self.layers.iter().enumerate() {
            if at == Some(i) {
                specs.push(LayerSpec::Flatten);
            }
            specs.push(LayerSpec::Layer(l.layer));
        }
        crate::spec::to_text(&specs)
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

    /// Writes the parameters as f32 safetensors under their PyTorch names, atomically
    /// (a temporary file renamed into place), so a failure never leaves a torn checkpoint.
    /// `meta` adds string entries to the header's metadata (class names, dataset, ...); the
    /// model's input shape (`input`, CxHxW) and layers (`architecture`) are always recorded.
    pub fn save_safetensors(
        &self,
        flat: &[f32],
        path: &Path,
        meta: &[(&str, String)],
    ) -> Result<()> {
        if flat.len() != self.flat_len {
            return Err(Error::Checkpoint {
                path: path.into(),
                msg: format!(
                    "{} parameters given, the model has {}",
                    flat.len(),
                    self.flat_len
                ),
            });
        }
        let bytes: Vec<Vec<u8>> = self
            .params
            .iter()
            .map(|p| {
                flat[p.offset..p.offset + p.len]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect()
            })
            .collect();
        let mut views = Vec::new();
        for (p, b) in self.params.iter().zip(&bytes) {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, p.shape.clone(), b)
                    .map_err(|e| Error::Checkpoint {
                    path: path.into(),
                    msg: e.to_string(),
                })?;
            views.push((p.name.clone(), view));
        }
        let extra = meta;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        meta.insert("input".to_string(), self.input.to_string());
        meta.insert("architecture".to_string(), self.describe());
        for (k, v) in extra {
            meta.insert(k.to_string(), v.clone());
        }
        let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Checkpoint {
            path: path.into(),
            msg: e.to_string(),
        })?;
        write_atomic(path, &data)
    }

    /// Reads a checkpoint written by `save_safetensors` (or by PyTorch for an equivalent module):
    /// every tensor must be present with this model's name, shape and dtype f32.
    pub fn load_safetensors(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let err = |msg: String| Error::Checkpoint {
            path: path.into(),
            msg,
        };
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let mut extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !self.params.iter().any(|p| p.name == **n))
            .map(|n| n.to_string())
            .collect();
        if !extra.is_empty() {
            extra.sort();
            let expected: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
            return Err(err(format!(
                "tensors [{}] are not part of this model, which has [{}]",
                extra.join(", "),
                expected.join(", ")
            )));
        }
        let mut flat = vec![0.0f32; self.flat_len];
        for p in &self.params {
            let t = st.tensor(&p.name).map_err(|_| {
                let expected: Vec<String> = self
                    .params
                    .iter()
                    .map(|p| format!("{} {:?}", p.name, p.shape))
                    .collect();
                err(format!(
                    "missing tensor `{}`; this model needs [{}]",
                    p.name,
                    expected.join(", ")
                ))
            })?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(err(format!(
                    "tensor `{}` has dtype {:?}, expected F32",
                    p.name,
                    t.dtype()
                )));
            }
            if t.shape() != p.shape.as_slice() {
                return Err(err(format!(
                    "tensor `{}` has shape {:?}, this model needs {:?}",
                    p.name,
                    t.shape(),
                    p.shape
                )));
            }
            let dst = &mut flat[p.offset..p.offset + p.len];
            for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            if let Some(i) = dst.iter().position(|x| !x.is_finite()) {
                return Err(err(format!(
                    "tensor `{}` holds a non-finite value at {i}",
                    p.name
                )));
            }
        }
        Ok(flat)
    }
}

/// A model file as `train` writes it, with everything needed to use it alone.
#[derive(Clone, Debug)]
pub struct SavedModel {
    pub model: Model,
    pub weights: Vec<f32>,
    pub classes: Vec<String>,
    /// The dataset it was trained on (`mnist`, `fashion-mnist`, `folder`), if recorded.
    pub dataset: Option<String>,
}

/// Parses `CxHxW`.
fn parse_shape(s: &str) -> Option<Shape> {
    let v: Vec<usize> = s
        .split('x')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [c, h, w] => Some(Shape::new(c, h, w)),
        _ => None,
    }
}

/// Rebuilds the model of a `model.safetensors` from its metadata (input shape, layers, class
/// names) and loads its weights. A file without that metadata (written by an older gpu-cnn or by
/// PyTorch) is taken for the MNIST seed model, with a note.
pub fn load_saved(path: &Path) -> Result<SavedModel> {
    let (_, meta) = read_safetensors(path)?;
    let err = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let (input, classes) = match (meta.get("input"), meta.get("classes")) {
        (Some(i), Some(c)) => {
            let input = parse_shape(i)
                .ok_or_else(|| err(format!("metadata `input` is `{i}`, expected CxHxW")))?;
            let classes: Vec<String> = serde_json::from_str(c)
                .map_err(|e| err(format!("metadata `classes` is not a list of names: {e}")))?;
            (input, classes)
        }
        _ => {
            crate::output::note(format!(
                "{} has no gpu-cnn metadata; taking it for the MNIST seed model",
                path.display()
            ));
            (
                Shape::new(1, 28, 28),
                (0..10).map(|d| d.to_string()).collect(),
            )
        }
    };
    if classes.is_empty() || classes.len() > 256 {
        return Err(err(format!(
            "{} classes recorded (1 to 256 supported)",
            classes.len()
        )));
    }
    let model = match meta.get("architecture") {
        Some(arch) => crate::spec::build(arch, input, classes.len(), true)
            .map_err(|e| err(format!("its layers `{arch}` do not rebuild: {e}")))?,
        None => Model::seed(input, classes.len()).map_err(|e| err(e.to_string()))?,
    };
    let weights =
        model
            .load_safetensors(path)
            .map_err(|e| match (e, meta.get("architecture")) {
                (Error::Checkpoint { path, msg }, Some(arch)) => Error::Checkpoint {
                    path,
                    msg: format!("its tensors do not match its recorded layers `{arch}`: {msg}"),
                },
                (e, _) => e,
            })?;
    Ok(SavedModel {
        model,
        weights,
        classes,
        dataset: meta.get("dataset").cloned(),
    })
}

/// The bytes of a safetensors file and the string metadata of its header (empty if none).
pub fn read_safetensors(path: &Path) -> Result<(Vec<u8>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::Checkpoint {
            path: path.into(),
            msg: format!("not a safetensors file: {e}"),
        })?;
    let meta = header.metadata().clone().unwrap_or_default();
    Ok((bytes, meta))
}
