//! The optimizers on the GPU (Keras' forms: Adam and AdamW in `adam_update`, SGD in
//! `sgd_update`), over the whole flat parameter buffer in one pass, keeping the convs'
//! channel-last weight copies in step so that the step needs no transposition passes.

use super::{
    check_len, conv2d_select, conv2d_transpose_weight, grid_1d, per_step, NetBuffers, Recorder,
    STEP_BYTES,
};
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::conv_params;
use crate::layers::{
    AdamCopy, AdamParams, Optimizer, OptimizerKind, RmspropParams, SgdParams, MAX_ADAM_COPIES,
};
use crate::model::Model;
use crate::shaders::Shader;

/// One Adam (or AdamW) step over `p.len` elements; alpha (and AdamW's lr) come from
/// steps[state[1]] (the step the loss pass handed on). `wt`, with `p.copies` > 0: the buffer of
/// the channel-last conv weight copies that the pass keeps in step with the weights (placed by
/// `p.table`).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    weights: &Tensor,
    m: &Tensor,
    v: &Tensor,
    grads: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &AdamParams,
    wt: Option<&Tensor>,
) -> Result<()> {
    let op = "adam_update";
    for (what, t) in [("weights", weights), ("m", m), ("v", v), ("grads", grads)] {
        check_len(op, what, t, p.len as usize)?;
    }
    let none;
    let wt = match copies_buffer(op, p.len, state, &p.table[..p.copies as usize], wt)? {
        Some(wt) => wt,
        None => {
            none = gpu.zeros("optimizer.no_copies", 4)?;
            &none
        }
    };
    let d = gpu.dispatch(
        Shader::AdamUpdate,
        "main",
        &[
            (0, grads),
            (1, steps),
            (2, state),
            (3, weights),
            (4, m),
            (5, v),
            (7, wt),
        ],
        Some((6, p)),
        grid_1d(p.len as usize / 4),
    )?;
    prog.push(per_step(d, &[steps], STEP_BYTES));
    Ok(())
}

/// One SGD step over `p.len` elements; the learning rate comes from steps[state[1]].alpha.
/// `m`: the momentum (unread with `p.momentum` 0). `wt`: as for `adam_update`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_update(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    weights: &Tensor,
    m: &Tensor,
    grads: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &SgdParams,
    wt: Option<&Tensor>,
) -> Result<()> {
    let op = "sgd_update";
    for (what, t) in [("weights", weights), ("m", m), ("grads", grads)] {
        check_len(op, what, t, p.len as usize)?;
    }
    let none;
    let wt = match copies_buffer(op, p.len, state, &p.table[..p.copies as usize], wt)? {
        Some(wt) => wt,
        None => {
            none = gpu.zeros("optimizer.no_copies", 4)?;
            &none
        }
    };
    let d = gpu.dispatch(
        Shader::SgdUpdate,
        "main",
        &[
            (0, grads),
            (1, steps),
            (2, state),
            (3, weights),
            (4, m),
            (7, wt),
        ],
        Some((6, p)),
        grid_1d(p.len as usize / 4),
    )?;
    prog.push(per_step(d, &[steps], STEP_BYTES));
    Ok(())
}

/// One RMSprop step over `p.len` elements; the learning rate comes from steps[state[1]].alpha.
/// `m`: the momentum (unread with `p.momentum` 0), `v` the velocity, `a` the average gradient
/// (unread unless `p.centered`). `wt`: as for `adam_update`.
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    weights: &Tensor,
    m: &Tensor,
    v: &Tensor,
    a: &Tensor,
    grads: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &RmspropParams,
    wt: Option<&Tensor>,
) -> Result<()> {
    let op = "rmsprop_update";
    for (what, t) in [("weights", weights), ("m", m), ("v", v), ("grads", grads)] {
        check_len(op, what, t, p.len as usize)?;
    }
    if p.centered != 0 {
        check_len(op, "a", a, p.len as usize)?;
    }
    let none;
    let wt = match copies_buffer(op, p.len, state, &p.table[..p.copies as usize], wt)? {
        Some(wt) => wt,
        None => {
            none = gpu.zeros("optimizer.no_copies", 4)?;
            &none
        }
    };
    let d = gpu.dispatch(
        Shader::RmspropUpdate,
        "main",
        &[
            (0, grads),
            (1, steps),
            (2, state),
            (3, weights),
            (4, m),
            (5, v),
            (7, wt),
            (8, a),
        ],
        Some((6, p)),
        grid_1d(p.len as usize / 4),
    )?;
    prog.push(per_step(d, &[steps], STEP_BYTES));
    Ok(())
}

/// The checks the optimizer passes share; the copies buffer, if the table needs one.
fn copies_buffer<'a>(
    op: &'static str,
    len: u32,
    state: &Tensor,
    table: &[AdamCopy],
    wt: Option<&'a Tensor>,
) -> Result<Option<&'a Tensor>> {
    check_len(op, "state", state, 2)?;
    if !len.is_multiple_of(4) {
        return Err(Error::Shape {
            op,
            msg: format!(
                "{len} parameters: the shader takes them 4 at a time (pad to a multiple of 4)"
            ),
        });
    }
    match wt {
        Some(wt) => {
            for c in table {
                let need = c.wt_offset as usize + (c.taps * c.c_in * c.c4 * 4) as usize;
                check_len(op, "weight copies", wt, need)?;
            }
            Ok(Some(wt))
        }
        None if table.is_empty() => Ok(None),
        None => Err(Error::Shape {
            op,
            msg: format!(
                "{} weight copies asked for, no copies buffer given",
                table.len()
            ),
        }),
    }
}

/// The channel-last weight copies of (the first `MAX_ADAM_COPIES`) conv layers, which Adam keeps
/// in step with the weights: one buffer holds them all, 256-byte aligned slices placed by
/// `table`; `refresh` transposes them anew after the host writes the weights.
pub struct AdamCopies {
    pub wt: Tensor,
    pub table: Vec<AdamCopy>,
    pub refresh: Vec<Dispatch>,
}

impl AdamCopies {
    /// Points the conv layers' scratch at their slices of one new copies buffer (`None` for a
    /// model without conv layers).
    pub fn new(
        gpu: &Gpu,
        model: &Model,
        net: &mut NetBuffers,
        max_batch: usize,
    ) -> Result<Option<AdamCopies>> {
        let kept: Vec<(usize, usize)> = model
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((i, l.weight?)).filter(|_| net.conv(i).is_ok()))
            .take(MAX_ADAM_COPIES)
            .collect();
        let mut table = Vec::new();
        let mut at = 0;
        for &(i, w) in &kept {
            let p = conv_params(&model.layers[i], max_batch);
            table.push(AdamCopy {
                offset: model.params[w].offset as u32,
                c_out: p.c_out,
                c_in: p.c_in,
                taps: p.kh * p.kw,
                wt_offset: at as u32,
                c4: p.c_out.div_ceil(4),
                _pad: [0; 2],
            });
            at += net.conv(i)?.scratch.wt.len.div_ceil(64) * 64;
        }
        if table.is_empty() {
            return Ok(None);
        }
        let wt = gpu.zeros("conv.wt", at)?;
        let mut refresh = Vec::new();
        for (&(i, w), c) in kept.iter().zip(&table) {
            let p = &model.params[w];
            let weight = net.weights.slice(p.offset, p.len);
            let s = &mut net.conv_mut(i)?.scratch;
            s.wt = wt.slice(c.wt_offset as usize, s.wt.len);
            s.wt_kept = true;
            let cp = conv2d_select(gpu, conv_params(&model.layers[i], max_batch));
            conv2d_transpose_weight(gpu, &mut refresh, &s.wt, &weight, &cp)?;
        }
        Ok(Some(AdamCopies { wt, table, refresh }))
    }
}

/// The optimizer's step after the backward passes: every parameter, its state `m` (and `v`,
/// `a`: `OptimizerKind::state_names`), and the weight copies, if kept.
pub fn record(
    r: &mut Recorder,
    opt: &Optimizer,
    [m, v, a]: [&Tensor; 3],
    copies: Option<&AdamCopies>,
) -> Result<()> {
    let len = r.model.flat_len;
    let table = copies.map_or(&[][..], |c| c.table.as_slice());
    let (weights, grads) = (&r.net.weights, &r.net.grads);
    let wt = copies.map(|c| &c.wt);
    let (gpu, prog, steps, state) = (r.gpu, &mut r.prog, r.steps, r.state);
    match opt.kind {
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let p = opt.params(len).with_copies(table);
            adam_update(gpu, prog, weights, m, v, grads, steps, state, &p, wt)
        }
        OptimizerKind::Sgd => {
            let p = opt.sgd_params(len).with_copies(table);
            sgd_update(gpu, prog, weights, m, grads, steps, state, &p, wt)
        }
        OptimizerKind::Rmsprop => {
            let p = opt.rmsprop_params(len).with_copies(table);
            rmsprop_update(gpu, prog, weights, m, v, a, grads, steps, state, &p, wt)
        }
    }
}
