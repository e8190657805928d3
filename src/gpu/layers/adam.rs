//! Adam on the GPU (Keras' form), over the whole flat parameter buffer in one pass, keeping the
//! convs' channel-last weight copies in step so that the step needs no transposition passes.

use super::{
    check_len, conv2d_select, conv2d_transpose_weight, grid_1d, per_step, NetBuffers, Recorder,
};
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::conv_params;
use crate::layers::{Adam, AdamCopy, AdamParams, MAX_ADAM_COPIES};
use crate::model::Model;
use crate::shaders::Shader;

/// One Adam step over `p.len` elements; alpha comes from steps[state[1]].alpha (the step the
/// loss pass handed on). `wt`, with `p.copies` > 0: the buffer of the channel-last conv weight
/// copies that Adam keeps in step with the weights (placed by `p.table`).
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
    for (what, t) in [("weights", weights), ("m", m), ("v", v), ("grads", grads)] {
        check_len("adam_update", what, t, p.len as usize)?;
    }
    check_len("adam_update", "state", state, 2)?;
    if !p.len.is_multiple_of(4) {
        return Err(Error::Shape {
            op: "adam_update",
            msg: format!(
                "{} parameters: the shader takes them 4 at a time (pad to a multiple of 4)",
                p.len
            ),
        });
    }
    let none;
    let wt = match wt {
        Some(wt) => {
            for c in &p.table[..p.copies as usize] {
                let need = c.wt_offset as usize + (c.taps * c.c_in * c.c4 * 4) as usize;
                check_len("adam_update", "weight copies", wt, need)?;
            }
            wt
        }
        None if p.copies == 0 => {
            none = gpu.zeros("adam.no_copies", 4)?;
            &none
        }
        None => {
            return Err(Error::Shape {
                op: "adam_update",
                msg: format!(
                    "{} weight copies asked for, no copies buffer given",
                    p.copies
                ),
            })
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
    prog.push(per_step(d, &[steps], 16));
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

/// The Adam step after the backward passes: every parameter, its moments `m` and `v`, and the
/// weight copies, if kept.
pub fn record(
    r: &mut Recorder,
    adam: &Adam,
    m: &Tensor,
    v: &Tensor,
    copies: Option<&AdamCopies>,
) -> Result<()> {
    let len = r.model.flat_len;
    let ap = match copies {
        Some(c) => adam.params(len).with_copies(&c.table),
        None => adam.params(len),
    };
    let (weights, grads) = (&r.net.weights, &r.net.grads);
    let wt = copies.map(|c| &c.wt);
    adam_update(
        r.gpu,
        &mut r.prog,
        weights,
        m,
        v,
        grads,
        r.steps,
        r.state,
        &ap,
        wt,
    )
}
