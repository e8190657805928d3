//! Shapes: an image's (channels, height, width), how a convolution pads and where its work
//! happens, how a parameter tensor starts, and the size limits every model keeps to.

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

/// How a parameter tensor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Keras' glorot_uniform (kernels).
    Glorot,
    Zeros,
    /// Batch norm's gamma and moving variance.
    Ones,
}

/// Whether a per-image shape fits `MAX_TENSOR` (and `usize`).
pub fn fits_tensor(s: Shape) -> bool {
    s.c.checked_mul(s.h)
        .and_then(|v| v.checked_mul(s.w))
        .is_some_and(|n| n <= MAX_TENSOR)
}
