//! Batch normalisation on the CPU (Keras' semantics; the GPU's reduction order), and a batch-norm
//! layer's passes in `CpuNet`.

use super::net::{range, split};
use super::{CpuNet, Real};
use crate::layers::batchnorm_params;
use crate::layers::BatchnormParams;

/// inp and out are (N, C, H, W); saved is (C, 2): each channel's mean and 1 / sqrt(var + eps).
/// Training: the batch's mean and biased variance over (N, H, W), and the moving statistics
/// updated as moving = momentum * moving + (1 - momentum) * batch. Otherwise the moving ones.
#[allow(clippy::too_many_arguments)]
/// The sum of `terms` as batch norm's GPU reductions add them: term k into partial sum
/// k % 64, then a tree (partial l += partial l + w, w = 32, 16, ..., 1). A channel's sum over
/// a whole batch's pixels keeps float32's precision so.
fn sum64<T: Real>(terms: impl Iterator<Item = T>) -> T {
    let mut part = [T::zero(); 64];
    for (k, t) in terms.enumerate() {
        part[k % 64] += t;
    }
    let mut w = 32;
    while w > 0 {
        for l in 0..w {
            part[l] = part[l] + part[l + w];
        }
        w /= 2;
    }
    part[0]
}

pub fn batchnorm_forward<T: Real>(
    out: &mut [T],
    saved: &mut [T],
    moving_mean: &mut [T],
    moving_var: &mut [T],
    inp: &[T],
    gamma: &[T],
    beta: &[T],
    p: &BatchnormParams,
) {
    let [n_, c_, hw] = [p.batch, p.channels, p.plane].map(|v| v as usize);
    let eps = T::from_f64(p.epsilon as f64);
    let mom = T::from_f64(p.momentum as f64);
    let one = T::from_f64(1.0);
    let m = T::from_f64((n_ * hw) as f64);
    for c in 0..c_ {
        let (mean, var) = if p.training != 0 {
            let at = |e: usize| inp[(e / hw * c_ + c) * hw + e % hw];
            let mean = sum64((0..n_ * hw).map(at)) / m;
            let var = sum64((0..n_ * hw).map(|e| {
                let d = at(e) - mean;
                d * d
            })) / m;
            moving_mean[c] = mom * moving_mean[c] + (one - mom) * mean;
            moving_var[c] = mom * moving_var[c] + (one - mom) * var;
            (mean, var)
        } else {
            (moving_mean[c], moving_var[c])
        };
        saved[2 * c] = mean;
        saved[2 * c + 1] = one / (var + eps).sqrt();
    }
    for n in 0..n_ {
        for c in 0..c_ {
            let (mean, inv) = (saved[2 * c], saved[2 * c + 1]);
            for j in 0..hw {
                let i = (n * c_ + c) * hw + j;
                out[i] = gamma[c] * ((inp[i] - mean) * inv) + beta[c];
            }
        }
    }
}

/// The gradients of training-mode batch norm: dgamma = sum(dout * xhat), dbeta = sum(dout) per
/// channel, and (when `dinp` is given) dinp = gamma * inv / M * (M * dout - dbeta - xhat * dgamma)
/// with xhat = (inp - mean) * inv and M = N * H * W.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward<T: Real>(
    dinp: Option<&mut [T]>,
    dgamma: &mut [T],
    dbeta: &mut [T],
    dout: &[T],
    inp: &[T],
    saved: &[T],
    gamma: &[T],
    p: &BatchnormParams,
) {
    let [n_, c_, hw] = [p.batch, p.channels, p.plane].map(|v| v as usize);
    for c in 0..c_ {
        let (mean, inv) = (saved[2 * c], saved[2 * c + 1]);
        let at = |e: usize| (e / hw * c_ + c) * hw + e % hw;
        dgamma[c] = sum64((0..n_ * hw).map(|e| dout[at(e)] * ((inp[at(e)] - mean) * inv)));
        dbeta[c] = sum64((0..n_ * hw).map(|e| dout[at(e)]));
    }
    if let Some(dinp) = dinp {
        let m = T::from_f64((n_ * hw) as f64);
        for n in 0..n_ {
            for c in 0..c_ {
                let (mean, inv) = (saved[2 * c], saved[2 * c + 1]);
                let k = gamma[c] * inv / m;
                for j in 0..hw {
                    let i = (n * c_ + c) * hw + j;
                    let xhat = (inp[i] - mean) * inv;
                    dinp[i] = k * (m * dout[i] - dbeta[c] - xhat * dgamma[c]);
                }
            }
        }
    }
}

impl<T: Real> CpuNet<T> {
    /// The output and the (mean, 1 / std) it used; in training the moving statistics too.
    pub(super) fn forward_batchnorm(&mut self, i: usize, batch: usize, training: bool) {
        let l = &self.model.layers[i];
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        let p = batchnorm_params(l, batch, training);
        let (g, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
        let (gamma, beta) = (self.weights[g].to_vec(), self.weights[b].to_vec());
        let rm = range(&self.model, l.stats);
        let rv = range(&self.model, l.stats.map(|s| s + 1));
        let (lo, hi) = self.weights.split_at_mut(rv.start);
        batchnorm_forward(
            out,
            &mut self.saved[i + 1],
            &mut lo[rm],
            &mut hi[..rv.len()],
            inp,
            &gamma,
            &beta,
            &p,
        );
    }

    pub(super) fn backward_batchnorm(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
        let p = batchnorm_params(l, batch, true);
        let (g, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
        let (dg, db) = self.grads.split_at_mut(b.start);
        let dinp = self.model.input_gradient(i).then_some(dinp.as_mut_slice());
        batchnorm_backward(
            dinp,
            &mut dg[g.clone()],
            &mut db[..b.len()],
            dout,
            &self.acts[self.model.layers[i].inputs[0]],
            &self.saved[i + 1],
            &self.weights[g],
            &p,
        );
    }
}
