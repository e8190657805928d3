//! Augmentation layers on the CPU: the same draws and matrices as the GPU (`layers::augment`),
//! bilinear sampling with Keras' fill modes, and their passes in `CpuNet`. Arithmetic is in f32
//! whatever `T`, as on the GPU; no backward pass (they come first in a model).

use super::net::split;
use super::{CpuNet, Real};
use crate::layers::augment::{affine_of, contrast_factor, matrix, uniform};
use crate::layers::{
    random_affine_params, random_contrast_params, Layer, RandomAffineParams, RandomContrastParams,
    StepRecord,
};

/// Python's floor modulo: in [0, n) for n > 0.
fn floor_mod(i: i32, n: i32) -> i32 {
    i.rem_euclid(n)
}

/// Index `i` of an axis of `n` pixels as fill mode `fill` reads it (0 reflect, 1 wrap,
/// 2 constant and 3 nearest: clamped), as Keras' torch backend fixes indices.
pub fn fix_index(i: i32, n: i32, fill: u32) -> i32 {
    match fill {
        0 => {
            // Keras' _reflect_index_fixer: the mirror of 2i + 1 about 2n + 1, halved.
            let (j, m) = (2 * i + 1, 2 * n + 1);
            let s = m - 1;
            let mirrored = (floor_mod(j + s, 2 * s) - s).abs();
            (mirrored - 1).div_euclid(2)
        }
        1 => floor_mod(i, n),
        _ => i.clamp(0, n - 1),
    }
}

/// out = each image of inp sampled at its matrix (`matrices`: 6 per image, a0 a1 a2 b0 b1 b2)
/// bilinearly, as `keras.ops.image.affine_transform` does: output pixel (x, y) reads the input at
/// (a0 x + a1 y + a2, b0 x + b1 y + b2); the four neighbours' weights are products of (1 - f, f)
/// per axis, summed in Keras' order; with fill mode constant a neighbour outside reads
/// `fill_value`.
pub fn affine_transform<T: Real>(
    out: &mut [T],
    inp: &[T],
    matrices: &[f32],
    p: &RandomAffineParams,
) {
    let (c_, h, w) = (p.channels as usize, p.height as usize, p.width as usize);
    for n in 0..p.batch as usize {
        let m = &matrices[6 * n..6 * n + 6];
        for c in 0..c_ {
            let plane = &inp[(n * c_ + c) * h * w..][..h * w];
            for y in 0..h {
                for x in 0..w {
                    let v = sample(plane, m, x as f32, y as f32, p);
                    out[((n * c_ + c) * h + y) * w + x] = T::from_f64(v as f64);
                }
            }
        }
    }
}

/// The value of `plane` at the point output pixel (x, y) maps to under `m`.
fn sample<T: Real>(plane: &[T], m: &[f32], x: f32, y: f32, p: &RandomAffineParams) -> f32 {
    let (h, w) = (p.height as i32, p.width as i32);
    let sy = m[3] * x + m[4] * y + m[5];
    let sx = m[0] * x + m[1] * y + m[2];
    let (fy, fx) = (sy.floor(), sx.floor());
    let (wy1, wx1) = (sy - fy, sx - fx);
    let (wy0, wx0) = (1.0 - wy1, 1.0 - wx1);
    let (y0, x0) = (fy as i32, fx as i32);
    let read = |yi: i32, xi: i32| -> f32 {
        if p.fill == 2 && (!(0..h).contains(&yi) || !(0..w).contains(&xi)) {
            return p.fill_value;
        }
        let (yy, xx) = (fix_index(yi, h, p.fill), fix_index(xi, w, p.fill));
        plane[(yy * w + xx) as usize].to_f64() as f32
    };
    let mut v = wy0 * wx0 * read(y0, x0);
    v += wy0 * wx1 * read(y0, x0 + 1);
    v += wy1 * wx0 * read(y0 + 1, x0);
    v += wy1 * wx1 * read(y0 + 1, x0 + 1);
    v
}

/// Each image's matrix at step `step` (see `layers::augment::matrix`).
pub fn random_affine_matrices(step: &StepRecord, p: &RandomAffineParams) -> Vec<f32> {
    let a = affine_of(p);
    (0..p.batch)
        .flat_map(|n| {
            let u = [
                uniform(step.seed, step.t, p.salt, n, 0),
                uniform(step.seed, step.t, p.salt, n, 1),
            ];
            matrix(&a, u, p.height as usize, p.width as usize)
        })
        .collect()
}

/// Training: each image flipped, shifted, rotated or zoomed by its own draw of step `step`;
/// otherwise out = inp.
pub fn random_affine_forward<T: Real>(
    out: &mut [T],
    inp: &[T],
    step: &StepRecord,
    p: &RandomAffineParams,
) {
    let len = (p.batch * p.channels * p.height * p.width) as usize;
    if p.training == 0 {
        out[..len].copy_from_slice(&inp[..len]);
        return;
    }
    affine_transform(out, inp, &random_affine_matrices(step, p), p);
}

/// Training: each image's channels moved from their means by its own factor of step `step`
/// ((v - mean) * factor + mean, clipped to the value range), the mean taken over the height,
/// then the width, as Keras does; otherwise out = inp.
pub fn random_contrast_forward<T: Real>(
    out: &mut [T],
    inp: &[T],
    step: &StepRecord,
    p: &RandomContrastParams,
) {
    let (c_, h, w) = (p.channels as usize, p.height as usize, p.width as usize);
    let len = p.batch as usize * c_ * h * w;
    if p.training == 0 {
        out[..len].copy_from_slice(&inp[..len]);
        return;
    }
    let factors: Vec<f32> = (0..p.batch)
        .map(|n| contrast_factor((p.lo, p.hi), uniform(step.seed, step.t, p.salt, n, 0)))
        .collect();
    adjust_contrast(out, inp, &factors, p);
}

/// Each image's channels moved from their means by the image's factor in `factors`, as
/// `random_contrast_forward` does in training.
pub fn adjust_contrast<T: Real>(
    out: &mut [T],
    inp: &[T],
    factors: &[f32],
    p: &RandomContrastParams,
) {
    let (c_, h, w) = (p.channels as usize, p.height as usize, p.width as usize);
    for (n, &f) in factors.iter().enumerate().take(p.batch as usize) {
        for c in 0..c_ {
            let base = (n * c_ + c) * h * w;
            let at = |y: usize, x: usize| inp[base + y * w + x].to_f64() as f32;
            let mut mean = 0.0f32;
            for x in 0..w {
                let mut col = 0.0f32;
                for y in 0..h {
                    col += at(y, x);
                }
                mean += col / h as f32;
            }
            mean /= w as f32;
            for y in 0..h {
                for x in 0..w {
                    let v = ((at(y, x) - mean) * f + mean).clamp(p.range_lo, p.range_hi);
                    out[base + y * w + x] = T::from_f64(v as f64);
                }
            }
        }
    }
}

impl<T: Real> CpuNet<T> {
    /// Augmentation layer `i`'s forward pass (the identity outside training); the layer's index
    /// tells its draws from the other layers'.
    pub(super) fn forward_augment(&mut self, i: usize, batch: usize, training: bool) {
        let l = self.model.layers[i].clone();
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        match l.layer {
            Layer::Augment(crate::layers::Augment::Contrast { .. }) => {
                let p = random_contrast_params(&l, batch, i, training);
                random_contrast_forward(out, inp, &self.dropout, &p);
            }
            _ => {
                let p = random_affine_params(&l, batch, i, training);
                random_affine_forward(out, inp, &self.dropout, &p);
            }
        }
    }
}
