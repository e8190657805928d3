//! The batch on the GPU: gathering a step's images (bytes, scaled to [0, 1]) and labels by the
//! epoch's row order.

use super::{check_len, grid, per_step, WG};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu, Tensor};
use crate::layers::GatherParams;
use crate::shaders::Shader;

/// x is (batch, pixels), y is (batch); rows come from `indices[steps[state[0]].offset ..]`.
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
    let used = (p.batch * (p.pixels + 1 + 4)) as u64 + super::STEP_BYTES;
    prog.push(per_step(d, &[images, labels, indices, steps], used));
    Ok(())
}
