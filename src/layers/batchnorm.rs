//! Batch normalisation (Keras' `BatchNormalization`, axis -1, center and scale): what the
//! layer is (its options, tensors, text form and Keras class) and the shapes of its passes.
//! Its GPU side is `gpu::layers::batchnorm`, its CPU side `reference::batchnorm`.

use bytemuck::{Pod, Zeroable};
use serde_json::Value;

use super::layer::{Layer, LayerPlan, Role, TensorSpec};
use super::onnx::{Attr, Op, Param};
use super::read::{caret, CallReader, KerasLayer};
use super::shape::{Init, Shape};
use crate::error::Result;

/// Batch-norm options gpu-cnn trains with: momentum in [0, 1], epsilon > 0.
pub fn check(momentum: f32, epsilon: f32) -> std::result::Result<(), String> {
    if !(momentum.is_finite() && (0.0..=1.0).contains(&momentum)) {
        return Err(format!("batchnorm momentum {momentum} is not in [0, 1]"));
    }
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(format!("batchnorm epsilon {epsilon} is not above 0"));
    }
    Ok(())
}

/// gamma (`weight`), beta (`bias`) and the moving mean and variance, one per channel.
pub fn tensors(input: Shape) -> Vec<TensorSpec> {
    let c = vec![input.c];
    vec![
        TensorSpec::new("weight", c.clone(), Init::Ones, Role::Weight),
        TensorSpec::new("bias", c.clone(), Init::Zeros, Role::Bias),
        TensorSpec::new("running_mean", c.clone(), Init::Zeros, Role::Statistic),
        TensorSpec::new("running_var", c, Init::Ones, Role::Statistic),
    ]
}

/// `batchnorm[(momentum=…, epsilon=…)]` in the text form.
pub fn read_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    let (mut momentum, mut epsilon) = (0.99f32, 0.001f32);
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "momentum" => momentum = r.real(v, "momentum")?,
            "epsilon" => epsilon = r.real(v, "epsilon")?,
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("batchnorm has no option `{}` (momentum, epsilon)", key.text),
                ))
            }
        }
    }
    check(momentum, epsilon).map_err(|e| caret(line, c.name.at, &e))?;
    Ok(Layer::BatchNorm { momentum, epsilon })
}

/// The text form; Keras' defaults are left out.
pub fn to_text(momentum: f32, epsilon: f32) -> String {
    let mut opts = Vec::new();
    if momentum != 0.99 {
        opts.push(format!("momentum={momentum}"));
    }
    if epsilon != 0.001 {
        opts.push(format!("epsilon={epsilon}"));
    }
    if opts.is_empty() {
        "batchnorm".to_string()
    } else {
        format!("batchnorm({})", opts.join(","))
    }
}

/// Its ONNX node: `BatchNormalization` in inference, over gamma, beta and the moving statistics
/// (the same y = gamma * (x - mean) / sqrt(var + epsilon) + beta).
pub fn onnx(epsilon: f32) -> Vec<Op> {
    vec![Op::new("BatchNormalization")
        .attr("epsilon", Attr::Float(epsilon))
        .params(&[Param::Weight, Param::Bias, Param::Mean, Param::Variance])]
}

/// Keras' `BatchNormalization`, every option checked.
pub fn read_keras(k: &KerasLayer) -> Result<Layer> {
    let axis = |v: &Value| {
        v == -1 || v == 3 || *v == serde_json::json!([-1]) || *v == serde_json::json!([3])
    };
    k.require("axis", &axis, "-1, the channels")?;
    k.require("center", &|v| v == true, "true")?;
    k.require("scale", &|v| v == true, "true")?;
    k.require("renorm", &|v| v == false, "false")?;
    k.require("synchronized", &|v| v == false, "false")?;
    k.no_regularisers(&[
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
    ])?;
    let get = |key: &str, default: f64| -> Result<f32> {
        match &k.c[key] {
            Value::Null => Ok(default as f32),
            v => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| k.err(format!("{key} {v} is not a number"))),
        }
    };
    let (momentum, epsilon) = (get("momentum", 0.99)?, get("epsilon", 0.001)?);
    check(momentum, epsilon).map_err(|e| k.err(e))?;
    Ok(Layer::BatchNorm { momentum, epsilon })
}

/// Shapes of `batchnorm_forward` / `batchnorm_backward`: (N, C, H, W) normalised per channel
/// over (N, H, W), `plane` = H * W.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BatchnormParams {
    pub batch: u32,
    pub channels: u32,
    pub plane: u32,
    /// 1: batch statistics, moving statistics updated; 0: moving statistics.
    pub training: u32,
    pub momentum: f32,
    pub epsilon: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl BatchnormParams {
    pub fn new(
        batch: usize,
        channels: usize,
        plane: usize,
        momentum: f32,
        epsilon: f32,
        training: bool,
    ) -> Self {
        BatchnormParams {
            batch: batch as u32,
            channels: channels as u32,
            plane: plane as u32,
            training: training as u32,
            momentum,
            epsilon,
            ..Default::default()
        }
    }
    pub fn len(&self) -> usize {
        (self.batch * self.channels * self.plane) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn batchnorm_params(l: &LayerPlan, batch: usize, training: bool) -> BatchnormParams {
    match l.layer {
        Layer::BatchNorm { momentum, epsilon } => BatchnormParams::new(
            batch,
            l.input.c,
            l.input.h * l.input.w,
            momentum,
            epsilon,
            training,
        ),
        _ => unreachable!("batchnorm_params on {:?}", l.layer),
    }
}
