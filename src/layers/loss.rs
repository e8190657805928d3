//! The shapes of the loss passes (softmax cross-entropy).

use bytemuck::{Pod, Zeroable};

/// Shapes of `softmax_xent_forward` / `softmax_xent_backward`: logits are (batch, classes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct SoftmaxXentParams {
    pub batch: u32,
    pub classes: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl SoftmaxXentParams {
    pub fn new(batch: usize, classes: usize) -> Self {
        SoftmaxXentParams {
            batch: batch as u32,
            classes: classes as u32,
            ..Default::default()
        }
    }
}
