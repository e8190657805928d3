//! Augmentation layers on the GPU: each image's random flip, translation, rotation or zoom
//! (`random_affine_forward`) or contrast (`random_contrast_forward`), drawn in the shader from
//! the hash of the run's seed, the step, the layer and the image; and `affine_transform`, the
//! same sampling with given matrices. No backward pass: they come first in a model.

use super::{check_len, grid_1d, stepped, Recorder};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::{random_affine_params, random_contrast_params, Augment, Layer};
use crate::layers::{RandomAffineParams, RandomContrastParams};
use crate::shaders::Shader;

fn values(p: &RandomAffineParams) -> usize {
    (p.batch * p.channels * p.height * p.width) as usize
}

/// out and inp are (N, C, H, W); each image's draws come from `steps[state[0]]` (t, seed).
pub fn random_affine_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &RandomAffineParams,
) -> Result<()> {
    let (shader, n) = (Shader::RandomAffineForward, values(p));
    stepped(
        gpu,
        prog,
        shader,
        ("out", out),
        ("inp", inp),
        (steps, state),
        p,
        (n, n),
    )
}

/// out and inp are (N, C, H, W); `matrices` holds 6 values per image (a0 a1 a2 b0 b1 b2).
pub fn affine_transform(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    matrices: &Tensor,
    p: &RandomAffineParams,
) -> Result<()> {
    check_len("affine_transform", "inp", inp, values(p))?;
    check_len("affine_transform", "out", out, values(p))?;
    check_len(
        "affine_transform",
        "matrices",
        matrices,
        6 * p.batch as usize,
    )?;
    prog.push(gpu.dispatch(
        Shader::AffineTransform,
        "main",
        &[(0, inp), (1, matrices), (3, out)],
        Some((4, p)),
        grid_1d(values(p)),
    )?);
    Ok(())
}

/// out and inp are (N, C, H, W); each image's factor comes from `steps[state[0]]` (t, seed).
pub fn random_contrast_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &RandomContrastParams,
) -> Result<()> {
    let n = (p.batch * p.channels * p.height * p.width) as usize;
    // One invocation per image and channel.
    let planes = (p.batch * p.channels) as usize;
    let shader = Shader::RandomContrastForward;
    stepped(
        gpu,
        prog,
        shader,
        ("out", out),
        ("inp", inp),
        (steps, state),
        p,
        (n, planes),
    )
}

/// Augmentation layer `i`'s forward pass (the identity outside training); the layer's index
/// tells its draws from the other layers'.
pub fn record_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let (out, inp) = (&r.net.acts[i + 1], r.inp(i));
    match l.layer {
        Layer::Augment(Augment::Contrast { .. }) => {
            let p = random_contrast_params(l, r.batch, i, r.training);
            random_contrast_forward(r.gpu, &mut r.prog, out, inp, r.steps, r.state, &p)
        }
        _ => {
            let p = random_affine_params(l, r.batch, i, r.training);
            random_affine_forward(r.gpu, &mut r.prog, out, inp, r.steps, r.state, &p)
        }
    }
}
