//! The joins of a graph model: `Add` (Keras' `Add`, the element-wise sum of a residual
//! connection) and `Concatenate` (Keras' `Concatenate` on the channel axis): their output
//! shapes, Keras classes, ONNX nodes and the shapes of their passes. They are the only kinds
//! with more than one input; the text form writes them `add(x)` and `concatenate(x)` (`spec`).
//! Their GPU side is `gpu::layers::merge`, their CPU side `reference::merge`.

use bytemuck::{Pod, Zeroable};

use super::layer::Layer;
use super::onnx::{Attr, Op};
use super::read::KerasLayer;
use super::shape::Shape;
use crate::error::Result;

/// The output shape of `layer` (Add or Concatenate) on `inputs`, or why they do not fit: Add
/// needs one shape throughout, Concatenate one height and width (its channels add up).
pub fn output(layer: Layer, inputs: &[Shape]) -> std::result::Result<Shape, String> {
    let Some(&first) = inputs.first() else {
        return Err("has no inputs".into());
    };
    if inputs.len() < 2 {
        return Err(format!(
            "joins {} tensor; it needs two or more",
            inputs.len()
        ));
    }
    let list = || {
        inputs
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match layer {
        Layer::Add => {
            if inputs.iter().any(|&s| s != first) {
                return Err(format!("adds tensors of different shapes ({})", list()));
            }
            Ok(first)
        }
        Layer::Concatenate => {
            if inputs.iter().any(|s| (s.h, s.w) != (first.h, first.w)) {
                return Err(format!(
                    "concatenates tensors of different heights or widths ({}); they join along the channels",
                    list()
                ));
            }
            Ok(Shape::new(
                inputs.iter().map(|s| s.c).sum(),
                first.h,
                first.w,
            ))
        }
        other => Err(format!("{other:?} takes one input")),
    }
}

/// Keras' `Add` (nothing to check but the inputs, which the graph reader follows).
pub fn read_add_keras(_k: &KerasLayer) -> Result<Layer> {
    Ok(Layer::Add)
}

/// Keras' `Concatenate`: the channel axis only (-1, or 3 for an image).
pub fn read_concatenate_keras(k: &KerasLayer) -> Result<Layer> {
    match k.c["axis"].as_i64() {
        None | Some(-1) | Some(3) => Ok(Layer::Concatenate),
        Some(a) => Err(k.err(format!("axis {a} is not supported (-1: the channels)"))),
    }
}

/// Their ONNX nodes: `Add`, or `Concat` along the channels (axis 1 of NCHW).
pub fn onnx(layer: Layer) -> Vec<Op> {
    match layer {
        Layer::Concatenate => vec![Op::new("Concat").attr("axis", Attr::Int(1))],
        _ => vec![Op::new("Add")],
    }
}

/// Shapes of `add_forward` and `add_backward`: `len` values (batch x values per image).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AddParams {
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl AddParams {
    pub fn new(batch: usize, per_image: usize) -> Self {
        AddParams {
            len: (batch * per_image) as u32,
            ..Default::default()
        }
    }
}

/// Shapes of `concatenate_forward` and `concatenate_backward` for one input: its `c_in`
/// channels are channels `c_off ..` of the output's `c_out`, each channel `plane` values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ConcatenateParams {
    pub batch: u32,
    pub c_in: u32,
    pub c_out: u32,
    pub c_off: u32,
    pub plane: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl ConcatenateParams {
    pub fn new(batch: usize, input: Shape, output: Shape, c_off: usize) -> Self {
        ConcatenateParams {
            batch: batch as u32,
            c_in: input.c as u32,
            c_out: output.c as u32,
            c_off: c_off as u32,
            plane: (input.h * input.w) as u32,
            ..Default::default()
        }
    }
}

/// The `ConcatenateParams` of each input of a Concatenate on `inputs` (their shapes, in order)
/// with output shape `output`.
pub fn concatenate_params(inputs: &[Shape], output: Shape, batch: usize) -> Vec<ConcatenateParams> {
    let mut c_off = 0;
    inputs
        .iter()
        .map(|&s| {
            let p = ConcatenateParams::new(batch, s, output, c_off);
            c_off += s.c;
            p
        })
        .collect()
}
