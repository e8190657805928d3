//! The optimizers on the GPU (Keras' forms: Adam and AdamW in `adam_update`, SGD in
//! `sgd_update`), over the whole flat parameter buffer in one pass, keeping the convs'
//! channel-last weight copies in step so that the step needs no transposition passes.

use super::{
    check_len, conv2d_select, conv2d_transpose_weight, grid_1d, per_step, NetBuffers, Recorder,
    STEP_BYTES,
};
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Overrides, Tensor};
use crate::layers::conv_params;
use crate::layers::{
    AdamCopy, AdamParams, Optimizer, OptimizerKind, RmspropParams, SgdParams, MAX_ADAM_COPIES,
};
use crate::model::Model;
use crate::shaders::Shader;

/// One Adam (or AdamW, or AMSGrad with `a` holding the largest v so far) step over `p.len`
/// elements; alpha (and AdamW's lr) come from
/// `steps[state[1]]` (the step the loss pass handed on). `wt`, with `p.copies` > 0: the buffer of
/// the channel-last conv weight copies that the pass keeps in step with the weights (placed by
/// `p.table`).
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    weights: &Tensor,
    m: &Tensor,
    v: &Tensor,
    a: &Tensor,
    grads: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &AdamParams,
    wt: Option<&Tensor>,
) -> Result<()> {
    if p.amsgrad != 0 {
        check_len("adam_update", "a", a, p.len as usize)?;
    }
    let state_len = [("weights", weights), ("m", m), ("v", v), ("grads", grads)];
    update(
        gpu,
        prog,
        UpdatePass {
            op: "adam_update",
            shader: Shader::AdamUpdate,
            len: p.len,
            state_len: &state_len,
            table: &p.table[..p.copies as usize],
            steps,
            state,
            // Branches folded away where the option is off (CPU adapters run both sides).
            overrides: vec![
                ("AMSGRAD", p.amsgrad),
                ("DECAY", u32::from(p.weight_decay != 0.0)),
            ],
        },
        &[(0, grads), (3, weights), (4, m), (5, v), (8, a)],
        p,
        wt,
    )
}

/// One SGD step over `p.len` elements; the learning rate comes from `steps[state[1]].alpha`.
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
    let state_len = [("weights", weights), ("m", m), ("grads", grads)];
    update(
        gpu,
        prog,
        UpdatePass {
            op: "sgd_update",
            shader: Shader::SgdUpdate,
            len: p.len,
            state_len: &state_len,
            table: &p.table[..p.copies as usize],
            steps,
            state,
            overrides: Vec::new(),
        },
        &[(0, grads), (3, weights), (4, m)],
        p,
        wt,
    )
}

/// One RMSprop step over `p.len` elements; the learning rate comes from `steps[state[1]].alpha`.
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
    if p.centered != 0 {
        check_len("rmsprop_update", "a", a, p.len as usize)?;
    }
    let state_len = [("weights", weights), ("m", m), ("v", v), ("grads", grads)];
    update(
        gpu,
        prog,
        UpdatePass {
            op: "rmsprop_update",
            shader: Shader::RmspropUpdate,
            len: p.len,
            state_len: &state_len,
            table: &p.table[..p.copies as usize],
            steps,
            state,
            overrides: Vec::new(),
        },
        &[(0, grads), (3, weights), (4, m), (5, v), (8, a)],
        p,
        wt,
    )
}

/// What an optimizer pass is, for `update`.
struct UpdatePass<'a> {
    op: &'static str,
    shader: Shader,
    len: u32,
    /// The tensors that hold `len` values each, by name.
    state_len: &'a [(&'static str, &'a Tensor)],
    /// The conv weight copies to keep.
    table: &'a [AdamCopy],
    /// The step records and counter (bindings 1 and 2).
    steps: &'a Tensor,
    state: &'a Tensor,
    /// The pass's pipeline-overridable constants (its options that are fixed for a run).
    overrides: Overrides,
}

/// The dispatch every optimizer pass is: its checks (each tensor's length, the step counter,
/// `len` a multiple of 4, the copies buffer the table needs), then one invocation per 4
/// parameters with `storage`, the step records and counter at bindings 1 and 2, the params at
/// 6 and the copies (a dummy without a table) at 7.
fn update<P: bytemuck::Pod>(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    u: UpdatePass,
    storage: &[(u32, &Tensor)],
    p: &P,
    wt: Option<&Tensor>,
) -> Result<()> {
    let op = u.op;
    for (what, t) in u.state_len {
        check_len(op, what, t, u.len as usize)?;
    }
    check_len(op, "state", u.state, 2)?;
    if !u.len.is_multiple_of(4) {
        return Err(Error::Shape {
            op,
            msg: format!(
                "{} parameters: the shader takes them 4 at a time (pad to a multiple of 4)",
                u.len
            ),
        });
    }
    let none;
    let wt = match wt {
        Some(wt) => {
            for c in u.table {
                let need = c.wt_offset as usize + (c.taps * c.c_in * c.c4 * 4) as usize;
                check_len(op, "weight copies", wt, need)?;
            }
            wt
        }
        None if u.table.is_empty() => {
            none = gpu.zeros("optimizer.no_copies", 4)?;
            &none
        }
        None => {
            return Err(Error::Shape {
                op,
                msg: format!(
                    "{} weight copies asked for, no copies buffer given",
                    u.table.len()
                ),
            })
        }
    };
    let mut bind = storage.to_vec();
    bind.extend([(1, u.steps), (2, u.state), (7, wt)]);
    let d = gpu.dispatch_tiled(
        u.shader,
        "main",
        &u.overrides,
        &bind,
        Some((6, p)),
        grid_1d(u.len as usize / 4),
    )?;
    prog.push(per_step(d, &[u.steps], STEP_BYTES));
    Ok(())
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
            adam_update(gpu, prog, weights, m, v, a, grads, steps, state, &p, wt)
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
