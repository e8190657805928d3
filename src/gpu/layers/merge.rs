//! The joins of a graph model on the GPU: Add and Concatenate's passes, how they record their
//! forward and backward passes, and the sums of a forked tensor's gradients
//! (`plan::GradientSlots`).

use super::{check_len, grid_1d, one_to_one, Recorder};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::{concatenate_params, AddParams, ConcatenateParams};
use crate::shaders::Shader;

/// out = a + b, `p.len` values.
pub fn add_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    a: &Tensor,
    b: &Tensor,
    p: &AddParams,
) -> Result<()> {
    let n = p.len as usize;
    for (what, t) in [("out", out), ("a", a), ("b", b)] {
        check_len("add_forward", what, t, n)?;
    }
    prog.push(gpu.dispatch(
        Shader::AddForward,
        "main",
        &[(0, a), (1, out), (3, b)],
        Some((2, p)),
        grid_1d(n),
    )?);
    Ok(())
}

/// out = out + a, `p.len` values.
pub fn add_forward_into(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    a: &Tensor,
    p: &AddParams,
) -> Result<()> {
    let n = p.len as usize;
    check_len("add_forward", "out", out, n)?;
    check_len("add_forward", "a", a, n)?;
    prog.push(gpu.dispatch(
        Shader::AddForward,
        "into",
        &[(0, a), (1, out)],
        Some((2, p)),
        grid_1d(n),
    )?);
    Ok(())
}

/// dinp = dout, `p.len` values.
pub fn add_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    p: &AddParams,
) -> Result<()> {
    let n = p.len as usize;
    let shader = Shader::AddBackward;
    one_to_one(
        gpu,
        prog,
        shader,
        ("dinp", dinp, n),
        ("dout", dout, n),
        p,
        n,
    )
}

/// One input of a Concatenate into its channels of `out`.
pub fn concatenate_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    p: &ConcatenateParams,
) -> Result<()> {
    let (n, all) = concatenate_lens(p);
    let shader = Shader::ConcatenateForward;
    one_to_one(gpu, prog, shader, ("out", out, all), ("inp", inp, n), p, n)
}

/// One input's part of a Concatenate's gradient.
pub fn concatenate_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    p: &ConcatenateParams,
) -> Result<()> {
    let (n, all) = concatenate_lens(p);
    let shader = Shader::ConcatenateBackward;
    one_to_one(
        gpu,
        prog,
        shader,
        ("dinp", dinp, n),
        ("dout", dout, all),
        p,
        n,
    )
}

/// Values of one input of a Concatenate, and of its output.
fn concatenate_lens(p: &ConcatenateParams) -> (usize, usize) {
    let per = (p.batch * p.plane) as usize;
    (per * p.c_in as usize, per * p.c_out as usize)
}

/// Add layer `i`'s forward pass: `((a + b) + c) ...` in input order.
pub fn record_add_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = AddParams::new(r.batch, l.output.len());
    let (out, acts) = (&r.net.acts[i + 1], &r.net.acts);
    add_forward(
        r.gpu,
        &mut r.prog,
        out,
        &acts[l.inputs[0]],
        &acts[l.inputs[1]],
        &p,
    )?;
    for &t in &l.inputs[2..] {
        add_forward_into(r.gpu, &mut r.prog, out, &acts[t], &p)?;
    }
    Ok(())
}

/// Add layer `i`'s backward pass: each input that needs it gets the output's gradient.
pub fn record_add_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = AddParams::new(r.batch, l.output.len());
    for (k, &t) in l.inputs.iter().enumerate() {
        if r.model.needs_gradient(t) {
            let (dinp, dout) = (r.dslot(i, k), &r.net.dacts[i + 1]);
            add_backward(r.gpu, &mut r.prog, dinp, dout, &p)?;
        }
    }
    Ok(())
}

/// Concatenate layer `i`'s forward pass: one copy per input.
pub fn record_concatenate_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let out = &r.net.acts[i + 1];
    for (&t, p) in l.inputs.iter().zip(concatenate_params(
        &r.model.input_shapes(i),
        l.output,
        r.batch,
    )) {
        concatenate_forward(r.gpu, &mut r.prog, out, &r.net.acts[t], &p)?;
    }
    Ok(())
}

/// Concatenate layer `i`'s backward pass: each input that needs it gets its channels' part.
pub fn record_concatenate_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let dout = &r.net.dacts[i + 1];
    let params = concatenate_params(&r.model.input_shapes(i), l.output, r.batch);
    for (k, (&t, p)) in l.inputs.iter().zip(params).enumerate() {
        if r.model.needs_gradient(t) {
            let dinp = r.dslot(i, k);
            concatenate_backward(r.gpu, &mut r.prog, dinp, dout, &p)?;
        }
    }
    Ok(())
}

/// After layer `i`'s backward pass: the gradients of the tensors it is the first reader of,
/// summed from their readers' buffers in layer order.
pub fn record_sum_gradients(r: &mut Recorder, i: usize) -> Result<()> {
    let net = r.net;
    for (t, bufs) in &net.slots.sums[i] {
        let p = AddParams::new(r.batch, r.model.tensor_shape(*t).len());
        let d = &net.dacts;
        add_forward(r.gpu, &mut r.prog, &d[*t], &d[bufs[0]], &d[bufs[1]], &p)?;
        for &b in &bufs[2..] {
            add_forward_into(r.gpu, &mut r.prog, &d[*t], &d[b], &p)?;
        }
    }
    Ok(())
}
