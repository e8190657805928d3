//! The whole network on the CPU: forward, backward and Adam over the reference passes.

use super::*;
use crate::layers::{GatherParams, Optimizer, OptimizerKind, SoftmaxXentParams, StepRecord};
use crate::model::{Layer, Model};
use crate::plan::{gradient_slots, plan, GradientSlots, Stage};

/// Parameters, optimiser state and activations of one model on the CPU.
pub struct CpuNet<T: Real> {
    pub model: Model,
    pub weights: Vec<T>,
    pub grads: Vec<T>,
    pub m: Vec<T>,
    pub v: Vec<T>,
    /// RMSprop's average gradient (centered).
    pub a: Vec<T>,
    /// `acts[0]` is the input batch, `acts[i + 1]` the output of layer i.
    pub acts: Vec<Vec<T>>,
    /// `dacts[i]` is the gradient of `acts[i]`; past them, the buffers of the readers of a
    /// tensor several layers read (`slots`).
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
    /// The stage plan it walks: every layer alone (the CPU has no fused passes; the fused GPU
    /// passes' twins are compositions of these).
    pub stages: Vec<Stage>,
    /// Which gradient buffer each layer's backward pass writes for each input, and the sums.
    pub slots: GradientSlots,
}

pub(super) fn range(model: &Model, index: Option<usize>) -> std::ops::Range<usize> {
    let p = &model.params[index.expect("layer has parameters")];
    p.offset..p.offset + p.len
}

/// `(&mut v[a], &mut v[b])`, `a != b`: a layer's input (or its gradient's buffer) and its
/// output.
pub(super) fn split<T>(v: &mut [Vec<T>], a: usize, b: usize) -> (&mut Vec<T>, &mut Vec<T>) {
    assert_ne!(a, b, "a layer reads its own output");
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

impl<T: Real> CpuNet<T> {
    pub fn new(model: &Model, weights: &[f32], max_batch: usize) -> Self {
        let mut sizes = vec![model.input.len()];
        sizes.extend(model.layers.iter().map(|l| l.output.len()));
        let n = model.flat_len;
        let slots = gradient_slots(model);
        let mut grad_sizes = sizes.clone();
        grad_sizes.extend(slots.extra.iter().map(|&t| sizes[t]));
        CpuNet {
            model: model.clone(),
            weights: weights.iter().map(|&w| T::from_f64(w as f64)).collect(),
            grads: vec![T::zero(); n],
            m: vec![T::zero(); n],
            v: vec![T::zero(); n],
            a: vec![T::zero(); n],
            acts: sizes
                .iter()
                .map(|s| vec![T::zero(); s * max_batch])
                .collect(),
            dacts: grad_sizes
                .iter()
                .map(|s| vec![T::zero(); s * max_batch])
                .collect(),
            argmax: sizes.iter().map(|s| vec![0u32; s * max_batch]).collect(),
            saved: sizes.iter().map(|s| vec![T::zero(); 2 * s]).collect(),
            conv: model
                .layers
                .iter()
                .map(|l| match l.layer {
                    Layer::Conv2d { .. } => Some(ConvBufs::new(l, max_batch)),
                    _ => None,
                })
                .collect(),
            stages: plan(model, false),
            slots,
            dropout: StepRecord::default(),
            max_batch,
        }
    }

    /// Forward pass of `batch` images already in `acts[0]`, in evaluation mode (no dropout, batch
    /// norm's moving statistics); returns the logits.
    pub fn forward(&mut self, batch: usize) -> &[T] {
        self.forward_mode(batch, false)
    }

    /// Forward pass in training mode (`training`: dropout masks, batch statistics and moving
    /// statistics updated) or evaluation mode; returns the logits.
    pub fn forward_mode(&mut self, batch: usize, training: bool) -> &[T] {
        for stage in self.stages.clone() {
            for i in stage.layers() {
                match self.model.layers[i].layer {
                    Layer::Conv2d { .. } => self.forward_conv2d(i, batch),
                    Layer::MaxPool2d { .. } => self.forward_maxpool2d(i, batch),
                    Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                        self.forward_avgpool2d(i, batch)
                    }
                    Layer::Dense { .. } => self.forward_dense(i, batch),
                    Layer::Dropout { .. } => self.forward_dropout(i, batch, training),
                    Layer::Relu => self.forward_relu(i, batch),
                    Layer::BatchNorm { .. } => self.forward_batchnorm(i, batch, training),
                    Layer::Augment(_) => self.forward_augment(i, batch, training),
                    Layer::Add => self.forward_add(i, batch),
                    Layer::Concatenate => self.forward_concatenate(i, batch),
                }
            }
        }
        let last = self.acts.last().expect("model has layers");
        &last[..batch * self.model.classes]
    }

    /// Loss sum and correct count of `batch` images already in `acts[0]` with labels `y`.
    pub fn evaluate(&mut self, y: &[u32], batch: usize) -> [T; 2] {
        self.forward(batch);
        let mut metrics = [T::zero(); 2];
        let xp = SoftmaxXentParams::new(batch, self.model.classes);
        softmax_xent_forward(&mut metrics, self.acts.last().expect("layers"), y, &xp);
        metrics
    }

    /// Forward (training mode) and backward of `batch` images in `acts[0]`: fills `grads`,
    /// returns the metrics.
    pub fn gradients(&mut self, y: &[u32], batch: usize) -> [T; 2] {
        self.forward_mode(batch, true);
        let mut metrics = [T::zero(); 2];
        let xp = SoftmaxXentParams::new(batch, self.model.classes);
        let nl = self.model.layers.len();
        softmax_xent(&mut metrics, &mut self.dacts[nl], &self.acts[nl], y, &xp);
        for stage in self.stages.clone().into_iter().rev() {
            for i in stage.layers().rev() {
                match self.model.layers[i].layer {
                    Layer::Conv2d { .. } => self.backward_conv2d(i, batch),
                    Layer::MaxPool2d { .. } => self.backward_maxpool2d(i, batch),
                    Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                        self.backward_avgpool2d(i, batch)
                    }
                    Layer::Dense { .. } => self.backward_dense(i, batch),
                    Layer::Dropout { .. } => self.backward_dropout(i, batch),
                    Layer::Relu => self.backward_relu(i, batch),
                    Layer::BatchNorm { .. } => self.backward_batchnorm(i, batch),
                    // First in a model: no gradient to pass on.
                    Layer::Augment(_) => {}
                    Layer::Add => self.backward_add(i, batch),
                    Layer::Concatenate => self.backward_concatenate(i, batch),
                }
                self.sum_gradients(i, batch);
            }
        }
        metrics
    }

    /// One training step t (1-based): the gradients, then the optimizer's update; returns the
    /// metrics.
    pub fn train_step(&mut self, y: &[u32], batch: usize, t: u64, opt: &Optimizer) -> [T; 2] {
        let metrics = self.gradients(y, batch);
        let n = self.weights.len();
        let alpha = T::from_f64(opt.alpha(t) as f64);
        let lr = T::from_f64(opt.lr_step(t) as f64);
        match opt.kind {
            OptimizerKind::Adam | OptimizerKind::AdamW => adam_update(
                &mut self.weights,
                &mut self.m,
                &mut self.v,
                &mut self.a,
                &self.grads,
                alpha,
                lr,
                &opt.params(n),
            ),
            OptimizerKind::Sgd => sgd_update(
                &mut self.weights,
                &mut self.m,
                &self.grads,
                alpha,
                &opt.sgd_params(n),
            ),
            OptimizerKind::Rmsprop => rmsprop_update(
                &mut self.weights,
                &mut self.m,
                &mut self.v,
                &mut self.a,
                &self.grads,
                alpha,
                &opt.rmsprop_params(n),
            ),
        }
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
