//! Fully connected layers (Keras' `Dense`): what the layer is (options, shape, tensors, text
//! form, Keras class) and the shapes of its passes, alone and two chained. Its GPU side is
//! `gpu::layers::dense`, its CPU side `reference::dense`.

use bytemuck::{Pod, Zeroable};

use super::layer::{Layer, LayerPlan, Role, TensorSpec};
use super::onnx::{Attr, Op, Param};
use super::read::{caret, CallReader, KerasLayer};
use super::shape::{Init, Shape};
use crate::error::Result;

/// `out` outputs from the flattened input.
pub fn output(out: usize) -> std::result::Result<Shape, String> {
    if out == 0 {
        return Err("dense layer with 0 outputs".into());
    }
    Ok(Shape::new(out, 1, 1))
}

/// The kernel (Keras' glorot-uniform, PyTorch's (out, in) layout) and the bias.
pub fn tensors(input: Shape, out: usize) -> Vec<TensorSpec> {
    vec![
        TensorSpec::new("weight", vec![out, input.len()], Init::Glorot, Role::Weight),
        TensorSpec::new("bias", vec![out], Init::Zeros, Role::Bias),
    ]
}

/// `dense(units[, relu])` in the text form.
pub fn read_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(2)?;
    let Some(u) = c.args.first() else {
        return Err(caret(line, c.name.at, "dense needs (units)"));
    };
    let mut relu = match c.args.get(1) {
        Some(a) => r.activation(a, true)?,
        None => false,
    };
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "activation" => relu = r.activation(v, true)?,
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("dense has no option `{}`", key.text),
                ))
            }
        }
    }
    Ok(Layer::Dense {
        out: r.number(u, "units")?,
        relu,
    })
}

/// The text form.
pub fn to_text(out: usize, relu: bool) -> String {
    format!("dense({out}{})", if relu { ",relu" } else { "" })
}

/// Its ONNX nodes: `Gemm` with the (out, in) weight transposed (after a `Flatten` of an image,
/// which `onnx::export` adds), then `Relu` if it has one.
pub fn onnx(relu: bool) -> Vec<Op> {
    let mut ops = vec![Op::new("Gemm")
        .attr("transB", Attr::Int(1))
        .params(&[Param::Weight, Param::Bias])];
    if relu {
        ops.push(Op::new("Relu"));
    }
    ops
}

/// Keras' `Dense`, every option checked.
pub fn read_keras(k: &KerasLayer) -> Result<Layer> {
    k.require("use_bias", &|v| v == true, "true")?;
    Ok(Layer::Dense {
        out: k.count("units")?,
        relu: k.activation(k.last)?,
    })
}

/// Shapes of `dense_forward` / `dense_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DenseParams {
    pub batch: u32,
    pub n_in: u32,
    pub n_out: u32,
    /// 1: ReLU after the bias; 0: identity.
    pub relu: u32,
}

impl DenseParams {
    pub fn new(batch: usize, n_in: usize, n_out: usize, relu: bool) -> Self {
        DenseParams {
            batch: batch as u32,
            n_in: n_in as u32,
            n_out: n_out as u32,
            relu: relu as u32,
        }
    }

    /// FLOPs of the forward pass, and of each gradient (weight, input): 2 per multiply-add.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.n_in as f64 * self.n_out as f64
    }
}

/// Shapes of `dense_forward_chain`: two dense layers, the second reading the first's output.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DenseChainParams {
    pub first: DenseParams,
    pub second: DenseParams,
}

impl DenseChainParams {
    /// Most outputs of either layer: one workgroup computes a row tile of both (8 outputs per
    /// invocation, the hidden rows in workgroup memory).
    pub const MAX_OUTPUTS: u32 = 512;
    /// Whether `second` reads `first`'s output and both fit one workgroup.
    pub fn fits(first: &DenseParams, second: &DenseParams) -> bool {
        first.batch == second.batch
            && first.n_out == second.n_in
            && first.n_out <= Self::MAX_OUTPUTS
            && second.n_out <= Self::MAX_OUTPUTS
    }
}

pub fn dense_params(l: &LayerPlan, batch: usize) -> DenseParams {
    match l.layer {
        Layer::Dense { out, relu } => DenseParams::new(batch, l.input.len(), out, relu),
        _ => unreachable!("dense_params on {:?}", l.layer),
    }
}
