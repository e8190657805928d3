//! Training on the GPU: the dataset, parameters, Adam state and activations live in GPU buffers;
//! a training step is a fixed list of dispatches recorded once, and an epoch is that list repeated,
//! submitted in chunks of about `SUBMIT_SECONDS` of work each, a few ahead of the GPU. Passes that
//! vary per step read a GPU-side step counter, which the loss pass advances, so the host writes the shuffle
//! order and the per-step records once per epoch and reads back the metrics once per epoch (and
//! each submit's own metric slots, for the progress report).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::passes::*;
use super::{Dispatch, Gpu, Tensor};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::{
    Adam, AdamCopy, Conv2dPooledParams, DenseChainParams, GatherParams, ReluParams,
    SoftmaxXentParams, StepRecord, MAX_ADAM_COPIES,
};
use crate::model::{Layer, Model};
use crate::reference::net::{
    avgpool_params, batchnorm_params, conv_geometry, conv_params, dense_params, dropout_params,
    pad_params, pool_params, subsample_params,
};

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
/// Smallest batch used for evaluation (forward only, so larger batches are cheap).
pub const MIN_EVAL_BATCH: usize = 256;

/// The evaluation batch: forward only, so larger than the training batch (at least
/// `MIN_EVAL_BATCH`), but no larger than the evaluation set or than `fits`.
pub fn eval_batch(batch: usize, eval_len: usize, fits: usize) -> usize {
    batch.max(MIN_EVAL_BATCH).min(eval_len).min(fits).max(1)
}

/// When layer `i` is an unstrided conv followed by a max-pool with disjoint windows (and
/// `gpu.fuse`), the shapes of the fused backward pass of the two.
fn pooled(gpu: &Gpu, model: &Model, i: usize, batch: usize) -> Option<Conv2dPooledParams> {
    if !gpu.fuse {
        return None;
    }
    let (conv, pool) = (model.layers.get(i)?, model.layers.get(i + 1)?);
    if !matches!(conv.layer, Layer::Conv2d { stride: 1, .. })
        || !matches!(pool.layer, Layer::MaxPool2d { .. })
    {
        return None;
    }
    let (c, p) = (
        conv2d_select(gpu, conv_params(conv, batch)),
        pool_params(pool, batch),
    );
    Conv2dPooledParams::fits(&c, &p).then(|| Conv2dPooledParams::new(c, &p))
}

/// `pooled` when the pool also fuses into the conv's forward pass (2x2, stride 2): then the
/// conv's output and its gradient are never written (nor allocated).
fn pooled_forward(gpu: &Gpu, model: &Model, i: usize, batch: usize) -> Option<Conv2dPooledParams> {
    pooled(gpu, model, i, batch)
        .filter(|p| Conv2dPooledParams::fits_forward(&p.conv, &p.pool_params()))
}

/// Bytes of forward buffers an evaluation batch may take in all (activations, pool winners, the
/// channel-last conv inputs): evaluation takes the largest batch that fits in them (and in the
/// storage binding limit), up to the whole set. Bounded so that one evaluation step stays a
/// short submit on a slow adapter (1,587 images for the seed model).
pub const EVAL_BYTES: usize = 128 << 20;

/// The forward pass's buffers per image (`written[i]`: layer i's output is stored; a conv fused
/// with its pool is not): the largest (name, bytes) and the sum of bytes. Every conv's input is
/// counted twice (its channel-last copy), an upper bound where the portable kernels run.
pub fn forward_buffers(model: &Model, written: &[bool]) -> ((String, usize), usize) {
    let mut sizes = vec![("input".to_string(), model.input)];
    for (l, &w) in model.layers.iter().zip(written) {
        if w {
            sizes.push((l.name.clone(), l.output));
        }
        match l.layer {
            Layer::Conv2d { .. } => {
                let g = conv_geometry(l);
                // The channel-last copy of the stride-1 conv's input.
                let xin = if g.padded_input() { g.padded } else { l.input };
                sizes.push((format!("{}.input", l.name), xin));
                if g.padded_input() {
                    sizes.push((format!("{}.padded", l.name), g.padded));
                }
                if g.strided() {
                    sizes.push((format!("{}.full", l.name), g.full));
                }
            }
            Layer::MaxPool2d { .. } => sizes.push((format!("{}.argmax", l.name), l.output)),
            _ => {}
        }
    }
    let sum = sizes.iter().map(|(_, s)| s.len() * 4).sum();
    let largest =
        sizes
            .into_iter()
            .map(|(n, s)| (n, s.len() * 4))
            .fold(
                ("input".to_string(), 0),
                |a, b| if b.1 > a.1 { b } else { a },
            );
    (largest, sum)
}

/// The evaluation batch on the GPU: the largest that fits the binding `limit` and `EVAL_BYTES`,
/// up to the whole set of `eval_len`, and no smaller than the training batch.
pub fn gpu_eval_batch(
    model: &Model,
    written: &[bool],
    batch: usize,
    eval_len: usize,
    limit: u64,
) -> usize {
    let ((_, largest), sum) = forward_buffers(model, written);
    let fits = usize::try_from(limit / largest.max(1) as u64).unwrap_or(usize::MAX);
    fits.min(EVAL_BYTES / sum.max(1))
        .min(eval_len)
        .max(batch)
        .max(1)
}

/// The largest per-batch buffer for one image: its name and bytes (activations and their
/// gradients; the conv scratch buffers are no larger, output channels padded to 4).
pub fn largest_activation(model: &Model) -> (String, usize) {
    let mut best = ("input".to_string(), model.input.len() * 4);
    for l in &model.layers {
        let mut sizes = vec![(l.name.clone(), l.output)];
        if let Layer::Conv2d { .. } = l.layer {
            // A padded or strided conv's padded input and output before the stride.
            let g = conv_geometry(l);
            sizes.push((format!("{}.padded", l.name), g.padded));
            sizes.push((format!("{}.full", l.name), g.full));
        }
        for (name, s) in sizes {
            let bytes = s.c.div_ceil(4) * 4 * s.h * s.w * 4;
            if bytes > best.1 {
                best = (name, bytes);
            }
        }
    }
    best
}

/// The largest batch whose buffers each fit in `limit` bytes.
pub fn max_batch(model: &Model, limit: u64) -> usize {
    let per_image = largest_activation(model).1.max(1) as u64;
    usize::try_from(limit / per_image).unwrap_or(usize::MAX)
}

/// Summed loss and correct count over `n` samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub loss_sum: f64,
    pub correct: f64,
    pub n: usize,
}

impl Metrics {
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.n.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct / self.n.max(1) as f64
    }
    /// Sums `(loss, correct)` slots read back from a metrics buffer.
    pub fn from_slots(slots: &[f32], n: usize) -> Metrics {
        let mut m = Metrics {
            n,
            ..Default::default()
        };
        for s in slots.chunks_exact(2) {
            m.loss_sum += s[0] as f64;
            m.correct += s[1] as f64;
        }
        m
    }
}

/// Where an epoch stands: training steps finished of `total`, and the summed metrics of the
/// submits whose results are back (`running.n` images).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub running: Metrics,
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

/// Names the dispatches `prog[first..]` of one layer for the profiler: `conv2 fwd`,
/// `conv2 bwd weight`, `conv2 bwd weight+input`, `pool1 bwd`, `adam adam_update`, whichever shader variant ran.
fn label(prog: &mut [Dispatch], first: usize, layer: &str) {
    for d in &mut prog[first..] {
        let (shader, entry) = d.label.split_once("::").unwrap_or((&d.label, "main"));
        let base = shader.trim_end_matches("_subgroup");
        let dir = if base.ends_with("_forward") {
            "fwd"
        } else if base.ends_with("_backward") {
            "bwd"
        } else {
            ""
        };
        // A conv layer's padding and stride passes, beside its own.
        let dir = match base {
            "pad2d_forward" => "fwd pad",
            "pad2d_backward" => "bwd pad",
            "subsample2d_forward" => "fwd stride",
            "subsample2d_backward" => "bwd stride",
            "conv2d_backward_pooled" => "bwd pooled",
            "conv2d_forward_pooled" => "fwd pooled",
            "dense_forward_chain" => "fwd chain",
            _ => dir,
        };
        let pass = match (dir, entry) {
            ("", "main") => base.to_string(),
            ("", e) => format!("{base} {e}"),
            (d, "main" | "main_channel_last" | "main_2x2" | "disjoint") => d.to_string(),
            // The weight and input gradients in one dispatch.
            (d, "backward") => format!("{d} weight+input"),
            (d, e) => format!(
                "{d} {}",
                e.trim_start_matches("backward_")
                    .trim_end_matches("_channel_last")
                    .trim_end_matches("_vec4")
            ),
        };
        d.label = format!("{layer} {pass}");
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

/// Scratch of one conv layer (`None` where it neither pads nor strides).
struct ConvTensors {
    padded: Option<Tensor>,
    dpadded: Option<Tensor>,
    full: Option<Tensor>,
    dfull: Option<Tensor>,
    zero_bias: Tensor,
    dbias: Tensor,
}

pub struct GpuTrainer {
    pub gpu: Gpu,
    pub model: Model,
    pub adam: Adam,
    pub batch: usize,
    pub weights: Tensor,
    pub grads: Tensor,
    m: Tensor,
    v: Tensor,
    /// acts[0] is the gathered input, acts[i + 1] the output of layer i; dacts are their gradients.
    acts: Vec<Tensor>,
    dacts: Vec<Tensor>,
    argmax: Vec<Option<Tensor>>,
    scratch: Vec<Option<Conv2dScratch>>,
    /// Batch norm layers' per-channel (mean, 1 / std) of the forward pass.
    saved: Vec<Option<Tensor>>,
    /// Conv layers' padded input, output before the stride, their gradients, and the zero bias
    /// (with a gradient nobody reads) of a conv without one.
    conv: Vec<Option<ConvTensors>>,
    labels: Tensor,
    /// With `gpu.fuse`: the conv weights' channel-last copies (the `scratch.wt` of each conv in
    /// the table is a slice of the buffer) and the `AdamCopy` table with which Adam keeps them
    /// in step; `refresh` transposes them anew after the host writes the weights.
    copies: Option<(Tensor, Vec<AdamCopy>)>,
    refresh: Vec<Dispatch>,
    train: Split,
    eval: Option<Split>,
    /// Adam steps taken so far.
    pub t: u64,
    /// The seed the dropout masks are drawn from (with each step's t).
    pub dropout_seed: u32,
    pub submits: usize,
    /// Training steps of the running epoch the GPU has finished (set by submission callbacks).
    done: Arc<AtomicUsize>,
    /// Metric readbacks of this epoch's submits not yet collected.
    chunks: Vec<ChunkRead>,
}

impl GpuTrainer {
    pub fn new(
        gpu: Gpu,
        model: &Model,
        weights: &[f32],
        train: &Dataset,
        eval: Option<&Dataset>,
        batch: usize,
        adam: Adam,
    ) -> Result<GpuTrainer> {
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
        model.check_data("training", train)?;
        if let Some(e) = eval {
            model.check_data("evaluation", e)?;
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
        // Layers whose output is stored (not a conv fused with its pool).
        let written: Vec<bool> = (0..model.layers.len())
            .map(|i| pooled_forward(&gpu, model, i, 1).is_none())
            .collect();
        let eval_batch = eval
            .map(|e| gpu_eval_batch(model, &written, batch, e.len(), limit))
            .unwrap_or(0);
        let max_batch = batch.max(eval_batch);

        let zeros = |label: &str, n: usize| gpu.zeros(label, n);
        let weights_t = gpu.upload("weights", weights)?;
        let grads = zeros("grads", model.flat_len)?;
        let m = zeros("adam.m", model.flat_len)?;
        let v = zeros("adam.v", model.flat_len)?;
        let mut acts = vec![zeros("input", max_batch * model.input.len())?];
        // The input's gradient is never needed: dacts[0] is a placeholder.
        let mut dacts = vec![zeros("dinput", 1)?];
        let mut argmax = vec![None];
        let mut scratch = vec![None];
        let mut saved = vec![None];
        let mut conv = vec![None];
        for (l, &w) in model.layers.iter().zip(&written) {
            // A conv fused with its pool: neither its output nor that output's gradient is
            // ever stored (placeholders).
            let (n, dn) = if w {
                (max_batch * l.output.len(), batch * l.output.len())
            } else {
                (1, 1)
            };
            acts.push(zeros(&l.name, n)?);
            dacts.push(zeros(&format!("d{}", l.name), dn)?);
            argmax.push(match l.layer {
                Layer::MaxPool2d { .. } => Some(zeros(
                    &format!("{}.argmax", l.name),
                    max_batch * l.output.len(),
                )?),
                _ => None,
            });
            scratch.push(match l.layer {
                // Sized for the training batch (the backward pass's), except the channel-last
                // input copy: the forward pass of the (larger) evaluation batch writes it too.
                Layer::Conv2d { .. } => {
                    let p = conv2d_select(&gpu, conv_params(l, batch));
                    let mut s = conv2d_scratch(&gpu, &p)?;
                    if p.channel_last != 0 {
                        s.xt = zeros("conv2d.xt", conv_params(l, max_batch).inp_len())?;
                    }
                    Some(s)
                }
                _ => None,
            });
            conv.push(match l.layer {
                Layer::Conv2d { .. } => {
                    let g = conv_geometry(l);
                    let z = |on: bool, what: &str, n: usize| -> Result<Option<Tensor>> {
                        Ok(if on {
                            Some(zeros(&format!("{}.{what}", l.name), n)?)
                        } else {
                            None
                        })
                    };
                    Some(ConvTensors {
                        padded: z(g.padded_input(), "padded", max_batch * g.padded.len())?,
                        dpadded: z(g.padded_input(), "dpadded", batch * g.padded.len())?,
                        full: z(g.strided(), "full", max_batch * g.full.len())?,
                        dfull: z(g.strided(), "dfull", batch * g.full.len())?,
                        zero_bias: zeros(&format!("{}.zero_bias", l.name), g.out.c)?,
                        dbias: zeros(&format!("{}.dbias", l.name), g.out.c)?,
                    })
                }
                _ => None,
            });
            saved.push(match l.layer {
                Layer::BatchNorm { .. } => {
                    Some(zeros(&format!("{}.saved", l.name), 2 * l.input.c)?)
                }
                _ => None,
            });
        }
        let labels = zeros("labels", max_batch)?;
        // Adam keeps the channel-last weight copies of (the first MAX_ADAM_COPIES) conv passes,
        // so the steps need no transposition passes: one buffer holds them all, 256-byte
        // aligned slices.
        let mut copies = None;
        let mut refresh = Vec::new();
        if gpu.fuse {
            // The conv layers (index, weight tensor) whose copies Adam keeps.
            let kept: Vec<(usize, usize)> = model
                .layers
                .iter()
                .enumerate()
                .filter_map(|(i, l)| Some((i, l.weight?)).filter(|_| scratch[i + 1].is_some()))
                .take(MAX_ADAM_COPIES)
                .collect();
            let mut table = Vec::new();
            let mut at = 0;
            for &(i, w) in &kept {
                if let Some(s) = &scratch[i + 1] {
                    let p = conv_params(&model.layers[i], max_batch);
                    table.push(AdamCopy {
                        offset: model.params[w].offset as u32,
                        c_out: p.c_out,
                        c_in: p.c_in,
                        taps: p.kh * p.kw,
                        wt_offset: at as u32,
                        c4: p.c_out.div_ceil(4),
                        _pad: [0; 2],
                    });
                    at += s.wt.len.div_ceil(64) * 64;
                }
            }
            if !table.is_empty() {
                let wt = zeros("conv.wt", at)?;
                for (&(i, w), c) in kept.iter().zip(&table) {
                    if let Some(s) = &mut scratch[i + 1] {
                        s.wt = wt.slice(c.wt_offset as usize, s.wt.len);
                        s.wt_kept = true;
                        let p = &model.params[w];
                        let weight = weights_t.slice(p.offset, p.len);
                        let cp = conv2d_select(&gpu, conv_params(&model.layers[i], max_batch));
                        conv2d_transpose_weight(&gpu, &mut refresh, &s.wt, &weight, &cp)?;
                    }
                }
                copies = Some((wt, table));
            }
        }

        let mut me = GpuTrainer {
            model: model.clone(),
            adam,
            batch,
            weights: weights_t,
            grads,
            m,
            v,
            acts,
            dacts,
            argmax,
            scratch,
            saved,
            conv,
            labels,
            copies,
            refresh,
            train: Self::split_buffers(&gpu, train, batch, "train")?,
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
        me.train.full = me.build_step(&me.train, batch, true)?;
        let tail = me.train.n % batch;
        if tail != 0 {
            me.train.tail = Some((tail, me.build_step(&me.train, tail, true)?));
        }
        if let Some(e) = &me.eval {
            let full = me.build_step(e, e.batch, false)?;
            let tail_n = e.n % e.batch;
            let tail = if tail_n != 0 {
                Some((tail_n, me.build_step(e, tail_n, false)?))
            } else {
                None
            };
            let e = me.eval.as_mut().expect("eval split");
            e.full = full;
            e.tail = tail;
            // Evaluation walks the set in order, so its indices and records never change.
            let ident: Vec<u32> = (0..e.n as u32).collect();
            me.gpu.write(&e.indices, &ident);
            let recs: Vec<StepRecord> = (0..e.num_steps())
                .map(|s| StepRecord {
                    offset: (s * e.batch) as u32,
                    ..Default::default()
                })
                .collect();
            me.gpu.write(&e.steps, &recs);
        }
        me.refresh_copies()?;
        me.gpu.check("creating the trainer")?;
        Ok(me)
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

    fn pooled(&self, i: usize, batch: usize) -> Option<Conv2dPooledParams> {
        pooled(&self.gpu, &self.model, i, batch)
    }

    fn pooled_forward(&self, i: usize, batch: usize) -> Option<Conv2dPooledParams> {
        pooled_forward(&self.gpu, &self.model, i, batch)
    }

    /// Whether dense layer `i` computes the next one too (`dense_forward_chain`): with
    /// `gpu.fuse`, when the next layer is dense, both fit, and layer `i` is not itself the
    /// second of a chain.
    fn chain_start(&self, i: usize, batch: usize) -> bool {
        let (Some(a), Some(b)) = (self.model.layers.get(i), self.model.layers.get(i + 1)) else {
            return false;
        };
        self.gpu.fuse
            && matches!(a.layer, Layer::Dense { .. })
            && matches!(b.layer, Layer::Dense { .. })
            && DenseChainParams::fits(&dense_params(a, batch), &dense_params(b, batch))
            && !(i > 0 && self.chain_start(i - 1, batch))
    }

    fn param(&self, t: &Tensor, index: Option<usize>) -> Tensor {
        let p = &self.model.params[index.expect("layer has parameters")];
        t.slice(p.offset, p.len)
    }

    /// The dispatches of one step over `split` with `batch` rows: gather, forward, loss metrics and,
    /// when training, backward and Adam; then advance the step counter.
    fn build_step(&self, split: &Split, batch: usize, training: bool) -> Result<Vec<Dispatch>> {
        let gpu = &self.gpu;
        let mut prog = Vec::new();
        for (first, rows, images) in &split.images {
            let gp = GatherParams {
                first: *first as u32,
                rows: *rows as u32,
                ..GatherParams::new(batch, self.model.input.len())
            };
            gather_batch(
                gpu,
                &mut prog,
                &self.acts[0],
                &self.labels,
                images,
                &split.labels,
                &split.indices,
                &split.steps,
                &split.state,
                &gp,
            )?;
        }
        label(&mut prog, 0, "input");
        for (i, l) in self.model.layers.iter().enumerate() {
            let first = prog.len();
            let (inp, out) = (&self.acts[i], &self.acts[i + 1]);
            match l.layer {
                Layer::Conv2d { .. } => {
                    let c = self.conv[i + 1].as_ref().expect("conv tensors");
                    let w = self.param(&self.weights, l.weight);
                    let b = match l.bias {
                        Some(_) => self.param(&self.weights, l.bias),
                        None => c.zero_bias.clone(),
                    };
                    let scratch = self.scratch[i + 1].as_ref().expect("conv scratch");
                    let p = conv2d_select(gpu, conv_params(l, batch));
                    let src = match (pad_params(l, batch), &c.padded) {
                        (Some(pp), Some(padded)) => {
                            pad2d_forward(gpu, &mut prog, padded, inp, &pp)?;
                            padded
                        }
                        _ => inp,
                    };
                    match (subsample_params(l, batch), &c.full) {
                        (Some(sp), Some(full)) => {
                            conv2d_forward(gpu, &mut prog, full, src, &w, &b, scratch, &p)?;
                            subsample2d_forward(gpu, &mut prog, out, full, &sp)?;
                        }
                        // The max-pool after this conv, in this one's pass: its output and
                        // winners; the conv's own output is never written.
                        _ => match self.pooled_forward(i, batch) {
                            Some(pp) => {
                                let am = self.argmax[i + 2].as_ref().expect("pool argmax");
                                let pooled = &self.acts[i + 2];
                                conv2d_forward_pooled(
                                    gpu, &mut prog, pooled, am, src, &w, &b, scratch, &pp,
                                )?;
                            }
                            None => conv2d_forward(gpu, &mut prog, out, src, &w, &b, scratch, &p)?,
                        },
                    }
                }
                // Fused into the conv before it (conv2d_forward_pooled).
                Layer::MaxPool2d { .. } if i > 0 && self.pooled_forward(i - 1, batch).is_some() => {
                }
                Layer::MaxPool2d { .. } => {
                    let am = self.argmax[i + 1].as_ref().expect("pool argmax");
                    maxpool2d_forward(gpu, &mut prog, out, am, inp, &pool_params(l, batch))?;
                }
                // Chained into the dense layer before it (dense_forward_chain).
                Layer::Dense { .. } if i > 0 && self.chain_start(i - 1, batch) => {}
                Layer::Dense { .. } => {
                    let (w, b) = (
                        self.param(&self.weights, l.weight),
                        self.param(&self.weights, l.bias),
                    );
                    let p = dense_params(l, batch);
                    if self.chain_start(i, batch) {
                        // The next dense layer, in this one's pass.
                        let next = &self.model.layers[i + 1];
                        let (w2, b2) = (
                            self.param(&self.weights, next.weight),
                            self.param(&self.weights, next.bias),
                        );
                        let cp = DenseChainParams {
                            first: p,
                            second: dense_params(next, batch),
                        };
                        let out2 = &self.acts[i + 2];
                        dense_forward_chain(gpu, &mut prog, out, out2, inp, &w, &b, &w2, &b2, &cp)?;
                    } else {
                        dense_forward(gpu, &mut prog, out, inp, &w, &b, &p)?;
                    }
                }
                Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                    avgpool2d_forward(gpu, &mut prog, out, inp, &avgpool_params(l, batch))?;
                }
                Layer::Dropout { .. } => {
                    let p = dropout_params(l, batch, i, training);
                    dropout_forward(gpu, &mut prog, out, inp, &split.steps, &split.state, &p)?;
                }
                Layer::Relu => {
                    let p = ReluParams::new(batch * l.input.len());
                    relu_forward(gpu, &mut prog, out, inp, &p)?;
                }
                Layer::BatchNorm { .. } => {
                    let saved = self.saved[i + 1].as_ref().expect("batch norm statistics");
                    let p = batchnorm_params(l, batch, training);
                    batchnorm_forward(
                        gpu,
                        &mut prog,
                        out,
                        saved,
                        &self.param(&self.weights, l.stats),
                        &self.param(&self.weights, l.stats.map(|s| s + 1)),
                        inp,
                        &self.param(&self.weights, l.weight),
                        &self.param(&self.weights, l.bias),
                        &p,
                    )?;
                }
            }
            label(&mut prog, first, &l.name);
        }
        let mut first = prog.len();
        let nl = self.model.layers.len();
        let xp = SoftmaxXentParams::new(batch, self.model.classes);
        if training && gpu.fuse {
            // The loss, the correct count and the logits' gradient in one pass.
            softmax_xent(
                gpu,
                &mut prog,
                &split.metrics,
                &self.dacts[nl],
                &self.acts[nl],
                &self.labels,
                &split.state,
                &xp,
            )?;
        } else {
            softmax_xent_forward(
                gpu,
                &mut prog,
                &split.metrics,
                &self.acts[nl],
                &self.labels,
                &split.state,
                &xp,
            )?;
            if training {
                softmax_xent_backward(
                    gpu,
                    &mut prog,
                    &self.dacts[nl],
                    &self.acts[nl],
                    &self.labels,
                    &xp,
                )?;
            }
        }
        if training {
            label(&mut prog, first, "loss");
            for (i, l) in self.model.layers.iter().enumerate().rev() {
                let first = prog.len();
                let (inp, out, dinp, dout) = (
                    &self.acts[i],
                    &self.acts[i + 1],
                    &self.dacts[i],
                    &self.dacts[i + 1],
                );
                match l.layer {
                    Layer::Conv2d { .. } => {
                        let p = conv2d_select(gpu, conv_params(l, batch));
                        let c = self.conv[i + 1].as_ref().expect("conv tensors");
                        let dw = self.param(&self.grads, l.weight);
                        let db = match l.bias {
                            Some(_) => self.param(&self.grads, l.bias),
                            None => c.dbias.clone(),
                        };
                        let scratch = self.scratch[i + 1].as_ref().expect("conv scratch");
                        let w = self.param(&self.weights, l.weight);
                        // The stride-1 convolution's output and its gradient.
                        let (out, dout) = match (subsample_params(l, batch), &c.full, &c.dfull) {
                            (Some(sp), Some(full), Some(dfull)) => {
                                subsample2d_backward(gpu, &mut prog, dfull, dout, &sp)?;
                                (full, dfull)
                            }
                            _ => (out, dout),
                        };
                        let pp = pad_params(l, batch);
                        let (src, dsrc) = match (&pp, &c.padded, &c.dpadded) {
                            (Some(_), Some(padded), Some(dpadded)) => (padded, dpadded),
                            _ => (inp, dinp),
                        };
                        let dsrc = if i > 0 { Some(dsrc) } else { None };
                        match self.pooled(i, batch) {
                            // The max-pool after this conv: its backward pass in this one's.
                            Some(pp) => {
                                let am = self.argmax[i + 2].as_ref().expect("pool argmax");
                                let (pooled, dpool) = (&self.acts[i + 2], &self.dacts[i + 2]);
                                conv2d_backward_pooled(
                                    gpu, &mut prog, dsrc, &dw, &db, pooled, am, dpool, src, &w,
                                    scratch, &pp,
                                )?;
                            }
                            None => conv2d_backward(
                                gpu, &mut prog, dsrc, &dw, &db, out, dout, src, &w, scratch, &p,
                            )?,
                        }
                        if let (true, Some(pp), Some(dpadded)) = (i > 0, pp, &c.dpadded) {
                            pad2d_backward(gpu, &mut prog, dinp, dpadded, &pp)?;
                        }
                    }
                    // Fused into the conv before it (conv2d_backward_pooled).
                    Layer::MaxPool2d { .. } if i > 0 && self.pooled(i - 1, batch).is_some() => {}
                    Layer::MaxPool2d { .. } => {
                        if i > 0 {
                            let am = self.argmax[i + 1].as_ref().expect("pool argmax");
                            maxpool2d_backward(
                                gpu,
                                &mut prog,
                                dinp,
                                am,
                                dout,
                                &pool_params(l, batch),
                            )?;
                        }
                    }
                    Layer::Dense { .. } => {
                        let p = dense_params(l, batch);
                        let (dw, db) = (
                            self.param(&self.grads, l.weight),
                            self.param(&self.grads, l.bias),
                        );
                        let w = self.param(&self.weights, l.weight);
                        let dinp = if i > 0 { Some(dinp) } else { None };
                        dense_backward(gpu, &mut prog, dinp, &dw, &db, out, dout, inp, &w, &p)?;
                    }
                    Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => {
                        if i > 0 {
                            let p = avgpool_params(l, batch);
                            avgpool2d_backward(gpu, &mut prog, dinp, dout, &p)?;
                        }
                    }
                    Layer::Relu => {
                        if i > 0 {
                            let p = ReluParams::new(batch * l.input.len());
                            relu_backward(gpu, &mut prog, dinp, out, dout, &p)?;
                        }
                    }
                    Layer::Dropout { .. } => {
                        if i > 0 {
                            let p = dropout_params(l, batch, i, true);
                            let (steps, state) = (&split.steps, &split.state);
                            dropout_backward(gpu, &mut prog, dinp, dout, steps, state, &p)?;
                        }
                    }
                    Layer::BatchNorm { .. } => {
                        let saved = self.saved[i + 1].as_ref().expect("batch norm statistics");
                        batchnorm_backward(
                            gpu,
                            &mut prog,
                            if i > 0 { Some(dinp) } else { None },
                            &self.param(&self.grads, l.weight),
                            &self.param(&self.grads, l.bias),
                            dout,
                            inp,
                            saved,
                            &self.param(&self.weights, l.weight),
                            &batchnorm_params(l, batch, true),
                        )?;
                    }
                }
                label(&mut prog, first, &l.name);
            }
            first = prog.len();
            let ap = match &self.copies {
                Some((_, table)) => self.adam.params(self.model.flat_len).with_copies(table),
                None => self.adam.params(self.model.flat_len),
            };
            adam_update(
                gpu,
                &mut prog,
                &self.weights,
                &self.m,
                &self.v,
                &self.grads,
                &split.steps,
                &split.state,
                &ap,
                self.copies.as_ref().map(|(wt, _)| wt),
            )?;
        }
        label(&mut prog, first, if training { "adam" } else { "loss" });
        Ok(prog)
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
    /// Bytes bound by the dispatches of one training step (an upper bound of what it reads and
    /// writes).
    pub fn bytes_per_step(&self) -> u64 {
        self.train.full.iter().map(|d| d.bytes).sum()
    }

    fn split(&self, training: bool) -> Result<&Split> {
        if training {
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
    /// `steps` steps (counted into Adam's step count `t`); returns how many steps that is.
    fn prepare_train(&mut self, order: &[u32], steps: usize) -> Result<usize> {
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
                alpha: self.adam.alpha(self.t + s as u64 + 1),
                t: (self.t + s as u64 + 1) as u32,
                seed: self.dropout_seed,
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
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
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
        let last = self.acts.len() - 1;
        let mut out = Vec::with_capacity(n * classes);
        for s in 0..steps {
            self.submit_range(false, s, s + 1)?;
            let rows = batch.min(n - s * batch);
            let logits = self.gpu.read::<f32>(&[&self.acts[last]])?.remove(0);
            out.extend_from_slice(&logits[..rows * classes]);
        }
        self.gpu.check("evaluation")?;
        Ok(out)
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
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.gpu.check("wait")
    }

    /// Times each dispatch of a full training step in isolation: `reps` copies in one submit,
    /// minus an empty submit, per copy. Returns (label, milliseconds). Changes the weights.
    pub fn profile_step(&mut self, reps: usize) -> Result<Vec<(String, f64)>> {
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
            out.push((d.label.clone(), ((best - empty) / reps as f64).max(0.0)));
        }
        Ok(out)
    }

    /// Adam's moments (padding included).
    pub fn read_moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut mv = self.gpu.read::<f32>(&[&self.m, &self.v])?;
        let v = mv.remove(1);
        Ok((mv.remove(0), v))
    }

    /// Replaces the parameters, Adam's moments and step count (resuming a run).
    pub fn write_state(&mut self, weights: &[f32], m: &[f32], v: &[f32], t: u64) -> Result<()> {
        let n = self.model.flat_len;
        if weights.len() != n || m.len() != n || v.len() != n {
            return Err(Error::Model(format!(
                "state of {}, {} and {} values given, the model has {n}",
                weights.len(),
                m.len(),
                v.len()
            )));
        }
        self.gpu.write(&self.weights, weights);
        self.gpu.write(&self.m, m);
        self.gpu.write(&self.v, v);
        self.t = t;
        self.refresh_copies()?;
        self.gpu.check("writing the training state")
    }

    /// Transposes the conv weights into the copies Adam keeps (after the host writes them).
    fn refresh_copies(&self) -> Result<()> {
        if !self.refresh.is_empty() {
            self.gpu.run(&self.refresh.iter().collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// The flat parameters (padding included).
    pub fn read_weights(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.weights])?.remove(0))
    }

    /// The per-step (loss sum, correct) slots of the last training run.
    pub fn read_train_slots(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.train.metrics])?.remove(0))
    }

    /// The gradients of the last step (padding included).
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        Ok(self.gpu.read::<f32>(&[&self.grads])?.remove(0))
    }
}
