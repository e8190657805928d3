//! `gpu-cnn bench`: training throughput of the seed CNN (or `--model`) on the GPU, end to end (gather, forward,
//! backward, Adam, recorded and submitted as in `train`), plus each pass timed in isolation.

use std::time::Instant;

use serde::Serialize;

use crate::data::{self, Dataset};
use crate::error::{Error, Result};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::{AdapterOptions, Gpu};
use crate::layers::Optimizer;
use crate::model::{Layer, Model};
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub batch: usize,
    pub steps: usize,
    pub warmup: usize,
    pub data: BenchData,
    pub data_dir: Option<std::path::PathBuf>,
    /// Repetitions per pass in the per-pass table (0: skip the table).
    pub pass_reps: usize,
    /// `--model`: the seed CNN when `None`.
    pub model: Option<String>,
    /// `--input HxWxC` of the synthetic data: MNIST's 28x28x1 when `None`.
    pub input: Option<String>,
    /// `--unfused`: record the unfused passes (`Gpu::fuse` off), to compare.
    pub unfused: bool,
    pub adapter: AdapterOptions,
}

/// What bench trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchData {
    /// Seeded random pixels and labels
    Synthetic,
    /// The first images of MNIST
    Mnist,
}

/// Most images one bench run may hold (`--steps` x `--batch`, warm-up included).
pub const MAX_BENCH_IMAGES: usize = 1_000_000;

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    /// The conv passes ran their subgroup variants (`Gpu::subgroups`), not the portable kernels.
    pub subgroups: bool,
    pub batch: usize,
    pub steps: usize,
    pub images_per_s: f64,
    pub ms_per_step: f64,
    /// Projected time of one 60,000-image epoch.
    pub epoch_s: f64,
    pub gflops: f64,
    /// FLOPs counted per image for one training step (2 per multiply-add, backward = 2x forward).
    pub flop_per_image: f64,
    pub dispatches_per_step: usize,
    /// Bytes the step's dispatches bind (an upper bound of what they read and write).
    pub bytes_per_step: u64,
    /// The fused passes were in use (no `--unfused`).
    pub fused: bool,
    pub submits_per_epoch: usize,
    /// Each dispatch of a training step, in order, with the workgroups it launches (a GPU needs
    /// hundreds per dispatch to fill its multiprocessors).
    pub workgroups: Vec<(String, u64)>,
    /// Milliseconds per pass, each timed alone (median-free best of 2, `pass_reps` copies per submit).
    pub passes: Vec<(String, f64)>,
    /// GFLOP/s of the passes that compute multiply-adds (conv and dense), from the same timings.
    pub pass_gflops: Vec<(String, f64)>,
    /// The adapter's multiply-add throughput (`Gpu::probe_fma_gflops`), measured with the
    /// per-pass table: what the passes' GFLOP/s are a fraction of.
    pub peak_gflops: Option<f64>,
    /// The tiling each tunable pass ran: (shape, tiling, "tuned" or "default").
    pub tilings: Vec<(String, String, String)>,
}

/// Multiply-adds of one image's forward pass: conv and dense layers.
pub fn forward_macs(model: &Model) -> f64 {
    model
        .layers
        .iter()
        .map(|l| match l.layer {
            Layer::Conv2d { kernel, .. } => (l.output.len() * l.input.c * kernel * kernel) as f64,
            Layer::Dense { .. } => (l.output.len() * l.input.len()) as f64,
            _ => 0.0,
        })
        .sum()
}

pub fn synthetic(n: usize, rows: usize, cols: usize, classes: usize, seed: u64) -> Dataset {
    synthetic_of(n, crate::model::Shape::new(1, rows, cols), classes, seed)
}

/// `n` seeded random images of `shape` with labels below `classes`.
pub fn synthetic_of(n: usize, shape: crate::model::Shape, classes: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    Dataset {
        images: (0..n * shape.len()).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(classes) as u8).collect(),
        channels: shape.c,
        rows: shape.h,
        cols: shape.w,
    }
}

pub fn run(cfg: &BenchConfig) -> Result<BenchReport> {
    if cfg.batch == 0 || cfg.steps == 0 {
        return Err(Error::Usage(
            "--batch and --steps must be at least 1".into(),
        ));
    }
    if cfg.input.is_some() && cfg.data == BenchData::Mnist {
        return Err(Error::Usage(
            "--input shapes the synthetic data; MNIST is 28x28x1 (drop --input or --data mnist)"
                .into(),
        ));
    }
    let input = cfg.input.as_deref().or(Some("28x28x1"));
    let model = crate::summary::build(cfg.model.as_deref(), None, input, Some(10))?;
    let need = cfg
        .steps
        .max(cfg.warmup)
        .checked_mul(cfg.batch)
        .filter(|&n| n <= MAX_BENCH_IMAGES)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--steps {} (or --warmup {}) x --batch {} is more than the {MAX_BENCH_IMAGES} images bench holds; lower --steps or --batch",
                cfg.steps, cfg.warmup, cfg.batch
            ))
        })?;
    let train = match cfg.data {
        BenchData::Synthetic => synthetic_of(need, model.input, model.classes, 7),
        BenchData::Mnist => {
            let opts = data::DataOptions {
                data_dir: cfg.data_dir.clone(),
                ..Default::default()
            };
            let mut t = data::load(&opts)?.train;
            if t.len() < need {
                return Err(Error::Usage(format!(
                    "--steps {} x --batch {} needs {need} images, MNIST has {}",
                    cfg.steps.max(cfg.warmup),
                    cfg.batch,
                    t.len()
                )));
            }
            t.truncate(need);
            t
        }
    };
    let mut gpu = Gpu::new(&cfg.adapter)?;
    gpu.fuse = !cfg.unfused;
    let (adapter, backend, device_type, subgroups) = (
        gpu.info.name.clone(),
        gpu.backend_name(),
        gpu.device_type_name(),
        gpu.subgroups,
    );
    let weights = model.init_glorot(1);
    let mut t = GpuTrainer::new(
        gpu,
        &model,
        &weights,
        &train,
        None,
        cfg.batch,
        Optimizer::default(),
    )?;
    let order: Vec<u32> = (0..train.len() as u32).collect();
    if cfg.warmup > 0 {
        t.submit_train(&order, cfg.warmup)?;
        t.wait()?;
    }
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let start = Instant::now();
        t.submit_train(&order, cfg.steps)?;
        t.wait()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    let images_per_s = (cfg.steps * cfg.batch) as f64 / best;
    let flop_per_image = 6.0 * forward_macs(&model);
    let epoch_steps = 60_000usize.div_ceil(cfg.batch);
    let tilings = t
        .gpu
        .chosen_tilings()
        .into_iter()
        .map(|(key, tiling, source)| (key, tiling.to_string(), source.name().to_string()))
        .collect();
    let (timed, peak_gflops) = if cfg.pass_reps > 0 {
        (
            t.profile_step(cfg.pass_reps)?,
            Some(t.gpu.probe_fma_gflops()?),
        )
    } else {
        (Vec::new(), None)
    };
    let passes = timed.iter().map(|(n, ms, _)| (n.clone(), *ms)).collect();
    let pass_gflops = timed
        .iter()
        .filter(|(_, ms, flops)| *flops > 0.0 && *ms > 0.0)
        .map(|(n, ms, flops)| (n.clone(), flops / (ms * 1e6)))
        .collect();
    Ok(BenchReport {
        adapter,
        backend,
        device_type,
        subgroups,
        batch: cfg.batch,
        steps: cfg.steps,
        images_per_s,
        ms_per_step: best * 1e3 / cfg.steps as f64,
        epoch_s: 60_000.0 / images_per_s,
        gflops: images_per_s * flop_per_image / 1e9,
        flop_per_image,
        dispatches_per_step: t.dispatches_per_step(),
        bytes_per_step: t.bytes_per_step(),
        fused: !cfg.unfused,
        // Training chunks plus the one readback of the epoch's metrics.
        submits_per_epoch: epoch_steps.div_ceil(t.steps_per_submit(true)) + 1,
        workgroups: t.step_workgroups(),
        passes,
        pass_gflops,
        peak_gflops,
        tilings,
    })
}

impl BenchReport {
    /// The report as one JSON object, passes as {name: ms}, workgroups as [[name, count], ...].
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        let passes: serde_json::Map<String, serde_json::Value> = self
            .passes
            .iter()
            .map(|(k, ms)| (k.clone(), serde_json::json!(ms)))
            .collect();
        v["passes"] = serde_json::Value::Object(passes);
        let gflops: serde_json::Map<String, serde_json::Value> = self
            .pass_gflops
            .iter()
            .map(|(k, g)| (k.clone(), serde_json::json!(g)))
            .collect();
        v["pass_gflops"] = serde_json::Value::Object(gflops);
        v
    }

    pub fn print(&self) {
        println!(
            "adapter: {} ({}, {}), {} kernels",
            self.adapter,
            self.backend,
            self.device_type,
            if self.subgroups {
                "subgroup"
            } else {
                "portable"
            }
        );
        println!(
            "batch {}: {:.0} images/s, {:.3} ms/step, {:.2} s per 60,000-image epoch, {:.2} GFLOP/s ({:.2} MFLOP/image)",
            self.batch,
            self.images_per_s,
            self.ms_per_step,
            self.epoch_s,
            self.gflops,
            self.flop_per_image / 1e6
        );
        println!(
            "{} dispatches per step ({}), {:.1} MB bound per step, {} submits per epoch",
            self.dispatches_per_step,
            if self.fused { "fused" } else { "unfused" },
            self.bytes_per_step as f64 / 1e6,
            self.submits_per_epoch
        );
        if let Some((name, fewest)) = self.workgroups.iter().min_by_key(|w| w.1) {
            let mut counts: Vec<u64> = self.workgroups.iter().map(|w| w.1).collect();
            counts.sort_unstable();
            println!(
                "workgroups per dispatch: fewest {fewest} ({name}), median {}, most {}",
                counts[counts.len() / 2],
                counts[counts.len() - 1]
            );
        }
        for (key, tiling, how) in &self.tilings {
            println!("tiling: {key}: {tiling} ({how})");
        }
        if !self.passes.is_empty() {
            let total: f64 = self.passes.iter().map(|p| p.1).sum();
            let peak = self.peak_gflops.unwrap_or(0.0);
            println!(
                "{:<24} {:>10} {:>6} {:>9} {:>7}",
                "pass (timed alone)", "ms", "%", "GFLOP/s", "of peak"
            );
            for (name, ms) in &self.passes {
                let rate = match self.pass_gflops.iter().find(|g| &g.0 == name) {
                    Some((_, g)) if peak > 0.0 => {
                        format!("{g:>9.1} {:>6.1}%", 100.0 * g / peak)
                    }
                    Some((_, g)) => format!("{g:>9.1}"),
                    None => String::new(),
                };
                println!(
                    "{name:<24} {ms:>10.4} {:>5.1}% {rate}",
                    100.0 * ms / total.max(1e-12)
                );
            }
            println!("{:<24} {total:>10.4}", "sum");
            if peak > 0.0 {
                println!(
                    "peak: {peak:.1} GFLOP/s, multiply-adds in registers on this adapter (probe_fma)"
                );
            }
        }
    }
}
