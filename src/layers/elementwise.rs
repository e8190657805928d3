//! Element-wise layers: dropout (Keras' `Dropout`, inverted scaling in training, its mask a
//! counter-based hash) and a separate ReLU (Keras' `Activation("relu")` or `ReLU()`): their
//! options, text forms, Keras classes and the shapes of their passes. Their GPU side is
//! `gpu::layers::elementwise`, their CPU side `reference::elementwise`.

use bytemuck::{Pod, Zeroable};
use serde_json::Value;

use super::layer::{Layer, LayerPlan};
use super::read::{caret, CallReader, KerasLayer};
use crate::error::Result;

/// Dropout rates gpu-cnn trains with: [0, 1).
pub fn check_rate(rate: f32) -> std::result::Result<(), String> {
    if rate.is_finite() && (0.0..1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("dropout rate {rate} is not in [0, 1)"))
    }
}

/// `dropout(rate)` in the text form.
pub fn read_dropout_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(1)?;
    let mut rate = None;
    if let Some(t) = c.args.first() {
        rate = Some((r.real(t, "the rate")?, t.at));
    }
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "rate" => rate = Some((r.real(v, "the rate")?, v.at)),
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("dropout has no option `{}`", key.text),
                ))
            }
        }
    }
    let Some((rate, at)) = rate else {
        return Err(caret(line, c.name.at, "dropout needs (rate)"));
    };
    check_rate(rate).map_err(|e| caret(line, at, &e))?;
    Ok(Layer::Dropout { rate })
}

/// `relu` in the text form.
pub fn read_relu_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    if let Some((key, _)) = c.kwargs.first() {
        return Err(caret(line, key.at, "relu has no options"));
    }
    Ok(Layer::Relu)
}

/// Keras' `Dropout`, every option checked.
pub fn read_dropout_keras(k: &KerasLayer) -> Result<Layer> {
    k.require("noise_shape", &|_| false, "null")?;
    let rate = k.c["rate"]
        .as_f64()
        .ok_or_else(|| k.err("rate is missing".into()))? as f32;
    check_rate(rate).map_err(|e| k.err(e))?;
    Ok(Layer::Dropout { rate })
}

/// `Activation`: relu is a layer; linear, and softmax on the last layer, are nothing.
pub fn read_activation_keras(k: &KerasLayer) -> Result<Option<Layer>> {
    match k.c["activation"].as_str() {
        Some("relu") => Ok(Some(Layer::Relu)),
        Some("linear") => Ok(None),
        Some("softmax") if k.last => Ok(None),
        other => Err(k.err(format!(
            "activation {} is not supported (relu, linear, softmax last)",
            other.unwrap_or("(none)")
        ))),
    }
}

/// Keras' `ReLU`: a plain one only.
pub fn read_relu_keras(k: &KerasLayer) -> Result<Layer> {
    let plain = [
        ("max_value", Value::Null),
        ("negative_slope", serde_json::json!(0.0)),
        ("threshold", serde_json::json!(0.0)),
    ];
    for (key, plain) in plain {
        if !k.c[key].is_null() && k.c[key] != plain {
            return Err(k.err(format!(
                "{key} {} is not supported (a plain ReLU)",
                k.c[key]
            )));
        }
    }
    Ok(Layer::Relu)
}

/// Shapes of `dropout_forward` / `dropout_backward`: `len` values per step (batch x values per
/// image). Value i of step t is kept when `dropout_hash(seed, t, salt, i) >> 8 >= threshold`
/// (threshold = rate * 2^24, rounded), and then scaled by 1 / (1 - rate).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DropoutParams {
    pub len: u32,
    pub threshold: u32,
    pub scale: f32,
    /// Tells the model's dropout layers apart (their index in the model).
    pub salt: u32,
    /// 1: training (mask and scale); 0: identity.
    pub training: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl DropoutParams {
    pub fn new(batch: usize, per_image: usize, rate: f32, salt: usize, training: bool) -> Self {
        DropoutParams {
            len: (batch * per_image) as u32,
            threshold: (rate as f64 * 16_777_216.0).round() as u32,
            scale: 1.0 / (1.0 - rate),
            salt: salt as u32,
            training: training as u32,
            ..Default::default()
        }
    }
}

/// The counter-based hash of the dropout masks (the same in `dropout_*.wgsl`): value `i` of
/// step `t` in the layer `salt` of the run `seed`, each 32-bit input mixed in turn.
pub fn dropout_hash(seed: u32, t: u32, salt: u32, i: u32) -> u32 {
    fn mix(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^= x >> 16;
        x
    }
    mix(i ^ mix(t ^ mix(salt ^ mix(seed))))
}

/// Shapes of `relu_forward` / `relu_backward`: `len` values per step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ReluParams {
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl ReluParams {
    pub fn new(len: usize) -> Self {
        ReluParams {
            len: len as u32,
            ..Default::default()
        }
    }
}

/// `salt` tells the dropout layers apart: the layer's index in the model.
pub fn dropout_params(l: &LayerPlan, batch: usize, salt: usize, training: bool) -> DropoutParams {
    match l.layer {
        Layer::Dropout { rate } => DropoutParams::new(batch, l.input.len(), rate, salt, training),
        _ => unreachable!("dropout_params on {:?}", l.layer),
    }
}

/// A separate ReLU layer's shapes.
pub fn relu_params(l: &LayerPlan, batch: usize) -> ReluParams {
    ReluParams::new(batch * l.input.len())
}
