//! The shapes of the passes that gather a batch, and the per-step records the passes read.

use bytemuck::{Pod, Zeroable};

/// Shapes of `gather_batch`: `x` is (batch, pixels). On the GPU the images may be split over
/// several buffers: one dispatch reads the part holding rows `first..first + rows` and fills only
/// the batch rows that fall there. The CPU reference reads one whole image set (first 0, every row).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GatherParams {
    pub batch: u32,
    pub pixels: u32,
    pub first: u32,
    pub rows: u32,
}

impl GatherParams {
    /// One whole image set: first row 0, every row.
    pub fn new(batch: usize, pixels: usize) -> Self {
        GatherParams {
            batch: batch as u32,
            pixels: pixels as u32,
            first: 0,
            rows: u32::MAX,
        }
    }
}

/// One entry of the per-step records read by `gather_batch`, the optimizer passes and the dropout
/// passes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepRecord {
    /// First entry of the index buffer this step gathers.
    pub offset: u32,
    /// The optimizer's step size for this step (`Optimizer::alpha`).
    pub alpha: f32,
    /// The training step's number (Adam's t, from 1; 0 in evaluation): with `seed`, what the
    /// dropout masks are drawn from.
    pub t: u32,
    /// The run's seed (its low 32 bits).
    pub seed: u32,
    /// The learning rate of this step (`Optimizer::lr_step`: AdamW's weight decay).
    pub lr: f32,
}
