//! The joins of a graph model on the CPU: Add and Concatenate's passes, and their part of
//! `CpuNet` (with the sums of a forked tensor's gradients, `plan::GradientSlots`).

use super::net::split;
use super::{CpuNet, Real};
use crate::layers::{concatenate_params, AddParams, ConcatenateParams};

/// out = a + b, `p.len` values.
pub fn add_forward<T: Real>(out: &mut [T], a: &[T], b: &[T], p: &AddParams) {
    let n = p.len as usize;
    for i in 0..n {
        out[i] = a[i] + b[i];
    }
}

/// out = out + a, `p.len` values (a third input of an Add and on; a gradient's next part).
pub fn add_forward_into<T: Real>(out: &mut [T], a: &[T], p: &AddParams) {
    let n = p.len as usize;
    for i in 0..n {
        out[i] += a[i];
    }
}

/// dinp = dout: each input of an Add gets the output's gradient.
pub fn add_backward<T: Real>(dinp: &mut [T], dout: &[T], p: &AddParams) {
    let n = p.len as usize;
    dinp[..n].copy_from_slice(&dout[..n]);
}

/// out[n, c_off + c, k] = inp[n, c, k]: one input of a Concatenate into its channels.
pub fn concatenate_forward<T: Real>(out: &mut [T], inp: &[T], p: &ConcatenateParams) {
    let [c_in, c_out, c_off, plane] = [p.c_in, p.c_out, p.c_off, p.plane].map(|v| v as usize);
    for n in 0..p.batch as usize {
        let src = &inp[n * c_in * plane..(n + 1) * c_in * plane];
        let at = (n * c_out + c_off) * plane;
        out[at..at + c_in * plane].copy_from_slice(src);
    }
}

/// dinp[n, c, k] = dout[n, c_off + c, k]: one input's part of a Concatenate's gradient.
pub fn concatenate_backward<T: Real>(dinp: &mut [T], dout: &[T], p: &ConcatenateParams) {
    let [c_in, c_out, c_off, plane] = [p.c_in, p.c_out, p.c_off, p.plane].map(|v| v as usize);
    for n in 0..p.batch as usize {
        let at = (n * c_out + c_off) * plane;
        dinp[n * c_in * plane..(n + 1) * c_in * plane]
            .copy_from_slice(&dout[at..at + c_in * plane]);
    }
}

impl<T: Real> CpuNet<T> {
    pub(super) fn forward_add(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let p = AddParams::new(batch, l.output.len());
        let (before, after) = self.acts.split_at_mut(i + 1);
        let out = &mut after[0];
        add_forward(out, &before[l.inputs[0]], &before[l.inputs[1]], &p);
        for &t in &l.inputs[2..] {
            add_forward_into(out, &before[t], &p);
        }
    }
    pub(super) fn backward_add(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let p = AddParams::new(batch, l.output.len());
        for (k, &t) in l.inputs.iter().enumerate() {
            if self.model.needs_gradient(t) {
                let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][k], i + 1);
                add_backward(dinp, dout, &p);
            }
        }
    }
    pub(super) fn forward_concatenate(&mut self, i: usize, batch: usize) {
        let inputs = self.model.layers[i].inputs.clone();
        for (&t, p) in inputs.iter().zip(concatenate_params(
            &self.model.input_shapes(i),
            self.model.layers[i].output,
            batch,
        )) {
            let (inp, out) = split(&mut self.acts, t, i + 1);
            concatenate_forward(out, inp, &p);
        }
    }
    pub(super) fn backward_concatenate(&mut self, i: usize, batch: usize) {
        let inputs = self.model.layers[i].inputs.clone();
        for (k, (&t, p)) in inputs
            .iter()
            .zip(concatenate_params(
                &self.model.input_shapes(i),
                self.model.layers[i].output,
                batch,
            ))
            .enumerate()
        {
            if self.model.needs_gradient(t) {
                let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][k], i + 1);
                concatenate_backward(dinp, dout, &p);
            }
        }
    }
    /// After layer i's backward pass: the gradients of the tensors it is the first reader of,
    /// summed from their readers' buffers in layer order.
    pub(super) fn sum_gradients(&mut self, i: usize, batch: usize) {
        for (t, bufs) in self.slots.sums[i].clone() {
            let p = AddParams::new(batch, self.model.tensor_shape(t).len());
            let mut out = std::mem::take(&mut self.dacts[t]);
            add_forward(&mut out, &self.dacts[bufs[0]], &self.dacts[bufs[1]], &p);
            for &b in &bufs[2..] {
                add_forward_into(&mut out, &self.dacts[b], &p);
            }
            self.dacts[t] = out;
        }
    }
}
