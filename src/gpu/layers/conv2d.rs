//! Convolution on the GPU: the stride-1 conv passes (portable, subgroup and channel-last
//! variants, fused with a following max-pool where the plan says so), the zero padding and
//! subsampling passes of `same` and strided convs, the layer's scratch buffers, and how a conv
//! layer records its forward and backward passes.

use super::{check_len, grid, grid_1d, one_to_one, LayerBuffers, Recorder, TILE, WG};
use crate::error::{Error, Result};
use crate::gpu::tuning::{self, Choice, ConvBackwardTiling, Source, TuningCache};
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::{conv_geometry, conv_params, pad_params, pool_params, subsample_params};
use crate::layers::{Conv2dParams, Conv2dPooledParams, Pad2dParams, Subsample2dParams};
use crate::model::{LayerPlan, Model};
use crate::plan::Stage;
use crate::shaders::Shader;

/// Length of the channel-last weight copy (`wt`) the conv passes use: kh * kw * c_in * c_out
/// rounded up to whole vec4s.
pub fn conv2d_wt_len(p: &Conv2dParams) -> usize {
    (p.kh * p.kw * p.c_in) as usize * c_out_padded(p)
}

/// wt is (KH*KW, C, ceil(OC/4)*4): `weight` (OC, C, KH, KW) with the output channel innermost.
pub fn conv2d_transpose_weight(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    wt: &Tensor,
    weight: &Tensor,
    p: &Conv2dParams,
) -> Result<()> {
    check_len("conv2d_transpose_weight", "weight", weight, p.weight_len())?;
    check_len("conv2d_transpose_weight", "wt", wt, conv2d_wt_len(p))?;
    prog.push(gpu.dispatch(
        Shader::Conv2dTransposeWeight,
        "main",
        &[(0, weight), (1, wt)],
        Some((2, p)),
        grid_1d(conv2d_wt_len(p) / 4),
    )?);
    Ok(())
}

/// `p` with the fastest kernels this device runs: channel-last (`p.channel_last = 1`) when
/// c_in % 4 == 0 and the device has subgroups, else the portable ones.
pub fn conv2d_select(gpu: &Gpu, p: Conv2dParams) -> Conv2dParams {
    Conv2dParams {
        channel_last: (p.c_in.is_multiple_of(4) && gpu.subgroups) as u32,
        ..p
    }
}

/// inp is (N, C, H, W), weight is (OC, C, KH, KW), bias is (OC), out is (N, OC, OH, OW).
/// Records conv2d_transpose_weight (into `scratch.wt`, unless `scratch.wt_kept`), then conv2d_forward's main; or, when
/// `p.channel_last`, conv2d_forward_subgroup's prepare_input (into `scratch.xt`) and
/// main_channel_last.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
) -> Result<()> {
    let op = "conv2d_forward";
    check_len(op, "out", out, p.out_len())?;
    conv2d_forward_prepare(gpu, prog, op, inp, weight, bias, scratch, p)?;
    let npix = (p.batch * p.h_out * p.w_out) as usize;
    let grid_tiles = [
        grid(npix.div_ceil(TILE * WG)),
        grid((p.c_out as usize).div_ceil(TILE)),
        1,
    ];
    if p.channel_last != 0 {
        // 16 output channels per invocation here.
        let groups = [
            grid_tiles[0],
            grid((p.c_out as usize).div_ceil(2 * TILE)),
            1,
        ];
        prog.push(
            gpu.dispatch(
                Shader::Conv2dForwardSubgroup,
                "main_channel_last",
                &[(6, &scratch.xt), (2, bias), (3, out), (5, &scratch.wt)],
                Some((4, p)),
                groups,
            )?
            .with_flops(p.flops()),
        );
    } else {
        prog.push(
            gpu.dispatch(
                Shader::Conv2dForward,
                "main",
                &[(0, inp), (2, bias), (3, out), (5, &scratch.wt)],
                Some((4, p)),
                grid_tiles,
            )?
            .with_flops(p.flops()),
        );
    }
    Ok(())
}

/// What both conv forward launchers record before their main pass, after checking the shapes
/// they share: the channel-last weights (unless `scratch.wt_kept`) and, with `p.channel_last`,
/// the channel-last input `scratch.xt` (conv2d_forward_subgroup's prepare_input).
#[allow(clippy::too_many_arguments)]
fn conv2d_forward_prepare(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    op: &'static str,
    inp: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
) -> Result<()> {
    check_len(op, "inp", inp, p.inp_len())?;
    check_len(op, "weight", weight, p.weight_len())?;
    check_len(op, "bias", bias, p.c_out as usize)?;
    check_channel_last(op, p)?;
    check_len(op, "scratch.wt", &scratch.wt, conv2d_wt_len(p))?;
    if !scratch.wt_kept {
        conv2d_transpose_weight(gpu, prog, &scratch.wt, weight, p)?;
    }
    if p.channel_last != 0 && !scratch.xt_given {
        check_len(op, "scratch.xt", &scratch.xt, p.inp_len())?;
        prog.push(gpu.dispatch(
            Shader::Conv2dForwardSubgroup,
            "prepare_input",
            &[(0, inp), (6, &scratch.xt)],
            Some((4, p)),
            grid_1d(p.inp_len() / 4),
        )?);
    }
    Ok(())
}

fn check_channel_last(op: &'static str, p: &Conv2dParams) -> Result<()> {
    if p.channel_last != 0 && !p.c_in.is_multiple_of(4) {
        return Err(Error::Shape {
            op,
            msg: format!("channel_last needs c_in % 4 == 0, c_in is {}", p.c_in),
        });
    }
    Ok(())
}

/// Scratch buffers of `conv2d_forward` and `conv2d_backward`: the weights (`wt`) and, with
/// `channel_last`, the input (`xt`, written by the forward pass, read by the backward weight
/// pass) in channel-last layouts; the pre-activation gradient (`g`, output channels padded to a
/// multiple of 4) and the split-K partial sums of the weight gradient.
pub struct Conv2dScratch {
    pub g: Tensor,
    pub wt: Tensor,
    /// `wt` is kept equal to the weights by someone else (the trainer's Adam, `AdamCopy`):
    /// conv2d_forward records no transposition.
    pub wt_kept: bool,
    pub xt: Tensor,
    /// `xt` is written by the pooled forward pass of the conv before (its `xt_next`):
    /// conv2d_forward records no prepare_input.
    pub xt_given: bool,
    /// The next conv's `xt`, which this conv's pooled forward pass fills with its output
    /// (channel-last, the same values as that conv's prepare_input would write).
    pub xt_next: Option<Tensor>,
    pub partial: Tensor,
}

/// Output channels rounded up to whole vec4s.
fn c_out_padded(p: &Conv2dParams) -> usize {
    (p.c_out as usize).div_ceil(4) * 4
}

/// Scratch for batches up to `p.batch`.
pub fn conv2d_scratch(gpu: &Gpu, p: &Conv2dParams) -> Result<Conv2dScratch> {
    let npix = (p.batch * p.h_out * p.w_out) as usize;
    Ok(Conv2dScratch {
        g: gpu.zeros("conv2d_backward.g", npix * c_out_padded(p))?,
        wt: gpu.zeros("conv2d.wt", conv2d_wt_len(p))?,
        wt_kept: false,
        xt_given: false,
        xt_next: None,
        xt: gpu.zeros(
            "conv2d.xt",
            if p.channel_last != 0 { p.inp_len() } else { 4 },
        )?,
        partial: gpu.zeros(
            "conv2d_backward.partial",
            p.chunks() * p.c_out as usize * (p.ksize() + 1),
        )?,
    })
}

/// dinp (optional: the first layer needs none) is (N, C, H, W); dweight is (OC, C, KH, KW),
/// dbias is (OC); out and dout are (N, OC, OH, OW); inp is (N, C, H, W); weight is (OC, C, KH, KW).
/// `scratch` must hold what `conv2d_forward` of the same `weight` (and, with `p.channel_last`,
/// the same `inp`) left in it: the channel-last weights `wt` (and input `xt`). The forward pass
/// of the same step records them, so the backward pass does not copy them again.
/// Records prepare_grad, then the weight gradient's partial sums and the input gradient (one
/// dispatch with `gpu.fuse` when one file has both), then reduce_weight.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: Option<&Tensor>,
    dweight: &Tensor,
    dbias: &Tensor,
    out: &Tensor,
    dout: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
) -> Result<()> {
    let op = "conv2d_backward";
    check_conv2d_backward(op, dweight, dbias, inp, weight, scratch, p)?;
    check_len(op, "out", out, p.out_len())?;
    check_len(op, "dout", dout, p.out_len())?;
    let npix = (p.batch * p.h_out * p.w_out) as usize;
    if (p.h_out * p.w_out).is_multiple_of(4) {
        // Whole vec4s of pixels in every channel plane.
        prog.push(gpu.dispatch(
            Shader::Conv2dBackward,
            "prepare_grad_vec4",
            &[(12, out), (13, dout), (9, &scratch.g)],
            Some((8, p)),
            grid_1d(npix / 4 * c_out_padded(p) / 4),
        )?);
    } else {
        prog.push(gpu.dispatch(
            Shader::Conv2dBackward,
            "prepare_grad",
            &[(2, out), (3, dout), (9, &scratch.g)],
            Some((8, p)),
            grid_1d(npix * c_out_padded(p) / 4),
        )?);
    }
    let tiling = conv2d_backward_tiling(gpu, p, dinp.is_some())?;
    conv2d_backward_rest(gpu, prog, op, dinp, dweight, dbias, inp, scratch, p, tiling)
}

/// conv2d_forward and the 2x2, stride-2 max-pool after it in one pass
/// (`conv2d_forward_pooled.wgsl`): `pooled` and `argmax` (N, OC, OH / 2, OW / 2) from inp
/// (N, C, H, W), weight (OC, C, KH, KW) and bias (OC); the conv's output is never written. As
/// conv2d_forward, it first records conv2d_transpose_weight (unless `scratch.wt_kept`) and,
/// when `p.conv.channel_last`, prepare_input (into `scratch.xt`, which the backward weight pass
/// reads).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_pooled(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    pooled: &Tensor,
    argmax: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dPooledParams,
) -> Result<()> {
    let op = "conv2d_forward_pooled";
    let c = &p.conv;
    check_len(op, "pooled", pooled, p.pool_len())?;
    check_len(op, "argmax", argmax, p.pool_len())?;
    if !Conv2dPooledParams::fits_forward(c, &p.pool_params()) {
        return Err(Error::Shape {
            op,
            msg: format!(
                "pool {}x{} stride {} over {}x{}: only 2x2 stride 2 over the conv's output fuses",
                p.pool_size, p.pool_size, p.pool_stride, p.h_pool, p.w_pool
            ),
        });
    }
    conv2d_forward_prepare(gpu, prog, op, inp, weight, bias, scratch, c)?;
    let cells = (c.batch * p.h_pool * p.w_pool) as usize;
    // The kernel, its pipeline constants, the channels per invocation and where it reads its
    // input: channel-last (16 channels, from scratch.xt); for any c_in with subgroups (blocks of
    // 8 channels, no more than the channels fill); portable (8).
    let (shader, entry, overrides, channels, x) = if c.channel_last != 0 {
        let x = (6, &scratch.xt);
        (
            Shader::Conv2dForwardPooledSubgroup,
            "main_channel_last",
            Vec::new(),
            2 * TILE,
            x,
        )
    } else if gpu.subgroups {
        let cb = gpu.tile_blocks.min(c.c_out.div_ceil(8)).clamp(1, 4);
        let cb = if cb == 3 { 2 } else { cb };
        let o = vec![("CB", cb)];
        (
            Shader::Conv2dForwardPooledSubgroup,
            "main_blocks",
            o,
            TILE * cb as usize,
            (0, inp),
        )
    } else {
        (
            Shader::Conv2dForwardPooled,
            "main",
            Vec::new(),
            TILE,
            (0, inp),
        )
    };
    // The next conv's channel-last input, written here too (XT), or a placeholder.
    let placeholder;
    let xt_out = match &scratch.xt_next {
        Some(xt) => {
            check_len(op, "scratch.xt_next", xt, p.pool_len())?;
            if !c.c_out.is_multiple_of(4) {
                return Err(Error::Shape {
                    op,
                    msg: format!(
                        "a channel-last copy of {} channels (not whole vec4s)",
                        c.c_out
                    ),
                });
            }
            xt
        }
        None => {
            placeholder = gpu.zeros("conv2d_forward_pooled.no_xt", 4)?;
            &placeholder
        }
    };
    let mut overrides = overrides;
    overrides.push(("XT", u32::from(scratch.xt_next.is_some())));
    prog.push(
        gpu.dispatch_tiled(
            shader,
            entry,
            &overrides,
            &[
                x,
                (2, bias),
                (3, pooled),
                (5, &scratch.wt),
                (7, argmax),
                (8, xt_out),
            ],
            Some((4, p)),
            [
                grid(cells.div_ceil(2 * WG)),
                grid((c.c_out as usize).div_ceil(channels)),
                1,
            ],
        )?
        .with_flops(c.flops()),
    );
    Ok(())
}

/// conv2d_backward for a conv whose output feeds a max-pool with disjoint windows: the pool's
/// backward pass and the conv's pre-activation gradient in one dispatch (`conv2d_backward_pooled.wgsl`)
/// from the pool's output `pooled`, gradient `dpool` and winners `argmax`, then
/// conv2d_backward's weight and input passes. Neither the conv's output nor the pool's input
/// gradient is read or written.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_pooled(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: Option<&Tensor>,
    dweight: &Tensor,
    dbias: &Tensor,
    pooled: &Tensor,
    argmax: &Tensor,
    dpool: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dPooledParams,
) -> Result<()> {
    let op = "conv2d_backward_pooled";
    let c = &p.conv;
    check_conv2d_backward(op, dweight, dbias, inp, weight, scratch, c)?;
    check_len(op, "pooled", pooled, p.pool_len())?;
    check_len(op, "argmax", argmax, p.pool_len())?;
    check_len(op, "dpool", dpool, p.pool_len())?;
    if p.pool_stride < p.pool_size {
        return Err(Error::Shape {
            op,
            msg: format!(
                "pool {}x{} stride {} overlaps; only disjoint windows fuse",
                p.pool_size, p.pool_size, p.pool_stride
            ),
        });
    }
    if dinp.is_none() && p.weight_from_winners() {
        // A first conv: the weight gradient's partial sums straight from the winners, with no
        // gradient plane in between (the same bits).
        check_len(
            op,
            "scratch.partial",
            &scratch.partial,
            c.chunks() * c.c_out as usize * (c.ksize() + 1),
        )?;
        let wg = gpu.narrow_workgroup;
        prog.push(
            gpu.dispatch_tiled(
                Shader::Conv2dBackwardPooled,
                "backward_weight",
                &vec![
                    ("WG", wg),
                    ("K3", u32::from((c.c_in, c.kh, c.kw) == (1, 3, 3))),
                ],
                &[
                    (0, pooled),
                    (1, argmax),
                    (2, dpool),
                    (5, inp),
                    (6, &scratch.partial),
                ],
                Some((4, p)),
                [
                    grid(c.chunks().div_ceil(wg as usize)),
                    grid((c.c_out as usize).div_ceil(2 * TILE)),
                    1,
                ],
            )?
            .with_flops(c.flops()),
        );
        prog.push(reduce_weight(gpu, dweight, dbias, scratch, c)?);
        return Ok(());
    }
    let s = p.pool_stride as usize;
    let cells = c.batch as usize * (c.h_out as usize).div_ceil(s) * (c.w_out as usize).div_ceil(s);
    prog.push(gpu.dispatch(
        Shader::Conv2dBackwardPooled,
        "main",
        &[(0, pooled), (1, argmax), (2, dpool), (3, &scratch.g)],
        Some((4, p)),
        grid_1d(cells * c_out_padded(c) / 4),
    )?);
    let tiling = conv2d_backward_tiling(gpu, c, dinp.is_some())?;
    conv2d_backward_rest(gpu, prog, op, dinp, dweight, dbias, inp, scratch, c, tiling)
}

/// conv2d_backward's reduce_weight: dweight and dbias from the weight pass's partial sums.
fn reduce_weight(
    gpu: &Gpu,
    dweight: &Tensor,
    dbias: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
) -> Result<Dispatch> {
    gpu.dispatch(
        Shader::Conv2dBackward,
        "reduce_weight",
        &[(4, &scratch.partial), (6, dweight), (7, dbias)],
        Some((8, p)),
        [
            grid((p.c_out as usize * (p.ksize() + 1)).div_ceil(WG)),
            1,
            1,
        ],
    )
}

/// The checks both conv backward launchers share.
#[allow(clippy::too_many_arguments)]
fn check_conv2d_backward(
    op: &'static str,
    dweight: &Tensor,
    dbias: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
) -> Result<()> {
    check_len(op, "inp", inp, p.inp_len())?;
    check_channel_last(op, p)?;
    check_len(op, "weight", weight, p.weight_len())?;
    check_len(op, "dweight", dweight, p.weight_len())?;
    check_len(op, "dbias", dbias, p.c_out as usize)?;
    let npix = (p.batch * p.h_out * p.w_out) as usize;
    check_len(op, "scratch.g", &scratch.g, npix * c_out_padded(p))?;
    check_len(op, "scratch.wt", &scratch.wt, conv2d_wt_len(p))?;
    check_len(
        op,
        "scratch.partial",
        &scratch.partial,
        p.chunks() * p.c_out as usize * (p.ksize() + 1),
    )
}

/// The tiling of conv2d_backward on `p` (with the input gradient or not): the forced one, the
/// one chosen earlier in this process, the cached one, a newly tuned one (with `gpu.tune`), or
/// the device type's default.
pub fn conv2d_backward_tiling(
    gpu: &Gpu,
    p: &Conv2dParams,
    input: bool,
) -> Result<ConvBackwardTiling> {
    if let Some(t) = gpu.conv_backward_tiling {
        t.check(gpu.subgroups)?;
        return Ok(t);
    }
    let key = tuning::shape_key(p, input);
    if let Some((t, _)) = gpu.chosen_tiling(&key) {
        return Ok(t);
    }
    let default =
        ConvBackwardTiling::default_for(gpu.info.device_type).fitted(input, gpu.subgroups);
    if !gpu.tune {
        gpu.choose_tiling(key, default, Source::Default);
        return Ok(default);
    }
    let path = TuningCache::path();
    let mut cache = match path.as_deref().map(TuningCache::load).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            // Not ours to overwrite: run untuned and say why.
            crate::output::note(format!("{e}; using the default tiling"));
            gpu.choose_tiling(key, default, Source::Default);
            return Ok(default);
        }
    };
    let adapter = gpu.adapter_key();
    if let Some(c) = cache.get(&adapter, &key).filter(|_| !gpu.retune) {
        if c.tiling.check(gpu.subgroups).is_ok() {
            gpu.choose_tiling(key, c.tiling, Source::Tuned);
            return Ok(c.tiling);
        }
    }
    let choice = tune_conv2d_backward(gpu, p, input)?;
    crate::output::note(format!(
        "tuned {key}: {} ({:.3} ms; default {:.3} ms)",
        choice.tiling, choice.ms, choice.default_ms
    ));
    let tiling = choice.tiling;
    cache.insert(&adapter, key.clone(), choice);
    if let Some(path) = path {
        if let Err(e) = cache.save(&path) {
            crate::output::note(format!("could not keep the tuning: {e}"));
        }
    }
    gpu.choose_tiling(key, tiling, Source::Tuned);
    Ok(tiling)
}

/// Times conv2d_backward's weight and input passes on `p` under each candidate tiling (on
/// zeros: the arithmetic does not depend on the values) and returns the fastest; ties keep the
/// default. Each candidate: one untimed run (pipeline compilation), then the median of three
/// submits of enough copies to take a few milliseconds.
pub fn tune_conv2d_backward(gpu: &Gpu, p: &Conv2dParams, input: bool) -> Result<Choice> {
    let scratch = conv2d_scratch(gpu, p)?;
    let inp = gpu.zeros("tune.inp", p.inp_len())?;
    let dinp = gpu.zeros("tune.dinp", p.inp_len())?;
    let dweight = gpu.zeros("tune.dweight", p.weight_len())?;
    let dbias = gpu.zeros("tune.dbias", p.c_out as usize)?;
    let fit = |t: ConvBackwardTiling| t.fitted(input, gpu.subgroups);
    let default = fit(ConvBackwardTiling::default_for(gpu.info.device_type));
    let time = |t: ConvBackwardTiling| -> Result<f64> {
        let mut prog = Vec::new();
        let di = input.then_some(&dinp);
        conv2d_backward_rest(
            gpu, &mut prog, "tune", di, &dweight, &dbias, &inp, &scratch, p, t,
        )?;
        let once = |copies: usize| -> Result<f64> {
            let all: Vec<&Dispatch> = (0..copies).flat_map(|_| prog.iter()).collect();
            let start = std::time::Instant::now();
            gpu.run(&all)?;
            gpu.wait()?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        };
        let first = once(1)?;
        let single = once(1)?.min(first).max(1e-3);
        let copies = ((5.0 / single).ceil() as usize).clamp(1, 50);
        let mut runs = [once(copies)?, once(copies)?, once(copies)?];
        runs.sort_by(f64::total_cmp);
        Ok(runs[1] / copies as f64)
    };
    let default_ms = time(default)?;
    let mut best = (default, default_ms);
    for t in ConvBackwardTiling::candidates(gpu.info.device_type, gpu.subgroups) {
        // Candidates that differ only in knobs this shape does not use are timed once.
        if fit(t) != t || t == default {
            continue;
        }
        let ms = time(t)?;
        if ms < best.1 {
            best = (t, ms);
        }
    }
    // Timed again last: the first candidate timed runs on a cold adapter. If the default now
    // beats the best candidate, it is the choice.
    let default_ms = default_ms.min(time(default)?);
    if best.0 == default || default_ms <= best.1 {
        best = (default, default_ms);
    }
    Ok(Choice {
        tiling: best.0,
        ms: best.1,
        default_ms,
    })
}

/// After the pre-activation gradient is in `scratch.g`: the weight gradient (split-K, then
/// reduced) and, when asked, the input gradient.
#[allow(clippy::too_many_arguments)]
fn conv2d_backward_rest(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    op: &'static str,
    dinp: Option<&Tensor>,
    dweight: &Tensor,
    dbias: &Tensor,
    inp: &Tensor,
    scratch: &Conv2dScratch,
    p: &Conv2dParams,
    tiling: ConvBackwardTiling,
) -> Result<()> {
    let cols = p.ksize() + 1;
    if let Some(dinp) = dinp {
        check_len(op, "dinp", dinp, p.inp_len())?;
    }
    // 8 images at one input pixel per invocation (shaders/conv2d_backward.wgsl, input_tile).
    let blocks_in = (p.h_in * p.w_in) as usize * (p.batch as usize).div_ceil(TILE);
    // Same role and bindings in both files; the subgroup one shares the weights by broadcast
    // and takes 16 input channels per invocation.
    let (input_shader, c_tile) = if gpu.subgroups {
        (Shader::Conv2dBackwardSubgroup, 2 * TILE)
    } else {
        (Shader::Conv2dBackward, TILE)
    };
    let wg = tiling.wg as usize;
    let ci_groups = if gpu.subgroups {
        tiling.ci_groups as usize
    } else {
        1
    };
    let co_groups = tiling.co_groups as usize;
    let input_groups = [
        grid(blocks_in.div_ceil(wg)),
        grid((p.c_in as usize).div_ceil(c_tile * ci_groups)),
        1,
    ];
    let (shader, entry, x, groups) = if p.channel_last != 0 {
        check_len(op, "scratch.xt", &scratch.xt, p.inp_len())?;
        (
            Shader::Conv2dBackwardSubgroup,
            "backward_weight_channel_last",
            (11, &scratch.xt),
            // 16 output channels per invocation here.
            [
                grid(cols.div_ceil(TILE * wg)),
                grid((p.c_out as usize).div_ceil(2 * TILE * co_groups)),
                grid(p.chunks()),
            ],
        )
    } else {
        let pairs = cols.div_ceil(p.weight_tile_cols()) * p.chunks();
        (
            Shader::Conv2dBackward,
            "backward_weight",
            (0, inp),
            // 8 output channels per group, TILE_COLS columns per tile here.
            [
                grid(pairs.div_ceil(wg)),
                grid((p.c_out as usize).div_ceil(TILE * co_groups)),
                1,
            ],
        )
    };
    let reduce = reduce_weight(gpu, dweight, dbias, scratch, p)?;
    let volume = |g: [u32; 3]| g.iter().map(|&v| v as usize).product::<usize>();
    let joined = volume(groups) + volume(input_groups);
    match dinp {
        // Both passes are in one file: one dispatch runs the weight tiles and the input tiles,
        // interleaved (the same code per tile, so the same bits).
        Some(dinp)
            if gpu.fuse
                && tiling.joined
                && shader == input_shader
                && joined <= gpu.limits.max_compute_workgroups_per_dimension as usize =>
        {
            prog.push(
                gpu.dispatch_tiled(
                    shader,
                    "backward",
                    &tiling.weight_overrides(p.channel_last != 0, p.weight_tile_cols()),
                    &[
                        x,
                        (9, &scratch.g),
                        (4, &scratch.partial),
                        (10, &scratch.wt),
                        (5, dinp),
                    ],
                    Some((8, p)),
                    [grid(joined), 1, 1],
                )?
                .with_flops(2.0 * p.flops()),
            );
            prog.push(reduce);
        }
        _ => {
            prog.push(
                gpu.dispatch_tiled(
                    shader,
                    entry,
                    &tiling.weight_overrides(p.channel_last != 0, p.weight_tile_cols()),
                    &[x, (9, &scratch.g), (4, &scratch.partial)],
                    Some((8, p)),
                    groups,
                )?
                .with_flops(p.flops()),
            );
            prog.push(reduce);
            if let Some(dinp) = dinp {
                prog.push(
                    gpu.dispatch_tiled(
                        input_shader,
                        "backward_input",
                        &tiling.input_overrides(gpu.subgroups),
                        &[(9, &scratch.g), (10, &scratch.wt), (5, dinp)],
                        Some((8, p)),
                        input_groups,
                    )?
                    .with_flops(p.flops()),
                );
            }
        }
    }
    Ok(())
}

/// out (N, C, OH, OW): inp (N, C, H, W) placed at (top, left), zero around it.
pub fn pad2d_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    p: &Pad2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Pad2dForward,
        ("out", out, p.out_len()),
        ("inp", inp, p.inp_len()),
        p,
        p.out_len(),
    )
}

/// dinp (N, C, H, W): dout (N, C, OH, OW) cropped at (top, left).
pub fn pad2d_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    p: &Pad2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Pad2dBackward,
        ("dinp", dinp, p.inp_len()),
        ("dout", dout, p.out_len()),
        p,
        p.inp_len(),
    )
}

/// out: every `stride`-th pixel of inp.
pub fn subsample2d_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    p: &Subsample2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Subsample2dForward,
        ("out", out, p.out_len()),
        ("inp", inp, p.inp_len()),
        p,
        p.out_len(),
    )
}

/// dinp: dout at the sampled pixels, zero elsewhere.
pub fn subsample2d_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    dout: &Tensor,
    p: &Subsample2dParams,
) -> Result<()> {
    one_to_one(
        gpu,
        prog,
        Shader::Subsample2dBackward,
        ("dinp", dinp, p.inp_len()),
        ("dout", dout, p.out_len()),
        p,
        p.inp_len(),
    )
}

/// What a conv layer keeps besides its output: the conv passes' scratch, its padded input and
/// output before the stride with their gradients (`None` where it neither pads nor strides), and
/// a zero bias (with a gradient nobody reads) for a conv without one.
pub struct Conv2dBuffers {
    pub scratch: Conv2dScratch,
    /// Its stride-1 pass reads the channel-last input copy `scratch.xt`.
    pub channel_last: bool,
    pub padded: Option<Tensor>,
    pub dpadded: Option<Tensor>,
    pub full: Option<Tensor>,
    pub dfull: Option<Tensor>,
    pub zero_bias: Tensor,
    pub dbias: Tensor,
}

impl Conv2dBuffers {
    /// Forward buffers for `max_batch` images, backward ones for `batch`. The scratch is sized
    /// for the training batch (the backward pass's), except the channel-last input copy: the
    /// forward pass of the (larger) evaluation batch writes it too.
    pub fn new(gpu: &Gpu, l: &LayerPlan, batch: usize, max_batch: usize) -> Result<Self> {
        let p = conv2d_select(gpu, conv_params(l, batch));
        let mut scratch = conv2d_scratch(gpu, &p)?;
        if p.channel_last != 0 {
            scratch.xt = gpu.zeros("conv2d.xt", conv_params(l, max_batch).inp_len())?;
        }
        let g = conv_geometry(l);
        let z = |on: bool, what: &str, n: usize| -> Result<Option<Tensor>> {
            Ok(if on {
                Some(gpu.zeros(&format!("{}.{what}", l.name), n)?)
            } else {
                None
            })
        };
        Ok(Conv2dBuffers {
            scratch,
            channel_last: p.channel_last != 0,
            padded: z(g.padded_input(), "padded", max_batch * g.padded.len())?,
            dpadded: z(g.padded_input(), "dpadded", batch * g.padded.len())?,
            full: z(g.strided(), "full", max_batch * g.full.len())?,
            dfull: z(g.strided(), "dfull", batch * g.full.len())?,
            zero_bias: gpu.zeros(&format!("{}.zero_bias", l.name), g.out.c)?,
            dbias: gpu.zeros(&format!("{}.dbias", l.name), g.out.c)?,
        })
    }
}

/// Points the pooled forward pass of each conv+pool stage (`Stage::ConvPool` with `forward`) at
/// the channel-last input copy of the first conv that reads its output unpadded, where that
/// conv's kernels read one: the pooled pass writes it as it pools, and that conv records no
/// prepare_input (at batch 32 on lavapipe conv2's took 0.37 ms).
pub fn link_channel_last_inputs(model: &Model, stages: &[Stage], layers: &mut [LayerBuffers]) {
    for stage in stages {
        let Stage::ConvPool {
            conv: i,
            forward: true,
        } = *stage
        else {
            continue;
        };
        let reader = model
            .consumers(i + 2)
            .into_iter()
            .find_map(|(j, k)| match &layers[j] {
                LayerBuffers::Conv2d(c) if k == 0 && c.channel_last && c.padded.is_none() => {
                    Some(j)
                }
                _ => None,
            });
        let Some(j) = reader else { continue };
        let xt = match &mut layers[j] {
            LayerBuffers::Conv2d(c) => {
                c.scratch.xt_given = true;
                c.scratch.xt.clone()
            }
            _ => continue,
        };
        if let LayerBuffers::Conv2d(c) = &mut layers[i] {
            c.scratch.xt_next = Some(xt);
        }
    }
}

/// Conv `i`'s weight, its bias (or the zero bias) and the input its stride-1 pass reads (the
/// padded copy, recorded here, where the layer pads).
fn forward_inputs<'a>(
    r: &mut Recorder<'a>,
    i: usize,
) -> Result<(Tensor, Tensor, &'a Tensor, &'a Conv2dBuffers)> {
    let (l, net) = (&r.model.layers[i], r.net);
    let c = net.conv(i)?;
    let w = r.weight(l.weight)?;
    let b = match l.bias {
        Some(_) => r.weight(l.bias)?,
        None => c.zero_bias.clone(),
    };
    let inp = r.inp(i);
    let src = match (pad_params(l, r.batch), &c.padded) {
        (Some(pp), Some(padded)) => {
            pad2d_forward(r.gpu, &mut r.prog, padded, inp, &pp)?;
            padded
        }
        _ => inp,
    };
    Ok((w, b, src, c))
}

/// Conv layer `i`'s forward pass: padding, the stride-1 conv, subsampling, as the layer needs.
pub fn record_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let out = &r.net.acts[i + 1];
    let p = conv2d_select(r.gpu, conv_params(l, r.batch));
    let sp = subsample_params(l, r.batch);
    let (w, b, src, c) = forward_inputs(r, i)?;
    match (sp, &c.full) {
        (Some(sp), Some(full)) => {
            conv2d_forward(r.gpu, &mut r.prog, full, src, &w, &b, &c.scratch, &p)?;
            subsample2d_forward(r.gpu, &mut r.prog, out, full, &sp)
        }
        _ => conv2d_forward(r.gpu, &mut r.prog, out, src, &w, &b, &c.scratch, &p),
    }
}

/// The shapes of conv `i` fused with the max-pool `i + 1` after it.
fn pooled_params(r: &Recorder, i: usize) -> Conv2dPooledParams {
    let (conv, pool) = (&r.model.layers[i], &r.model.layers[i + 1]);
    let c = conv2d_select(r.gpu, conv_params(conv, r.batch));
    Conv2dPooledParams::new(c, &pool_params(pool, r.batch))
}

/// Conv layer `i` and the max-pool after it in one pass (`Stage::ConvPool` with `forward`): the
/// pool's output and winners; the conv's own output is never written.
pub fn record_forward_pooled(r: &mut Recorder, i: usize) -> Result<()> {
    let pp = pooled_params(r, i);
    let (pooled, am) = (&r.net.acts[i + 2], r.net.argmax(i + 1)?);
    let (w, b, src, c) = forward_inputs(r, i)?;
    conv2d_forward_pooled(r.gpu, &mut r.prog, pooled, am, src, &w, &b, &c.scratch, &pp)
}

/// Conv layer `i`'s backward pass; with `pooled`, the backward pass of the max-pool after it too
/// (`conv2d_backward_pooled`).
pub fn record_backward(r: &mut Recorder, i: usize, pooled: bool) -> Result<()> {
    let (l, net) = (&r.model.layers[i], r.net);
    let c = net.conv(i)?;
    let dw = r.grad(l.weight)?;
    let db = match l.bias {
        Some(_) => r.grad(l.bias)?,
        None => c.dbias.clone(),
    };
    let w = r.weight(l.weight)?;
    // The stride-1 convolution's output and its gradient.
    let (out, dout) = match (subsample_params(l, r.batch), &c.full, &c.dfull) {
        (Some(sp), Some(full), Some(dfull)) => {
            subsample2d_backward(r.gpu, &mut r.prog, dfull, &net.dacts[i + 1], &sp)?;
            (full, dfull)
        }
        _ => (&net.acts[i + 1], &net.dacts[i + 1]),
    };
    let pp = pad_params(l, r.batch);
    let (src, dsrc) = match (&pp, &c.padded, &c.dpadded) {
        (Some(_), Some(padded), Some(dpadded)) => (padded, dpadded),
        _ => (r.inp(i), r.dslot(i, 0)),
    };
    let dsrc = r.model.input_gradient(i).then_some(dsrc);
    if pooled {
        let p = pooled_params(r, i);
        let (pool, am, dpool) = (&net.acts[i + 2], net.argmax(i + 1)?, &net.dacts[i + 2]);
        conv2d_backward_pooled(
            r.gpu,
            &mut r.prog,
            dsrc,
            &dw,
            &db,
            pool,
            am,
            dpool,
            src,
            &w,
            &c.scratch,
            &p,
        )?;
    } else {
        let p = conv2d_select(r.gpu, conv_params(l, r.batch));
        conv2d_backward(
            r.gpu,
            &mut r.prog,
            dsrc,
            &dw,
            &db,
            out,
            dout,
            src,
            &w,
            &c.scratch,
            &p,
        )?;
    }
    if let (Some(dinp), Some(pp), Some(dpadded)) = (r.dinp(i), pp, &c.dpadded) {
        pad2d_backward(r.gpu, &mut r.prog, dinp, dpadded, &pp)?;
    }
    Ok(())
}
