//! `gpu-cnn tune`: times the candidate tilings of the tunable passes of a model's training
//! step on this adapter, caches the fastest (`gpu::tuning`) and prints what each shape runs.

use crate::error::{Error, Result};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::tuning::TuningCache;
use crate::gpu::{AdapterOptions, Gpu};
use crate::layers::Optimizer;

#[derive(Clone, Debug)]
pub struct TuneConfig {
    pub batch: usize,
    /// `--model`: the seed CNN when `None`.
    pub model: Option<String>,
    /// `--input HxWxC`: MNIST's 28x28x1 when `None`.
    pub input: Option<String>,
    /// Time again the shapes the cache already has.
    pub again: bool,
    pub adapter: AdapterOptions,
}

pub fn run(cfg: &TuneConfig) -> Result<()> {
    if cfg.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    let input = cfg.input.as_deref().or(Some("28x28x1"));
    let model = crate::summary::build(cfg.model.as_deref(), None, input, Some(10))?;
    let mut gpu = Gpu::new(&cfg.adapter)?;
    gpu.tune = true;
    gpu.retune = cfg.again;
    println!("adapter: {}", gpu.adapter_key());
    let train = crate::bench::synthetic_of(cfg.batch, model.input, model.classes, 7);
    let weights = model.init_glorot(1);
    // Recording the training step tunes each tunable pass on its first use.
    let t = GpuTrainer::new(
        gpu,
        &model,
        &weights,
        &train,
        None,
        cfg.batch,
        Optimizer::default(),
    )?;
    let chosen = t.gpu.chosen_tilings();
    if chosen.is_empty() {
        println!("nothing to tune: the model has no conv layer");
    }
    let cache = TuningCache::path()
        .map(|p| TuningCache::load(&p).map(|c| (p, c)))
        .transpose()?;
    for (key, tiling, source) in chosen {
        let timing = cache
            .as_ref()
            .and_then(|(_, c)| c.get(&t.gpu.adapter_key(), &key))
            .map(|c| format!(": {:.3} ms, default {:.3} ms", c.ms, c.default_ms))
            .unwrap_or_default();
        println!("{key}: {tiling} ({}{timing})", source.name());
    }
    match cache {
        Some((p, _)) => println!("cache: {}", p.display()),
        None => println!("cache: none (no HOME or XDG_CACHE_HOME): the choices last this run only"),
    }
    Ok(())
}
