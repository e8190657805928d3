//! Convolution on the CPU: the stride-1 conv passes and their fused twins (compositions of the
//! unfused references), the padding and subsampling passes, a conv layer's buffers, and its
//! forward and backward passes in `CpuNet`.

use super::net::{range, split};
use super::{maxpool2d_backward, maxpool2d_forward, relu_grad, CpuNet, Real};
use crate::layers::{conv_geometry, conv_params, pad_params, subsample_params};
use crate::layers::{Conv2dParams, Conv2dPooledParams, Pad2dParams, Subsample2dParams};
use crate::model::LayerPlan;

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
    // Over the (batch, row, column) pixels in order, in chunks of `p.chunk` as the GPU's
    // split-K pass sums them, then the chunks' sums in order: a sum over a whole batch's
    // pixels keeps float32's precision (a plain running sum of 25,088 terms loses about 1 % of
    // a small gradient there).
    let chunk = (p.chunk as usize).max(1);
    let chunked = |term: &dyn Fn(usize, usize, usize) -> T| {
        let (mut total, mut s, mut k) = (T::zero(), T::zero(), 0);
        for n in 0..n_ {
            for oy in 0..oh_ {
                for ox in 0..ow_ {
                    s += term(n, oy, ox);
                    k += 1;
                    if k == chunk {
                        total += s;
                        (s, k) = (T::zero(), 0);
                    }
                }
            }
        }
        total + s
    };
    for oc in 0..oc_ {
        let g = |n: usize, oy: usize, ox: usize| {
            let o = ((n * oc_ + oc) * oh_ + oy) * ow_ + ox;
            relu_grad(p.relu, out[o], dout[o])
        };
        dbias[oc] = chunked(&g);
        for c in 0..c_ {
            for ky in 0..kh_ {
                for kx in 0..kw_ {
                    dweight[((oc * c_ + c) * kh_ + ky) * kw_ + kx] = chunked(&|n, oy, ox| {
                        g(n, oy, ox) * inp[((n * c_ + c) * h + oy + ky) * w + ox + kx]
                    });
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

/// What a conv layer keeps besides its output (empty vectors where not needed): its padded
/// input, the output before the stride, their gradients, and a zero bias with a gradient nobody
/// reads.
pub struct ConvBufs<T> {
    pub padded: Vec<T>,
    pub dpadded: Vec<T>,
    pub full: Vec<T>,
    pub dfull: Vec<T>,
    pub zero_bias: Vec<T>,
    pub dbias: Vec<T>,
}

impl<T: Real> ConvBufs<T> {
    pub fn new(l: &LayerPlan, max_batch: usize) -> Self {
        let g = conv_geometry(l);
        let z = |on: bool, n: usize| vec![T::zero(); if on { n * max_batch } else { 0 }];
        ConvBufs {
            padded: z(g.padded_input(), g.padded.len()),
            dpadded: z(g.padded_input(), g.padded.len()),
            full: z(g.strided(), g.full.len()),
            dfull: z(g.strided(), g.full.len()),
            zero_bias: vec![T::zero(); g.out.c],
            dbias: vec![T::zero(); g.out.c],
        }
    }
}

impl<T: Real> CpuNet<T> {
    /// Conv layer `i`'s forward pass: padding, the stride-1 conv, subsampling, as it needs.
    pub(super) fn forward_conv2d(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let (inp, out) = split(&mut self.acts, self.model.layers[i].inputs[0], i + 1);
        let bufs = self.conv[i].as_mut().expect("conv buffers");
        let w = range(&self.model, l.weight);
        let bias = match l.bias {
            Some(_) => &self.weights[range(&self.model, l.bias)],
            None => &bufs.zero_bias[..],
        };
        let src: &[T] = match pad_params(l, batch) {
            Some(pp) => {
                pad2d_forward(&mut bufs.padded, inp, &pp);
                &bufs.padded
            }
            None => inp,
        };
        let p = conv_params(l, batch);
        match subsample_params(l, batch) {
            Some(sp) => {
                conv2d_forward(&mut bufs.full, src, &self.weights[w], bias, &p);
                subsample2d_forward(out, &bufs.full, &sp);
            }
            None => conv2d_forward(out, src, &self.weights[w], bias, &p),
        }
    }

    /// Conv layer `i`'s backward pass: weight and bias gradients, and the input's.
    pub(super) fn backward_conv2d(&mut self, i: usize, batch: usize) {
        let l = &self.model.layers[i];
        let (dinp, dout) = split(&mut self.dacts, self.slots.slot[i][0], i + 1);
        let (inp, out) = (
            &self.acts[self.model.layers[i].inputs[0]],
            &self.acts[i + 1],
        );
        let p = conv_params(l, batch);
        let bufs = self.conv[i].as_mut().expect("conv buffers");
        let w = range(&self.model, l.weight);
        // The stride-1 convolution's output and its gradient.
        let (out, dout): (&[T], &[T]) = match subsample_params(l, batch) {
            Some(sp) => {
                subsample2d_backward(&mut bufs.dfull, dout, &sp);
                (&bufs.full, &bufs.dfull)
            }
            None => (out, dout),
        };
        let pp = pad_params(l, batch);
        let src: &[T] = if pp.is_some() { &bufs.padded } else { inp };
        let (dw, db) = match l.bias {
            Some(bi) => {
                let b = range(&self.model, Some(bi));
                let (dw, db) = self.grads.split_at_mut(b.start);
                (&mut dw[w.clone()], &mut db[..b.len()])
            }
            None => (&mut self.grads[w.clone()], &mut bufs.dbias[..]),
        };
        let dsrc = match (self.model.input_gradient(i), pp.is_some()) {
            (false, _) => None,
            (true, true) => Some(&mut bufs.dpadded[..]),
            (true, false) => Some(dinp.as_mut_slice()),
        };
        conv2d_backward(dsrc, dw, db, out, dout, src, &self.weights[w], &p);
        if let (true, Some(pp)) = (self.model.input_gradient(i), pp) {
            pad2d_backward(dinp, &bufs.dpadded, &pp);
        }
    }
}
