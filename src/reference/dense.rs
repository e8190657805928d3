//! Fully connected layers on the CPU, the chained twin (a composition), and a dense layer's
//! passes in `CpuNet`.

use super::net::{range, split};
use super::{relu_grad, CpuNet, Real};
use crate::layers::dense_params;
use crate::layers::{DenseChainParams, DenseParams};

/// inp is (N, I), weight is (O, I), bias is (O), out is (N, O).
pub fn dense_forward<T: Real>(out: &mut [T], inp: &[T], weight: &[T], bias: &[T], p: &DenseParams) {
    let [n_, i_, o_] = [p.batch, p.n_in, p.n_out].map(|v| v as usize);
    for n in 0..n_ {
        for o in 0..o_ {
            let mut s = T::zero();
            for i in 0..i_ {
                s += inp[n * i_ + i] * weight[o * i_ + i];
            }
            let mut v = s + bias[o];
            if p.relu != 0 && !(v > T::zero()) {
                v = T::zero();
            }
            out[n * o_ + o] = v;
        }
    }
}

/// dense_forward twice, as the fused GPU pass computes them: `hid` (N, M) from inp (N, I), w1
/// (M, I) and b1 (M); then `out` (N, O) from hid, w2 (O, M) and b2 (O).
#[allow(clippy::too_many_arguments)]
pub fn dense_forward_chain<T: Real>(
    hid: &mut [T],
    out: &mut [T],
    inp: &[T],
    w1: &[T],
    b1: &[T],
    w2: &[T],
    b2: &[T],
    p: &DenseChainParams,
) {
    dense_forward(hid, inp, w1, b1, &p.first);
    dense_forward(out, hid, w2, b2, &p.second);
}

/// The whole dense backward pass, as the GPU launcher records it: weight and bias gradients,
/// and the input gradient when `dinp` is given (the first layer needs none).
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<T: Real>(
    dinp: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    out: &[T],
    dout: &[T],
    inp: &[T],
    weight: &[T],
    p: &DenseParams,
) {
    dense_backward_weight(dweight, dbias, out, dout, inp, p);
    if let Some(dinp) = dinp {
        dense_backward_input(dinp, out, dout, weight, p);
    }
}

/// dinp is (N, I); out and dout are (N, O); weight is (O, I).
pub fn dense_backward_input<T: Real>(
    dinp: &mut [T],
    out: &[T],
    dout: &[T],
    weight: &[T],
    p: &DenseParams,
) {
    let [n_, i_, o_] = [p.batch, p.n_in, p.n_out].map(|v| v as usize);
    for n in 0..n_ {
        for i in 0..i_ {
            let mut s = T::zero();
            for o in 0..o_ {
                s += relu_grad(p.relu, out[n * o_ + o], dout[n * o_ + o]) * weight[o * i_ + i];
            }
            dinp[n * i_ + i] = s;
        }
    }
}

/// dweight is (O, I), dbias is (O); out and dout are (N, O); inp is (N, I).
pub fn dense_backward_weight<T: Real>(
    dweight: &mut [T],
    dbias: &mut [T],
    out: &[T],
    dout: &[T],
    inp: &[T],
    p: &DenseParams,
) {
    let [n_, i_, o_] = [p.batch, p.n_in, p.n_out].map(|v| v as usize);
    for o in 0..o_ {
        let mut db = T::zero();
        for i in 0..i_ {
            dweight[o * i_ + i] = T::zero();
        }
        for n in 0..n_ {
            let g = relu_grad(p.relu, out[n * o_ + o], dout[n * o_ + o]);
            db += g;
            for i in 0..i_ {
                dweight[o * i_ + i] += g * inp[n * i_ + i];
            }
        }
        dbias[o] = db;
    }
}

impl<T: Real> CpuNet<T> {
    pub(super) fn forward_dense(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        let (w, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
        let p = dense_params(l, batch);
        dense_forward(out, inp, &self.weights[w], &self.weights[b], &p);
    }

    pub(super) fn backward_dense(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
        let (inp, out) = (
            &self.acts[self.model.layers[i].inputs[0]],
            &self.acts[i + 1],
        );
        let p = dense_params(l, batch);
        let (w, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
        let (dw, db) = self.grads.split_at_mut(b.start);
        dense_backward_weight(&mut dw[w.clone()], &mut db[..b.len()], out, dout, inp, &p);
        if self.model.input_gradient(i) {
            dense_backward_input(dinp, out, dout, &self.weights[w], &p);
        }
    }
}
