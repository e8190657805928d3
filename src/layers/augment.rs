//! Augmentation layers (Keras 3's `RandomFlip`, `RandomTranslation`, `RandomRotation`,
//! `RandomZoom` and `RandomContrast`): what they are (options, text form, Keras classes), how
//! each image's random transform is drawn and made into a matrix, and the shapes of their
//! passes. In training each image gets its own transform, drawn from the counter-based hash of
//! (run seed, step, layer, image), so a run is reproducible and resumes exactly; outside
//! training they pass the input through. They come first in a model (before any other layer),
//! as Keras' preprocessing layers do, so no gradient flows through them. Their GPU side is
//! `gpu::layers::augment`, their CPU side `reference::augment`.
//!
//! The geometric ones are one pass, `random_affine_forward`: per image a 2x3 matrix maps each
//! output pixel (x, y) to the input point (a0 x + a1 y + a2, b0 x + b1 y + b2), sampled
//! bilinearly with Keras' fill modes, as `keras.ops.image.affine_transform` does.
//! `affine_transform` is that sampling with given matrices (tests hold it against Keras).

use bytemuck::{Pod, Zeroable};
use serde_json::Value;

use super::elementwise::dropout_hash;
use super::layer::{Augment, Fill, Layer, LayerPlan, Range};
use super::read::{caret, channels_last, CallReader, KerasLayer, Token};
use crate::error::Result;

impl Fill {
    pub const NAMES: &'static str = "reflect, wrap, constant, nearest";
    fn name(self) -> &'static str {
        match self {
            Fill::Reflect => "reflect",
            Fill::Wrap => "wrap",
            Fill::Constant => "constant",
            Fill::Nearest => "nearest",
        }
    }
    fn of(s: &str) -> Option<Fill> {
        Some(match s {
            "reflect" => Fill::Reflect,
            "wrap" => Fill::Wrap,
            "constant" => Fill::Constant,
            "nearest" => Fill::Nearest,
            _ => return None,
        })
    }
}

impl Augment {
    /// The prefix of its name in a model (`flip1`, `rotation1`, ...).
    pub fn prefix(&self) -> &'static str {
        match self {
            Augment::Flip { .. } => "flip",
            Augment::Translation { .. } => "translation",
            Augment::Rotation { .. } => "rotation",
            Augment::Zoom { .. } => "zoom",
            Augment::Contrast { .. } => "contrast",
        }
    }

    /// Keras' default name stem and class.
    pub fn keras_names(&self) -> (&'static str, &'static str) {
        match self {
            Augment::Flip { .. } => ("random_flip", "RandomFlip"),
            Augment::Translation { .. } => ("random_translation", "RandomTranslation"),
            Augment::Rotation { .. } => ("random_rotation", "RandomRotation"),
            Augment::Zoom { .. } => ("random_zoom", "RandomZoom"),
            Augment::Contrast { .. } => ("random_contrast", "RandomContrast"),
        }
    }

    /// The text form; Keras' defaults are left out.
    pub fn to_text(&self) -> String {
        let fill_opts = |fill: Fill, value: f32| {
            let mut s = String::new();
            if fill != Fill::Reflect {
                s.push_str(&format!(",fill_mode={}", fill.name()));
            }
            if value != 0.0 {
                s.push_str(&format!(",fill_value={value}"));
            }
            s
        };
        match *self {
            Augment::Flip {
                horizontal,
                vertical,
            } => match (horizontal, vertical) {
                (true, false) => "randomflip(horizontal)".into(),
                (false, true) => "randomflip(vertical)".into(),
                _ => "randomflip".into(),
            },
            Augment::Translation {
                height,
                width,
                fill,
                fill_value,
            } => format!(
                "randomtranslation({},{}{})",
                range_text(height, -1.0),
                range_text(width, -1.0),
                fill_opts(fill, fill_value)
            ),
            Augment::Rotation {
                factor,
                fill,
                fill_value,
            } => format!(
                "randomrotation({}{})",
                range_text(factor, -1.0),
                fill_opts(fill, fill_value)
            ),
            Augment::Zoom {
                height,
                width,
                fill,
                fill_value,
            } => {
                let w = width.map_or(String::new(), |w| format!(",{}", range_text(w, -1.0)));
                format!(
                    "randomzoom({}{w}{})",
                    range_text(height, -1.0),
                    fill_opts(fill, fill_value)
                )
            }
            Augment::Contrast {
                factor,
                value_range,
            } => {
                let mut s = format!("randomcontrast({}", range_text(factor, 0.0));
                if value_range != (0.0, 255.0) {
                    s.push_str(&format!(
                        ",value_range={}..{}",
                        value_range.0, value_range.1
                    ));
                }
                s + ")"
            }
        }
    }
}

/// A range in the text form: `f` where Keras' single number gives it (lo = max(-f, floor)),
/// else `lo..hi`.
fn range_text(r: Range, floor: f32) -> String {
    if r.0 == (-r.1).max(floor) && r.1 >= 0.0 {
        format!("{}", r.1)
    } else {
        format!("{}..{}", r.0, r.1)
    }
}

/// Keras' reading of a factor: a number f gives (max(-|f|, floor), |f|); a pair is sorted.
/// Every bound must lie in [floor, 1].
fn factor(v: Factor, floor: f32) -> std::result::Result<Range, String> {
    let inside = |x: f32| x.is_finite() && (floor..=1.0).contains(&x);
    let (lo, hi) = match v {
        Factor::One(f) => ((-f.abs()).max(floor), f.abs()),
        Factor::Two(a, b) => (a.min(b), a.max(b)),
    };
    let ok = match v {
        Factor::One(f) => inside(f),
        Factor::Two(a, b) => inside(a) && inside(b),
    };
    if !ok {
        let got = match v {
            Factor::One(f) => format!("{f}"),
            Factor::Two(a, b) => format!("{a}..{b}"),
        };
        return Err(format!(
            "{got} is outside [{floor}, 1], where Keras takes factors"
        ));
    }
    Ok((lo, hi))
}

#[derive(Clone, Copy, Debug)]
enum Factor {
    One(f32),
    Two(f32, f32),
}

/// A factor in the text form: `f` or `lo..hi`.
fn text_factor(r: &CallReader, t: &Token, what: &str, floor: f32) -> Result<Range> {
    let bad = || {
        caret(
            r.line,
            t.at,
            &format!("{what} must be a number or LOW..HIGH"),
        )
    };
    let f = match t.text.split_once("..") {
        Some((a, b)) => {
            let a: f32 = a.parse().map_err(|_| bad())?;
            let b: f32 = b.parse().map_err(|_| bad())?;
            Factor::Two(a, b)
        }
        None => Factor::One(t.text.parse().map_err(|_| bad())?),
    };
    factor(f, floor).map_err(|e| caret(r.line, t.at, &format!("{what}: {e}")))
}

/// The text form's `randomflip[(mode)]`, `randomtranslation(h, w, ...)`,
/// `randomrotation(f, ...)`, `randomzoom(h[, w], ...)`, `randomcontrast(f[, value_range=])`.
pub fn read_text(name: &str, r: &CallReader) -> Result<Layer> {
    let (line, c) = (r.line, r.c);
    let mut fill = Fill::Reflect;
    let mut fill_value = 0.0;
    let mut value_range = (0.0, 255.0);
    for (key, v) in &c.kwargs {
        match (name, key.text.as_str()) {
            ("randomflip" | "randomcontrast", "fill_mode" | "fill_value") => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("{name} has no option `{}`", key.text),
                ))
            }
            (_, "fill_mode") => {
                fill = Fill::of(&v.text).ok_or_else(|| {
                    caret(
                        line,
                        v.at,
                        &format!("fill_mode must be one of {}", Fill::NAMES),
                    )
                })?
            }
            (_, "fill_value") => fill_value = r.real(v, "fill_value")?,
            ("randomcontrast", "value_range") => {
                let bad = || caret(line, v.at, "value_range must be LOW..HIGH with LOW < HIGH");
                let (a, b) = v.text.split_once("..").ok_or_else(bad)?;
                let (a, b): (f32, f32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if !(a.is_finite() && b.is_finite() && a < b) {
                    return Err(bad());
                }
                value_range = (a, b);
            }
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("{name} has no option `{}`", key.text),
                ))
            }
        }
    }
    let need = |n: usize, what: &str| -> Result<()> {
        r.arity(n)?;
        if c.args.is_empty() {
            return Err(caret(line, c.name.at, &format!("{name} needs ({what})")));
        }
        Ok(())
    };
    let a = match name {
        "randomflip" => {
            r.arity(1)?;
            let (horizontal, vertical) = match c.args.first().map(|t| t.text.as_str()) {
                None | Some("horizontal_and_vertical") => (true, true),
                Some("horizontal") => (true, false),
                Some("vertical") => (false, true),
                Some(_) => {
                    return Err(caret(
                        line,
                        c.args[0].at,
                        "randomflip's mode is horizontal, vertical or horizontal_and_vertical",
                    ))
                }
            };
            Augment::Flip {
                horizontal,
                vertical,
            }
        }
        "randomtranslation" => {
            need(2, "height factor, width factor")?;
            let Some(w) = c.args.get(1) else {
                return Err(caret(
                    line,
                    c.name.at,
                    "randomtranslation needs (height factor, width factor)",
                ));
            };
            Augment::Translation {
                height: text_factor(r, &c.args[0], "the height factor", -1.0)?,
                width: text_factor(r, w, "the width factor", -1.0)?,
                fill,
                fill_value,
            }
        }
        "randomrotation" => {
            need(1, "factor")?;
            Augment::Rotation {
                factor: text_factor(r, &c.args[0], "the factor", -1.0)?,
                fill,
                fill_value,
            }
        }
        "randomzoom" => {
            need(2, "height factor[, width factor]")?;
            Augment::Zoom {
                height: text_factor(r, &c.args[0], "the height factor", -1.0)?,
                width: match c.args.get(1) {
                    Some(w) => Some(text_factor(r, w, "the width factor", -1.0)?),
                    None => None,
                },
                fill,
                fill_value,
            }
        }
        _ => {
            need(1, "factor")?;
            Augment::Contrast {
                factor: text_factor(r, &c.args[0], "the factor", 0.0)?,
                value_range,
            }
        }
    };
    Ok(Layer::Augment(a))
}

/// Keras' augmentation classes, every option checked. `seed` is accepted and not used: the
/// run's `--seed` draws the transforms.
pub fn read_keras(k: &KerasLayer) -> Result<Layer> {
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("interpolation", &|v| v == "bilinear", "bilinear")?;
    let keras_factor = |key: &str, floor: f32| -> Result<Range> {
        let f = match &k.c[key] {
            Value::Number(x) => Factor::One(x.as_f64().unwrap_or(f64::NAN) as f32),
            Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_number) => Factor::Two(
                a[0].as_f64().unwrap_or(f64::NAN) as f32,
                a[1].as_f64().unwrap_or(f64::NAN) as f32,
            ),
            Value::Null => return Err(k.err(format!("{key} is missing"))),
            other => return Err(k.err(format!("{key} {other} is not a number or a pair"))),
        };
        factor(f, floor).map_err(|e| k.err(format!("{key}: {e}")))
    };
    let fill = match &k.c["fill_mode"] {
        Value::Null => Fill::Reflect,
        v => v
            .as_str()
            .and_then(Fill::of)
            .ok_or_else(|| k.err(format!("fill_mode {v} is not supported ({})", Fill::NAMES)))?,
    };
    let fill_value = match &k.c["fill_value"] {
        Value::Null => 0.0,
        v => v
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| k.err(format!("fill_value {v} is not a number")))? as f32,
    };
    Ok(Layer::Augment(match k.class {
        "RandomFlip" => {
            let (horizontal, vertical) = match k.c["mode"].as_str() {
                None | Some("horizontal_and_vertical") => (true, true),
                Some("horizontal") => (true, false),
                Some("vertical") => (false, true),
                Some(m) => {
                    return Err(k.err(format!(
                        "mode `{m}` is not horizontal, vertical or horizontal_and_vertical"
                    )))
                }
            };
            Augment::Flip {
                horizontal,
                vertical,
            }
        }
        "RandomTranslation" => Augment::Translation {
            height: keras_factor("height_factor", -1.0)?,
            width: keras_factor("width_factor", -1.0)?,
            fill,
            fill_value,
        },
        "RandomRotation" => Augment::Rotation {
            factor: keras_factor("factor", -1.0)?,
            fill,
            fill_value,
        },
        "RandomZoom" => Augment::Zoom {
            height: keras_factor("height_factor", -1.0)?,
            width: match k.c["width_factor"] {
                Value::Null => None,
                _ => Some(keras_factor("width_factor", -1.0)?),
            },
            fill,
            fill_value,
        },
        _ => {
            let value_range = match &k.c["value_range"] {
                Value::Null => (0.0, 255.0),
                Value::Array(a)
                    if a.len() == 2
                        && a.iter().all(Value::is_number)
                        && a[0].as_f64() < a[1].as_f64() =>
                {
                    (
                        a[0].as_f64().unwrap_or(0.0) as f32,
                        a[1].as_f64().unwrap_or(255.0) as f32,
                    )
                }
                v => return Err(k.err(format!("value_range {v} is not a pair [low, high]"))),
            };
            Augment::Contrast {
                factor: keras_factor("factor", 0.0)?,
                value_range,
            }
        }
    }))
}

/// The uniform draw `k` of image `image` at step (`seed`, `t`) in layer `salt`: 24 bits of
/// `dropout_hash`, in [0, 1).
pub fn uniform(seed: u32, t: u32, salt: u32, image: u32, k: u32) -> f32 {
    (dropout_hash(seed, t, salt, image * 2 + k) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// sin and cos of `x` radians (|x| <= 4 pi) by the same f32 steps as the WGSL `sin_cos` in
/// `random_affine_forward.wgsl`, so that the GPU and the CPU draw the same rotations (WGSL's own
/// sin and cos may be far less precise): x reduced to [-pi, pi], then Taylor series to x^17
/// and x^18 (below 3e-8 there), by Horner.
pub fn sin_cos(x: f32) -> (f32, f32) {
    const SIN: [f32; 9] = [
        1.0,
        0.16666667,
        0.008333334,
        1.984127e-4,
        2.7557319e-6,
        2.5052108e-8,
        1.6059044e-10,
        7.6471636e-13,
        2.8114574e-15,
    ];
    const COS: [f32; 10] = [
        1.0,
        0.5,
        0.041666668,
        1.3888889e-3,
        2.4801588e-5,
        2.755732e-7,
        2.0876756e-9,
        1.1470745e-11,
        4.7794773e-14,
        1.5619207e-16,
    ];
    let two_pi = std::f32::consts::TAU;
    let r = x - two_pi * (x / two_pi + 0.5).floor();
    let r2 = r * r;
    let mut s = SIN[8];
    for k in (0..8).rev() {
        s = SIN[k] - r2 * s;
    }
    let mut c = COS[9];
    for k in (0..9).rev() {
        c = COS[k] - r2 * c;
    }
    (r * s, c)
}

/// Image `image`'s matrix [a0, a1, a2, b0, b1, b2] for the draws `u`, on `height` x `width`
/// images, as Keras 3's layers draw their parameters (uniform between the bounds) and build it.
pub fn matrix(a: &Augment, u: [f32; 2], height: usize, width: usize) -> [f32; 6] {
    let draw = |r: Range, u: f32| u * (r.1 - r.0) + r.0;
    match *a {
        Augment::Flip {
            horizontal,
            vertical,
        } => flip_matrix(u[0] <= 0.5, horizontal, vertical, height, width),
        Augment::Translation {
            height: hr,
            width: wr,
            ..
        } => translation_matrix(
            draw(hr, u[0]) * height as f32,
            draw(wr, u[1]) * width as f32,
        ),
        Augment::Rotation { factor, .. } => rotation_matrix(
            draw((factor.0 * 360.0, factor.1 * 360.0), u[0]),
            height,
            width,
        ),
        Augment::Zoom {
            height: hr,
            width: wr,
            ..
        } => {
            let zy = draw((1.0 + hr.0, 1.0 + hr.1), u[0]);
            let zx = wr.map_or(zy, |r| draw((1.0 + r.0, 1.0 + r.1), u[1]));
            zoom_matrix(zy, zx, height, width)
        }
        Augment::Contrast { .. } => [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    }
}

/// RandomFlip's matrix: the identity, or (when `flip`) the mirror along the chosen axes.
pub fn flip_matrix(
    flip: bool,
    horizontal: bool,
    vertical: bool,
    height: usize,
    width: usize,
) -> [f32; 6] {
    let mut m = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    if flip && horizontal {
        (m[0], m[2]) = (-1.0, width as f32 - 1.0);
    }
    if flip && vertical {
        (m[4], m[5]) = (-1.0, height as f32 - 1.0);
    }
    m
}

/// RandomTranslation's matrix for a shift of `dy` and `dx` pixels.
pub fn translation_matrix(dy: f32, dx: f32) -> [f32; 6] {
    [1.0, 0.0, -dx, 0.0, 1.0, -dy]
}

/// RandomRotation's matrix for `deg` degrees about the image's centre (Keras'
/// `_compute_affine_matrix` without shear, shift or scale).
pub fn rotation_matrix(deg: f32, height: usize, width: usize) -> [f32; 6] {
    let (s, c) = sin_cos(deg * (std::f32::consts::PI / 180.0));
    let (cx, cy) = (0.5 * (width as f32 - 1.0), 0.5 * (height as f32 - 1.0));
    let (a0, a1, b0, b1) = (c, -s, s, c);
    [
        a0,
        a1,
        cx - cx * a0 - cy * a1,
        b0,
        b1,
        cy - cx * b0 - cy * b1,
    ]
}

/// RandomZoom's matrix for zooms `zy` and `zx` about the image's centre.
pub fn zoom_matrix(zy: f32, zx: f32, height: usize, width: usize) -> [f32; 6] {
    let (h, w) = (height as f32, width as f32);
    [
        zx,
        0.0,
        (w - 1.0) / 2.0 * (1.0 - zx),
        0.0,
        zy,
        (h - 1.0) / 2.0 * (1.0 - zy),
    ]
}

/// The contrast factor of draw `u`: uniform in [1 - lo, 1 + hi], as Keras draws it.
pub fn contrast_factor(factor: Range, u: f32) -> f32 {
    u * ((1.0 + factor.1) - (1.0 - factor.0)) + (1.0 - factor.0)
}

/// Shapes and options of `random_affine_forward` and `affine_transform`: `batch` images of
/// `channels` x `height` x `width`. `kind`: 0 flip, 1 translation, 2 rotation, 3 zoom; `mode`:
/// a flip's axes (1 horizontal, 2 vertical), a zoom's own width factor (1); `fill`: 0 reflect,
/// 1 wrap, 2 constant, 3 nearest; (lo0, hi0) and (lo1, hi1) the ranges of the two draws
/// (rotation: in turns); `training` 0 passes the input through.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct RandomAffineParams {
    pub batch: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub kind: u32,
    pub mode: u32,
    pub fill: u32,
    pub salt: u32,
    pub training: u32,
    pub lo0: f32,
    pub hi0: f32,
    pub lo1: f32,
    pub hi1: f32,
    pub fill_value: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// Shapes and options of `random_contrast_forward`: per image a factor drawn from (lo, hi) as
/// `contrast_factor` does; values clipped to [range_lo, range_hi].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct RandomContrastParams {
    pub batch: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub salt: u32,
    pub training: u32,
    pub lo: f32,
    pub hi: f32,
    pub range_lo: f32,
    pub range_hi: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The pass parameters of augmentation layer `l` (`salt`: its index in the model).
pub fn random_affine_params(
    l: &LayerPlan,
    batch: usize,
    salt: usize,
    training: bool,
) -> RandomAffineParams {
    let Layer::Augment(a) = l.layer else {
        unreachable!("random_affine_params on {:?}", l.layer)
    };
    let s = l.input;
    let mut p = RandomAffineParams {
        batch: batch as u32,
        channels: s.c as u32,
        height: s.h as u32,
        width: s.w as u32,
        salt: salt as u32,
        training: training as u32,
        ..Default::default()
    };
    let fill_code = |f: Fill| match f {
        Fill::Reflect => 0,
        Fill::Wrap => 1,
        Fill::Constant => 2,
        Fill::Nearest => 3,
    };
    match a {
        Augment::Flip {
            horizontal,
            vertical,
        } => {
            p.kind = 0;
            p.mode = horizontal as u32 | (vertical as u32) << 1;
        }
        Augment::Translation {
            height,
            width,
            fill,
            fill_value,
        } => {
            (p.kind, p.fill, p.fill_value) = (1, fill_code(fill), fill_value);
            (p.lo0, p.hi0, p.lo1, p.hi1) = (height.0, height.1, width.0, width.1);
        }
        Augment::Rotation {
            factor,
            fill,
            fill_value,
        } => {
            (p.kind, p.fill, p.fill_value) = (2, fill_code(fill), fill_value);
            (p.lo0, p.hi0) = factor;
        }
        Augment::Zoom {
            height,
            width,
            fill,
            fill_value,
        } => {
            (p.kind, p.fill, p.fill_value) = (3, fill_code(fill), fill_value);
            (p.lo0, p.hi0) = height;
            if let Some(w) = width {
                p.mode = 1;
                (p.lo1, p.hi1) = w;
            }
        }
        Augment::Contrast { .. } => unreachable!("random_affine_params on a contrast layer"),
    }
    p
}

/// The pass parameters of contrast layer `l` (`salt`: its index in the model).
pub fn random_contrast_params(
    l: &LayerPlan,
    batch: usize,
    salt: usize,
    training: bool,
) -> RandomContrastParams {
    let Layer::Augment(Augment::Contrast {
        factor,
        value_range,
    }) = l.layer
    else {
        unreachable!("random_contrast_params on {:?}", l.layer)
    };
    RandomContrastParams {
        batch: batch as u32,
        channels: l.input.c as u32,
        height: l.input.h as u32,
        width: l.input.w as u32,
        salt: salt as u32,
        training: training as u32,
        lo: factor.0,
        hi: factor.1,
        range_lo: value_range.0,
        range_hi: value_range.1,
        ..Default::default()
    }
}

/// The `Augment` of the parameters `p` (the inverse of `random_affine_params`), for the
/// reference to draw matrices from.
pub fn affine_of(p: &RandomAffineParams) -> Augment {
    let fill = match p.fill {
        1 => Fill::Wrap,
        2 => Fill::Constant,
        3 => Fill::Nearest,
        _ => Fill::Reflect,
    };
    let fill_value = p.fill_value;
    match p.kind {
        0 => Augment::Flip {
            horizontal: p.mode & 1 != 0,
            vertical: p.mode & 2 != 0,
        },
        1 => Augment::Translation {
            height: (p.lo0, p.hi0),
            width: (p.lo1, p.hi1),
            fill,
            fill_value,
        },
        2 => Augment::Rotation {
            factor: (p.lo0, p.hi0),
            fill,
            fill_value,
        },
        _ => Augment::Zoom {
            height: (p.lo0, p.hi0),
            width: (p.mode & 1 != 0).then_some((p.lo1, p.hi1)),
            fill,
            fill_value,
        },
    }
}
