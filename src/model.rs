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
    /// Whether layer `i`'s backward pass needs its (first) input's gradient: not for the first
    /// layer, nor for one after augmentation layers alone (they come first and pass no gradient
    /// on).
    pub fn input_gradient(&self, i: usize) -> bool {
        self.layers
            .get(i)
            .is_some_and(|l| self.needs_gradient(l.inputs[0]))
    }

    /// Whether tensor `t` (0 the input, `j + 1` layer j's output) needs its gradient: not the
    /// input, nor an augmentation layer's output.
    pub fn needs_gradient(&self, t: usize) -> bool {
        t > 0 && !matches!(self.layers[t - 1].layer, Layer::Augment(_))
    }

    /// The shape of tensor `t` per image: 0 is the input, `j + 1` the output of layer j.
    pub fn tensor_shape(&self, t: usize) -> Shape {
        match t {
            0 => self.input,
            _ => self.layers[t - 1].output,
        }
    }

    /// The shapes of layer `i`'s inputs, in order.
    pub fn input_shapes(&self, i: usize) -> Vec<Shape> {
        self.layers[i]
            .inputs
            .iter()
            .map(|&t| self.tensor_shape(t))
            .collect()
    }

    /// The (layer, input slot) pairs that read tensor `t`, in layer order.
    pub fn consumers(&self, t: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            for (k, &u) in l.inputs.iter().enumerate() {
                if u == t {
                    out.push((i, k));
                }
            }
        }
        out
    }

    /// Whether each layer reads the one before it alone (a Sequential model).
    pub fn is_chain(&self) -> bool {
        self.layers
            .iter()
            .enumerate()
            .all(|(i, l)| l.inputs.as_slice() == [i])
    }

    /// A chain of `layers` (each reads the one before it; see `graph`).
    pub fn new(input: Shape, layers: &[Layer]) -> Result<Model> {
        let nodes: Vec<(Layer, Vec<usize>)> = layers
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, vec![i]))
            .collect();
        Model::graph(input, &nodes)
    }

    /// Infers every shape and lays out the parameters of a graph: layer i reads the tensors
    /// `nodes[i].1` (0 the input, `j + 1` the output of an earlier layer j); only Add and
    /// Concatenate read more than one. Every layer's output but the last is read by a later
    /// one. The last layer must be a Dense layer without ReLU: its outputs are the logits of
    /// the softmax cross-entropy.
    pub fn graph(input: Shape, nodes: &[(Layer, Vec<usize>)]) -> Result<Model> {
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
        let mut shapes = vec![input];
        for (i, (layer, inputs)) in nodes.iter().enumerate() {
            let layer = *layer;
            // Augmentation passes no gradient back: anything trained before it would not learn.
            if matches!(layer, Layer::Augment(_))
                && (nodes[..i]
                    .iter()
                    .any(|(l, _)| !matches!(l, Layer::Augment(_)))
                    || inputs.as_slice() != [i])
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
            if let Some(&t) = inputs.iter().find(|&&t| t > i) {
                return Err(Error::Model(format!(
                    "layer {} ({name}) reads tensor {t}, which is not an earlier layer's output",
                    i + 1
                )));
            }
            let merge = layer.placement() == Placement::Merge;
            if inputs.is_empty() || (!merge && inputs.len() != 1) {
                return Err(Error::Model(format!(
                    "layer {} ({name}) reads {} tensors; only add and concatenate join several",
                    i + 1,
                    inputs.len()
                )));
            }
            let ins: Vec<Shape> = inputs.iter().map(|&t| shapes[t]).collect();
            let shape = ins[0];
            let output = match merge {
                true => crate::layers::merge::output(layer, &ins),
                false => layer.output(shape),
            }
            .map_err(|e| Error::Model(format!("layer {} ({name}): {e}", i + 1)))?;
            let mut plan = LayerPlan {
                layer,
                name,
                inputs: inputs.clone(),
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
            shapes.push(output);
            plans.push(plan);
        }
        for (j, p) in plans.iter().enumerate().rev().skip(1) {
            if !plans.iter().any(|l| l.inputs.contains(&(j + 1))) {
                return Err(Error::Model(format!(
                    "layer {} ({}): its output is never read (the last layer gives the logits)",
                    j + 1,
                    p.name
                )));
            }
        }
        let classes = match nodes.last().map(|n| n.0) {
            Some(Layer::Dense { out, relu: false }) => out,
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
        while at > 0
            && place(at - 1) == Placement::Elementwise
            && self.layers[at].inputs.as_slice() == [at]
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
