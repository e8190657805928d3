//! Fully connected layers on the GPU (portable and subgroup variants; two dense layers' forward
//! passes in one dispatch where the plan says so), and how a dense layer records its passes.

use super::{check_len, grid, Recorder, TILE};
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Overrides, Tensor};
use crate::layers::dense_params;
use crate::layers::{DenseChainParams, DenseParams};
use crate::shaders::Shader;

/// The subgroup variant shares the gradient values by broadcast; same entry points and bindings.
/// Whether the subgroup dense kernels pay off for `n` outputs (forward) or columns (backward)
/// along x: their invocations past the end still compute (the broadcasts need every lane),
/// so they need at least half of the x grid's 8-wide tiles to be real; the portable kernels
/// return there. Both compute the same sums in the same order.
fn dense_subgroup_fits(gpu: &Gpu, n: u32, wg: usize) -> bool {
    let n = n as usize;
    gpu.subgroups && 2 * n.div_ceil(TILE) >= n.div_ceil(TILE * wg) * wg
}

/// The dense backward kernel for this layer, its blocks of 8 rows (outputs) per invocation
/// (`gpu.tile_blocks` in the subgroup variant, 1 in the portable one) and its overrides (those
/// and `gpu.narrow_workgroup` invocations per workgroup).
fn dense_backward_shader(gpu: &Gpu, p: &DenseParams) -> (Shader, usize, Overrides) {
    let wg = gpu.narrow_workgroup;
    let (shader, rb) = match dense_subgroup_fits(gpu, p.n_in, wg as usize) {
        true => (Shader::DenseBackwardSubgroup, gpu.tile_blocks),
        false => (Shader::DenseBackward, 1),
    };
    (shader, rb as usize, vec![("RB", rb), ("WG", wg)])
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

/// The dense forward kernel for this layer, its blocks of 8 rows per workgroup and its
/// invocations per workgroup (`gpu.narrow_workgroup`). The subgroup variant shares the input
/// values by broadcast (same bindings) and takes the most blocks, up to `gpu.tile_blocks`, that
/// still give each of `gpu.cpu_threads` a workgroup; the portable one 1.
fn dense_forward_shader(gpu: &Gpu, p: &DenseParams) -> (Shader, usize, usize) {
    let wg = gpu.narrow_workgroup as usize;
    if !dense_subgroup_fits(gpu, p.n_out, wg) {
        return (Shader::DenseForward, 1, wg);
    }
    let columns = (p.n_out as usize).div_ceil(TILE * wg);
    let rb = [4, 2]
        .into_iter()
        .find(|&rb| {
            rb <= gpu.tile_blocks as usize
                && columns * (p.batch as usize).div_ceil(TILE * rb) >= gpu.cpu_threads
        })
        .unwrap_or(1);
    (Shader::DenseForwardSubgroup, rb, wg)
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
    let (shader, rb, wg) = dense_forward_shader(gpu, p);
    let overrides = match shader {
        Shader::DenseForwardSubgroup => vec![("RB", rb as u32), ("WG", wg as u32)],
        _ => vec![("WG", wg as u32)],
    };
    prog.push(
        gpu.dispatch_tiled(
            shader,
            "main",
            &overrides,
            &[(0, inp), (1, weight), (2, bias), (3, out)],
            Some((4, p)),
            [
                grid((p.n_out as usize).div_ceil(TILE * wg)),
                grid((p.batch as usize).div_ceil(TILE * rb)),
                1,
            ],
        )?
        .with_flops(p.flops()),
    );
    Ok(())
}

/// The chain kernel and its blocks of 8 rows per workgroup: the subgroup variant on devices
/// with subgroups, with the most blocks (up to `gpu.tile_blocks`) whose hidden rows fit the
/// workgroup's 4096 floats and that still give each of `gpu.cpu_threads` a workgroup (at batch
/// 32 on lavapipe with 2 cores, 2 blocks took 0.67 ms, 4 blocks in one workgroup 0.96 ms).
fn dense_chain_shader(gpu: &Gpu, p: &DenseChainParams) -> (Shader, u32) {
    if !gpu.subgroups {
        return (Shader::DenseForwardChain, 1);
    }
    let rb = [4, 2]
        .into_iter()
        .find(|&rb| {
            rb <= gpu.tile_blocks
                && 8 * rb * p.first.n_out <= 4096
                && (p.first.batch as usize).div_ceil(8 * rb as usize) >= gpu.cpu_threads
        })
        .unwrap_or(1);
    (Shader::DenseForwardChainSubgroup, rb)
}

/// Whether dense layers `i` and `i + 1` (`Stage::DenseChain`) run faster as one chained pass than
/// as two `dense_forward`s (the same bits either way). Not where the chain has to take fewer rows
/// per workgroup than `gpu.tile_blocks` blocks so that each CPU thread gets one (the whole batch
/// shares the hidden rows only within a workgroup), while the first layer alone splits its
/// outputs among the threads and keeps every row: at batch 32 on lavapipe with 2 threads, fc1
/// and fc2 took 0.65 ms chained (16 rows per weight load) and 0.48 ms apart (32 rows).
pub fn chain_pays(r: &Recorder, i: usize) -> bool {
    let (shader, rb) = dense_chain_shader(r.gpu, &chain_params(r, i));
    shader != Shader::DenseForwardChainSubgroup || rb >= r.gpu.tile_blocks
}

/// The shapes of dense layers `i` and `i + 1` as one chain.
fn chain_params(r: &Recorder, i: usize) -> DenseChainParams {
    let (a, b) = (&r.model.layers[i], &r.model.layers[i + 1]);
    DenseChainParams {
        first: dense_params(a, r.batch),
        second: dense_params(b, r.batch),
    }
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
    let (shader, rb) = dense_chain_shader(gpu, p);
    prog.push(
        gpu.dispatch_tiled(
            shader,
            "main",
            &vec![("RB", rb)],
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
            [
                grid((p.first.batch as usize).div_ceil(TILE * rb as usize)),
                1,
                1,
            ],
        )?
        .with_flops(p.first.flops() + p.second.flops()),
    );
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
    let (shader, rb, overrides) = dense_backward_shader(gpu, p);
    let wg = gpu.narrow_workgroup as usize;
    prog.push(
        gpu.dispatch_tiled(
            shader,
            "backward_input",
            &overrides,
            &[(1, weight), (2, out), (3, dout), (4, dinp)],
            Some((7, p)),
            [
                grid((p.n_in as usize).div_ceil(TILE * wg)),
                grid((p.batch as usize).div_ceil(TILE * rb)),
                1,
            ],
        )?
        .with_flops(p.flops()),
    );
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
    let (shader, rb, overrides) = dense_backward_shader(gpu, p);
    let wg = gpu.narrow_workgroup as usize;
    prog.push(
        gpu.dispatch_tiled(
            shader,
            "backward_weight",
            &overrides,
            &[(0, inp), (2, out), (3, dout), (5, dweight), (6, dbias)],
            Some((7, p)),
            [
                grid((p.n_in as usize + 1).div_ceil(TILE * wg)),
                grid((p.n_out as usize).div_ceil(TILE * rb)),
                1,
            ],
        )?
        .with_flops(p.flops()),
    );
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
    let (shader, rb, overrides) = dense_backward_shader(gpu, p);
    let (rows, wg) = (TILE * rb, gpu.narrow_workgroup as usize);
    let weight_groups =
        (p.n_in as usize + 1).div_ceil(TILE * wg) * (p.n_out as usize).div_ceil(rows);
    let input_groups = (p.n_in as usize).div_ceil(TILE * wg) * (p.batch as usize).div_ceil(rows);
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
            prog.push(
                gpu.dispatch_tiled(
                    shader,
                    "backward",
                    &overrides,
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
                )?
                .with_flops(2.0 * p.flops()),
            );
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

/// Dense layer `i`'s forward pass.
pub fn record_forward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = dense_params(l, r.batch);
    let (w, b) = (r.weight(l.weight)?, r.weight(l.bias)?);
    let (out, inp) = (&r.net.acts[i + 1], r.inp(i));
    dense_forward(r.gpu, &mut r.prog, out, inp, &w, &b, &p)
}

/// Dense layers `i` and `i + 1` forward in one pass (`Stage::DenseChain`).
pub fn record_forward_chain(r: &mut Recorder, i: usize) -> Result<()> {
    let cp = chain_params(r, i);
    let (a, b) = (&r.model.layers[i], &r.model.layers[i + 1]);
    let (w1, b1) = (r.weight(a.weight)?, r.weight(a.bias)?);
    let (w2, b2) = (r.weight(b.weight)?, r.weight(b.bias)?);
    let (hid, out, inp) = (&r.net.acts[i + 1], &r.net.acts[i + 2], r.inp(i));
    dense_forward_chain(r.gpu, &mut r.prog, hid, out, inp, &w1, &b1, &w2, &b2, &cp)
}

/// Dense layer `i`'s backward pass: weight and bias gradients, and the input's.
pub fn record_backward(r: &mut Recorder, i: usize) -> Result<()> {
    let l = &r.model.layers[i];
    let p = dense_params(l, r.batch);
    let (dw, db, w) = (r.grad(l.weight)?, r.grad(l.bias)?, r.weight(l.weight)?);
    let (out, dout, inp) = (&r.net.acts[i + 1], &r.net.dacts[i + 1], r.inp(i));
    let dinp = r.dinp(i);
    dense_backward(r.gpu, &mut r.prog, dinp, &dw, &db, out, dout, inp, &w, &p)
}
