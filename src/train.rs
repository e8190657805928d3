//! The `train` workflow shared by the GPU and `--cpu` paths: load data, init or load weights,
//! run epochs (shuffled per epoch from the seed), print Keras-style lines, save the checkpoint and
//! history after every epoch.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::data::{self, DataOptions, Dataset};
use crate::error::{Error, Result};
use crate::files::{ensure_writable_dir, write_atomic};
use crate::gpu::trainer::{self, GpuTrainer, Metrics};
use crate::gpu::{AdapterOptions, Gpu};
use crate::layers::{Adam, GatherParams};
use crate::model::{Model, Shape};
use crate::reference::{self, CpuNet};
use crate::rng::Rng;

/// Most epochs one run may ask for.
pub const MAX_EPOCHS: usize = 100_000;
/// The CPU reference's stand-in for a GPU's storage binding limit: no activation buffer over
/// 1 GiB, so a huge `--batch` with `--cpu` is an error, not an allocation failure.
pub const CPU_BUFFER_LIMIT: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub data: DataOptions,
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
            data: DataOptions::default(),
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
    pub dataset: String,
    /// The folder the data was read from.
    pub data_dir: PathBuf,
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
    /// (adapter name, backend, device type) for the output.
    fn describe(&self) -> (String, String, String);
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
            e.ok_or_else(|| Error::Dataset("no evaluation set".into()))?,
        ))
    }
    fn evaluate(&mut self) -> Result<Metrics> {
        GpuTrainer::evaluate(self)
    }
    fn weights(&self) -> Result<Vec<f32>> {
        self.read_weights()
    }
    fn describe(&self) -> (String, String, String) {
        (
            self.gpu.info.name.clone(),
            self.gpu.backend_name(),
            self.gpu.device_type_name(),
        )
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
            trainer::eval_batch(self.batch, d.len(), self.net.max_batch)
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
    fn describe(&self) -> (String, String, String) {
        ("CPU reference".into(), "cpu".into(), "Cpu".into())
    }
}

/// Checks the options that need no data: each error names the option.
pub fn validate(cfg: &TrainConfig) -> Result<()> {
    if cfg.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    if cfg.epochs > MAX_EPOCHS {
        return Err(Error::Usage(format!(
            "--epochs {} is more than {MAX_EPOCHS}",
            cfg.epochs
        )));
    }
    // The GPU and the CPU reference compute in f32: validate the value they will use.
    let lr = cfg.lr as f32;
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::Usage(format!(
            "--lr must be a positive number that fits in 32-bit floating point, got {}",
            cfg.lr
        )));
    }
    if cfg.limit == Some(0) {
        return Err(Error::Usage("--limit must be at least 1".into()));
    }
    if cfg.cpu && (cfg.adapter.backend.is_some() || cfg.adapter.adapter.is_some()) {
        return Err(Error::Usage(
            "--cpu trains on the CPU reference; --backend and --adapter choose a GPU: pass one or the other".into(),
        ));
    }
    Ok(())
}

/// Trains as configured; prints the Keras-style lines to stdout; returns the history.
pub fn run(cfg: &TrainConfig) -> Result<History> {
    validate(cfg)?;
    if let Some(out) = &cfg.out {
        ensure_writable_dir(out)?;
    }
    let data = data::load(&cfg.data)?;
    println!("{}", data.describe());
    let mut train = data.train;
    if let Some(n) = cfg.limit {
        if n > train.len() {
            return Err(Error::Usage(format!(
                "--limit {n} is more than the {} training images of {}",
                train.len(),
                data.name
            )));
        }
        train.truncate(n);
    }
    let test = data.test;
    let model = Model::seed(
        Shape::new(train.channels, train.rows, train.cols),
        data.classes.len(),
    )?;
    let weights = match &cfg.init {
        Some(path) => model.load_safetensors(path)?,
        None => model.init_glorot(cfg.seed),
    };
    // As Keras does, a batch larger than the training set trains the whole set in one step.
    let batch = cfg.batch.min(train.len());
    if batch < cfg.batch {
        eprintln!(
            "note: --batch {} is more than the {} training images; training in batches of {batch}",
            cfg.batch,
            train.len()
        );
    }
    let adam = Adam {
        lr: cfg.lr,
        ..Adam::default()
    };
    let (n_train, n_test) = (train.len(), test.len());
    let mut backend = make_backend(cfg, &model, &weights, train, test, batch, adam)?;
    let (adapter, backend_name, device_type) = backend.describe();
    println!(
        "Training {} parameters on {adapter} ({backend_name}, {device_type}): {n_train} train / {n_test} test images, batch {batch}, {} steps per epoch",
        model.param_count(),
        n_train.div_ceil(batch)
    );
    let mut history = History {
        dataset: data.name.clone(),
        data_dir: data.dir.clone(),
        epochs: Vec::new(),
        test_loss: f64::NAN,
        test_accuracy: f64::NAN,
        adapter,
        backend: backend_name,
        device_type,
    };
    let saver = cfg.out.as_deref().map(|dir| Saver {
        dir,
        model: &model,
        meta: vec![
            ("dataset", data.name.clone()),
            (
                "classes",
                serde_json::to_string(&data.classes).unwrap_or_default(),
            ),
        ],
    });
    let test_m = train_epochs(cfg, &mut *backend, n_train, &mut history, saver.as_ref())?;
    history.test_loss = test_m.loss();
    history.test_accuracy = test_m.accuracy();
    println!(
        "Test loss: {:.4} - test accuracy: {:.4}",
        history.test_loss, history.test_accuracy
    );
    if let Some(s) = &saver {
        s.save(&*backend, &history)?;
        println!(
            "Wrote {} and {}",
            s.dir.join("model.safetensors").display(),
            s.dir.join("history.json").display()
        );
    }
    Ok(history)
}

/// The GPU trainer, or the CPU reference with `--cpu`.
fn make_backend(
    cfg: &TrainConfig,
    model: &Model,
    weights: &[f32],
    train: Dataset,
    test: Dataset,
    batch: usize,
    adam: Adam,
) -> Result<Box<dyn Backend>> {
    if !cfg.cpu {
        let gpu = Gpu::new(&cfg.adapter)?;
        let t = GpuTrainer::new(gpu, model, weights, &train, Some(&test), batch, adam)?;
        return Ok(Box::new(t));
    }
    model.check_data("training", &train)?;
    model.check_data("test", &test)?;
    let fits = trainer::max_batch(model, CPU_BUFFER_LIMIT);
    if batch > fits {
        return Err(Error::Usage(format!(
            "--batch {batch} with --cpu needs more than {CPU_BUFFER_LIMIT} bytes per activation buffer; the largest batch for this model is {fits}"
        )));
    }
    let net = CpuNet::new(
        model,
        weights,
        batch.max(trainer::eval_batch(batch, test.len(), fits)),
    );
    Ok(Box::new(CpuTrainer {
        net,
        adam,
        batch,
        t: 0,
        train,
        eval: test,
    }))
}

/// Runs the epochs, printing a line and saving after each; returns the test metrics (the last
/// epoch's validation pass: as in the tutorial, the validation set is the test set).
fn train_epochs(
    cfg: &TrainConfig,
    backend: &mut dyn Backend,
    n_train: usize,
    history: &mut History,
    saver: Option<&Saver>,
) -> Result<Metrics> {
    let mut rng = Rng::new(cfg.seed ^ 0x5eed_5eed);
    let mut order: Vec<u32> = (0..n_train as u32).collect();
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
        check_finite(epoch, &tm, &vm, saver)?;
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
        if let Some(s) = saver {
            s.save(backend, history).map_err(|e| match e {
                Error::Diverged(m) => Error::Diverged(format!("at epoch {epoch}: {m}")),
                e => e,
            })?;
        }
    }
    match last_val {
        Some(m) => Ok(m),
        None => {
            let m = backend.evaluate()?;
            if !m.loss().is_finite() {
                return Err(Error::Diverged(format!(
                    "the test loss of the initial weights is {}",
                    m.loss()
                )));
            }
            Ok(m)
        }
    }
}

/// A non-finite training or validation metric stops the run, keeping the last good checkpoint.
fn check_finite(epoch: usize, tm: &Metrics, vm: &Metrics, saver: Option<&Saver>) -> Result<()> {
    let values = [
        ("loss", tm.loss()),
        ("accuracy", tm.accuracy()),
        ("val_loss", vm.loss()),
        ("val_accuracy", vm.accuracy()),
    ];
    let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let kept = match saver {
        Some(s) if epoch > 1 => format!(
            "; {} holds the weights of epoch {}",
            s.dir.join("model.safetensors").display(),
            epoch - 1
        ),
        Some(s) if s.dir.join("model.safetensors").exists() => format!(
            "; {} was left as it was",
            s.dir.join("model.safetensors").display()
        ),
        Some(_) => "; nothing was saved (it happened in the first epoch)".into(),
        None => String::new(),
    };
    Err(Error::Diverged(format!(
        "at epoch {epoch} ({name} is {v}){kept}; try a smaller --lr"
    )))
}

/// Writes the run's files into `dir`, each atomically.
struct Saver<'a> {
    dir: &'a Path,
    model: &'a Model,
    meta: Vec<(&'static str, String)>,
}

impl Saver<'_> {
    /// The checkpoint and history; refuses (`Error::Diverged`) weights that are not finite, so
    /// the last good checkpoint stays.
    fn save(&self, backend: &dyn Backend, history: &History) -> Result<()> {
        let weights = backend.weights()?;
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            let name = self
                .model
                .params
                .iter()
                .find(|p| (p.offset..p.offset + p.len).contains(&i))
                .map_or("padding", |p| p.name.as_str());
            return Err(Error::Diverged(format!(
                "weight {i} ({name}) is {}; the last good checkpoint was kept; try a smaller --lr",
                weights[i]
            )));
        }
        self.model
            .save_safetensors(&weights, &self.dir.join("model.safetensors"), &self.meta)?;
        let json = serde_json::to_vec_pretty(history)
            .map_err(|e| Error::Usage(format!("history: {e}")))?;
        write_atomic(&self.dir.join("history.json"), &json)
    }
}
