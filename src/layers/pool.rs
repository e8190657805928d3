//! Pooling (Keras' `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`): what the
//! layers are (options, shapes, text forms, Keras classes) and the shapes of their passes. Their
//! GPU side is `gpu::layers::pool`, their CPU side `reference::pool`.

use bytemuck::{Pod, Zeroable};

use super::layer::{Layer, LayerPlan};
use super::onnx::{Attr, Op};
use super::read::{caret, channels_last, CallReader, KerasLayer};
use super::shape::Shape;
use crate::error::Result;

/// The output of a `size` x `size` window every `stride` pixels (floor; no padding) on
/// `input`; `kind` names the pooling in the error.
pub fn output(
    kind: &str,
    input: Shape,
    size: usize,
    stride: usize,
) -> std::result::Result<Shape, String> {
    if size == 0 || stride == 0 || size > input.h || size > input.w {
        return Err(format!(
            "{kind} {size}x{size} stride {stride} does not fit input {input}"
        ));
    }
    let out = |n: usize| (n - size) / stride + 1;
    Ok(Shape::new(input.c, out(input.h), out(input.w)))
}

/// `maxpool(size[, stride=])` or `avgpool(size[, stride=])` in the text form.
pub fn read_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    let kind = c.name.text.as_str();
    r.arity(1)?;
    let Some(s) = c.args.first() else {
        return Err(caret(line, c.name.at, &format!("{kind} needs (pool size)")));
    };
    let size = r.number(s, "the pool size")?;
    let mut stride = size;
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "stride" | "strides" => stride = r.number(v, "the stride")?,
            "padding" if v.text == "valid" => {}
            "padding" => {
                return Err(caret(
                    line,
                    v.at,
                    &format!("padding={} is not supported (valid)", v.text),
                ))
            }
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("{kind} has no option `{}`", key.text),
                ))
            }
        }
    }
    Ok(if kind == "maxpool" {
        Layer::MaxPool2d { size, stride }
    } else {
        Layer::AvgPool2d { size, stride }
    })
}

/// `globalavgpool` in the text form.
pub fn read_global_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    if let Some((key, _)) = c.kwargs.first() {
        return Err(caret(line, key.at, "globalavgpool has no options"));
    }
    Ok(Layer::GlobalAvgPool2d)
}

/// The text form of max-pool (`avg` false) or average pooling.
pub fn to_text(avg: bool, size: usize, stride: usize) -> String {
    let name = if avg { "avgpool" } else { "maxpool" };
    if stride == size {
        format!("{name}({size})")
    } else {
        format!("{name}({size},stride={stride})")
    }
}

/// Its ONNX node: `MaxPool` or `AveragePool` (no padding, floor, as here), or `GlobalAveragePool`
/// for `size` None.
pub fn onnx(avg: bool, size: Option<usize>, stride: usize) -> Vec<Op> {
    let Some(size) = size else {
        return vec![Op::new("GlobalAveragePool")];
    };
    let (k, s) = (size as i64, stride as i64);
    vec![Op::new(if avg { "AveragePool" } else { "MaxPool" })
        .attr("kernel_shape", Attr::Ints(vec![k, k]))
        .attr("strides", Attr::Ints(vec![s, s]))]
}

/// `MaxPooling2D` and `AveragePooling2D`.
pub fn read_keras(k: &KerasLayer) -> Result<Layer> {
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("padding", &|v| v == "valid", "valid")?;
    let size = k.required_square("pool_size")?;
    // Keras: strides None means the pool size.
    let stride = k.square("strides")?.unwrap_or(size);
    Ok(match k.class {
        "MaxPooling2D" => Layer::MaxPool2d { size, stride },
        _ => Layer::AvgPool2d { size, stride },
    })
}

/// `GlobalAveragePooling2D`.
pub fn read_global_keras(k: &KerasLayer) -> Result<Layer> {
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("keepdims", &|v| v == false, "false")?;
    Ok(Layer::GlobalAvgPool2d)
}

/// Shapes of `maxpool2d_forward` / `maxpool2d_backward` (floor mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Maxpool2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub size: u32,
    pub stride: u32,
}

impl Maxpool2dParams {
    pub fn new(
        batch: usize,
        channels: usize,
        h_in: usize,
        w_in: usize,
        size: usize,
        stride: usize,
    ) -> Self {
        Maxpool2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - size) / stride + 1) as u32,
            w_out: ((w_in - size) / stride + 1) as u32,
            size: size as u32,
            stride: stride as u32,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `avgpool2d_forward` / `avgpool2d_backward`: (N, C, H, W) -> (N, C, OH, OW), the mean
/// of each `kh` x `kw` window every `stride` pixels (floor; no padding). Global average pooling is
/// the one window of the whole plane.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Avgpool2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl Avgpool2dParams {
    pub fn new(
        batch: usize,
        channels: usize,
        h_in: usize,
        w_in: usize,
        kh: usize,
        kw: usize,
        stride: usize,
    ) -> Self {
        Avgpool2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - kh) / stride + 1) as u32,
            w_out: ((w_in - kw) / stride + 1) as u32,
            kh: kh as u32,
            kw: kw as u32,
            stride: stride as u32,
            ..Default::default()
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

pub fn pool_params(l: &LayerPlan, batch: usize) -> Maxpool2dParams {
    match l.layer {
        Layer::MaxPool2d { size, stride } => {
            Maxpool2dParams::new(batch, l.input.c, l.input.h, l.input.w, size, stride)
        }
        _ => unreachable!("pool_params on {:?}", l.layer),
    }
}

pub fn avgpool_params(l: &LayerPlan, batch: usize) -> Avgpool2dParams {
    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
    match l.layer {
        Layer::AvgPool2d { size, stride } => {
            Avgpool2dParams::new(batch, c, h, w, size, size, stride)
        }
        Layer::GlobalAvgPool2d => Avgpool2dParams::new(batch, c, h, w, h, w, 1),
        _ => unreachable!("avgpool_params on {:?}", l.layer),
    }
}
