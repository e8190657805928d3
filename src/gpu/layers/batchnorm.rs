//! Batch normalisation on the GPU (Keras' semantics: batch statistics and moving statistics
//! updated in training, the moving statistics otherwise; one workgroup per channel, fixed-order
//! reductions), and how a batch-norm layer records its passes.

use super::{check_len, grid, grid_1d, Recorder};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::batchnorm_params;
use crate::layers::BatchnormParams;
use crate::shaders::Shader;

/// inp and out are (N, C, H*W); saved is (C, 2); gamma, beta and the moving statistics are (C).
/// Two dispatches: the statistics (batch ones in training, moving ones otherwise), then the
/// normalisation.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    saved: &Tensor,
    moving_mean: &Tensor,
    moving_var: &Tensor,
    inp: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    p: &BatchnormParams,
) -> Result<()> {
    let c = p.channels as usize;
    check_len("batchnorm_forward", "inp", inp, p.len())?;
    check_len("batchnorm_forward", "out", out, p.len())?;
    check_len("batchnorm_forward", "saved", saved, 2 * c)?;
    for (what, t) in [
        ("moving_mean", moving_mean),
        ("moving_var", moving_var),
        ("gamma", gamma),
        ("beta", beta),
    ] {
        check_len("batchnorm_forward", what, t, c)?;
    }
    prog.push(if p.training != 0 {
        gpu.dispatch(
            Shader::BatchnormForward,
            "stats",
            &[(0, inp), (1, saved), (2, moving_mean), (3, moving_var)],
            Some((7, p)),
            [grid(c), 1, 1],
        )?
    } else {
        gpu.dispatch(
            Shader::BatchnormForward,
            "stats_eval",
            &[(1, saved), (2, moving_mean), (3, moving_var)],
            Some((7, p)),
            grid_1d(c),
        )?
    });
    prog.push(gpu.dispatch(
        Shader::BatchnormForward,
        "normalize",
        &[(0, inp), (1, saved), (4, gamma), (5, beta), (6, out)],
        Some((7, p)),
        grid_1d(p.len()),
    )?);
    Ok(())
}

/// dgamma and dbeta (C) from dout and the forward pass's inp and saved statistics; then dinp,
/// when given (the first layer's input needs no gradient).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: Option<&Tensor>,
    dgamma: &Tensor,
    dbeta: &Tensor,
    dout: &Tensor,
    inp: &Tensor,
    saved: &Tensor,
    gamma: &Tensor,
    p: &BatchnormParams,
) -> Result<()> {
    let c = p.channels as usize;
    check_len("batchnorm_backward", "inp", inp, p.len())?;
    check_len("batchnorm_backward", "dout", dout, p.len())?;
    check_len("batchnorm_backward", "saved", saved, 2 * c)?;
    for (what, t) in [("gamma", gamma), ("dgamma", dgamma), ("dbeta", dbeta)] {
        check_len("batchnorm_backward", what, t, c)?;
    }
    prog.push(gpu.dispatch(
        Shader::BatchnormBackward,
        "reduce",
        &[(0, inp), (1, dout), (2, saved), (4, dgamma), (5, dbeta)],
        Some((7, p)),
        [grid(c), 1, 1],
    )?);
    if let Some(dinp) = dinp {
        check_len("batchnorm_backward", "dinp", dinp, p.len())?;
        prog.push(gpu.dispatch(
            Shader::BatchnormBackward,
            "input",
            &[
                (0, inp),
                (1, dout),
                (2, saved),
                (3, gamma),
                (4, dgamma),
                (5, dbeta),
                (6, dinp),
            ],
            Some((7, p)),
            grid_1d(p.len()),
        )?);
    }
    Ok(())
}

/// Batch-norm layer `i`'s forward pass: the output and the (mean, 1 / std) it used; in
/// training the moving statistics too.
pub fn record_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = batchnorm_params(l, r.batch, r.training);
    let (mean, var) = (r.weight(l.stats)?, r.weight(l.stats.map(|s| s + 1))?);
    let (gamma, beta) = (r.weight(l.weight)?, r.weight(l.bias)?);
    let (out, saved, inp) = (&r.net.acts[i + 1], r.net.saved(i)?, r.inp(i));
    batchnorm_forward(
        r.gpu,
        &mut r.prog,
        out,
        saved,
        &mean,
        &var,
        inp,
        &gamma,
        &beta,
        &p,
    )
}

/// Batch-norm layer `i`'s backward pass: gamma's and beta's gradients, and the input's.
pub fn record_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = batchnorm_params(l, r.batch, true);
    let (dgamma, dbeta, gamma) = (r.grad(l.weight)?, r.grad(l.bias)?, r.weight(l.weight)?);
    let (dout, inp, saved) = (&r.net.dacts[i + 1], r.inp(i), r.net.saved(i)?);
    let dinp = r.dinp(i);
    batchnorm_backward(
        r.gpu,
        &mut r.prog,
        dinp,
        &dgamma,
        &dbeta,
        dout,
        inp,
        saved,
        &gamma,
        &p,
    )
}
