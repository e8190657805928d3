//! The stage plan: which passes run each layer, fused or not, decided once per model and read
//! by the GPU trainer, the CPU network, bench's pass labels and the dispatch count; and the
//! batch-size rules both trainers follow.

use std::ops::Range;

use crate::layers::{
    conv_geometry, conv_params, dense_params, pool_params, Conv2dPooledParams, DenseChainParams,
};
use crate::model::{Layer, Model};

/// How one layer, or a fused pair of layers, runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Layer `i` with its own forward and backward passes.
    Single(usize),
    /// The unstrided conv `conv` and the max-pool with disjoint windows after it: the pool's
    /// backward pass in the conv's (`conv2d_backward_pooled`) and, with `forward` (2x2 windows,
    /// stride 2), its forward pass too (`conv2d_forward_pooled`): the conv's output and its
    /// gradient are then never stored.
    ConvPool { conv: usize, forward: bool },
    /// Dense `first` and the dense layer after it, both at most `DenseChainParams::MAX_OUTPUTS`
    /// wide: the forward passes in one dispatch (`dense_forward_chain`) where the device gains
    /// from it (`gpu::layers::dense::chain_pays`; the same bits either way), the backward apart.
    DenseChain(usize),
}

impl Stage {
    /// The layers this stage runs.
    pub fn layers(&self) -> Range<usize> {
        match *self {
            Stage::Single(i) => i..i + 1,
            Stage::ConvPool { conv, .. } => conv..conv + 2,
            Stage::DenseChain(first) => first..first + 2,
        }
    }
}

/// The stages of `model`, in order, each layer in exactly one. Without `fuse` every layer is a
/// `Single` stage (the unfused passes; the same numbers).
pub fn plan(model: &Model, fuse: bool) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut i = 0;
    while i < model.layers.len() {
        let stage = match fuse.then(|| fused_at(model, i)).flatten() {
            Some(s) => s,
            None => Stage::Single(i),
        };
        i = stage.layers().end;
        stages.push(stage);
    }
    stages
}

/// The fused stage that starts at layer `i`, if its pattern occurs there.
fn fused_at(model: &Model, i: usize) -> Option<Stage> {
    let (a, b) = (model.layers.get(i)?, model.layers.get(i + 1)?);
    // In a graph, only where the second layer alone reads the first's output, and nothing else.
    if b.inputs.as_slice() != [i + 1] || model.consumers(i + 1).len() != 1 {
        return None;
    }
    match (a.layer, b.layer) {
        (Layer::Conv2d { stride: 1, .. }, Layer::MaxPool2d { .. }) => {
            let (c, p) = (conv_params(a, 1), pool_params(b, 1));
            Conv2dPooledParams::fits(&c, &p).then(|| Stage::ConvPool {
                conv: i,
                forward: Conv2dPooledParams::fits_forward(&c, &p),
            })
        }
        (Layer::Dense { .. }, Layer::Dense { .. }) => {
            DenseChainParams::fits(&dense_params(a, 1), &dense_params(b, 1))
                .then_some(Stage::DenseChain(i))
        }
        _ => None,
    }
}

/// Whether each layer's output is stored: all but a conv whose pool runs in its forward pass.
pub fn written(stages: &[Stage], layers: usize) -> Vec<bool> {
    let mut w = vec![true; layers];
    for s in stages {
        if let Stage::ConvPool {
            conv,
            forward: true,
        } = *s
        {
            w[conv] = false;
        }
    }
    w
}

/// Where each layer's backward pass writes the gradient of each of its inputs, and the sums
/// that join the gradients of a tensor several layers read (a residual connection's fork).
/// Gradient buffer `t` is tensor t's own (0 the input, `j + 1` layer j's output); a tensor with
/// one reader gets its gradient there directly. Each reader of a tensor with several gets a
/// buffer of its own past the tensors' (`extra`), and after the backward pass of the first of
/// them in layer order (the last to run) their sum goes to the tensor's own buffer, in layer
/// order: `(g0 + g1) + g2 ...`, on the GPU as on the CPU, without atomics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GradientSlots {
    /// `slot[i][k]`: the gradient buffer input k of layer i writes.
    pub slot: Vec<Vec<usize>>,
    /// The tensor each buffer past the tensors' is a gradient of: buffer `tensors + j` for
    /// `extra[j]`.
    pub extra: Vec<usize>,
    /// `sums[i]`: after layer i's backward pass, each (tensor, the buffers summed into its own,
    /// in layer order).
    pub sums: Vec<Vec<(usize, Vec<usize>)>>,
}

/// The `GradientSlots` of `model` (for a chain: every layer writes its input's own buffer, no
/// sums).
pub fn gradient_slots(model: &Model) -> GradientSlots {
    let n = model.layers.len();
    let tensors = n + 1;
    let mut g = GradientSlots {
        slot: model.layers.iter().map(|l| l.inputs.clone()).collect(),
        extra: Vec::new(),
        sums: vec![Vec::new(); n],
    };
    for t in 0..tensors {
        let readers = model.consumers(t);
        if readers.len() < 2 || !model.needs_gradient(t) {
            continue;
        }
        let mut bufs = Vec::new();
        for &(i, k) in &readers {
            g.slot[i][k] = tensors + g.extra.len();
            bufs.push(g.slot[i][k]);
            g.extra.push(t);
        }
        g.sums[readers[0].0].push((t, bufs));
    }
    g
}

/// Buffers that may share storage: `items[k]` is `Some((start, end))`, the steps (inclusive)
/// between which item k's contents matter, or `None` for one kept apart. Returns each item's
/// shared buffer (`None` for those kept apart) and the number of shared buffers: first fit in
/// order of start, so an item takes a buffer whose last item ended before it starts. Two items
/// used by one step (a pass reading one and writing the other) always differ.
pub fn share(items: &[Option<(usize, usize)>]) -> (Vec<Option<usize>>, usize) {
    let mut order: Vec<usize> = (0..items.len()).filter(|&k| items[k].is_some()).collect();
    order.sort_by_key(|&k| (items[k].map(|(s, _)| s), k));
    let mut ends: Vec<usize> = Vec::new();
    let mut out = vec![None; items.len()];
    for k in order {
        let (start, end) = items[k].expect("filtered");
        let b = match ends.iter().position(|&e| e < start) {
            Some(b) => b,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[b] = end;
        out[k] = Some(b);
    }
    (out, ends.len())
}

/// The stage each layer runs in.
fn stage_of(stages: &[Stage], layers: usize) -> Vec<usize> {
    let mut at = vec![0; layers];
    for (s, st) in stages.iter().enumerate() {
        for i in st.layers() {
            at[i] = s;
        }
    }
    at
}

/// When each activation of a forward-only program matters, in stages: tensor t from the stage
/// that writes it (the input from the start) to the last stage that reads it (the logits to
/// the end); `None` for those the plan never stores. For `share`.
pub fn activation_lifetimes(model: &Model, stages: &[Stage]) -> Vec<Option<(usize, usize)>> {
    let n = model.layers.len();
    let at = stage_of(stages, n);
    let stored = written(stages, n);
    (0..=n)
        .map(|t| {
            if t > 0 && !stored[t - 1] {
                return None;
            }
            let start = if t == 0 { 0 } else { at[t - 1] };
            let end = match t == n {
                true => stages.len(),
                false => model.consumers(t).iter().map(|&(i, _)| at[i]).max()?,
            };
            Some((start, end))
        })
        .collect()
}

/// When each gradient buffer of a training step matters (`GradientSlots`' numbering: tensors,
/// then the readers' own), in backward steps (stage `stages.len() - 1` first): from the first
/// pass that writes it to the last that reads it. A tensor's gradient is written by its
/// readers' backward passes (or their sum) and read by its maker's; a reader's own buffer from
/// its backward pass to the sum. `None` for those no pass uses (the input's, an augmentation
/// layer's, an output the plan never stores).
pub fn gradient_lifetimes(
    model: &Model,
    stages: &[Stage],
    slots: &GradientSlots,
) -> Vec<Option<(usize, usize)>> {
    let n = model.layers.len();
    let at = stage_of(stages, n);
    let last = stages.len().saturating_sub(1);
    // Backward step of stage s.
    let step = |s: usize| last - s;
    let stored = written(stages, n);
    let mut out: Vec<Option<(usize, usize)>> = (0..=n)
        .map(|t| {
            if t == 0 || !stored[t - 1] || !model.needs_gradient(t) {
                return None;
            }
            let end = step(at[t - 1]);
            if t == n {
                // The loss writes the logits' gradient before the first backward step.
                return Some((0, end));
            }
            let first = model.consumers(t).iter().map(|&(i, _)| at[i]).max()?;
            Some((step(first), end))
        })
        .collect();
    out.resize(n + 1 + slots.extra.len(), None);
    // The readers' own buffers: from each reader's step to the sum at the first reader's.
    for (i, slot) in slots.slot.iter().enumerate() {
        for (k, &b) in slot.iter().enumerate() {
            if b > n {
                let t = model.layers[i].inputs[k];
                let first = model
                    .consumers(t)
                    .iter()
                    .map(|&(j, _)| at[j])
                    .min()
                    .unwrap_or(0);
                out[b] = Some((step(at[i]), step(first)));
            }
        }
    }
    out
}

/// Smallest batch used for evaluation (forward only, so larger batches are cheap).
pub const MIN_EVAL_BATCH: usize = 256;

/// The evaluation batch: forward only, so larger than the training batch (at least
/// `MIN_EVAL_BATCH`), but no larger than the evaluation set or than `fits`.
pub fn eval_batch(batch: usize, eval_len: usize, fits: usize) -> usize {
    batch.max(MIN_EVAL_BATCH).min(eval_len).min(fits).max(1)
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
