//! Element-wise layers on the GPU: a separate ReLU, and dropout (its mask a hash of the run's
//! seed, the step, the layer and the element, drawn again by the backward pass), and how they
//! record their passes.

use super::{check_len, grid_1d, one_to_one, stepped, Recorder};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::{dropout_params, relu_params};
use crate::layers::{DropoutParams, ReluParams};
use crate::shaders::Shader;

/// out = max(inp, 0) over `p.len` values.
pub fn relu_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    p: &ReluParams,
) -> Result<()> {
    let n = p.len as usize;
    one_to_one(
        gpu,
        prog,
        Shader::ReluForward,
        ("out", out, n),
        ("inp", inp, n),
        p,
        n,
    )
}

/// dinp = dout where the forward output `out` is positive.
pub fn relu_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    out: &Tensor,
    dout: &Tensor,
    p: &ReluParams,
) -> Result<()> {
    check_len("relu_backward", "out", out, p.len as usize)?;
    check_len("relu_backward", "dout", dout, p.len as usize)?;
    check_len("relu_backward", "dinp", dinp, p.len as usize)?;
    prog.push(gpu.dispatch(
        Shader::ReluBackward,
        "main",
        &[(0, out), (1, dout), (2, dinp)],
        Some((3, p)),
        grid_1d(p.len as usize),
    )?);
    Ok(())
}

/// out and inp hold `p.len` values; the mask is drawn from `steps[state[0]]` (t, seed).
pub fn dropout_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &DropoutParams,
) -> Result<()> {
    let (shader, n) = (Shader::DropoutForward, p.len as usize);
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

/// dinp and dout hold `p.len` values; the same mask as the forward pass of this step.
pub fn dropout_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &DropoutParams,
) -> Result<()> {
    let (shader, n) = (Shader::DropoutBackward, p.len as usize);
    stepped(
        gpu,
        prog,
        shader,
        ("dinp", dinp),
        ("dout", dout),
        (steps, state),
        p,
        (n, n),
    )
}

/// ReLU layer `i`'s forward pass.
pub fn record_relu_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let p = relu_params(&r.model.layers[i], r.batch);
    let inp = r.inp(i);
    relu_forward(r.gpu, &mut r.prog, &r.net.acts[i + 1], inp, &p)
}

/// ReLU layer `i`'s backward pass (none for a first layer).
pub fn record_relu_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let Some(dinp) = r.dinp(i) else { return Ok(()) };
    let p = relu_params(&r.model.layers[i], r.batch);
    let (out, dout) = (&r.net.acts[i + 1], &r.net.dacts[i + 1]);
    relu_backward(r.gpu, &mut r.prog, dinp, out, dout, &p)
}

/// Dropout layer `i`'s forward pass (the identity outside training); the layer's index tells
/// its mask from the other dropout layers'.
pub fn record_dropout_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let p = dropout_params(&r.model.layers[i], r.batch, i, r.training);
    let (out, inp) = (&r.net.acts[i + 1], r.inp(i));
    dropout_forward(r.gpu, &mut r.prog, out, inp, r.steps, r.state, &p)
}

/// Dropout layer `i`'s backward pass (none for a first layer).
pub fn record_dropout_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let Some(dinp) = r.dinp(i) else { return Ok(()) };
    let p = dropout_params(&r.model.layers[i], r.batch, i, true);
    let dout = &r.net.dacts[i + 1];
    dropout_backward(r.gpu, &mut r.prog, dinp, dout, r.steps, r.state, &p)
}
