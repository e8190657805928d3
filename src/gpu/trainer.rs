//! Training on the GPU: the dataset, parameters, optimizer state and activations live in GPU buffers;
//! a training step is a fixed list of dispatches recorded once, and an epoch is that list repeated,
//! submitted in chunks of about `SUBMIT_SECONDS` of work each, a few ahead of the GPU. Passes that
//! vary per step read a GPU-side step counter, which the loss pass advances, so the host writes the shuffle
//! order and the per-step records once per epoch and reads back the metrics once per epoch (and
//! each submit's own metric slots, for the progress report).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::layers::optimizer::{self, AdamCopies};
use super::layers::{
    gather_batch, label, loss, record_backward, record_forward, NetBuffers, Recorder,
};
use super::{Dispatch, Gpu, Tensor};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::{GatherParams, Optimizer, StepRecord};
use crate::metrics::{Metrics, Progress};
use crate::model::Model;
use crate::plan::{gpu_eval_batch, largest_activation, max_batch, plan, written, Stage};

/// Most steps recorded into one command buffer (one compute pass, one submit).
pub const MAX_STEPS_PER_SUBMIT: usize = 256;
/// Seconds of GPU work one submit aims at: short enough for GPU watchdogs (amdgpu's default is
/// 10 s) on a slow adapter, long enough for few submits per epoch on a fast one.
pub const SUBMIT_SECONDS: f64 = 0.25;
/// Steps of a program's first submit, timed to size the later ones.
pub const CALIBRATION_STEPS: usize = 4;
/// Training submits queued ahead of the GPU during an epoch: enough to keep it busy while the
/// host reports progress, few enough that Ctrl-C stops within a second or so.
pub const IN_FLIGHT: usize = 3;

/// Steps per submit for a measured step time: about `SUBMIT_SECONDS` of work, 1 to
/// `MAX_STEPS_PER_SUBMIT`.
pub fn chunk_steps(step_seconds: f64) -> usize {
    if !(step_seconds > 0.0) {
        return MAX_STEPS_PER_SUBMIT;
    }
    ((SUBMIT_SECONDS / step_seconds).floor() as usize).clamp(1, MAX_STEPS_PER_SUBMIT)
}
/// The metric slots of one training submit (steps `first..end`), mapped once it completes.
struct ChunkRead {
    first: usize,
    end: usize,
    buffer: wgpu::Buffer,
    ready: Arc<AtomicBool>,
}

/// A dataset resident on the GPU with the program that walks it.
struct Split {
    n: usize,
    batch: usize,
    /// The images in parts of whole rows, each within one storage binding: (first row, rows,
    /// packed bytes). One part unless the set is larger than `Gpu::dataset_part_bytes`.
    images: Vec<(usize, usize, Tensor)>,
    labels: Tensor,
    /// Row order (train: the epoch's permutation; eval: identity).
    indices: Tensor,
    /// One StepRecord per step.
    steps: Tensor,
    /// state[0]: step counter of the running program.
    state: Tensor,
    /// Two floats per step: (loss sum, correct).
    metrics: Tensor,
    full: Vec<Dispatch>,
    /// (batch, dispatches) for a last step with fewer rows.
    tail: Option<(usize, Vec<Dispatch>)>,
    /// Steps per submit, once measured.
    chunk: Option<usize>,
}

impl Split {
    /// No set: the training side of an inference-only trainer.
    fn empty(gpu: &Gpu) -> Result<Split> {
        let z = |what: &str| gpu.zeros(&format!("none.{what}"), 0);
        Ok(Split {
            n: 0,
            batch: 1,
            images: Vec::new(),
            labels: z("labels")?,
            indices: z("indices")?,
            steps: z("steps")?,
            state: z("state")?,
            metrics: z("metrics")?,
            full: Vec::new(),
            tail: None,
            chunk: None,
        })
    }
    fn num_steps(&self) -> usize {
        self.n.div_ceil(self.batch)
    }
    fn step(&self, s: usize) -> &[Dispatch] {
        match &self.tail {
            Some((_, d)) if s + 1 == self.num_steps() => d,
            _ => &self.full,
        }
    }
}

/// Rows of `pixels` bytes per dataset part of at most `limit` bytes: a multiple of four, so that
/// each part starts on a whole u32. `None` when not even four rows fit.
pub fn dataset_part_rows(pixels: usize, limit: u64) -> Option<usize> {
    let rows = (limit / pixels.max(1) as u64) / 4 * 4;
    (rows > 0).then_some(rows.min(u32::MAX as u64 / 4 * 4) as usize)
}

/// Packs bytes four to a little-endian u32 (WGSL has no u8 storage type); the last word is zero-padded.
pub fn pack_bytes(b: &[u8]) -> Vec<u32> {
    b.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

pub struct GpuTrainer {
    pub gpu: Gpu,
    pub model: Model,
    /// The optimizer and its settings (its learning rate changes with ReduceLROnPlateau).
    pub opt: Optimizer,
    pub batch: usize,
    /// The stage plan the steps were recorded from (`plan::plan` with `gpu.fuse`).
    pub stages: Vec<Stage>,
    /// Parameters, gradients, activations and each layer's own buffers.
    pub net: NetBuffers,
    /// The optimizer's state (`Optimizer::state_names`): `a` only for a centered RMSprop or
    /// AMSGrad.
    m: Tensor,
    v: Tensor,
    a: Tensor,
    /// With `gpu.fuse`: the conv weights' channel-last copies the optimizer keeps in step.
    copies: Option<AdamCopies>,
    train: Split,
    eval: Option<Split>,
    /// Optimizer steps taken so far.
    pub t: u64,
    /// The seed the dropout masks are drawn from (with each step's t).
    pub dropout_seed: u32,
    pub submits: usize,
    /// Training steps of the running epoch the GPU has finished (set by submission callbacks).
    done: Arc<AtomicUsize>,
    /// Metric readbacks of this epoch's submits not yet collected.
    chunks: Vec<ChunkRead>,
}

/// Checks a trainer's inputs: the batch, the weights' length, the data's shapes and labels, and
/// that one batch's largest buffer fits the adapter's storage binding limit.
fn check_inputs(
    gpu: &Gpu,
    model: &Model,
    weights: &[f32],
    sets: [Option<&Dataset>; 2],
    batch: usize,
) -> Result<()> {
    if batch == 0 {
        return Err(Error::Usage("batch size must be at least 1".into()));
    }
    if weights.len() != model.flat_len {
        return Err(Error::Model(format!(
            "{} parameters given, layout needs {}",
            weights.len(),
            model.flat_len
        )));
    }
    for (what, d) in ["training", "evaluation"].into_iter().zip(sets) {
        if let Some(d) = d {
            model.check_data(what, d)?;
        }
    }
    let limit = gpu.limits.max_storage_buffer_binding_size;
    let fits = max_batch(model, limit);
    if batch > fits {
        let (name, per_image) = largest_activation(model);
        return Err(Error::Gpu(format!(
            "batch {batch} needs {} bytes for `{name}`, over {}'s storage binding limit of {limit} bytes; the largest batch it takes for this model is {fits} (use --batch {fits} or less)",
            (per_image as u64).saturating_mul(batch as u64),
            gpu.info.name
        )));
    }
    Ok(())
}

impl GpuTrainer {
    /// A trainer of `model` from `weights` on `train` in batches of `batch`, evaluating on
    /// `eval` (in the largest batches that fit, see `plan::gpu_eval_batch`).
    pub fn new(
        gpu: Gpu,
        model: &Model,
        weights: &[f32],
        train: &Dataset,
        eval: Option<&Dataset>,
        batch: usize,
        opt: Optimizer,
    ) -> Result<GpuTrainer> {
        Self::build(gpu, model, weights, Some(train), eval, batch, opt)
    }

    /// Forward passes only, over `set` (at least `batch` images a step): no gradients, no optimizer
    /// state, no backward scratch; `eval_logits` and `evaluate` work, training does not. For
    /// `evaluate` and `predict`.
    pub fn inference(
        gpu: Gpu,
        model: &Model,
        weights: &[f32],
        set: &Dataset,
        batch: usize,
    ) -> Result<GpuTrainer> {
        let batch = batch.clamp(1, set.len().max(1));
        Self::build(
            gpu,
            model,
            weights,
            None,
            Some(set),
            batch,
            Optimizer::default(),
        )
    }

    fn build(
        gpu: Gpu,
        model: &Model,
        weights: &[f32],
        train: Option<&Dataset>,
        eval: Option<&Dataset>,
        batch: usize,
        opt: Optimizer,
    ) -> Result<GpuTrainer> {
        check_inputs(&gpu, model, weights, [train, eval], batch)?;
        let stages = plan(model, gpu.fuse);
        let written = written(&stages, model.layers.len());
        let limit = gpu.limits.max_storage_buffer_binding_size;
        let eval_batch = eval
            .map(|e| gpu_eval_batch(model, &written, batch, e.len(), limit))
            .unwrap_or(0);
        let max_batch = batch.max(eval_batch);
        // What the backward passes need, for a training batch (inference: none).
        let backward = if train.is_some() { batch } else { 0 };
        let weights = gpu.upload("weights", weights)?;
        let mut net =
            NetBuffers::new(&gpu, model, weights, &stages, &written, backward, max_batch)?;
        let copies = match gpu.fuse {
            true => AdamCopies::new(&gpu, model, &mut net, max_batch)?,
            false => None,
        };
        let mut me = GpuTrainer {
            model: model.clone(),
            opt,
            batch,
            stages,
            m: gpu.zeros("optimizer.m", if backward > 0 { model.flat_len } else { 0 })?,
            v: gpu.zeros("optimizer.v", if backward > 0 { model.flat_len } else { 0 })?,
            a: gpu.zeros(
                "optimizer.a",
                // One vec4 when unread (rmsprop_update binds it all the same).
                if backward > 0 && opt.keeps_a() {
                    model.flat_len
                } else {
                    4
                },
            )?,
            net,
            copies,
            train: match train {
                Some(d) => Self::split_buffers(&gpu, d, batch, "train")?,
                None => Split::empty(&gpu)?,
            },
            eval: match eval {
                Some(e) => Some(Self::split_buffers(&gpu, e, eval_batch, "eval")?),
                None => None,
            },
            gpu,
            t: 0,
            dropout_seed: 0,
            submits: 0,
            done: Arc::new(AtomicUsize::new(0)),
            chunks: Vec::new(),
        };
        if me.train.n > 0 {
            me.train.full = me.build_step(&me.train, batch, true)?;
        }
        let tail = me.train.n % batch;
        if tail != 0 {
            me.train.tail = Some((tail, me.build_step(&me.train, tail, true)?));
        }
        me.prepare_eval()?;
        me.refresh_copies()?;
        me.gpu.check("creating the trainer")?;
        Ok(me)
    }

    /// Records the evaluation steps and writes their fixed row order and step records: evaluation
    /// walks the set in order, so they never change.
    fn prepare_eval(&mut self) -> Result<()> {
        let Some(e) = &self.eval else { return Ok(()) };
        let full = self.build_step(e, e.batch, false)?;
        let tail_n = e.n % e.batch;
        let tail = match tail_n {
            0 => None,
            _ => Some((tail_n, self.build_step(e, tail_n, false)?)),
        };
        let Some(e) = self.eval.as_mut() else {
            return Ok(());
        };
        e.full = full;
        e.tail = tail;
        let ident: Vec<u32> = (0..e.n as u32).collect();
        self.gpu.write(&e.indices, &ident);
        let recs: Vec<StepRecord> = (0..e.num_steps())
            .map(|s| StepRecord {
                offset: (s * e.batch) as u32,
                ..Default::default()
            })
            .collect();
        self.gpu.write(&e.steps, &recs);
        Ok(())
    }

    fn split_buffers(gpu: &Gpu, d: &Dataset, batch: usize, name: &str) -> Result<Split> {
        let steps = d.len().div_ceil(batch);
        let rows = dataset_part_rows(d.pixels(), gpu.dataset_part_bytes).ok_or_else(|| {
            Error::Gpu(format!(
                "one {name} image of {} bytes does not fit {}'s storage binding limit of {} bytes",
                d.pixels(),
                gpu.info.name,
                gpu.dataset_part_bytes
            ))
        })?;
        let mut images = Vec::new();
        for (i, first) in (0..d.len().max(1)).step_by(rows).enumerate() {
            let n = rows.min(d.len() - first.min(d.len()));
            let bytes = &d.images[first * d.pixels()..(first + n) * d.pixels()];
            let label = format!("{name}.images.{i}");
            images.push((first, n, gpu.upload(&label, &pack_bytes(bytes))?));
        }
        Ok(Split {
            n: d.len(),
            batch,
            images,
            labels: gpu.upload(&format!("{name}.labels"), &pack_bytes(&d.labels))?,
            indices: gpu.zeros(&format!("{name}.indices"), d.len())?,
            steps: gpu.zeros(
                &format!("{name}.steps"),
                steps * std::mem::size_of::<StepRecord>() / 4,
            )?,
            state: gpu.zeros(&format!("{name}.state"), 2)?,
            metrics: gpu.zeros(&format!("{name}.metrics"), steps * 2)?,
            full: Vec::new(),
            tail: None,
            chunk: None,
        })
    }

    /// The dispatches of one step over `split` with `batch` rows, as the stage plan says: gather,
    /// forward, loss metrics and, when training, backward and the optimizer. The loss pass advances the
    /// step counter.
    fn build_step(&self, split: &Split, batch: usize, training: bool) -> Result<Vec<Dispatch>> {
        let mut r = Recorder {
            gpu: &self.gpu,
            model: &self.model,
            net: &self.net,
            steps: &split.steps,
            state: &split.state,
            batch,
            training,
            prog: Vec::new(),
        };
        for (first, rows, images) in &split.images {
            let gp = GatherParams {
                first: *first as u32,
                rows: *rows as u32,
                ..GatherParams::new(batch, self.model.input.len())
            };
            let (x, y) = (&self.net.acts[0], &self.net.labels);
            let (labels, indices) = (&split.labels, &split.indices);
            let (steps, state) = (&split.steps, &split.state);
            gather_batch(
                r.gpu,
                &mut r.prog,
                x,
                y,
                images,
                labels,
                indices,
                steps,
                state,
                &gp,
            )?;
        }
        label(&mut r.prog, 0, "input");
        for &stage in &self.stages {
            record_forward(&mut r, stage)?;
        }
        let first = r.prog.len();
        loss::record(&mut r, &split.metrics)?;
        if training {
            label(&mut r.prog, first, "loss");
            for &stage in self.stages.iter().rev() {
                record_backward(&mut r, stage)?;
            }
            let first = r.prog.len();
            let state = [&self.m, &self.v, &self.a];
            optimizer::record(&mut r, &self.opt, state, self.copies.as_ref())?;
            label(&mut r.prog, first, "adam");
        } else {
            label(&mut r.prog, first, "loss");
        }
        Ok(r.prog)
    }

    pub fn train_len(&self) -> usize {
        self.train.n
    }
    pub fn eval_len(&self) -> usize {
        self.eval.as_ref().map_or(0, |e| e.n)
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.train.num_steps()
    }
    pub fn dispatches_per_step(&self) -> usize {
        self.train.full.len()
    }
    /// Each dispatch of one training step with the workgroups it launches, in order.
    pub fn step_workgroups(&self) -> Vec<(String, u64)> {
        self.train
            .full
            .iter()
            .map(|d| (d.label.clone(), d.workgroup_count()))
            .collect()
    }
    /// Bytes bound by the dispatches of one training step (an upper bound of what it reads and
    /// writes).
    pub fn bytes_per_step(&self) -> u64 {
        self.train.full.iter().map(|d| d.bytes).sum()
    }

    fn split(&self, training: bool) -> Result<&Split> {
        if training && self.train.n == 0 {
            Err(Error::Usage(
                "this GPU program was built for inference only: it cannot train".into(),
            ))
        } else if training {
            Ok(&self.train)
        } else {
            self.eval
                .as_ref()
                .ok_or_else(|| Error::Dataset("no evaluation set".into()))
        }
    }

    /// Steps per submit of the training (or evaluation) program: measured on its first submit,
    /// `MAX_STEPS_PER_SUBMIT` until then.
    pub fn steps_per_submit(&self, training: bool) -> usize {
        self.split(training)
            .ok()
            .and_then(|s| s.chunk)
            .unwrap_or(MAX_STEPS_PER_SUBMIT)
    }

    /// Fixes the steps per submit instead of measuring them (tests: chunking must not change
    /// any number).
    pub fn set_steps_per_submit(&mut self, training: bool, steps: usize) {
        let chunk = Some(steps.clamp(1, MAX_STEPS_PER_SUBMIT));
        if training {
            self.train.chunk = chunk;
        } else if let Some(e) = &mut self.eval {
            e.chunk = chunk;
        }
    }

    /// Records steps `s..end` of a program in one compute pass and submits it; does not wait.
    fn submit_range(&mut self, training: bool, s: usize, end: usize) -> Result<()> {
        let split = self.split(training)?;
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for step in s..end {
                for d in split.step(step) {
                    d.record(&mut pass);
                }
            }
        }
        // Training: this submit's metric slots go to a buffer of their own, mapped when done.
        let readback = training.then(|| {
            let size = ((end - s) * 8) as u64;
            let buffer = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("chunk metrics"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let m = &split.metrics;
            enc.copy_buffer_to_buffer(&m.buffer, ((m.offset + 2 * s) * 4) as u64, &buffer, 0, size);
            buffer
        });
        self.gpu.queue.submit([enc.finish()]);
        self.submits += 1;
        if let Some(buffer) = readback {
            let done = self.done.clone();
            self.gpu
                .queue
                .on_submitted_work_done(move || done.store(end, Ordering::Relaxed));
            let ready = Arc::new(AtomicBool::new(false));
            let flag = ready.clone();
            buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                flag.store(r.is_ok(), Ordering::Release)
            });
            self.chunks.push(ChunkRead {
                first: s,
                end,
                buffer,
                ready,
            });
        }
        Ok(())
    }

    /// Records and submits the first `steps` steps of a program in chunks; does not wait, except
    /// once per program: its first few steps are timed to size the chunks (`chunk_steps`).
    fn submit_steps(&mut self, training: bool, steps: usize) -> Result<()> {
        let split = self.split(training)?;
        self.gpu.write(&split.state, &[0u32]);
        let steps = steps.min(split.num_steps());
        let mut s = 0;
        if split.chunk.is_none() && steps > 0 {
            let n = CALIBRATION_STEPS.min(steps);
            // Time these steps alone, not the work queued before them.
            self.wait()?;
            let t0 = std::time::Instant::now();
            self.submit_range(training, 0, n)?;
            self.wait()?;
            let per_step = t0.elapsed().as_secs_f64() / n as f64;
            let chunk = Some(chunk_steps(per_step));
            if training {
                self.train.chunk = chunk;
            } else if let Some(e) = &mut self.eval {
                e.chunk = chunk;
            }
            s = n;
        }
        let chunk = self.steps_per_submit(training);
        while s < steps {
            let end = (s + chunk).min(steps);
            self.submit_range(training, s, end)?;
            s = end;
        }
        self.gpu.check(if training {
            "training epoch"
        } else {
            "evaluation"
        })
    }

    /// Queues the first `steps` steps of an epoch over the training rows in `order`
    /// (a permutation of 0..train_len).
    pub fn submit_train(&mut self, order: &[u32], steps: usize) -> Result<()> {
        // Nobody reads this run's per-submit metrics: drop the last run's too.
        self.chunks.clear();
        let steps = self.prepare_train(order, steps)?;
        self.submit_steps(true, steps)
    }

    /// Writes the epoch's row order and step records and resets the step counter, for the first
    /// `steps` steps (counted into the optimizer's step count `t`); returns how many steps that is.
    fn prepare_train(&mut self, order: &[u32], steps: usize) -> Result<usize> {
        self.split(true)?;
        if order.len() != self.train.n || order.iter().any(|&i| i as usize >= self.train.n) {
            return Err(Error::Usage(format!(
                "epoch order must hold {} row indices below {}",
                self.train.n, self.train.n
            )));
        }
        self.gpu.write(&self.train.indices, order);
        let steps = steps.min(self.train.num_steps());
        let recs: Vec<StepRecord> = (0..steps)
            .map(|s| StepRecord {
                offset: (s * self.batch) as u32,
                alpha: self.opt.alpha(self.t + s as u64 + 1),
                t: (self.t + s as u64 + 1) as u32,
                seed: self.dropout_seed,
                lr: self.opt.lr_step(self.t + s as u64 + 1),
            })
            .collect();
        self.gpu.write(&self.train.steps, &recs);
        self.gpu.write(&self.train.state, &[0u32]);
        self.t += steps as u64;
        Ok(steps)
    }

    /// Submits training steps from `*next` on, up to `IN_FLIGHT` submits ahead of the steps the
    /// GPU has finished (the first submit of a run is timed alone to size the others).
    fn pump(&mut self, next: &mut usize, steps: usize) -> Result<()> {
        if self.train.chunk.is_none() && *next < steps {
            let n = CALIBRATION_STEPS.min(steps - *next);
            self.wait()?;
            let t0 = std::time::Instant::now();
            self.submit_range(true, *next, *next + n)?;
            self.wait()?;
            self.train.chunk = Some(chunk_steps(t0.elapsed().as_secs_f64() / n as f64));
            *next += n;
        }
        let chunk = self.steps_per_submit(true);
        let done = self.done.load(Ordering::Relaxed);
        while *next < steps && *next < done + IN_FLIGHT * chunk {
            let end = (*next + chunk).min(steps);
            self.submit_range(true, *next, end)?;
            *next = end;
        }
        Ok(())
    }

    /// One training epoch in `order`, then (if there is an evaluation set) one evaluation pass,
    /// submitted when the training steps are done.
    /// While the GPU works, `progress` is called a few times a second with the steps finished
    /// and the metrics of the submits finished so far (each submit copies its own metric slots
    /// to a small buffer mapped when it completes: no per-step readback or wait); when it
    /// returns false, the work already submitted is finished and `Error::Interrupted` returned.
    /// Returns (train metrics, eval metrics) from one readback at the end.
    pub fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<(Metrics, Option<Metrics>)> {
        self.done.store(0, Ordering::Relaxed);
        self.chunks.clear();
        let total = self.prepare_train(order, usize::MAX)?;
        let mut p = Progress {
            total,
            ..Default::default()
        };
        let mut next = 0;
        loop {
            self.pump(&mut next, total)?;
            self.gpu
                .device
                .poll(wgpu::PollType::Poll)
                .map_err(|e| Error::Gpu(format!("polling the GPU: {e}")))?;
            self.collect_chunks(&mut p);
            p.done = self.done.load(Ordering::Relaxed);
            if !p.running.loss_sum.is_finite() {
                // Diverged: nothing more is submitted; what is in flight finishes.
                self.wait()?;
                self.chunks.clear();
                return Err(Error::Diverged(format!(
                    "the loss of the steps up to {} of {} is {}",
                    p.running.n.div_ceil(self.batch),
                    p.total,
                    p.running.loss_sum
                )));
            }
            if !progress(&p) {
                // Nothing more is submitted; what is in flight finishes.
                self.wait()?;
                self.chunks.clear();
                return Err(Error::Interrupted(format!(
                    "during an epoch, after {} of {} steps",
                    p.done, p.total
                )));
            }
            if p.done >= p.total {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.gpu.check("training epoch")?;
        // Evaluation once training is done: its first submit is timed alone.
        if self.eval.is_some() {
            self.submit_steps(false, usize::MAX)?;
        }
        let mut tensors = vec![&self.train.metrics];
        if let Some(e) = &self.eval {
            tensors.push(&e.metrics);
        }
        let slots = self.gpu.read::<f32>(&tensors)?;
        // Every submit has finished: the last report holds the whole epoch.
        self.gpu.wait()?;
        self.collect_chunks(&mut p);
        p.done = p.total;
        progress(&p);
        self.chunks.clear();
        let train = Metrics::from_slots(&slots[0], self.train.n);
        let eval = self
            .eval
            .as_ref()
            .map(|e| Metrics::from_slots(&slots[1], e.n));
        Ok((train, eval))
    }

    /// Adds the metric slots of every finished submit to `p.running` (and their images).
    fn collect_chunks(&mut self, p: &mut Progress) {
        let (batch, n) = (self.train.batch, self.train.n);
        self.chunks.retain(|c| {
            if !c.ready.load(Ordering::Acquire) {
                return true;
            }
            if let Ok(view) = c.buffer.slice(..).get_mapped_range() {
                let slots: Vec<f32> = bytemuck::pod_collect_to_vec(&view);
                let images = (c.end * batch).min(n) - c.first * batch;
                let m = Metrics::from_slots(&slots, images);
                p.running.loss_sum += m.loss_sum;
                p.running.correct += m.correct;
                p.running.n += images;
            }
            c.buffer.unmap();
            false
        });
    }

    /// The logits of every image of the evaluation set, in order (n x classes): its program one
    /// step at a time, with a readback after each.
    pub fn eval_logits(&mut self) -> Result<Vec<f32>> {
        let e = self.split(false)?;
        let (steps, batch, n) = (e.num_steps(), e.batch, e.n);
        self.gpu.write(&e.state, &[0u32]);
        let classes = self.model.classes;
        let last = self.net.acts.len() - 1;
        let mut out = Vec::with_capacity(n * classes);
        for s in 0..steps {
            self.submit_range(false, s, s + 1)?;
            let rows = batch.min(n - s * batch);
            let logits = self.gpu.read::<f32>(&[&self.net.acts[last]])?.remove(0);
            out.extend_from_slice(&logits[..rows * classes]);
        }
        self.gpu.check("evaluation")?;
        Ok(out)
    }

    /// Makes `set` the evaluation set (a run with a validation split evaluates the test set at
    /// the end), in batches of at most the current evaluation batch, which the buffers hold.
    pub fn replace_eval(&mut self, set: &Dataset) -> Result<()> {
        self.model.check_data("evaluation", set)?;
        let batch = self.eval.as_ref().map_or(self.batch, |e| e.batch);
        self.eval = Some(Self::split_buffers(&self.gpu, set, batch, "eval")?);
        self.prepare_eval()?;
        self.gpu.check("replacing the evaluation set")
    }

    /// Evaluates the current weights on the evaluation set.
    pub fn evaluate(&mut self) -> Result<Metrics> {
        let Some(e) = &self.eval else {
            return Err(Error::Usage("no evaluation set".into()));
        };
        let n = e.n;
        self.submit_steps(false, usize::MAX)?;
        let e = self.eval.as_ref().expect("eval split");
        let slots = self.gpu.read::<f32>(&[&e.metrics])?;
        Ok(Metrics::from_slots(&slots[0], n))
    }

    /// Waits until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.gpu.wait()
    }

    /// Times each dispatch of a full training step in isolation: `reps` copies in one submit,
    /// minus an empty submit, per copy. Returns (label, milliseconds, the dispatch's FLOPs).
    /// Changes the weights.
    pub fn profile_step(&mut self, reps: usize) -> Result<Vec<(String, f64, f64)>> {
        let time = |ds: &[&Dispatch]| -> Result<f64> {
            let t0 = std::time::Instant::now();
            self.gpu.run(ds)?;
            self.wait()?;
            Ok(t0.elapsed().as_secs_f64() * 1e3)
        };
        let empty = (0..3).map(|_| time(&[])).collect::<Result<Vec<_>>>()?;
        let empty = empty.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut out = Vec::new();
        for d in &self.train.full {
            let ds: Vec<&Dispatch> = std::iter::repeat_n(d, reps).collect();
            let best = (0..2)
                .map(|_| time(&ds))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            let ms = ((best - empty) / reps as f64).max(0.0);
            out.push((d.label.clone(), ms, d.flops));
        }
        Ok(out)
    }

    /// The optimizer's state, `m`, `v` and `a` (`OptimizerKind::state_names`; zeros where
    /// it keeps none), padding included.
    pub fn read_moments(&self) -> Result<[Vec<f32>; 3]> {
        let mut s = self.gpu.read::<f32>(&[&self.m, &self.v, &self.a])?;
        let n = self.model.flat_len;
        // Without a centered RMSprop, `a` is not kept: zeros.
        let a = match s.remove(2) {
            a if a.len() >= n => a,
            _ => vec![0.0; n],
        };
        let v = s.remove(1);
        Ok([s.remove(0), v, a])
    }

    /// Replaces the parameters, the optimizer's state and step count (resuming a run).
    pub fn write_state(&mut self, weights: &[f32], [m, v, a]: [&[f32]; 3], t: u64) -> Result<()> {
        let n = self.model.flat_len;
        if [weights, m, v, a].iter().any(|s| s.len() != n) {
            return Err(Error::Model(format!(
                "state of {}, {}, {} and {} values given, the model has {n}",
                weights.len(),
                m.len(),
                v.len(),
                a.len()
            )));
        }
        self.gpu.write(&self.net.weights, weights);
        self.gpu.write(&self.m, m);
        self.gpu.write(&self.v, v);
        if self.a.len >= n {
            self.gpu.write(&self.a, a);
        }
        self.t = t;
        self.refresh_copies()?;
        self.gpu.check("writing the training state")
    }

    /// Transposes the conv weights into the copies the optimizer keeps (after the host writes them).
    fn refresh_copies(&self) -> Result<()> {
        if let Some(c) = &self.copies {
            self.gpu.run(&c.refresh.iter().collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// The flat parameters (padding included).
    pub fn read_weights(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.net.weights])?.remove(0))
    }

    /// The per-step (loss sum, correct) slots of the last training run.
    pub fn read_train_slots(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.train.metrics])?.remove(0))
    }

    /// The gradients of the last step (padding included).
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.net.grads])?.remove(0))
    }
}
