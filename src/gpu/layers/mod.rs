//! The GPU side of each layer kind, one module per kind: its launchers (one per shader pass,
//! named and ordered like the CPU reference: outputs first, then saved activations, then inputs,
//! then shapes; each appends its dispatches to `prog`, nothing runs until the program is
//! submitted; grid sizes follow each shader's header comment), the buffers it keeps besides its
//! output, and how it records its forward and backward passes into a step, as the stage plan
//! (`crate::plan`) says.

pub mod augment;
pub mod batchnorm;
pub mod conv2d;
pub mod data;
pub mod dense;
pub mod elementwise;
pub mod loss;
pub mod merge;
pub mod optimizer;
pub mod pool;

pub use augment::{affine_transform, random_affine_forward, random_contrast_forward};
pub use batchnorm::{batchnorm_backward, batchnorm_forward};
pub use conv2d::{
    conv2d_backward, conv2d_backward_pooled, conv2d_forward, conv2d_forward_pooled, conv2d_scratch,
    conv2d_select, conv2d_transpose_weight, conv2d_wt_len, pad2d_backward, pad2d_forward,
    subsample2d_backward, subsample2d_forward, Conv2dScratch,
};
pub use data::gather_batch;
pub use dense::{
    dense_backward, dense_backward_input, dense_backward_weight, dense_forward, dense_forward_chain,
};
pub use elementwise::{dropout_backward, dropout_forward, relu_backward, relu_forward};
pub use loss::{softmax_xent, softmax_xent_backward, softmax_xent_forward};
pub use merge::{
    add_backward, add_forward, add_forward_into, concatenate_backward, concatenate_forward,
};
pub use optimizer::{adam_update, rmsprop_update, sgd_update};
pub use pool::{avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward};

use super::{Dispatch, Gpu, Tensor};
use crate::error::{Error, Result};
use crate::model::{Layer, Model};
use crate::plan::{gradient_slots, GradientSlots, Stage};
use crate::shaders::Shader;

pub(crate) const WG: usize = 64;
/// Register tile edge of the conv and dense kernels (TILE x TILE outputs per invocation).
pub(crate) const TILE: usize = 8;

/// A workgroup count; past u32 it saturates, so `Gpu::dispatch` rejects it instead of running a
/// truncated grid.
pub(crate) fn grid(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A 1-D grid of `n` invocations, spilling into y past 65,535 workgroups
/// (shaders index with gid.x + gid.y * 64 * num_workgroups.x).
pub(crate) fn grid_1d(n: usize) -> [u32; 3] {
    let groups = n.div_ceil(WG).max(1);
    if groups <= 65_535 {
        [grid(groups), 1, 1]
    } else {
        [65_535, grid(groups.div_ceil(65_535)), 1]
    }
}

pub(crate) fn check_len(op: &'static str, what: &str, t: &Tensor, need: usize) -> Result<()> {
    if t.len < need {
        return Err(Error::Shape {
            op,
            msg: format!("{what} holds {} elements, the shapes need {need}", t.len),
        });
    }
    Ok(())
}

/// `d` counting, of the per-epoch buffers it binds whole (the dataset, the epoch's row order,
/// step records and metric slots), only the `used` bytes one step touches: bench's bytes per
/// step are then the step's own traffic, whatever the dataset's size.
/// Bytes of one step record (`StepRecord`), the part of the records a per-step pass reads.
pub(crate) const STEP_BYTES: u64 = std::mem::size_of::<crate::layers::StepRecord>() as u64;

pub(crate) fn per_step(mut d: Dispatch, whole: &[&Tensor], used: u64) -> Dispatch {
    d.bytes = d.bytes - whole.iter().map(|t| t.len as u64 * 4).sum::<u64>() + used;
    d
}

/// One dispatch of `shader`'s `main` with `inp` at binding 0, `out` at 1 and `p` at 2, one
/// invocation per element of `n` (the passes of this shape: padding, subsampling, average
/// pooling, ReLU forward).
#[allow(clippy::too_many_arguments)]
pub(crate) fn one_to_one<P: bytemuck::Pod>(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    shader: Shader,
    (out_name, out, out_len): (&str, &Tensor, usize),
    (inp_name, inp, inp_len): (&str, &Tensor, usize),
    p: &P,
    n: usize,
) -> Result<()> {
    let op = shader.name();
    check_len(op, inp_name, inp, inp_len)?;
    check_len(op, out_name, out, out_len)?;
    prog.push(gpu.dispatch(
        shader,
        "main",
        &[(0, inp), (1, out)],
        Some((2, p)),
        grid_1d(n),
    )?);
    Ok(())
}

/// One dispatch of `shader`'s `main` drawing from the step records (dropout, the augmentation
/// layers): `inp` at binding 0, the step records at 1, the step counter at 2, `out` at 3 and `p`
/// at 4, both tensors of `len` values, `n` invocations; only one step record counts as bound.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stepped<P: bytemuck::Pod>(
    gpu: &Gpu,
    prog: &mut Vec<Dispatch>,
    shader: Shader,
    (out_name, out): (&str, &Tensor),
    (inp_name, inp): (&str, &Tensor),
    (steps, state): (&Tensor, &Tensor),
    p: &P,
    (len, n): (usize, usize),
) -> Result<()> {
    let op = shader.name();
    check_len(op, inp_name, inp, len)?;
    check_len(op, out_name, out, len)?;
    check_len(op, "state", state, 2)?;
    let d = gpu.dispatch(
        shader,
        "main",
        &[(0, inp), (1, steps), (2, state), (3, out)],
        Some((4, p)),
        grid_1d(n),
    )?;
    prog.push(per_step(d, &[steps], STEP_BYTES));
    Ok(())
}

/// The GPU buffers of a network: its parameters and their gradients, each layer's output and
/// that output's gradient, and what each layer kind keeps besides.
pub struct NetBuffers {
    pub weights: Tensor,
    pub grads: Tensor,
    /// `acts[0]` is the gathered input, `acts[i + 1]` the output of layer i (a placeholder where the
    /// plan never stores it); dacts are their gradients (`dacts[0]` a placeholder), then the
    /// buffers of the readers of a tensor several layers read (`slots`).
    pub acts: Vec<Tensor>,
    pub dacts: Vec<Tensor>,
    /// Which gradient buffer each layer's backward pass writes for each input, and the sums.
    pub slots: GradientSlots,
    /// Per layer, what its kind keeps besides its output.
    pub layers: Vec<LayerBuffers>,
    /// The batch's labels, as `gather_batch` writes them.
    pub labels: Tensor,
}

/// Buffers `names[k]` of `lens[k]` values: those with a lifetime share storage as `plan::share`
/// assigns it (each shared buffer as long as its longest item, named `what` and its number),
/// the rest get their own.
fn allocate(
    gpu: &Gpu,
    what: &str,
    names: &[String],
    lens: &[usize],
    life: &[Option<(usize, usize)>],
) -> Result<Vec<Tensor>> {
    let (assigned, count) = crate::plan::share(life);
    let mut sizes = vec![1; count];
    for (k, b) in assigned.iter().enumerate() {
        if let Some(b) = *b {
            sizes[b] = sizes[b].max(lens[k]);
        }
    }
    let shared = sizes
        .iter()
        .enumerate()
        .map(|(b, &len)| gpu.zeros(&format!("{what}.{b}"), len))
        .collect::<Result<Vec<Tensor>>>()?;
    names
        .iter()
        .zip(lens)
        .zip(&assigned)
        .map(|((name, &len), b)| match b {
            Some(b) => Ok(shared[*b].slice(0, len)),
            None => gpu.zeros(name, len),
        })
        .collect()
}

/// What a layer keeps besides its output: a conv its scratch, a max-pool its winners, batch norm
/// its statistics.
pub enum LayerBuffers {
    None,
    Conv2d(Box<conv2d::Conv2dBuffers>),
    MaxPool2d { argmax: Tensor },
    BatchNorm { saved: Tensor },
}

impl NetBuffers {
    /// Allocates them for `model`: outputs for `max_batch` images (the evaluation batch may be
    /// larger), gradients and backward scratch for `batch` (0: forward passes only, the
    /// backward buffers are placeholders); `written[i]`: layer i's output is stored (see
    /// `plan::written`). Buffers whose contents matter at different times share storage
    /// (`plan::share`): a training step's gradients, and a forward-only program's activations
    /// (a training step keeps every activation for its backward passes).
    pub fn new(
        gpu: &Gpu,
        model: &Model,
        weights: Tensor,
        stages: &[Stage],
        written: &[bool],
        batch: usize,
        max_batch: usize,
    ) -> Result<NetBuffers> {
        let n = model.layers.len();
        let slots = gradient_slots(model);
        let stored = |t: usize| t == 0 || written[t - 1];
        let mut act_names = vec!["input".to_string()];
        let mut grad_names = vec!["dinput".to_string()];
        for l in &model.layers {
            act_names.push(l.name.clone());
            grad_names.push(format!("d{}", l.name));
        }
        let act_lens: Vec<usize> = (0..=n)
            .map(|t| match stored(t) {
                true => max_batch * model.tensor_shape(t).len(),
                false => 1,
            })
            .collect();
        let mut grad_lens: Vec<usize> = (0..=n)
            .map(|t| match t > 0 && stored(t) {
                true => batch * model.tensor_shape(t).len(),
                false => 1,
            })
            .collect();
        for (j, &t) in slots.extra.iter().enumerate() {
            grad_names.push(format!("d{t}.{j}"));
            grad_lens.push((batch * model.tensor_shape(t).len()).max(1));
        }
        let (act_life, grad_life) = match batch {
            0 => (
                crate::plan::activation_lifetimes(model, stages),
                vec![None; grad_lens.len()],
            ),
            _ => (
                vec![None; act_lens.len()],
                crate::plan::gradient_lifetimes(model, stages, &slots),
            ),
        };
        let acts = allocate(gpu, "activations", &act_names, &act_lens, &act_life)?;
        let dacts = allocate(gpu, "gradients", &grad_names, &grad_lens, &grad_life)?;
        let mut layers = Vec::new();
        for l in &model.layers {
            layers.push(match l.layer {
                Layer::Conv2d { .. } => LayerBuffers::Conv2d(Box::new(conv2d::Conv2dBuffers::new(
                    gpu, l, batch, max_batch,
                )?)),
                Layer::MaxPool2d { .. } => LayerBuffers::MaxPool2d {
                    argmax: gpu.zeros(&format!("{}.argmax", l.name), max_batch * l.output.len())?,
                },
                Layer::BatchNorm { .. } => LayerBuffers::BatchNorm {
                    saved: gpu.zeros(&format!("{}.saved", l.name), 2 * l.input.c)?,
                },
                _ => LayerBuffers::None,
            });
        }
        conv2d::link_channel_last_inputs(model, stages, &mut layers);
        Ok(NetBuffers {
            slots,
            grads: gpu.zeros("grads", if batch > 0 { model.flat_len } else { 0 })?,
            weights,
            acts,
            dacts,
            layers,
            labels: gpu.zeros("labels", max_batch)?,
        })
    }

    fn missing(what: &str, i: usize) -> Error {
        Error::Gpu(format!("layer {}: no {what} buffers allocated", i + 1))
    }
    pub fn conv(&self, i: usize) -> Result<&conv2d::Conv2dBuffers> {
        match self.layers.get(i) {
            Some(LayerBuffers::Conv2d(c)) => Ok(c),
            _ => Err(Self::missing("conv", i)),
        }
    }
    pub fn conv_mut(&mut self, i: usize) -> Result<&mut conv2d::Conv2dBuffers> {
        match self.layers.get_mut(i) {
            Some(LayerBuffers::Conv2d(c)) => Ok(c),
            _ => Err(Self::missing("conv", i)),
        }
    }
    pub fn argmax(&self, i: usize) -> Result<&Tensor> {
        match self.layers.get(i) {
            Some(LayerBuffers::MaxPool2d { argmax }) => Ok(argmax),
            _ => Err(Self::missing("max-pool", i)),
        }
    }
    pub fn saved(&self, i: usize) -> Result<&Tensor> {
        match self.layers.get(i) {
            Some(LayerBuffers::BatchNorm { saved }) => Ok(saved),
            _ => Err(Self::missing("batch norm", i)),
        }
    }
}

/// One step being recorded: the device, the model, its buffers, the walked set's step records
/// and counter, the batch, and the dispatches so far.
pub struct Recorder<'a> {
    pub gpu: &'a Gpu,
    pub model: &'a Model,
    pub net: &'a NetBuffers,
    pub steps: &'a Tensor,
    pub state: &'a Tensor,
    pub batch: usize,
    pub training: bool,
    pub prog: Vec<Dispatch>,
}

impl<'a> Recorder<'a> {
    /// Parameter tensor `index` of the weights.
    pub fn weight(&self, index: Option<usize>) -> Result<Tensor> {
        self.param(&self.net.weights, index)
    }
    /// Parameter tensor `index` of the gradients.
    pub fn grad(&self, index: Option<usize>) -> Result<Tensor> {
        self.param(&self.net.grads, index)
    }
    fn param(&self, t: &Tensor, index: Option<usize>) -> Result<Tensor> {
        let p = index
            .and_then(|i| self.model.params.get(i))
            .ok_or_else(|| Error::Gpu("a layer without the parameters its pass needs".into()))?;
        Ok(t.slice(p.offset, p.len))
    }
    /// The input gradient of layer `i`, when one is needed (not for the first layer, nor after
    /// augmentation layers alone: `Model::input_gradient`).
    pub fn dinp(&self, i: usize) -> Option<&'a Tensor> {
        self.model.input_gradient(i).then(|| self.dslot(i, 0))
    }
    /// The gradient buffer input `k` of layer `i` writes (`plan::GradientSlots`).
    pub fn dslot(&self, i: usize, k: usize) -> &'a Tensor {
        let net: &'a NetBuffers = self.net;
        &net.dacts[net.slots.slot[i][k]]
    }
    /// Layer `i`'s (first) input.
    pub fn inp(&self, i: usize) -> &'a Tensor {
        let net: &'a NetBuffers = self.net;
        &net.acts[self.model.layers[i].inputs[0]]
    }
    /// Names the dispatches recorded since `first` after layer `i` (see `label`).
    pub fn label(&mut self, first: usize, i: usize) {
        label(&mut self.prog, first, &self.model.layers[i].name);
    }
}

/// Records the forward passes of `stage`, each layer's dispatches named after it.
pub fn record_forward(r: &mut Recorder, stage: Stage) -> Result<()> {
    match stage {
        Stage::Single(i) => forward_layer(r, i),
        Stage::ConvPool {
            conv,
            forward: true,
        } => {
            let first = r.prog.len();
            conv2d::record_forward_pooled(r, conv)?;
            r.label(first, conv);
            Ok(())
        }
        Stage::ConvPool { conv, .. } => {
            forward_layer(r, conv)?;
            forward_layer(r, conv + 1)
        }
        Stage::DenseChain(i) if !dense::chain_pays(r, i) => {
            forward_layer(r, i)?;
            forward_layer(r, i + 1)
        }
        Stage::DenseChain(i) => {
            let first = r.prog.len();
            dense::record_forward_chain(r, i)?;
            r.label(first, i);
            Ok(())
        }
    }
}

/// Records the backward passes of `stage` (the layers in reverse).
pub fn record_backward(r: &mut Recorder, stage: Stage) -> Result<()> {
    record_stage_backward(r, stage)?;
    for i in stage.layers() {
        let first = r.prog.len();
        merge::record_sum_gradients(r, i)?;
        label(&mut r.prog, first, "gradient sum");
    }
    Ok(())
}

fn record_stage_backward(r: &mut Recorder, stage: Stage) -> Result<()> {
    match stage {
        Stage::Single(i) => backward_layer(r, i),
        Stage::ConvPool { conv, .. } => {
            let first = r.prog.len();
            conv2d::record_backward(r, conv, true)?;
            r.label(first, conv);
            Ok(())
        }
        Stage::DenseChain(i) => {
            backward_layer(r, i + 1)?;
            backward_layer(r, i)
        }
    }
}

fn forward_layer(r: &mut Recorder, i: usize) -> Result<()> {
    let first = r.prog.len();
    match r.model.layers[i].layer {
        Layer::Conv2d { .. } => conv2d::record_forward(r, i)?,
        Layer::MaxPool2d { .. } => pool::record_maxpool2d_forward(r, i)?,
        Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => pool::record_avgpool2d_forward(r, i)?,
        Layer::Dense { .. } => dense::record_forward(r, i)?,
        Layer::Dropout { .. } => elementwise::record_dropout_forward(r, i)?,
        Layer::Relu => elementwise::record_relu_forward(r, i)?,
        Layer::BatchNorm { .. } => batchnorm::record_forward(r, i)?,
        Layer::Augment(_) => augment::record_forward(r, i)?,
        Layer::Add => merge::record_add_forward(r, i)?,
        Layer::Concatenate => merge::record_concatenate_forward(r, i)?,
    }
    r.label(first, i);
    Ok(())
}

fn backward_layer(r: &mut Recorder, i: usize) -> Result<()> {
    let first = r.prog.len();
    match r.model.layers[i].layer {
        Layer::Conv2d { .. } => conv2d::record_backward(r, i, false)?,
        Layer::MaxPool2d { .. } => pool::record_maxpool2d_backward(r, i)?,
        Layer::AvgPool2d { .. } | Layer::GlobalAvgPool2d => pool::record_avgpool2d_backward(r, i)?,
        Layer::Dense { .. } => dense::record_backward(r, i)?,
        Layer::Dropout { .. } => elementwise::record_dropout_backward(r, i)?,
        Layer::Relu => elementwise::record_relu_backward(r, i)?,
        Layer::BatchNorm { .. } => batchnorm::record_backward(r, i)?,
        // First in a model: no gradient to pass on.
        Layer::Augment(_) => {}
        Layer::Add => merge::record_add_backward(r, i)?,
        Layer::Concatenate => merge::record_concatenate_backward(r, i)?,
    }
    r.label(first, i);
    Ok(())
}

/// Names the dispatches `prog[first..]` of one layer for the profiler: `conv2 fwd`,
/// `conv2 bwd weight`, `conv2 bwd weight+input`, `pool1 bwd`, `adam adam_update`, whichever shader variant ran.
pub fn label(prog: &mut [Dispatch], first: usize, layer: &str) {
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
            (d, "main" | "main_channel_last" | "main_blocks" | "main_2x2" | "disjoint") => {
                d.to_string()
            }
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
