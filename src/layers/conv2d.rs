//! Convolution (Keras' `Conv2D`): what the layer is (its options, shape, tensors, text form,
//! Keras class) and the shapes of its passes: the stride-1 conv, the zero padding of `same`,
//! the subsampling of a stride, and the conv fused with the max-pool after it. Its GPU side is
//! `gpu::layers::conv2d`, its CPU side `reference::conv2d`.

use bytemuck::{Pod, Zeroable};
use serde_json::Value;

use super::layer::{Layer, LayerPlan, Role, TensorSpec};
use super::onnx::{Attr, Op, Param};
use super::pool::Maxpool2dParams;
use super::read::{caret, channels_last, CallReader, KerasLayer};
use super::shape::{fits_tensor, ConvGeometry, Init, Padding, Shape, MAX_TENSOR};
use crate::error::Result;

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

/// The output of a conv with these options on `input` (see `ConvGeometry`).
pub fn output(
    input: Shape,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
) -> std::result::Result<Shape, String> {
    let g = ConvGeometry::of(input, out_channels, kernel, stride, padding)?;
    for (what, s) in [
        ("padded input", g.padded),
        ("output before the stride", g.full),
    ] {
        if !fits_tensor(s) {
            return Err(format!(
                "the conv's {what} {s} per image is larger than {MAX_TENSOR} values"
            ));
        }
    }
    Ok(g.out)
}

/// The kernel (Keras' glorot-uniform) and, unless `use_bias=false`, the bias.
pub fn tensors(input: Shape, out_channels: usize, kernel: usize, bias: bool) -> Vec<TensorSpec> {
    let mut t = vec![TensorSpec::new(
        "weight",
        vec![out_channels, input.c, kernel, kernel],
        Init::Glorot,
        Role::Weight,
    )];
    if bias {
        t.push(TensorSpec::new(
            "bias",
            vec![out_channels],
            Init::Zeros,
            Role::Bias,
        ));
    }
    t
}

/// `conv2d(filters, kernel[, relu], stride=, padding=, use_bias=)` in the text form.
pub fn read_text(r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    r.arity(3)?;
    let (Some(f), Some(k)) = (c.args.first(), c.args.get(1)) else {
        return Err(caret(
            line,
            c.name.at,
            "conv2d needs (filters, kernel size)",
        ));
    };
    let mut relu = match c.args.get(2) {
        Some(a) => r.activation(a, false)?,
        None => false,
    };
    let (mut stride, mut padding, mut bias) = (1, Padding::Valid, true);
    for (key, v) in &c.kwargs {
        match (key.text.as_str(), v.text.as_str()) {
            ("activation", _) => relu = r.activation(v, false)?,
            ("stride" | "strides", _) => stride = r.number(v, "the stride")?,
            ("padding", "valid") => padding = Padding::Valid,
            ("padding", "same") => padding = Padding::Same,
            ("padding", _) => {
                return Err(caret(
                    line,
                    v.at,
                    &format!("padding={} is not supported (valid or same)", v.text),
                ))
            }
            ("use_bias", "true") => bias = true,
            ("use_bias", "false") => bias = false,
            ("use_bias", _) => return Err(caret(line, v.at, "use_bias is true or false")),
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!(
                        "conv2d has no option `{}` (activation, stride, padding, use_bias)",
                        key.text
                    ),
                ))
            }
        }
    }
    Ok(Layer::Conv2d {
        out_channels: r.number(f, "filters")?,
        kernel: r.number(k, "the kernel size")?,
        stride,
        padding,
        bias,
        relu,
    })
}

/// The text form.
pub fn to_text(
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    bias: bool,
    relu: bool,
) -> String {
    let mut t = format!("conv2d({out_channels},{kernel}");
    if relu {
        t.push_str(",relu");
    }
    if stride != 1 {
        t.push_str(&format!(",stride={stride}"));
    }
    if padding == Padding::Same {
        t.push_str(",padding=same");
    }
    if !bias {
        t.push_str(",use_bias=false");
    }
    t + ")"
}

/// Its ONNX nodes: `Conv` with the explicit padding of `ConvGeometry` (Keras' `same` puts the
/// odd pixel after, which `pads` says exactly), then `Relu` if it has one.
pub fn onnx(
    input: Shape,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    bias: bool,
    relu: bool,
) -> Vec<Op> {
    let k = kernel as i64;
    let s = stride as i64;
    let mut conv = Op::new("Conv")
        .attr("kernel_shape", Attr::Ints(vec![k, k]))
        .attr("strides", Attr::Ints(vec![s, s]))
        .params(&[Param::Weight]);
    if bias {
        conv = conv.params(&[Param::Bias]);
    }
    if let Ok(g) = ConvGeometry::of(input, out_channels, kernel, stride, padding) {
        if g.padded_input() {
            // ONNX: [top, left, bottom, right], as `ConvGeometry::pad`.
            conv = conv.attr(
                "pads",
                Attr::Ints(g.pad.iter().map(|&p| p as i64).collect()),
            );
        }
    }
    let mut ops = vec![conv];
    if relu {
        ops.push(Op::new("Relu"));
    }
    ops
}

/// Keras' `Conv2D`, every option checked.
pub fn read_keras(k: &KerasLayer) -> Result<Layer> {
    let ones = |v: &Value| v == 1 || *v == serde_json::json!([1, 1]);
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("dilation_rate", &ones, "1")?;
    k.require("groups", &|v| v == 1, "1")?;
    let padding = match k.c["padding"].as_str() {
        None | Some("valid") => Padding::Valid,
        Some("same") => Padding::Same,
        Some(other) => {
            return Err(k.err(format!(
                "padding \"{other}\" is not supported (valid, same)"
            )))
        }
    };
    let bias = match &k.c["use_bias"] {
        Value::Null => true,
        Value::Bool(b) => *b,
        other => return Err(k.err(format!("use_bias {other} is not true or false"))),
    };
    Ok(Layer::Conv2d {
        out_channels: k.count("filters")?,
        kernel: k.required_square("kernel_size")?,
        stride: k.square("strides")?.unwrap_or(1),
        padding,
        bias,
        relu: k.activation(false)?,
    })
}

/// Shapes of `conv2d_forward` / `conv2d_backward` (stride 1, valid padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Conv2dParams {
    pub batch: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub kh: u32,
    pub kw: u32,
    /// 1: ReLU after the bias; 0: identity.
    pub relu: u32,
    /// Output pixels per split-K chunk in `conv2d_backward`'s weight pass.
    pub chunk: u32,
    /// 1: channel-last kernels (`conv2d_forward_subgroup`,
    /// `conv2d_backward.backward_weight_channel_last`); needs c_in % 4 == 0 and a device with
    /// subgroups. `new` leaves it 0 (portable kernels); `gpu::layers::conv2d_select` sets it.
    pub channel_last: u32,
}

impl Conv2dParams {
    pub fn new(
        batch: usize,
        c_in: usize,
        h_in: usize,
        w_in: usize,
        c_out: usize,
        k: usize,
        relu: bool,
    ) -> Self {
        let h_out = h_in + 1 - k;
        let w_out = w_in + 1 - k;
        Conv2dParams {
            batch: batch as u32,
            c_in: c_in as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            c_out: c_out as u32,
            h_out: h_out as u32,
            w_out: w_out as u32,
            kh: k as u32,
            kw: k as u32,
            relu: relu as u32,
            chunk: 256,
            channel_last: 0,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.c_in * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.c_out * self.h_out * self.w_out) as usize
    }
    /// FLOPs of the forward pass, and of each gradient (weight, input): 2 per multiply-add.
    pub fn flops(&self) -> f64 {
        2.0 * self.out_len() as f64 * self.ksize() as f64
    }
    /// Columns of the weight gradient GEMM: c_in * kh * kw.
    pub fn ksize(&self) -> usize {
        (self.c_in * self.kh * self.kw) as usize
    }
    pub fn weight_len(&self) -> usize {
        self.c_out as usize * self.ksize()
    }
    /// Columns per weight tile of `conv2d_backward`'s portable weight pass (its `TILE_COLS`):
    /// 12 where one tile of 12 covers the c_in * kh * kw + 1 columns with fewer computed than
    /// tiles of 8 (a first conv on one channel: 10 columns, one tile of 12 against two of 8),
    /// else 8.
    pub fn weight_tile_cols(&self) -> usize {
        let cols = self.ksize() + 1;
        if cols.div_ceil(12) * 12 < cols.div_ceil(8) * 8 {
            12
        } else {
            8
        }
    }
    /// Number of split-K chunks of the weight gradient.
    pub fn chunks(&self) -> usize {
        ((self.batch * self.h_out * self.w_out) as usize).div_ceil(self.chunk as usize)
    }
}

/// Shapes of `conv2d_backward_pooled`: the conv's, then the max-pool's that follows it (disjoint
/// windows: stride >= size) over the conv's output.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Conv2dPooledParams {
    pub conv: Conv2dParams,
    pub pool_size: u32,
    pub pool_stride: u32,
    pub h_pool: u32,
    pub w_pool: u32,
}

impl Conv2dPooledParams {
    pub fn new(conv: Conv2dParams, pool: &Maxpool2dParams) -> Self {
        Conv2dPooledParams {
            conv,
            pool_size: pool.size,
            pool_stride: pool.stride,
            h_pool: pool.h_out,
            w_pool: pool.w_out,
        }
    }
    /// Whether `pool` can be fused into the backward pass of the conv of `conv`: disjoint windows
    /// over exactly that conv's output.
    pub fn fits(conv: &Conv2dParams, pool: &Maxpool2dParams) -> bool {
        pool.stride >= pool.size
            && (pool.batch, pool.channels, pool.h_in, pool.w_in)
                == (conv.batch, conv.c_out, conv.h_out, conv.w_out)
    }
    /// Whether the pool can also be fused into the conv's forward pass (`conv2d_forward_pooled`):
    /// 2x2 windows, stride 2.
    pub fn fits_forward(conv: &Conv2dParams, pool: &Maxpool2dParams) -> bool {
        pool.size == 2 && pool.stride == 2 && Self::fits(conv, pool)
    }
    /// Whether, without an input gradient, the weight gradient can come straight from the pool's
    /// winners (`conv2d_backward_pooled`'s backward_weight): 2x2 windows, at most 12 weight
    /// columns (c_in * kh * kw + 1), the portable layout.
    pub fn weight_from_winners(&self) -> bool {
        self.pool_size == 2 && self.conv.ksize() < 12 && self.conv.channel_last == 0
    }
    pub fn pool_len(&self) -> usize {
        (self.conv.batch * self.conv.c_out * self.h_pool * self.w_pool) as usize
    }
    /// The max-pool's own shapes.
    pub fn pool_params(&self) -> Maxpool2dParams {
        Maxpool2dParams::new(
            self.conv.batch as usize,
            self.conv.c_out as usize,
            self.conv.h_out as usize,
            self.conv.w_out as usize,
            self.pool_size as usize,
            self.pool_stride as usize,
        )
    }
}

/// Shapes of `pad2d_forward` / `pad2d_backward`: (N, C, H, W) placed at (top, left) in a
/// zero (N, C, OH, OW), the `same` padding of a convolution.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Pad2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub top: u32,
    pub left: u32,
}

impl Pad2dParams {
    /// `pad` is (top, left, bottom, right).
    pub fn new(batch: usize, channels: usize, h_in: usize, w_in: usize, pad: [usize; 4]) -> Self {
        Pad2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: (h_in + pad[0] + pad[2]) as u32,
            w_out: (w_in + pad[1] + pad[3]) as u32,
            top: pad[0] as u32,
            left: pad[1] as u32,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// Shapes of `subsample2d_forward` / `subsample2d_backward`: every `stride`-th pixel of
/// (N, C, H, W), from (0, 0): (N, C, (H - 1) / stride + 1, (W - 1) / stride + 1), a strided
/// convolution's output taken from its stride-1 one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Subsample2dParams {
    pub batch: u32,
    pub channels: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub stride: u32,
    pub _pad0: u32,
}

impl Subsample2dParams {
    pub fn new(batch: usize, channels: usize, h_in: usize, w_in: usize, stride: usize) -> Self {
        Subsample2dParams {
            batch: batch as u32,
            channels: channels as u32,
            h_in: h_in as u32,
            w_in: w_in as u32,
            h_out: ((h_in - 1) / stride + 1) as u32,
            w_out: ((w_in - 1) / stride + 1) as u32,
            stride: stride as u32,
            _pad0: 0,
        }
    }
    pub fn inp_len(&self) -> usize {
        (self.batch * self.channels * self.h_in * self.w_in) as usize
    }
    pub fn out_len(&self) -> usize {
        (self.batch * self.channels * self.h_out * self.w_out) as usize
    }
}

/// The geometry of a conv layer: padding, the stride-1 convolution's output, the stride.
pub fn conv_geometry(l: &LayerPlan) -> ConvGeometry {
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            ..
        } => ConvGeometry::of(l.input, out_channels, kernel, stride, padding)
            .expect("Model::new checked the geometry"),
        _ => unreachable!("conv_geometry on {:?}", l.layer),
    }
}

/// The stride-1, unpadded convolution at the heart of a conv layer: over the padded input, to
/// the output before the stride.
pub fn conv_params(l: &LayerPlan, batch: usize) -> Conv2dParams {
    let g = conv_geometry(l);
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            relu,
            ..
        } => Conv2dParams::new(
            batch,
            g.padded.c,
            g.padded.h,
            g.padded.w,
            out_channels,
            kernel,
            relu,
        ),
        _ => unreachable!("conv_params on {:?}", l.layer),
    }
}

/// The zero padding of a `same` conv layer, if it pads.
pub fn pad_params(l: &LayerPlan, batch: usize) -> Option<Pad2dParams> {
    let g = conv_geometry(l);
    g.padded_input()
        .then(|| Pad2dParams::new(batch, l.input.c, l.input.h, l.input.w, g.pad))
}

/// The stride of a strided conv layer, if it strides.
pub fn subsample_params(l: &LayerPlan, batch: usize) -> Option<Subsample2dParams> {
    let g = conv_geometry(l);
    g.strided()
        .then(|| Subsample2dParams::new(batch, g.full.c, g.full.h, g.full.w, g.stride))
}
