//! Forward passes over a whole set with a saved model, on the GPU (batched, one readback per
//! batch) or the CPU reference: the logits that `evaluate` and `predict` turn into answers.

use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::{AdapterOptions, Gpu};
use crate::model::Model;
use crate::reference::CpuNet;

/// The logits of every image of `d` (n x classes, row-major) and the name of what computed them.
pub fn logits(
    model: &Model,
    weights: &[f32],
    d: &Dataset,
    batch: usize,
    cpu: bool,
    adapter: &AdapterOptions,
) -> Result<(Vec<f32>, String)> {
    model.check_data("input", d)?;
    let batch = batch.clamp(1, d.len());
    if cpu {
        return Ok((logits_cpu(model, weights, d, batch), "CPU reference".into()));
    }
    let gpu = Gpu::new(adapter)?;
    let name = gpu.info.name.clone();
    let mut t = GpuTrainer::inference(gpu, model, weights, d, batch)?;
    Ok((t.eval_logits()?, name))
}

fn logits_cpu(model: &Model, weights: &[f32], d: &Dataset, batch: usize) -> Vec<f32> {
    let mut net = CpuNet::<f32>::new(model, weights, batch);
    let order: Vec<u32> = (0..d.len() as u32).collect();
    let mut y = vec![0u32; batch];
    let mut out = Vec::with_capacity(d.len() * model.classes);
    for start in (0..d.len()).step_by(batch) {
        let b = batch.min(d.len() - start);
        net.load_batch(&mut y, d, &order, start, b);
        out.extend_from_slice(&net.forward(b)[..b * model.classes]);
    }
    out
}

/// Softmax of one row of logits (max subtracted), in f64.
pub fn softmax(row: &[f32]) -> Vec<f64> {
    let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - mx).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// The index of the largest logit (the first, on ties, as the loss pass counts it).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
