//! Pooling on the GPU: max-pool (with its winners) and average pooling (global pooling is one
//! window over the whole plane), and how a pooling layer records its passes.

use super::{check_len, grid_1d, one_to_one, Recorder};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::{avgpool_params, pool_params};
use crate::layers::{Avgpool2dParams, Maxpool2dParams};
use crate::shaders::Shader;

/// inp is (N, C, H, W); out and argmax are (N, C, OH, OW).
pub fn maxpool2d_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    argmax: &Tensor,
    inp: &Tensor,
    p: &Maxpool2dParams,
) -> Result<()> {
    check_len("maxpool2d_forward", "inp", inp, p.inp_len())?;
    check_len("maxpool2d_forward", "out", out, p.out_len())?;
    check_len("maxpool2d_forward", "argmax", argmax, p.out_len())?;
    // The usual 2x2 stride-2 window on an even-width plane: one vec2 load per window row.
    let (entry, x) = if p.size == 2 && p.stride == 2 && p.w_in.is_multiple_of(2) {
        ("main_2x2", (4, inp))
    } else {
        ("main", (0, inp))
    };
    prog.push(gpu.dispatch(
        Shader::Maxpool2dForward,
        entry,
        &[x, (1, out), (2, argmax)],
        Some((3, p)),
        grid_1d(p.out_len()),
    )?);
    Ok(())
}

/// dinp is (N, C, H, W); argmax and dout are (N, C, OH, OW).
pub fn maxpool2d_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    argmax: &Tensor,
    dout: &Tensor,
    p: &Maxpool2dParams,
) -> Result<()> {
    check_len("maxpool2d_backward", "dinp", dinp, p.inp_len())?;
    check_len("maxpool2d_backward", "dout", dout, p.out_len())?;
    check_len("maxpool2d_backward", "argmax", argmax, p.out_len())?;
    // Non-overlapping windows: one invocation per window instead of per input element.
    let (entry, n) = if p.stride >= p.size {
        ("disjoint", p.out_len())
    } else {
        ("main", p.inp_len())
    };
    prog.push(gpu.dispatch(
        Shader::Maxpool2dBackward,
        entry,
        &[(0, argmax), (1, dout), (2, dinp)],
        Some((3, p)),
        grid_1d(n),
    )?);
    Ok(())
}

/// inp is (N, C, H, W), out is (N, C, OH, OW).
pub fn avgpool2d_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    p: &Avgpool2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Avgpool2dForward,
        ("out", out, p.out_len()),
        ("inp", inp, p.inp_len()),
        p,
        p.out_len(),
    )
}

/// dinp is (N, C, H, W), dout is (N, C, OH, OW).
pub fn avgpool2d_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    p: &Avgpool2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Avgpool2dBackward,
        ("dinp", dinp, p.inp_len()),
        ("dout", dout, p.out_len()),
        p,
        p.inp_len(),
    )
}

/// Max-pool layer `i`'s forward pass: its output and winners.
pub fn record_maxpool2d_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let p = pool_params(&r.model.layers[i], r.batch);
    let (out, am, inp) = (&r.net.acts[i + 1], r.net.argmax(i)?, r.inp(i));
    maxpool2d_forward(r.gpu, &mut r.prog, out, am, inp, &p)
}

/// Max-pool layer `i`'s backward pass (none for a first layer).
pub fn record_maxpool2d_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let Some(dinp) = r.dinp(i) else { return Ok(()) };
    let p = pool_params(&r.model.layers[i], r.batch);
    let (am, dout) = (r.net.argmax(i)?, &r.net.dacts[i + 1]);
    maxpool2d_backward(r.gpu, &mut r.prog, dinp, am, dout, &p)
}

/// Average (or global average) pooling layer `i`'s forward pass.
pub fn record_avgpool2d_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let p = avgpool_params(&r.model.layers[i], r.batch);
    let inp = r.inp(i);
    avgpool2d_forward(r.gpu, &mut r.prog, &r.net.acts[i + 1], inp, &p)
}

/// Average pooling layer `i`'s backward pass (none for a first layer).
pub fn record_avgpool2d_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let Some(dinp) = r.dinp(i) else { return Ok(()) };
    let p = avgpool_params(&r.model.layers[i], r.batch);
    avgpool2d_backward(r.gpu, &mut r.prog, dinp, &r.net.dacts[i + 1], &p)
}
