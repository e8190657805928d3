//! Pooling on the CPU: max-pool (first-wins ties, with its winners) and average pooling, and a
//! pooling layer's passes in `CpuNet`.

use super::net::split;
use super::{CpuNet, Real};
use crate::layers::{avgpool_params, pool_params};
use crate::layers::{Avgpool2dParams, Maxpool2dParams};

/// inp is (N, C, H, W); out and argmax are (N, C, OH, OW); argmax indexes the input plane (y*W + x).
pub fn maxpool2d_forward<T: Real>(
    out: &mut [T],
    argmax: &mut [u32],
    inp: &[T],
    p: &Maxpool2dParams,
) {
    let [nc_, h, w, oh_, ow_, size, stride] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.size,
        p.stride,
    ]
    .map(|v| v as usize);
    for nc in 0..nc_ {
        for oy in 0..oh_ {
            for ox in 0..ow_ {
                let mut best_at = oy * stride * w + ox * stride;
                let mut best = inp[nc * h * w + best_at];
                for ky in 0..size {
                    for kx in 0..size {
                        let at = (oy * stride + ky) * w + ox * stride + kx;
                        if inp[nc * h * w + at] > best {
                            best = inp[nc * h * w + at];
                            best_at = at;
                        }
                    }
                }
                out[(nc * oh_ + oy) * ow_ + ox] = best;
                argmax[(nc * oh_ + oy) * ow_ + ox] = best_at as u32;
            }
        }
    }
}

/// dinp is (N, C, H, W); argmax and dout are (N, C, OH, OW).
pub fn maxpool2d_backward<T: Real>(
    dinp: &mut [T],
    argmax: &[u32],
    dout: &[T],
    p: &Maxpool2dParams,
) {
    let [nc_, h, w, oh_, ow_] =
        [p.batch * p.channels, p.h_in, p.w_in, p.h_out, p.w_out].map(|v| v as usize);
    dinp[..nc_ * h * w].iter_mut().for_each(|d| *d = T::zero());
    for nc in 0..nc_ {
        for o in 0..oh_ * ow_ {
            dinp[nc * h * w + argmax[nc * oh_ * ow_ + o] as usize] += dout[nc * oh_ * ow_ + o];
        }
    }
}

/// inp is (N, C, H, W), out is (N, C, OH, OW): the mean of each window.
pub fn avgpool2d_forward<T: Real>(out: &mut [T], inp: &[T], p: &Avgpool2dParams) {
    let [nc_, h, w, oh_, ow_, kh, kw, stride] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.kh,
        p.kw,
        p.stride,
    ]
    .map(|v| v as usize);
    let inv = T::from_f64(1.0 / (kh * kw) as f64);
    for nc in 0..nc_ {
        for oy in 0..oh_ {
            for ox in 0..ow_ {
                let mut sum = T::zero();
                for ky in 0..kh {
                    for kx in 0..kw {
                        sum += inp[nc * h * w + (oy * stride + ky) * w + ox * stride + kx];
                    }
                }
                out[(nc * oh_ + oy) * ow_ + ox] = sum * inv;
            }
        }
    }
}

/// dinp is (N, C, H, W), dout is (N, C, OH, OW): each window's gradient shared evenly over it
/// (pixels in no window get zero).
pub fn avgpool2d_backward<T: Real>(dinp: &mut [T], dout: &[T], p: &Avgpool2dParams) {
    let [nc_, h, w, oh_, ow_, kh, kw, stride] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.kh,
        p.kw,
        p.stride,
    ]
    .map(|v| v as usize);
    let inv = T::from_f64(1.0 / (kh * kw) as f64);
    dinp[..nc_ * h * w].iter_mut().for_each(|d| *d = T::zero());
    for nc in 0..nc_ {
        for oy in 0..oh_ {
            for ox in 0..ow_ {
                let g = dout[(nc * oh_ + oy) * ow_ + ox] * inv;
                for ky in 0..kh {
                    for kx in 0..kw {
                        dinp[nc * h * w + (oy * stride + ky) * w + ox * stride + kx] += g;
                    }
                }
            }
        }
    }
}

impl<T: Real> CpuNet<T> {
    pub(super) fn forward_maxpool2d(&mut self, i: usize, batch: usize) {
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        let p = pool_params(&self.model.layers[i], batch);
        maxpool2d_forward(out, &mut self.argmax[i + 1], inp, &p);
    }
    pub(super) fn backward_maxpool2d(&mut self, i: usize, batch: usize) {
        if self.model.input_gradient(i) {
            let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
            let p = pool_params(&self.model.layers[i], batch);
            maxpool2d_backward(dinp, &self.argmax[i + 1], dout, &p);
        }
    }
    pub(super) fn forward_avgpool2d(&mut self, i: usize, batch: usize) {
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        avgpool2d_forward(out, inp, &avgpool_params(&self.model.layers[i], batch));
    }
    pub(super) fn backward_avgpool2d(&mut self, i: usize, batch: usize) {
        if self.model.input_gradient(i) {
            let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
            avgpool2d_backward(dinp, dout, &avgpool_params(&self.model.layers[i], batch));
        }
    }
}
