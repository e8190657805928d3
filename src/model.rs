//! A model: the layer sequence with every shape inferred (each kind's own rules, in `layers`),
//! the flat parameter layout, and Keras' glorot-uniform init. Checkpoint I/O is `checkpoint`.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::layers::layer::{Placement, Role, TensorSpec};
use crate::layers::shape::fits_tensor;
pub use crate::layers::{
    ConvGeometry, Init, Layer, LayerPlan, Padding, Shape, MAX_TENSOR, PARAM_ALIGN,
};
use crate::rng::Rng;

/// The flat parameter buffer being laid out: tensors in order, each 256-byte aligned.
#[derive(Default)]
struct Layout {
    params: Vec<ParamTensor>,
    flat_len: usize,
}

impl Layout {
    /// Adds a tensor; returns its index.
    fn add(&mut self, name: String, t: TensorSpec) -> Result<usize> {
        let TensorSpec {
            dims, init, role, ..
        } = t;
        let len = dims.iter().product();
        if len > MAX_TENSOR {
            return Err(Error::Model(format!(
                "tensor {name} {dims:?} has {len} values, more than {MAX_TENSOR}"
            )));
        }
        self.params.push(ParamTensor {
            trainable: role != Role::Statistic,
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

/// One tensor of the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
    pub init: Init,
    /// False for a layer's statistics (`Role::Statistic`): updated by the forward pass, never by
    /// Adam (their gradient stays zero, so Adam leaves them as they are).
    pub trainable: bool,
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
    /// Whether layer `i`'s backward pass needs its input's gradient: not for the first layer,
    /// nor for one after augmentation layers alone (they come first and pass no gradient on).
    pub fn input_gradient(&self, i: usize) -> bool {
        self.layers[..i.min(self.layers.len())]
            .iter()
            .any(|l| !matches!(l.layer, Layer::Augment(_)))
    }

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
            // Augmentation passes no gradient back: anything trained before it would not learn.
            if matches!(layer, Layer::Augment(_))
                && layers[..i].iter().any(|l| !matches!(l, Layer::Augment(_)))
            {
                return Err(Error::Model(format!(
                    "layer {} ({}): augmentation layers come before every other layer",
                    i + 1,
                    layer.to_text()
                )));
            }
            let kind = layer.prefix();
            let n = counts.entry(kind).or_default();
            *n += 1;
            let name = format!("{kind}{n}");
            let output = layer
                .output(shape)
                .map_err(|e| Error::Model(format!("layer {}: {e}", i + 1)))?;
            let mut plan = LayerPlan {
                layer,
                name,
                input: shape,
                output,
                weight: None,
                bias: None,
                stats: None,
            };
            for t in layer.tensors(shape) {
                let role = t.role;
                let at = layout.add(format!("{}.{}", plan.name, t.suffix), t)?;
                match role {
                    Role::Weight => plan.weight = Some(at),
                    Role::Bias => plan.bias = Some(at),
                    Role::Statistic => plan.stats = plan.stats.or(Some(at)),
                }
            }
            if !fits_tensor(output) {
                return Err(Error::Model(format!(
                    "layer {} ({}): output {} per image is larger than {MAX_TENSOR} values",
                    i + 1,
                    plan.name,
                    plan.output
                )));
            }
            shape = output;
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
        let place = |i: usize| self.layers[i].layer.placement();
        let first_flat = (0..self.layers.len()).find(|&i| place(i) == Placement::Flat)?;
        if (0..first_flat).any(|i| place(i) == Placement::Flattening) {
            return None;
        }
        let mut at = first_flat;
        while at > 0 && place(at - 1) == Placement::Elementwise {
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

    /// Number of trainable parameters (statistics excluded).
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
