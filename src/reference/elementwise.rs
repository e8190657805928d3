//! Element-wise layers on the CPU: a separate ReLU and dropout (the GPU's hash, so both drop the
//! same values), and their passes in `CpuNet`.

use super::net::split;
use super::{CpuNet, Real};
use crate::layers::{dropout_hash, DropoutParams, ReluParams, StepRecord};
use crate::layers::{dropout_params, relu_params};

/// out = max(inp, 0).
pub fn relu_forward<T: Real>(out: &mut [T], inp: &[T], p: &ReluParams) {
    for i in 0..p.len as usize {
        out[i] = if inp[i] > T::zero() {
            inp[i]
        } else {
            T::zero()
        };
    }
}

/// dinp = dout where the forward output is positive, else 0.
pub fn relu_backward<T: Real>(dinp: &mut [T], out: &[T], dout: &[T], p: &ReluParams) {
    for i in 0..p.len as usize {
        dinp[i] = if out[i] > T::zero() {
            dout[i]
        } else {
            T::zero()
        };
    }
}

/// Whether dropout keeps value `i` of the step `step` (see `DropoutParams`).
pub fn dropout_keep(step: &StepRecord, p: &DropoutParams, i: usize) -> bool {
    dropout_hash(step.seed, step.t, p.salt, i as u32) >> 8 >= p.threshold
}

/// out = inp * scale where kept, 0 where dropped (training); out = inp otherwise.
pub fn dropout_forward<T: Real>(out: &mut [T], inp: &[T], step: &StepRecord, p: &DropoutParams) {
    let scale = T::from_f64(p.scale as f64);
    for i in 0..p.len as usize {
        out[i] = if p.training == 0 {
            inp[i]
        } else if dropout_keep(step, p, i) {
            inp[i] * scale
        } else {
            T::zero()
        };
    }
}

/// dinp = dout * scale where the forward pass kept the value, 0 where it dropped it.
pub fn dropout_backward<T: Real>(dinp: &mut [T], dout: &[T], step: &StepRecord, p: &DropoutParams) {
    dropout_forward(dinp, dout, step, p);
}

impl<T: Real> CpuNet<T> {
    pub(super) fn forward_relu(&mut self, i: usize, batch: usize) {
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        relu_forward(out, inp, &relu_params(&self.model.layers[i], batch));
    }
    pub(super) fn backward_relu(&mut self, i: usize, batch: usize) {
        if self.model.input_gradient(i) {
            let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
            let p = relu_params(&self.model.layers[i], batch);
            relu_backward(dinp, &self.acts[i + 1], dout, &p);
        }
    }
    /// The layer's index tells its mask from the other dropout layers'.
    pub(super) fn forward_dropout(&mut self, i: usize, batch: usize, training: bool) {
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        let p = dropout_params(&self.model.layers[i], batch, i, training);
        dropout_forward(out, inp, &self.dropout, &p);
    }
    pub(super) fn backward_dropout(&mut self, i: usize, batch: usize) {
        if self.model.input_gradient(i) {
            let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
            let p = dropout_params(&self.model.layers[i], batch, i, true);
            dropout_backward(dinp, dout, &self.dropout, &p);
        }
    }
}
