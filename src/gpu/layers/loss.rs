//! The loss on the GPU: softmax cross-entropy's loss sum and correct count per step, the logits'
//! gradient, and both in one pass in training; how the loss stage is recorded.

use super::{check_len, grid, per_step, Recorder, WG};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::SoftmaxXentParams;
use crate::shaders::Shader;

/// `metrics[2 * state[0] ..]` = (summed cross-entropy, correct count); logits is (N, K), labels is (N).
/// The loss pass ends the step: it advances the counter (`state[0] += 1`) and leaves the step it
/// ended in `state[1]` for the backward passes, so `state` holds 2 values.
pub fn softmax_xent_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    metrics: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    state: &Tensor,
    p: &SoftmaxXentParams,
) -> Result<()> {
    check_len(
        "softmax_xent_forward",
        "logits",
        logits,
        (p.batch * p.classes) as usize,
    )?;
    check_len("softmax_xent_forward", "labels", labels, p.batch as usize)?;
    check_len("softmax_xent_forward", "state", state, 2)?;
    let d = gpu.dispatch(
        Shader::SoftmaxXentForward,
        "main",
        &[(0, logits), (1, labels), (2, state), (3, metrics)],
        Some((4, p)),
        [1, 1, 1],
    )?;
    prog.push(per_step(d, &[metrics], 8));
    Ok(())
}

/// softmax_xent_forward and softmax_xent_backward of a training step in one dispatch (the same
/// bits): metrics slot `state[0]` and dlogits (N, K) from logits (N, K) and labels (N).
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    metrics: &Tensor,
    dlogits: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    state: &Tensor,
    p: &SoftmaxXentParams,
) -> Result<()> {
    let n = (p.batch * p.classes) as usize;
    check_len("softmax_xent", "logits", logits, n)?;
    check_len("softmax_xent", "dlogits", dlogits, n)?;
    check_len("softmax_xent", "labels", labels, p.batch as usize)?;
    check_len("softmax_xent", "state", state, 2)?;
    let d = gpu.dispatch(
        Shader::SoftmaxXent,
        "main",
        &[
            (0, logits),
            (1, labels),
            (2, state),
            (3, metrics),
            (4, dlogits),
        ],
        Some((5, p)),
        [1, 1, 1],
    )?;
    prog.push(per_step(d, &[metrics], 8));
    Ok(())
}

/// dlogits and logits are (N, K), labels is (N).
pub fn softmax_xent_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dlogits: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    p: &SoftmaxXentParams,
) -> Result<()> {
    check_len(
        "softmax_xent_backward",
        "logits",
        logits,
        (p.batch * p.classes) as usize,
    )?;
    check_len(
        "softmax_xent_backward",
        "dlogits",
        dlogits,
        (p.batch * p.classes) as usize,
    )?;
    check_len("softmax_xent_backward", "labels", labels, p.batch as usize)?;
    prog.push(gpu.dispatch(
        Shader::SoftmaxXentBackward,
        "main",
        &[(0, logits), (1, labels), (2, dlogits)],
        Some((3, p)),
        [grid((p.batch as usize).div_ceil(WG)), 1, 1],
    )?);
    Ok(())
}

/// The loss stage after the last layer: the step's (loss sum, correct) into `metrics` at the
/// step counter's slot, and in training the logits' gradient (one pass with `gpu.fuse`).
pub fn record(r: &mut Recorder, metrics: &Tensor) -> Result<()> {
    let nl = r.model.layers.len();
    let xp = SoftmaxXentParams::new(r.batch, r.model.classes);
    let (logits, dlogits, labels) = (&r.net.acts[nl], &r.net.dacts[nl], &r.net.labels);
    let (gpu, prog) = (r.gpu, &mut r.prog);
    if r.training && gpu.fuse {
        return softmax_xent(gpu, prog, metrics, dlogits, logits, labels, r.state, &xp);
    }
    softmax_xent_forward(gpu, prog, metrics, logits, labels, r.state, &xp)?;
    if r.training {
        softmax_xent_backward(gpu, prog, dlogits, logits, labels, &xp)?;
    }
    Ok(())
}
