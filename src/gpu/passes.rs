//! One launcher per shader pass, named and ordered like the CPU reference (outputs first, then
//! saved activations, then inputs, then shapes). Each appends its dispatch(es) to `prog`; nothing
//! runs until the program is submitted. Grid sizes follow each shader's header comment.

use super::{Dispatch, Gpu, Tensor};
use crate::error::{Error, Result};
use crate::layers::{
    AdamParams, Avgpool2dParams, BatchnormParams, Conv2dParams, Conv2dPooledParams,
    DenseChainParams, DenseParams, DropoutParams, GatherParams, Maxpool2dParams, Pad2dParams,
    ReluParams, SoftmaxXentParams, Subsample2dParams,
};
use crate::shaders::Shader;

const WG: usize = 64;
/// Register tile edge of the conv and dense kernels (TILE x TILE outputs per invocation).
const TILE: usize = 8;

/// A workgroup count; past u32 it saturates, so `Gpu::dispatch` rejects it instead of running a
/// truncated grid.
fn grid(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A 1-D grid of `n` invocations, spilling into y past 65,535 workgroups
/// (shaders index with gid.x + gid.y * 64 * num_workgroups.x).
fn grid_1d(n: usize) -> [u32; 3] {
    let groups = n.div_ceil(WG).max(1);
    if groups <= 65_535 {
        [grid(groups), 1, 1]
    } else {
        [65_535, grid(groups.div_ceil(65_535)), 1]
    }
}

fn check_len(op: &'static str, what: &str, t: &Tensor, need: usize) -> Result<()> {
    if t.len < need {
        return Err(Error::Shape {
            op,
            msg: format!("{what} holds {} elements, the shapes need {need}", t.len),
        });
    }
    Ok(())
}

/// `d` counting, of the per-epoch buffers it binds whole (the dataset, the epoch's row order,
/// step records and metric slots), only the `used` bytes one step touches: bench's bytes per
/// step are then the step's own traffic, whatever the dataset's size.
fn per_step(mut d: Dispatch, whole: &[&Tensor], used: u64) -> Dispatch {
    d.bytes = d.bytes - whole.iter().map(|t| t.len as u64 * 4).sum::<u64>() + used;
    d
}

/// x is (batch, pixels), y is (batch); rows come from indices[steps[state[0]].offset ..].
#[allow(clippy::too_many_arguments)]
pub fn gather_batch(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    x: &Tensor,
    y: &Tensor,
    images: &Tensor,
    labels: &Tensor,
    indices: &Tensor,
    steps: &Tensor,
    state: &Tensor,
    p: &GatherParams,
) -> Result<()> {
    check_len("gather_batch", "x", x, (p.batch * p.pixels) as usize)?;
    check_len("gather_batch", "y", y, p.batch as usize)?;
    let d = gpu.dispatch(
        Shader::GatherBatch,
        "main",
        &[
            (0, images),
            (1, labels),
            (2, indices),
            (3, steps),
            (4, state),
            (5, x),
            (6, y),
        ],
        Some((7, p)),
        [grid((p.pixels as usize).div_ceil(WG)), p.batch, 1],
    )?;
    // The batch's image bytes, label bytes and row indices, one step record.
    let used = (p.batch * (p.pixels + 1 + 4)) as u64 + 16;
    prog.push(per_step(d, &[images, labels, indices, steps], used));
    Ok(())
}

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
        prog.push(gpu.dispatch(
            Shader::Conv2dForwardSubgroup,
            "main_channel_last",
            &[(6, &scratch.xt), (2, bias), (3, out), (5, &scratch.wt)],
            Some((4, p)),
            groups,
        )?);
    } else {
        prog.push(gpu.dispatch(
            Shader::Conv2dForward,
            "main",
            &[(0, inp), (2, bias), (3, out), (5, &scratch.wt)],
            Some((4, p)),
            grid_tiles,
        )?);
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
    if p.channel_last != 0 {
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
    conv2d_backward_rest(gpu, prog, op, dinp, dweight, dbias, inp, scratch, p)
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
    if c.channel_last != 0 {
        prog.push(gpu.dispatch(
            Shader::Conv2dForwardPooledSubgroup,
            "main_channel_last",
            &[
                (6, &scratch.xt),
                (2, bias),
                (3, pooled),
                (5, &scratch.wt),
                (7, argmax),
            ],
            Some((4, p)),
            [
                grid(cells.div_ceil(2 * WG)),
                grid((c.c_out as usize).div_ceil(2 * TILE)),
                1,
            ],
        )?);
    } else {
        prog.push(gpu.dispatch(
            Shader::Conv2dForwardPooled,
            "main",
            &[
                (0, inp),
                (2, bias),
                (3, pooled),
                (5, &scratch.wt),
                (7, argmax),
            ],
            Some((4, p)),
            [
                grid(cells.div_ceil(2 * WG)),
                grid((c.c_out as usize).div_ceil(TILE)),
                1,
            ],
        )?);
    }
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
    let s = p.pool_stride as usize;
    let cells = c.batch as usize * (c.h_out as usize).div_ceil(s) * (c.w_out as usize).div_ceil(s);
    prog.push(gpu.dispatch(
        Shader::Conv2dBackwardPooled,
        "main",
        &[(0, pooled), (1, argmax), (2, dpool), (3, &scratch.g)],
        Some((4, p)),
        grid_1d(cells * c_out_padded(c) / 4),
    )?);
    conv2d_backward_rest(gpu, prog, op, dinp, dweight, dbias, inp, scratch, c)
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
) -> Result<()> {
    let cols = p.ksize() + 1;
    let co_tiles = grid((p.c_out as usize).div_ceil(TILE));
    if let Some(dinp) = dinp {
        check_len(op, "dinp", dinp, p.inp_len())?;
    }
    let npix_in = (p.batch * p.h_in * p.w_in) as usize;
    // Same role and bindings in both files; the subgroup one shares the weights by broadcast
    // and takes 16 input channels per invocation.
    let (input_shader, c_tile) = if gpu.subgroups {
        (Shader::Conv2dBackwardSubgroup, 2 * TILE)
    } else {
        (Shader::Conv2dBackward, TILE)
    };
    let input_groups = [
        grid(npix_in.div_ceil(TILE * WG)),
        grid((p.c_in as usize).div_ceil(c_tile)),
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
                grid(cols.div_ceil(TILE * WG)),
                grid((p.c_out as usize).div_ceil(2 * TILE)),
                grid(p.chunks()),
            ],
        )
    } else {
        let pairs = cols.div_ceil(TILE) * p.chunks();
        (
            Shader::Conv2dBackward,
            "backward_weight",
            (0, inp),
            [grid(pairs.div_ceil(WG)), co_tiles, 1],
        )
    };
    let reduce = gpu.dispatch(
        Shader::Conv2dBackward,
        "reduce_weight",
        &[(4, &scratch.partial), (6, dweight), (7, dbias)],
        Some((8, p)),
        [grid((p.c_out as usize * cols).div_ceil(WG)), 1, 1],
    )?;
    let volume = |g: [u32; 3]| g.iter().map(|&v| v as usize).product::<usize>();
    let joined = volume(groups) + volume(input_groups);
    match dinp {
        // Both passes are in one file: one dispatch runs the weight tiles and the input tiles,
        // interleaved (the same code per tile, so the same bits).
        Some(dinp)
            if gpu.fuse
                && shader == input_shader
                && joined <= gpu.limits.max_compute_workgroups_per_dimension as usize =>
        {
            prog.push(gpu.dispatch(
                shader,
                "backward",
                &[
                    x,
                    (9, &scratch.g),
                    (4, &scratch.partial),
                    (10, &scratch.wt),
                    (5, dinp),
                ],
                Some((8, p)),
                [grid(joined), 1, 1],
            )?);
            prog.push(reduce);
        }
        _ => {
            prog.push(gpu.dispatch(
                shader,
                entry,
                &[x, (9, &scratch.g), (4, &scratch.partial)],
                Some((8, p)),
                groups,
            )?);
            prog.push(reduce);
            if let Some(dinp) = dinp {
                prog.push(gpu.dispatch(
                    input_shader,
                    "backward_input",
                    &[(9, &scratch.g), (10, &scratch.wt), (5, dinp)],
                    Some((8, p)),
                    input_groups,
                )?);
            }
        }
    }
    Ok(())
}

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

/// One dispatch of `shader`'s `main` with `inp` at binding 0, `out` at 1 and `p` at 2, one
/// invocation per element of `n` (the passes of this shape: padding, subsampling, average
/// pooling, ReLU forward).
#[allow(clippy::too_many_arguments)]
fn one_to_one<P: bytemuck::Pod>(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    shader: Shader,
    (out_name, out, out_len): (&str, &Tensor, usize),
    (inp_name, inp, inp_len): (&str, &Tensor, usize),
    p: &P,
    n: usize,
) -> Result<()> {
    let op = shader.name();
    check_len(op, inp_name, inp, inp_len)?;
    check_len(op, out_name, out, out_len)?;
    prog.push(gpu.dispatch(
        shader,
        "main",
        &[(0, inp), (1, out)],
        Some((2, p)),
        grid_1d(n),
    )?);
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
    check_len("dropout_forward", "inp", inp, p.len as usize)?;
    check_len("dropout_forward", "out", out, p.len as usize)?;
    let d = gpu.dispatch(
        Shader::DropoutForward,
        "main",
        &[(0, inp), (1, steps), (2, state), (3, out)],
        Some((4, p)),
        grid_1d(p.len as usize),
    )?;
    prog.push(per_step(d, &[steps], 16));
    Ok(())
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
    check_len("dropout_backward", "dout", dout, p.len as usize)?;
    check_len("dropout_backward", "dinp", dinp, p.len as usize)?;
    check_len("dropout_backward", "state", state, 2)?;
    let d = gpu.dispatch(
        Shader::DropoutBackward,
        "main",
        &[(0, dout), (1, steps), (2, state), (3, dinp)],
        Some((4, p)),
        grid_1d(p.len as usize),
    )?;
    prog.push(per_step(d, &[steps], 16));
    Ok(())
}

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

/// The subgroup variant shares the gradient values by broadcast; same entry points and bindings.
/// Whether the subgroup dense kernels pay off for `n` outputs (forward) or columns (backward)
/// along x: their invocations past the end still compute (the broadcasts need every lane),
/// so they need at least half of the x grid's 8-wide tiles to be real; the portable kernels
/// return there. Both compute the same sums in the same order.
fn dense_subgroup_fits(gpu: &Gpu, n: u32) -> bool {
    let n = n as usize;
    gpu.subgroups && 2 * n.div_ceil(TILE) >= n.div_ceil(TILE * WG) * WG
}

fn dense_backward_shader(gpu: &Gpu, p: &DenseParams) -> Shader {
    if dense_subgroup_fits(gpu, p.n_in) {
        Shader::DenseBackwardSubgroup
    } else {
        Shader::DenseBackward
    }
}

fn dense_lens(
    op: &'static str,
    inp: &Tensor,
    out: &Tensor,
    weight: &Tensor,
    p: &DenseParams,
) -> Result<()> {
    check_len(op, "inp", inp, (p.batch * p.n_in) as usize)?;
    check_len(op, "out", out, (p.batch * p.n_out) as usize)?;
    check_len(op, "weight", weight, (p.n_out * p.n_in) as usize)
}

/// inp is (N, I), weight is (O, I), bias is (O), out is (N, O).
pub fn dense_forward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    out: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    p: &DenseParams,
) -> Result<()> {
    dense_lens("dense_forward", inp, out, weight, p)?;
    check_len("dense_forward", "bias", bias, p.n_out as usize)?;
    prog.push(gpu.dispatch(
        // The subgroup variant shares the input values by broadcast; same bindings.
        if dense_subgroup_fits(gpu, p.n_out) {
            Shader::DenseForwardSubgroup
        } else {
            Shader::DenseForward
        },
        "main",
        &[(0, inp), (1, weight), (2, bias), (3, out)],
        Some((4, p)),
        [
            grid((p.n_out as usize).div_ceil(TILE * WG)),
            grid((p.batch as usize).div_ceil(TILE)),
            1,
        ],
    )?);
    Ok(())
}

/// Two dense layers in one pass (`dense_forward_chain.wgsl`, the same bits as two
/// dense_forward): `hid` (N, M) from inp (N, I), w1 (M, I) and b1 (M), then `out` (N, O) from
/// hid, w2 (O, M) and b2 (O). Needs `DenseChainParams::fits`.
#[allow(clippy::too_many_arguments)]
pub fn dense_forward_chain(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    hid: &Tensor,
    out: &Tensor,
    inp: &Tensor,
    w1: &Tensor,
    b1: &Tensor,
    w2: &Tensor,
    b2: &Tensor,
    p: &DenseChainParams,
) -> Result<()> {
    let op = "dense_forward_chain";
    if !DenseChainParams::fits(&p.first, &p.second) {
        return Err(Error::Shape {
            op,
            msg: format!(
                "layers of {} -> {} and {} -> {} outputs: the second must read the first, each at most {}",
                p.first.n_in,
                p.first.n_out,
                p.second.n_in,
                p.second.n_out,
                DenseChainParams::MAX_OUTPUTS
            ),
        });
    }
    dense_lens(op, inp, hid, w1, &p.first)?;
    dense_lens(op, hid, out, w2, &p.second)?;
    check_len(op, "b1", b1, p.first.n_out as usize)?;
    check_len(op, "b2", b2, p.second.n_out as usize)?;
    prog.push(gpu.dispatch(
        Shader::DenseForwardChain,
        "main",
        &[
            (0, inp),
            (1, w1),
            (2, b1),
            (3, hid),
            (4, w2),
            (5, b2),
            (6, out),
        ],
        Some((7, p)),
        [grid((p.first.batch as usize).div_ceil(TILE)), 1, 1],
    )?);
    Ok(())
}

/// dinp is (N, I); out and dout are (N, O); weight is (O, I).
pub fn dense_backward_input(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: &Tensor,
    out: &Tensor,
    dout: &Tensor,
    weight: &Tensor,
    p: &DenseParams,
) -> Result<()> {
    dense_lens("dense_backward_input", dinp, out, weight, p)?;
    check_len(
        "dense_backward_input",
        "dout",
        dout,
        (p.batch * p.n_out) as usize,
    )?;
    prog.push(gpu.dispatch(
        dense_backward_shader(gpu, p),
        "backward_input",
        &[(1, weight), (2, out), (3, dout), (4, dinp)],
        Some((7, p)),
        [
            grid((p.n_in as usize).div_ceil(TILE * WG)),
            grid((p.batch as usize).div_ceil(TILE)),
            1,
        ],
    )?);
    Ok(())
}

/// dweight is (O, I), dbias is (O); out and dout are (N, O); inp is (N, I).
#[allow(clippy::too_many_arguments)]
pub fn dense_backward_weight(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dweight: &Tensor,
    dbias: &Tensor,
    out: &Tensor,
    dout: &Tensor,
    inp: &Tensor,
    p: &DenseParams,
) -> Result<()> {
    dense_lens("dense_backward_weight", inp, out, dweight, p)?;
    check_len(
        "dense_backward_weight",
        "dout",
        dout,
        (p.batch * p.n_out) as usize,
    )?;
    check_len("dense_backward_weight", "dbias", dbias, p.n_out as usize)?;
    prog.push(gpu.dispatch(
        dense_backward_shader(gpu, p),
        "backward_weight",
        &[(0, inp), (2, out), (3, dout), (5, dweight), (6, dbias)],
        Some((7, p)),
        [
            grid((p.n_in as usize + 1).div_ceil(TILE * WG)),
            grid((p.n_out as usize).div_ceil(TILE)),
            1,
        ],
    )?);
    Ok(())
}

/// The whole dense backward pass: dweight (O, I) and dbias (O) and, when given, dinp (N, I), from
/// out and dout (N, O), inp (N, I) and weight (O, I). With `gpu.fuse`, the weight and input
/// passes share one dispatch (dense_backward.wgsl's `backward`: the same code per tile, so the
/// same bits); else, or when the joined grid is too large, two.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    dinp: Option<&Tensor>,
    dweight: &Tensor,
    dbias: &Tensor,
    out: &Tensor,
    dout: &Tensor,
    inp: &Tensor,
    weight: &Tensor,
    p: &DenseParams,
) -> Result<()> {
    let weight_groups =
        (p.n_in as usize + 1).div_ceil(TILE * WG) * (p.n_out as usize).div_ceil(TILE);
    let input_groups = (p.n_in as usize).div_ceil(TILE * WG) * (p.batch as usize).div_ceil(TILE);
    let joined = weight_groups + input_groups;
    match dinp {
        Some(dinp)
            if gpu.fuse && joined <= gpu.limits.max_compute_workgroups_per_dimension as usize =>
        {
            let op = "dense_backward";
            dense_lens(op, inp, out, dweight, p)?;
            check_len(op, "dinp", dinp, (p.batch * p.n_in) as usize)?;
            check_len(op, "dout", dout, (p.batch * p.n_out) as usize)?;
            check_len(op, "dbias", dbias, p.n_out as usize)?;
            prog.push(gpu.dispatch(
                dense_backward_shader(gpu, p),
                "backward",
                &[
                    (0, inp),
                    (1, weight),
                    (2, out),
                    (3, dout),
                    (4, dinp),
                    (5, dweight),
                    (6, dbias),
                ],
                Some((7, p)),
                [grid(joined), 1, 1],
            )?);
            Ok(())
        }
        _ => {
            dense_backward_weight(gpu, prog, dweight, dbias, out, dout, inp, p)?;
            match dinp {
                Some(dinp) => dense_backward_input(gpu, prog, dinp, out, dout, weight, p),
                None => Ok(()),
            }
        }
    }
}

/// metrics[2 * state[0] ..] = (summed cross-entropy, correct count); logits is (N, K), labels is (N).
/// The loss pass ends the step: it advances the counter (state[0] += 1) and leaves the step it
/// ended in state[1] for the backward passes, so `state` holds 2 values.
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
