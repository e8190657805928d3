//! The layer sequence, shape inference, the flat parameter layout, Keras' glorot-uniform init and
//! checkpoint I/O (safetensors, PyTorch layouts and names).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Floats between tensor starts in the flat parameter buffer: 256 bytes, the largest
/// `min_storage_buffer_offset_alignment` wgpu allows, so each tensor can be bound on its own.
pub const PARAM_ALIGN: usize = 64;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// 2-D convolution, stride 1, no padding, optional ReLU.
    Conv2d {
        out_channels: usize,
        kernel: usize,
        relu: bool,
    },
    /// Max pooling with stride = size (floor).
    MaxPool2d { size: usize },
    /// Fully connected layer on the flattened (C, H, W) input, optional ReLU.
    Dense { out: usize, relu: bool },
}

/// One tensor of the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// A layer with its inferred shapes and, for conv/dense, the indices of its weight and bias
/// in `Model::params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlan {
    pub layer: Layer,
    pub name: String,
    pub input: Shape,
    pub output: Shape,
    pub weight: Option<usize>,
    pub bias: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
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
        let mut plans = Vec::new();
        let mut params = Vec::new();
        let mut flat_len = 0;
        let (mut n_conv, mut n_pool, mut n_dense) = (0, 0, 0);
        let mut shape = input;
        let mut add = |params: &mut Vec<ParamTensor>, name: String, dims: Vec<usize>| {
            let len = dims.iter().product();
            params.push(ParamTensor {
                name,
                shape: dims,
                offset: flat_len,
                len,
            });
            flat_len += usize::div_ceil(len, PARAM_ALIGN) * PARAM_ALIGN;
            params.len() - 1
        };
        for (i, &layer) in layers.iter().enumerate() {
            let (name, output, weight, bias) = match layer {
                Layer::Conv2d {
                    out_channels,
                    kernel,
                    ..
                } => {
                    if kernel == 0 || kernel > shape.h || kernel > shape.w || out_channels == 0 {
                        return Err(Error::Model(format!(
                            "layer {}: conv {kernel}x{kernel} -> {out_channels} does not fit input {shape}",
                            i + 1
                        )));
                    }
                    n_conv += 1;
                    let name = format!("conv{n_conv}");
                    let w = add(
                        &mut params,
                        format!("{name}.weight"),
                        vec![out_channels, shape.c, kernel, kernel],
                    );
                    let b = add(&mut params, format!("{name}.bias"), vec![out_channels]);
                    let out = Shape::new(out_channels, shape.h + 1 - kernel, shape.w + 1 - kernel);
                    (name, out, Some(w), Some(b))
                }
                Layer::MaxPool2d { size } => {
                    if size == 0 || size > shape.h || size > shape.w {
                        return Err(Error::Model(format!(
                            "layer {}: max-pool {size}x{size} does not fit input {shape}",
                            i + 1
                        )));
                    }
                    let out = Shape::new(
                        shape.c,
                        (shape.h - size) / size + 1,
                        (shape.w - size) / size + 1,
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
                    );
                    let b = add(&mut params, format!("{name}.bias"), vec![out]);
                    (name, Shape::new(out, 1, 1), Some(w), Some(b))
                }
            };
            plans.push(LayerPlan {
                layer,
                name,
                input: shape,
                output,
                weight,
                bias,
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
    /// Dense(128,relu) - Dense(10) (softmax in the loss).
    pub fn keras_mnist() -> Model {
        let layers = [
            Layer::Conv2d {
                out_channels: 32,
                kernel: 3,
                relu: true,
            },
            Layer::MaxPool2d { size: 2 },
            Layer::Conv2d {
                out_channels: 64,
                kernel: 3,
                relu: true,
            },
            Layer::MaxPool2d { size: 2 },
            Layer::Dense {
                out: 128,
                relu: true,
            },
            Layer::Dense {
                out: 10,
                relu: false,
            },
        ];
        Model::new(Shape::new(1, 28, 28), &layers).expect("the built-in model is valid")
    }

    /// Number of trainable parameters (no padding).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.len).sum()
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
            if p.shape.len() < 2 {
                continue;
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
    pub fn save_safetensors(&self, flat: &[f32], path: &Path) -> Result<()> {
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
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
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
        let mut flat = vec![0.0f32; self.flat_len];
        for p in &self.params {
            let t = st
                .tensor(&p.name)
                .map_err(|_| err(format!("missing tensor `{}`", p.name)))?;
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

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
