//! The `train` workflow shared by the GPU and `--cpu` paths: load data, init or load weights,
//! run epochs (shuffled per epoch from the seed), print Keras-style lines, save the checkpoint and
//! history after every epoch.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::data::{self, Dataset};
use crate::error::{Error, Result};
use crate::gpu::trainer::{GpuTrainer, Metrics};
use crate::gpu::{AdapterOptions, Gpu};
use crate::layers::{Adam, GatherParams};
use crate::model::{write_atomic, Model};
use crate::reference::{self, CpuNet};
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub limit: Option<usize>,
    pub shuffle: bool,
    pub init: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub cpu: bool,
    pub adapter: AdapterOptions,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            dataset: "mnist".into(),
            data_dir: None,
            epochs: 10,
            batch: 32,
            lr: 1e-3,
            seed: 42,
            limit: None,
            shuffle: true,
            init: None,
            out: None,
            cpu: false,
            adapter: AdapterOptions::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
}

/// What trains: the GPU trainer or the CPU reference.
pub trait Backend {
    /// One epoch over the training rows in `order`, then the evaluation set; `progress(done, total)`
    /// reports finished training steps now and then.
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Metrics, Metrics)>;
    fn evaluate(&mut self) -> Result<Metrics>;
    fn weights(&self) -> Result<Vec<f32>>;
}

impl Backend for GpuTrainer {
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Metrics, Metrics)> {
        let (t, e) = GpuTrainer::epoch(self, order, progress)?;
        Ok((
            t,
            e.ok_or_else(|| Error::Usage("no evaluation set".into()))?,
        ))
    }
    fn evaluate(&mut self) -> Result<Metrics> {
        GpuTrainer::evaluate(self)
    }
    fn weights(&self) -> Result<Vec<f32>> {
        self.read_weights()
    }
}

/// The CPU reference as a backend (plain loops, f32).
pub struct CpuTrainer {
    pub net: CpuNet<f32>,
    pub adam: Adam,
    pub batch: usize,
    pub t: u64,
    pub train: Dataset,
    pub eval: Dataset,
}

impl CpuTrainer {
    fn run(
        &mut self,
        training: bool,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Metrics {
        let d = if training { &self.train } else { &self.eval };
        let batch = if training {
            self.batch
        } else {
            self.net.max_batch
        };
        let mut m = Metrics {
            n: d.len(),
            ..Default::default()
        };
        let mut y = vec![0u32; batch];
        let total = d.len().div_ceil(batch);
        for (step, start) in (0..d.len()).step_by(batch).enumerate() {
            progress(step, total);
            let b = batch.min(d.len() - start);
            let gp = GatherParams {
                batch: b as u32,
                pixels: d.pixels() as u32,
                ..Default::default()
            };
            reference::gather_batch(
                &mut self.net.acts[0],
                &mut y,
                &d.images,
                &d.labels,
                order,
                start,
                &gp,
            );
            let r = if training {
                self.t += 1;
                let alpha = self.adam.alpha(self.t);
                self.net.train_step(&y, b, alpha, &self.adam)
            } else {
                self.net.evaluate(&y, b)
            };
            m.loss_sum += r[0] as f64;
            m.correct += r[1] as f64;
        }
        m
    }
}

impl Backend for CpuTrainer {
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Metrics, Metrics)> {
        let t = self.run(true, order, progress);
        Ok((t, self.evaluate()?))
    }
    fn evaluate(&mut self) -> Result<Metrics> {
        let ident: Vec<u32> = (0..self.eval.len() as u32).collect();
        Ok(self.run(false, &ident, &mut |_, _| {}))
    }
    fn weights(&self) -> Result<Vec<f32>> {
        Ok(self.net.weights_f32())
    }
}

/// Trains as configured; prints progress to stdout; returns the history.
pub fn run(cfg: &TrainConfig) -> Result<History> {
    if cfg.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(Error::Usage(format!(
            "--lr must be a positive number, got {}",
            cfg.lr
        )));
    }
    if cfg.limit == Some(0) {
        return Err(Error::Usage("--limit must be at least 1".into()));
    }
    if !matches!(cfg.dataset.as_str(), "mnist" | "fashion-mnist") {
        return Err(Error::Usage(format!(
            "unknown dataset `{}` (expected mnist or fashion-mnist)",
            cfg.dataset
        )));
    }
    if let Some(b) = &cfg.adapter.backend {
        crate::gpu::parse_backend(b)?;
    }
    let model = Model::keras_mnist();
    let dir = data::resolve_dir(&cfg.dataset, cfg.data_dir.as_deref());
    let (mut train, test) = data::load(&dir, model.classes)?;
    if let Some(n) = cfg.limit {
        train.truncate(n);
    }
    let weights = match &cfg.init {
        Some(path) => model.load_safetensors(path)?,
        None => model.init_glorot(cfg.seed),
    };
    if let Some(out) = &cfg.out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let adam = Adam {
        lr: cfg.lr,
        ..Adam::default()
    };

    let (mut backend, adapter, backend_name, device_type): (
        Box<dyn Backend>,
        String,
        String,
        String,
    ) = if cfg.cpu {
        let eval_batch = cfg.batch.max(256).min(test.len());
        let net = CpuNet::new(&model, &weights, cfg.batch.max(eval_batch));
        let cpu = CpuTrainer {
            net,
            adam,
            batch: cfg.batch,
            t: 0,
            train: train.clone(),
            eval: test.clone(),
        };
        (
            Box::new(cpu),
            "CPU reference".into(),
            "cpu".into(),
            "Cpu".into(),
        )
    } else {
        let gpu = Gpu::new(&cfg.adapter)?;
        let (name, be, ty) = (
            gpu.info.name.clone(),
            gpu.backend_name(),
            gpu.device_type_name(),
        );
        let t = GpuTrainer::new(gpu, &model, &weights, &train, Some(&test), cfg.batch, adam)?;
        (Box::new(t), name, be, ty)
    };
    println!(
        "Training {} parameters on {adapter} ({backend_name}, {device_type}): {} train / {} test images of {}, batch {}, {} steps per epoch",
        model.param_count(),
        train.len(),
        test.len(),
        dir.display(),
        cfg.batch,
        train.len().div_ceil(cfg.batch)
    );

    let mut history = History {
        epochs: Vec::new(),
        test_loss: f64::NAN,
        test_accuracy: f64::NAN,
        adapter,
        backend: backend_name,
        device_type,
    };
    let mut rng = Rng::new(cfg.seed ^ 0x5eed_5eed);
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let mut last_val = None;
    for epoch in 1..=cfg.epochs {
        if cfg.shuffle {
            order.sort_unstable();
            rng.shuffle(&mut order);
        }
        let start = Instant::now();
        // A live step counter on stderr when it is a terminal (stdout stays one line per epoch).
        let live = std::io::stderr().is_terminal();
        let mut progress = |done: usize, total: usize| {
            if live {
                let then = if done == total { ", validating" } else { "" };
                eprint!("\rEpoch {epoch}/{}: step {done}/{total}{then} ", cfg.epochs);
            }
        };
        let (tm, vm) = backend.epoch(&order, &mut progress)?;
        if live {
            eprint!("\r\x1b[K");
        }
        let seconds = start.elapsed().as_secs_f64();
        if !tm.loss().is_finite() {
            return Err(Error::Usage(format!(
                "training diverged at epoch {epoch} (loss {}); try a smaller --lr",
                tm.loss()
            )));
        }
        println!(
            "Epoch {epoch}/{} - {seconds:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4}",
            cfg.epochs,
            tm.loss(),
            tm.accuracy(),
            vm.loss(),
            vm.accuracy()
        );
        history.epochs.push(EpochRecord {
            epoch,
            loss: tm.loss(),
            accuracy: tm.accuracy(),
            val_loss: vm.loss(),
            val_accuracy: vm.accuracy(),
            seconds,
        });
        last_val = Some(vm);
        if let Some(out) = &cfg.out {
            save(&model, &*backend, &history, out)?;
        }
    }
    // The validation set is the test set, so the last epoch's validation pass is the test result.
    let test_m = match last_val {
        Some(m) => m,
        None => backend.evaluate()?,
    };
    history.test_loss = test_m.loss();
    history.test_accuracy = test_m.accuracy();
    println!(
        "Test loss: {:.4} - test accuracy: {:.4}",
        history.test_loss, history.test_accuracy
    );
    if let Some(out) = &cfg.out {
        save(&model, &*backend, &history, out)?;
        println!(
            "Wrote {} and {}",
            out.join("model.safetensors").display(),
            out.join("history.json").display()
        );
    }
    Ok(history)
}

fn save(
    model: &Model,
    backend: &dyn Backend,
    history: &History,
    out: &std::path::Path,
) -> Result<()> {
    model.save_safetensors(&backend.weights()?, &out.join("model.safetensors"))?;
    let json =
        serde_json::to_vec_pretty(history).map_err(|e| Error::Usage(format!("history: {e}")))?;
    write_atomic(&out.join("history.json"), &json)
}
