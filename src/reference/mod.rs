//! The CPU oracle: plain loops, one function per shader pass with the same name and argument order
//! as the GPU launchers (outputs first, then saved activations, then inputs, then shapes).
//! Generic over `Real` so that the same code trains in f32 and is gradient-checked in f64.
//! Every backward function overwrites its outputs.
// `!(x > 0)` is deliberate: a NaN pre-activation counts as not positive, as in the shaders.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod net;

pub use net::CpuNet;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use crate::layers::{
    dropout_hash, AdamParams, Avgpool2dParams, BatchnormParams, Conv2dParams, Conv2dPooledParams,
    DenseChainParams, DenseParams, DropoutParams, GatherParams, Maxpool2dParams, Pad2dParams,
    ReluParams, SoftmaxXentParams, StepRecord, Subsample2dParams,
};

pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Send
    + Sync
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn zero() -> Self {
        Self::from_f64(0.0)
    }
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

fn relu_grad<T: Real>(relu: u32, out: T, dout: T) -> T {
    if relu != 0 && !(out > T::zero()) {
        T::zero()
    } else {
        dout
    }
}

/// x is (batch, pixels), y is (batch): the rows `indices[offset..offset + batch]` of the dataset,
/// pixels scaled by 1/255.
pub fn gather_batch<T: Real>(
    x: &mut [T],
    y: &mut [u32],
    images: &[u8],
    labels: &[u8],
    indices: &[u32],
    offset: usize,
    p: &GatherParams,
) {
    let (batch, pixels) = (p.batch as usize, p.pixels as usize);
    for b in 0..batch {
        let row = indices[offset + b] as usize;
        for i in 0..pixels {
            x[b * pixels + i] = T::from_f64(images[row * pixels + i] as f64) / T::from_f64(255.0);
        }
        y[b] = labels[row] as u32;
    }
}

/// inp is (N, C, H, W), weight is (OC, C, KH, KW), bias is (OC), out is (N, OC, OH, OW).
pub fn conv2d_forward<T: Real>(
    out: &mut [T],
    inp: &[T],
    weight: &[T],
    bias: &[T],
    p: &Conv2dParams,
) {
    let [n_, c_, h, w, oc_, oh_, ow_, kh_, kw_] = [
        p.batch, p.c_in, p.h_in, p.w_in, p.c_out, p.h_out, p.w_out, p.kh, p.kw,
    ]
    .map(|v| v as usize);
    for n in 0..n_ {
        for oc in 0..oc_ {
            for oy in 0..oh_ {
                for ox in 0..ow_ {
                    // Summed tap by tap, channels innermost: the order of the channel-last
                    // GPU kernel (any order is right; the same order keeps long GPU-vs-CPU
                    // runs from drifting apart on rounding).
                    let mut s = T::zero();
                    for ky in 0..kh_ {
                        for kx in 0..kw_ {
                            for c in 0..c_ {
                                s += weight[((oc * c_ + c) * kh_ + ky) * kw_ + kx]
                                    * inp[((n * c_ + c) * h + oy + ky) * w + ox + kx];
                            }
                        }
                    }
                    let mut v = s + bias[oc];
                    if p.relu != 0 && !(v > T::zero()) {
                        v = T::zero();
                    }
                    out[((n * oc_ + oc) * oh_ + oy) * ow_ + ox] = v;
                }
            }
        }
    }
}

/// The whole conv2d backward pass, as the GPU launcher records it: weight and bias gradients,
/// and the input gradient when `dinp` is given (the first layer needs none).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward<T: Real>(
    dinp: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    out: &[T],
    dout: &[T],
    inp: &[T],
    weight: &[T],
    p: &Conv2dParams,
) {
    conv2d_backward_weight(dweight, dbias, out, dout, inp, p);
    if let Some(dinp) = dinp {
        conv2d_backward_input(dinp, out, dout, weight, p);
    }
}

/// conv2d_forward then maxpool2d_forward, as the fused GPU pass computes them: the pooled
/// output and winners of a conv followed by a 2x2, stride-2 max-pool. `pooled` and `argmax`
/// are (N, OC, OH / 2, OW / 2).
pub fn conv2d_forward_pooled<T: Real>(
    pooled: &mut [T],
    argmax: &mut [u32],
    inp: &[T],
    weight: &[T],
    bias: &[T],
    p: &Conv2dPooledParams,
) {
    let mut out = vec![T::zero(); p.conv.out_len()];
    conv2d_forward(&mut out, inp, weight, bias, &p.conv);
    maxpool2d_forward(pooled, argmax, &out, &p.pool_params());
}

/// maxpool2d_backward then conv2d_backward, as the fused GPU pass computes them: the gradients
/// of a conv whose output feeds a max-pool with disjoint windows, from the pool's output
/// `pooled`, gradient `dpool` and winners `argmax`. The conv's output is needed only at the
/// winners (everywhere else its gradient is zero), where it equals `pooled`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_pooled<T: Real>(
    dinp: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    pooled: &[T],
    argmax: &[u32],
    dpool: &[T],
    inp: &[T],
    weight: &[T],
    p: &Conv2dPooledParams,
) {
    let pool = p.pool_params();
    let mut dout = vec![T::zero(); p.conv.out_len()];
    maxpool2d_backward(&mut dout, argmax, dpool, &pool);
    // The conv's output at each window's winner (zero elsewhere, where dout is zero too).
    let mut out = vec![T::zero(); p.conv.out_len()];
    let plane_pool = (pool.h_out * pool.w_out) as usize;
    let plane = (p.conv.h_out * p.conv.w_out) as usize;
    for (o, (&a, &v)) in argmax.iter().zip(pooled).enumerate() {
        out[(o / plane_pool) * plane + a as usize] = v;
    }
    conv2d_backward(dinp, dweight, dbias, &out, &dout, inp, weight, &p.conv);
}

/// wt is (KH*KW, C, ceil(OC/4)*4): weight (OC, C, KH, KW) with the output channel innermost,
/// zero past OC (the layout the GPU conv kernels load as vec4s).
pub fn conv2d_transpose_weight<T: Real>(wt: &mut [T], weight: &[T], p: &Conv2dParams) {
    let [c_, oc_, kk] = [p.c_in, p.c_out, p.kh * p.kw].map(|v| v as usize);
    let oc4 = oc_.div_ceil(4) * 4;
    for tap in 0..kk {
        for c in 0..c_ {
            for oc in 0..oc4 {
                wt[(tap * c_ + c) * oc4 + oc] = if oc < oc_ {
                    weight[(oc * c_ + c) * kk + tap]
                } else {
                    T::zero()
                };
            }
        }
    }
}

/// dinp is (N, C, H, W); out and dout are (N, OC, OH, OW); weight is (OC, C, KH, KW).
pub fn conv2d_backward_input<T: Real>(
    dinp: &mut [T],
    out: &[T],
    dout: &[T],
    weight: &[T],
    p: &Conv2dParams,
) {
    let [n_, c_, h, w, oc_, oh_, ow_, kh_, kw_] = [
        p.batch, p.c_in, p.h_in, p.w_in, p.c_out, p.h_out, p.w_out, p.kh, p.kw,
    ]
    .map(|v| v as usize);
    for n in 0..n_ {
        for c in 0..c_ {
            for y in 0..h {
                for x in 0..w {
                    let mut s = T::zero();
                    for oc in 0..oc_ {
                        for ky in 0..kh_ {
                            for kx in 0..kw_ {
                                if y < ky || x < kx || y - ky >= oh_ || x - kx >= ow_ {
                                    continue;
                                }
                                let o = ((n * oc_ + oc) * oh_ + y - ky) * ow_ + x - kx;
                                s += weight[((oc * c_ + c) * kh_ + ky) * kw_ + kx]
                                    * relu_grad(p.relu, out[o], dout[o]);
                            }
                        }
                    }
                    dinp[((n * c_ + c) * h + y) * w + x] = s;
                }
            }
        }
    }
}

/// dweight is (OC, C, KH, KW), dbias is (OC); out and dout are (N, OC, OH, OW); inp is (N, C, H, W).
pub fn conv2d_backward_weight<T: Real>(
    dweight: &mut [T],
    dbias: &mut [T],
    out: &[T],
    dout: &[T],
    inp: &[T],
    p: &Conv2dParams,
) {
    let [n_, c_, h, w, oc_, oh_, ow_, kh_, kw_] = [
        p.batch, p.c_in, p.h_in, p.w_in, p.c_out, p.h_out, p.w_out, p.kh, p.kw,
    ]
    .map(|v| v as usize);
    for oc in 0..oc_ {
        let mut db = T::zero();
        for n in 0..n_ {
            for oy in 0..oh_ {
                for ox in 0..ow_ {
                    let o = ((n * oc_ + oc) * oh_ + oy) * ow_ + ox;
                    db += relu_grad(p.relu, out[o], dout[o]);
                }
            }
        }
        dbias[oc] = db;
        for c in 0..c_ {
            for ky in 0..kh_ {
                for kx in 0..kw_ {
                    let mut s = T::zero();
                    for n in 0..n_ {
                        for oy in 0..oh_ {
                            for ox in 0..ow_ {
                                let o = ((n * oc_ + oc) * oh_ + oy) * ow_ + ox;
                                s += relu_grad(p.relu, out[o], dout[o])
                                    * inp[((n * c_ + c) * h + oy + ky) * w + ox + kx];
                            }
                        }
                    }
                    dweight[((oc * c_ + c) * kh_ + ky) * kw_ + kx] = s;
                }
            }
        }
    }
}

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

/// out (N, C, OH, OW) is zero but for inp (N, C, H, W) placed at (top, left).
pub fn pad2d_forward<T: Real>(out: &mut [T], inp: &[T], p: &Pad2dParams) {
    let [nc_, h, w, oh, ow, top, left] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.top,
        p.left,
    ]
    .map(|v| v as usize);
    out[..nc_ * oh * ow].iter_mut().for_each(|v| *v = T::zero());
    for nc in 0..nc_ {
        for y in 0..h {
            for x in 0..w {
                out[(nc * oh + y + top) * ow + x + left] = inp[(nc * h + y) * w + x];
            }
        }
    }
}

/// dinp (N, C, H, W) is dout (N, C, OH, OW) cropped at (top, left).
pub fn pad2d_backward<T: Real>(dinp: &mut [T], dout: &[T], p: &Pad2dParams) {
    let [nc_, h, w, oh, ow, top, left] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.top,
        p.left,
    ]
    .map(|v| v as usize);
    for nc in 0..nc_ {
        for y in 0..h {
            for x in 0..w {
                dinp[(nc * h + y) * w + x] = dout[(nc * oh + y + top) * ow + x + left];
            }
        }
    }
}

/// out[n, c, oy, ox] = inp[n, c, oy * stride, ox * stride].
pub fn subsample2d_forward<T: Real>(out: &mut [T], inp: &[T], p: &Subsample2dParams) {
    let [nc_, h, w, oh, ow, s] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.stride,
    ]
    .map(|v| v as usize);
    for nc in 0..nc_ {
        for oy in 0..oh {
            for ox in 0..ow {
                out[(nc * oh + oy) * ow + ox] = inp[(nc * h + oy * s) * w + ox * s];
            }
        }
    }
}

/// dinp is dout at the sampled pixels and zero elsewhere.
pub fn subsample2d_backward<T: Real>(dinp: &mut [T], dout: &[T], p: &Subsample2dParams) {
    let [nc_, h, w, oh, ow, s] = [
        p.batch * p.channels,
        p.h_in,
        p.w_in,
        p.h_out,
        p.w_out,
        p.stride,
    ]
    .map(|v| v as usize);
    dinp[..nc_ * h * w].iter_mut().for_each(|v| *v = T::zero());
    for nc in 0..nc_ {
        for oy in 0..oh {
            for ox in 0..ow {
                dinp[(nc * h + oy * s) * w + ox * s] = dout[(nc * oh + oy) * ow + ox];
            }
        }
    }
}

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

/// inp and out are (N, C, H, W); saved is (C, 2): each channel's mean and 1 / sqrt(var + eps).
/// Training: the batch's mean and biased variance over (N, H, W), and the moving statistics
/// updated as moving = momentum * moving + (1 - momentum) * batch. Otherwise the moving ones.
#[allow(clippy::too_many_arguments)]
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
            let at = |n: usize, j: usize| inp[(n * c_ + c) * hw + j];
            let mut sum = T::zero();
            for n in 0..n_ {
                for j in 0..hw {
                    sum += at(n, j);
                }
            }
            let mean = sum / m;
            let mut sq = T::zero();
            for n in 0..n_ {
                for j in 0..hw {
                    let d = at(n, j) - mean;
                    sq += d * d;
                }
            }
            let var = sq / m;
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
        let (mut dg, mut db) = (T::zero(), T::zero());
        for n in 0..n_ {
            for j in 0..hw {
                let i = (n * c_ + c) * hw + j;
                dg += dout[i] * ((inp[i] - mean) * inv);
                db += dout[i];
            }
        }
        dgamma[c] = dg;
        dbeta[c] = db;
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

/// logits is (N, K), labels is (N). metrics[0] = summed cross-entropy, metrics[1] = correct count.
pub fn softmax_xent_forward<T: Real>(
    metrics: &mut [T],
    logits: &[T],
    labels: &[u32],
    p: &SoftmaxXentParams,
) {
    let [n_, k_] = [p.batch, p.classes].map(|v| v as usize);
    let (mut loss, mut correct) = (T::zero(), T::zero());
    for n in 0..n_ {
        let row = &logits[n * k_..(n + 1) * k_];
        let (mut mx, mut arg) = (row[0], 0);
        for (k, &v) in row.iter().enumerate().skip(1) {
            if v > mx {
                mx = v;
                arg = k;
            }
        }
        let mut s = T::zero();
        for &v in row {
            s += (v - mx).exp();
        }
        let y = labels[n] as usize;
        loss += s.ln() + mx - row[y];
        if arg == y {
            correct += T::from_f64(1.0);
        }
    }
    metrics[0] = loss;
    metrics[1] = correct;
}

/// softmax_xent_forward then softmax_xent_backward, as the fused training pass computes them:
/// metrics = [loss sum, correct], dlogits (N, K).
pub fn softmax_xent<T: Real>(
    metrics: &mut [T],
    dlogits: &mut [T],
    logits: &[T],
    y: &[u32],
    p: &SoftmaxXentParams,
) {
    softmax_xent_forward(metrics, logits, y, p);
    softmax_xent_backward(dlogits, logits, y, p);
}

/// dlogits and logits are (N, K), labels is (N): gradient of the batch-mean cross-entropy.
pub fn softmax_xent_backward<T: Real>(
    dlogits: &mut [T],
    logits: &[T],
    labels: &[u32],
    p: &SoftmaxXentParams,
) {
    let [n_, k_] = [p.batch, p.classes].map(|v| v as usize);
    let scale = T::from_f64(1.0) / T::from_f64(n_ as f64);
    for n in 0..n_ {
        let row = &logits[n * k_..(n + 1) * k_];
        let mut mx = row[0];
        for &v in row {
            if v > mx {
                mx = v;
            }
        }
        let mut s = T::zero();
        for &v in row {
            s += (v - mx).exp();
        }
        for k in 0..k_ {
            let onehot = if k == labels[n] as usize {
                T::from_f64(1.0)
            } else {
                T::zero()
            };
            dlogits[n * k_ + k] = ((row[k] - mx).exp() / s - onehot) * scale;
        }
    }
}

/// One Adam step in Keras' form; `alpha` = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
pub fn adam_update<T: Real>(
    weights: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grads: &[T],
    alpha: T,
    p: &AdamParams,
) {
    let b1 = T::from_f64(p.beta1 as f64);
    let b2 = T::from_f64(p.beta2 as f64);
    let eps = T::from_f64(p.eps as f64);
    let one = T::from_f64(1.0);
    for i in 0..p.len as usize {
        let g = grads[i];
        m[i] = b1 * m[i] + (one - b1) * g;
        v[i] = b2 * v[i] + (one - b2) * g * g;
        weights[i] = weights[i] - alpha * m[i] / (v[i].sqrt() + eps);
    }
}
