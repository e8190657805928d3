//! The whole network on the CPU: forward, backward and Adam over the reference passes.

use super::*;
use crate::layers::Adam;
use crate::model::{ConvGeometry, Layer, LayerPlan, Model};

/// Parameters, optimiser state and activations of one model on the CPU.
pub struct CpuNet<T: Real> {
    pub model: Model,
    pub weights: Vec<T>,
    pub grads: Vec<T>,
    pub m: Vec<T>,
    pub v: Vec<T>,
    /// acts[0] is the input batch, acts[i + 1] the output of layer i.
    pub acts: Vec<Vec<T>>,
    /// dacts[i] is the gradient of acts[i].
    pub dacts: Vec<Vec<T>>,
    pub argmax: Vec<Vec<u32>>,
    /// Batch norm layers' per-channel (mean, 1 / std) of the last forward pass.
    pub saved: Vec<Vec<T>>,
    /// Per conv layer that pads or strides (or has no bias): its padded input, the output
    /// before the stride, their gradients, and a zero bias with a gradient nobody reads.
    pub conv: Vec<Option<ConvBufs<T>>>,
    /// The step the dropout masks are drawn for: the run's seed and Adam's t, as the GPU's
    /// `StepRecord`. The caller sets `t` before each training step.
    pub dropout: StepRecord,
    pub max_batch: usize,
}

/// The geometry of a conv layer: padding, the stride-1 convolution's output, the stride.
pub fn conv_geometry(l: &LayerPlan) -> ConvGeometry {
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            ..
        } => ConvGeometry::of(l.input, out_channels, kernel, stride, padding)
            .expect("Model::new checked the geometry"),
        _ => unreachable!("conv_geometry on {:?}", l.layer),
    }
}

/// The stride-1, unpadded convolution at the heart of a conv layer: over the padded input, to
/// the output before the stride.
pub fn conv_params(l: &LayerPlan, batch: usize) -> Conv2dParams {
    let g = conv_geometry(l);
    match l.layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            relu,
            ..
        } => Conv2dParams::new(
            batch,
            g.padded.c,
            g.padded.h,
            g.padded.w,
            out_channels,
            kernel,
            relu,
        ),
        _ => unreachable!("conv_params on {:?}", l.layer),
    }
}

/// The zero padding of a `same` conv layer, if it pads.
pub fn pad_params(l: &LayerPlan, batch: usize) -> Option<Pad2dParams> {
    let g = conv_geometry(l);
    g.padded_input()
        .then(|| Pad2dParams::new(batch, l.input.c, l.input.h, l.input.w, g.pad))
}

/// The stride of a strided conv layer, if it strides.
pub fn subsample_params(l: &LayerPlan, batch: usize) -> Option<Subsample2dParams> {
    let g = conv_geometry(l);
    g.strided()
        .then(|| Subsample2dParams::new(batch, g.full.c, g.full.h, g.full.w, g.stride))
}

pub fn pool_params(l: &LayerPlan, batch: usize) -> Maxpool2dParams {
    match l.layer {
        Layer::MaxPool2d { size, stride } => {
            Maxpool2dParams::new(batch, l.input.c, l.input.h, l.input.w, size, stride)
        }
        _ => unreachable!("pool_params on {:?}", l.layer),
    }
}

pub fn avgpool_params(l: &LayerPlan, batch: usize) -> Avgpool2dParams {
    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
    match l.layer {
        Layer::AvgPool2d { size, stride } => {
            Avgpool2dParams::new(batch, c, h, w, size, size, stride)
        }
        Layer::GlobalAvgPool2d => Avgpool2dParams::new(batch, c, h, w, h, w, 1),
        _ => unreachable!("avgpool_params on {:?}", l.layer),
    }
}

/// `salt` tells the dropout layers apart: the layer's index in the model.
pub fn dropout_params(l: &LayerPlan, batch: usize, salt: usize, training: bool) -> DropoutParams {
    match l.layer {
        Layer::Dropout { rate } => DropoutParams::new(batch, l.input.len(), rate, salt, training),
        _ => unreachable!("dropout_params on {:?}", l.layer),
    }
}

pub fn batchnorm_params(l: &LayerPlan, batch: usize, training: bool) -> BatchnormParams {
    match l.layer {
        Layer::BatchNorm { momentum, epsilon } => BatchnormParams::new(
            batch,
            l.input.c,
            l.input.h * l.input.w,
            momentum,
            epsilon,
            training,
        ),
        _ => unreachable!("batchnorm_params on {:?}", l.layer),
    }
}

pub fn dense_params(l: &LayerPlan, batch: usize) -> DenseParams {
    match l.layer {
        Layer::Dense { out, relu } => DenseParams::new(batch, l.input.len(), out, relu),
        _ => unreachable!("dense_params on {:?}", l.layer),
    }
}

/// Scratch of one conv layer (empty vectors where not needed).
pub struct ConvBufs<T> {
    pub padded: Vec<T>,
    pub dpadded: Vec<T>,
    pub full: Vec<T>,
    pub dfull: Vec<T>,
    pub zero_bias: Vec<T>,
    pub dbias: Vec<T>,
}

fn range(model: &Model, index: Option<usize>) -> std::ops::Range<usize> {
    let p = &model.params[index.expect("layer has parameters")];
    p.offset..p.offset + p.len
}

fn split<T>(v: &mut [Vec<T>], i: usize) -> (&mut Vec<T>, &mut Vec<T>) {
    let (a, b) = v.split_at_mut(i + 1);
    (&mut a[i], &mut b[0])
}

impl<T: Real> CpuNet<T> {
    pub fn new(model: &Model, weights: &[f32], max_batch: usize) -> Self {
        let mut sizes = vec![model.input.len()];
        sizes.extend(model.layers.iter().map(|l| l.output.len()));
        let n = model.flat_len;
        CpuNet {
            model: model.clone(),
            weights: weights.iter().map(|&w| T::from_f64(w as f64)).collect(),
            grads: vec![T::zero(); n],
            m: vec![T::zero(); n],
            v: vec![T::zero(); n],
            acts: sizes
                .iter()
                .map(|s| vec![T::zero(); s * max_batch])
                .collect(),
            dacts: sizes
                .iter()
                .map(|s| vec![T::zero(); s * max_batch])
                .collect(),
            argmax: sizes.iter().map(|s| vec![0u32; s * max_batch]).collect(),
            saved: sizes.iter().map(|s| vec![T::zero(); 2 * s]).collect(),
            conv: model
                .layers
                .iter()
                .map(|l| match l.layer {
                    Layer::Conv2d { .. } => {
                        let g = conv_geometry(l);
                        let z = |on: bool, n: usize| {
                            vec![T::zero(); if on { n * max_batch } else { 0 }]
                        };
                        Some(ConvBufs {
                            padded: z(g.padded_input(), g.padded.len()),
                            dpadded: z(g.padded_input(), g.padded.len()),
                            full: z(g.strided(), g.full.len()),
                            dfull: z(g.strided(), g.full.len()),
                            zero_bias: vec![T::zero(); g.out.c],
                            dbias: vec![T::zero(); g.out.c],
                        })
                    }
                    _ => None,
                })
                .collect(),
            dropout: StepRecord::default(),
            max_batch,
        }
    }

    /// Forward pass of `batch` images already in acts[0], in evaluation mode (no dropout, batch
    /// norm's moving statistics); returns the logits.
    pub fn forward(&mut self, batch: usize) -> &[T] {
        self.forward_mode(batch, false)
    }

    /// Forward pass in training mode (`training`: dropout masks, batch statistics and moving
    /// statistics updated) or evaluation mode; returns the logits.
    pub fn forward_mode(&mut self, batch: usize, training: bool) -> &[T] {
        for (i, l) in self.model.layers.clone().iter().enumerate() {
            let (inp, out) = split(&mut self.acts, i);
            match l.layer {
                Layer::Conv2d { .. } => {
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
                Layer::MaxPool2d { .. } => {
                    maxpool2d_forward(out, &mut self.argmax[i + 1], inp, &pool_params(l, batch));
                }
                Layer::Dense { .. } => {
                    let (w, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
                    dense_forward(
                        out,
                        inp,
                        &self.weights[w],
                        &self.weights[b],
                        &dense_params(l, batch),
                    );
                }
                Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                    avgpool2d_forward(out, inp, &avgpool_params(l, batch));
                }
                Layer::Dropout { .. } => {
                    let p = dropout_params(l, batch, i, training);
                    dropout_forward(out, inp, &self.dropout, &p);
                }
                Layer::Relu => relu_forward(out, inp, &ReluParams::new(batch * l.input.len())),
                Layer::BatchNorm { .. } => {
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
            }
        }
        let last = self.acts.last().expect("model has layers");
        &last[..batch * self.model.classes]
    }

    /// Loss sum and correct count of `batch` images already in acts[0] with labels `y`.
    pub fn evaluate(&mut self, y: &[u32], batch: usize) -> [T; 2] {
        self.forward(batch);
        let mut metrics = [T::zero(); 2];
        let xp = SoftmaxXentParams::new(batch, self.model.classes);
        softmax_xent_forward(&mut metrics, self.acts.last().expect("layers"), y, &xp);
        metrics
    }

    /// Forward (training mode) and backward of `batch` images in acts[0]: fills `grads`,
    /// returns the metrics.
    pub fn gradients(&mut self, y: &[u32], batch: usize) -> [T; 2] {
        self.forward_mode(batch, true);
        let mut metrics = [T::zero(); 2];
        let xp = SoftmaxXentParams::new(batch, self.model.classes);
        let nl = self.model.layers.len();
        softmax_xent(&mut metrics, &mut self.dacts[nl], &self.acts[nl], y, &xp);
        for (i, l) in self.model.layers.clone().iter().enumerate().rev() {
            let (dinp, dout) = split(&mut self.dacts, i);
            let (inp, out) = (&self.acts[i], &self.acts[i + 1]);
            match l.layer {
                Layer::Conv2d { .. } => {
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
                    let dsrc = match (i > 0, pp.is_some()) {
                        (false, _) => None,
                        (true, true) => Some(&mut bufs.dpadded[..]),
                        (true, false) => Some(dinp.as_mut_slice()),
                    };
                    conv2d_backward(dsrc, dw, db, out, dout, src, &self.weights[w], &p);
                    if let (true, Some(pp)) = (i > 0, pp) {
                        pad2d_backward(dinp, &bufs.dpadded, &pp);
                    }
                }
                Layer::MaxPool2d { .. } => {
                    if i > 0 {
                        maxpool2d_backward(dinp, &self.argmax[i + 1], dout, &pool_params(l, batch));
                    }
                }
                Layer::Dense { .. } => {
                    let p = dense_params(l, batch);
                    let (w, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
                    let (dw, db) = self.grads.split_at_mut(b.start);
                    dense_backward_weight(
                        &mut dw[w.clone()],
                        &mut db[..b.len()],
                        out,
                        dout,
                        inp,
                        &p,
                    );
                    if i > 0 {
                        dense_backward_input(dinp, out, dout, &self.weights[w], &p);
                    }
                }
                Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                    if i > 0 {
                        avgpool2d_backward(dinp, dout, &avgpool_params(l, batch));
                    }
                }
                Layer::Dropout { .. } => {
                    if i > 0 {
                        let p = dropout_params(l, batch, i, true);
                        dropout_backward(dinp, dout, &self.dropout, &p);
                    }
                }
                Layer::Relu => {
                    if i > 0 {
                        let p = ReluParams::new(batch * l.input.len());
                        relu_backward(dinp, out, dout, &p);
                    }
                }
                Layer::BatchNorm { .. } => {
                    let p = batchnorm_params(l, batch, true);
                    let (g, b) = (range(&self.model, l.weight), range(&self.model, l.bias));
                    let (dg, db) = self.grads.split_at_mut(b.start);
                    let dinp = if i > 0 {
                        Some(dinp.as_mut_slice())
                    } else {
                        None
                    };
                    batchnorm_backward(
                        dinp,
                        &mut dg[g.clone()],
                        &mut db[..b.len()],
                        dout,
                        inp,
                        &self.saved[i + 1],
                        &self.weights[g],
                        &p,
                    );
                }
            }
        }
        metrics
    }

    /// One training step (gradients, then Adam with step size `alpha`); returns the metrics.
    pub fn train_step(&mut self, y: &[u32], batch: usize, alpha: f32, adam: &Adam) -> [T; 2] {
        let metrics = self.gradients(y, batch);
        let ap = adam.params(self.weights.len());
        adam_update(
            &mut self.weights,
            &mut self.m,
            &mut self.v,
            &self.grads,
            T::from_f64(alpha as f64),
            &ap,
        );
        metrics
    }

    /// Gathers images `order[start..start + b]` of `d` into `acts[0]` (scaled to [0, 1]) and
    /// their labels into `y`, as `gather_batch` does on the GPU.
    pub fn load_batch(
        &mut self,
        y: &mut [u32],
        d: &crate::data::Dataset,
        order: &[u32],
        start: usize,
        b: usize,
    ) {
        let gp = GatherParams::new(b, d.pixels());
        gather_batch(
            &mut self.acts[0],
            y,
            &d.images,
            &d.labels,
            order,
            start,
            &gp,
        );
    }

    pub fn weights_f32(&self) -> Vec<f32> {
        self.weights.iter().map(|w| w.to_f64() as f32).collect()
    }
}
