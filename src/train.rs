//! `gpu-cnn train`: find the data, build the model, train epoch by epoch (shuffled from the
//! seed), print a Keras-style line per epoch, and keep the run folder (`run_dir`) up to date
//! after every epoch, so that a run can be resumed, bit for bit, wherever it stopped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::{Backend, CpuTrainer};
use crate::callbacks::{Monitor, Plateau, PlateauWatch, Watch};
use crate::data::{self, DataOptions, Dataset};
use crate::error::{Error, Result};
use crate::files::ensure_writable_dir;
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::{AdapterOptions, Gpu};
use crate::history::{EpochRecord, History};
use crate::layers::{Optimizer, OptimizerKind};
use crate::metrics::{Metrics, Progress};
use crate::model::{Model, Shape};
use crate::output;
use crate::plan;
use crate::reference::CpuNet;
use crate::rng::Rng;
use crate::run_dir::{self, RunInfo, TrainState};
use crate::schedule::Schedule;
use crate::spec::ModelSpec;

/// Most epochs one run may ask for.
pub const MAX_EPOCHS: usize = 100_000;
/// The CPU reference's stand-in for a GPU's storage binding limit: no activation buffer over
/// 1 GiB, so a huge `--batch` with `--cpu` is an error, not an allocation failure.
pub const CPU_BUFFER_LIMIT: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub data: DataOptions,
    /// Epochs in all (a resumed run trains those still missing).
    pub epochs: usize,
    pub batch: usize,
    /// The update rule and its own hyper-parameters (`lr` and `lr_schedule` are set below:
    /// `optimizer.lr` and `optimizer.schedule` are not read).
    pub optimizer: Optimizer,
    pub lr: f64,
    /// `--lr-schedule`: from `lr`; a cosine without decay steps decays over the whole run.
    pub lr_schedule: Schedule,
    /// What `best.safetensors` and `early_stopping` watch.
    pub monitor: Monitor,
    /// Stop after this many epochs without a better `monitor` (Keras' EarlyStopping).
    pub early_stopping: Option<usize>,
    /// When stopping early, end with the best epoch's weights (Keras' restore_best_weights).
    pub restore_best_weights: bool,
    /// Lower the learning rate when `monitor` stalls (Keras' ReduceLROnPlateau).
    pub reduce_lr_on_plateau: Option<Plateau>,
    pub seed: u64,
    pub limit: Option<usize>,
    pub shuffle: bool,
    pub init: Option<PathBuf>,
    /// The model description (`spec`); the seed CNN on the data's shape when `None`.
    pub model: Option<String>,
    /// The run folder (`run_dir::default_dir` when `None`).
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its checkpoint.
    pub resume: Option<PathBuf>,
    pub cpu: bool,
    pub adapter: AdapterOptions,
    /// A progress bar on stderr (a terminal, neither `--json` nor `--quiet`).
    pub bar: bool,
    /// Nothing on stdout but what the caller prints (the JSON line).
    pub quiet: bool,
    /// The command line, recorded in `run.json`.
    pub command: Vec<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: DataOptions::default(),
            epochs: 10,
            batch: 32,
            optimizer: Optimizer::default(),
            lr: 1e-3,
            lr_schedule: Schedule::Constant,
            monitor: Monitor::ValLoss,
            early_stopping: None,
            restore_best_weights: false,
            reduce_lr_on_plateau: None,
            seed: 42,
            limit: None,
            shuffle: true,
            init: None,
            model: None,
            out: None,
            resume: None,
            cpu: false,
            adapter: AdapterOptions::default(),
            bar: false,
            quiet: false,
            command: Vec::new(),
        }
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
    if let Some(f) = cfg.data.folder.validation_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(Error::Usage(format!(
                "--validation-split must be between 0 and 1 (exclusive), got {f}"
            )));
        }
    }
    let o = &cfg.optimizer;
    if !(0.0..=1.0).contains(&o.momentum) {
        return Err(Error::Usage(format!(
            "--momentum must lie in [0, 1] (Keras' range), got {}",
            o.momentum
        )));
    }
    if o.momentum != 0.0 && !matches!(o.kind, OptimizerKind::Sgd | OptimizerKind::Rmsprop) {
        return Err(Error::Usage(format!(
            "--momentum is SGD's and RMSprop's; the optimizer is {} (give --optimizer sgd or rmsprop)",
            o.kind.name()
        )));
    }
    if !(0.0..1.0).contains(&o.rho) {
        return Err(Error::Usage(format!(
            "--rho must lie in [0, 1), got {}",
            o.rho
        )));
    }
    let rmsprop = o.kind == OptimizerKind::Rmsprop;
    if (o.centered || o.rho != 0.9) && !rmsprop {
        return Err(Error::Usage(format!(
            "--rho and --centered are RMSprop's; the optimizer is {} (give --optimizer rmsprop)",
            o.kind.name()
        )));
    }
    if o.amsgrad && !matches!(o.kind, OptimizerKind::Adam | OptimizerKind::AdamW) {
        return Err(Error::Usage(format!(
            "--amsgrad is Adam's and AdamW's; the optimizer is {} (give --optimizer adam or adamw)",
            o.kind.name()
        )));
    }
    if o.nesterov && !(o.kind == OptimizerKind::Sgd && o.momentum > 0.0) {
        return Err(Error::Usage(
            "--nesterov is SGD's form of momentum: give --optimizer sgd and --momentum above 0"
                .into(),
        ));
    }
    if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
        return Err(Error::Usage(format!(
            "--weight-decay must be a number of at least 0, got {}",
            o.weight_decay
        )));
    }
    if o.kind != OptimizerKind::AdamW && o.weight_decay != 0.0 {
        return Err(Error::Usage(format!(
            "--weight-decay is AdamW's; the optimizer is {} (give --optimizer adamw)",
            o.kind.name()
        )));
    }
    if cfg.cpu && (cfg.adapter.backend.is_some() || cfg.adapter.adapter.is_some()) {
        return Err(Error::Usage(
            "--cpu trains on the CPU reference; --backend and --adapter choose a GPU: pass one or the other".into(),
        ));
    }
    if cfg.early_stopping == Some(0) {
        return Err(Error::Usage(
            "--early-stopping PATIENCE must be at least 1 (epochs without improvement)".into(),
        ));
    }
    if cfg.restore_best_weights && cfg.early_stopping.is_none() {
        return Err(Error::Usage(
            "--restore-best-weights restores them when --early-stopping stops the run; give --early-stopping too (best.safetensors always holds the best epoch's model)".into(),
        ));
    }
    if cfg.reduce_lr_on_plateau.is_some() && cfg.lr_schedule != Schedule::Constant {
        return Err(Error::Usage(
            "--reduce-lr-on-plateau sets the learning rate, which --lr-schedule already sets: give one (Keras refuses the pair too)".into(),
        ));
    }
    if cfg.resume.is_some() && cfg.init.is_some() {
        return Err(Error::Usage(
            "--resume continues from the run's checkpoint; --init cannot be used with it".into(),
        ));
    }
    Ok(())
}

/// The settings of the run in `dir` with what the command line gave: `given` holds the options
/// given explicitly. Those that would change the run's meaning must equal the recorded ones;
/// `--data-dir`, `--adapter`, `--backend`, `--cpu`, `--epochs` and the output options may change.
pub fn resume_config(dir: &Path, given: &TrainConfig, explicit: &[&str]) -> Result<TrainConfig> {
    let info = run_dir::read_run_info(dir)?;
    let mut cfg = given.clone();
    let mut clash = Vec::new();
    let mut check = |name: &str, same: bool, recorded: String| {
        if explicit.contains(&name) && !same {
            clash.push(format!("{name} (the run has {recorded})"));
        }
    };
    check(
        "--dataset",
        given.data.dataset == info.dataset,
        info.dataset.as_str().into(),
    );
    check("--batch", given.batch == info.batch, info.batch.to_string());
    check("--lr", given.lr == info.lr, info.lr.to_string());
    let recorded_optimizer =
        OptimizerKind::parse(&info.optimizer).ok_or_else(|| Error::BadFile {
            path: dir.join(run_dir::RUN_JSON),
            msg: format!(
                "optimizer `{}` is none of {}",
                info.optimizer,
                OptimizerKind::NAMES
            ),
        })?;
    check(
        "--optimizer",
        given.optimizer.kind == recorded_optimizer,
        info.optimizer.clone(),
    );
    check(
        "--momentum",
        given.optimizer.momentum == info.momentum,
        info.momentum.to_string(),
    );
    check(
        "--nesterov",
        given.optimizer.nesterov == info.nesterov,
        info.nesterov.to_string(),
    );
    check(
        "--rho",
        given.optimizer.rho == info.rho,
        info.rho.to_string(),
    );
    check(
        "--centered",
        given.optimizer.centered == info.centered,
        info.centered.to_string(),
    );
    check(
        "--amsgrad",
        given.optimizer.amsgrad == info.amsgrad,
        info.amsgrad.to_string(),
    );
    check(
        "--weight-decay",
        given.optimizer.weight_decay == info.weight_decay,
        info.weight_decay.to_string(),
    );
    let recorded_schedule = Schedule::parse(&info.lr_schedule).map_err(|e| Error::BadFile {
        path: dir.join(run_dir::RUN_JSON),
        msg: format!("lr_schedule: {e}"),
    })?;
    check(
        "--monitor",
        given.monitor == info.monitor,
        info.monitor.name().into(),
    );
    check(
        "--early-stopping",
        given.early_stopping == info.early_stopping,
        format!("{:?}", info.early_stopping),
    );
    check(
        "--restore-best-weights",
        given.restore_best_weights == info.restore_best_weights,
        info.restore_best_weights.to_string(),
    );
    check(
        "--reduce-lr-on-plateau",
        given.reduce_lr_on_plateau.map(|p| p.to_string()) == info.reduce_lr_on_plateau,
        info.reduce_lr_on_plateau
            .clone()
            .unwrap_or_else(|| "none".into()),
    );
    check(
        "--lr-schedule",
        given.lr_schedule.same_as_recorded(&recorded_schedule),
        info.lr_schedule.clone(),
    );
    check("--seed", given.seed == info.seed, info.seed.to_string());
    check(
        "--limit",
        given.limit == info.limit,
        format!("{:?}", info.limit),
    );
    check(
        "--no-shuffle",
        given.shuffle == info.shuffle,
        format!("shuffle {}", info.shuffle),
    );
    let same_model = match (&given.model, crate::spec::parse(&info.model)) {
        (Some(g), Ok(recorded)) => ModelSpec::parse(g).is_ok_and(|p| p.layers == recorded),
        _ => false,
    };
    check("--model", same_model, format!("`{}`", info.model));
    check(
        "--color",
        given.data.folder.color == info.color,
        format!("{:?}", info.color),
    );
    check(
        "--image-size",
        given.data.folder.size == info.image_size,
        format!("{}x{}", info.image_size.0, info.image_size.1),
    );
    check(
        "--validation-split",
        given.data.folder.validation_split == info.validation_split,
        format!("{:?}", info.validation_split),
    );
    if !clash.is_empty() {
        return Err(Error::Usage(format!(
            "--resume {} continues a run with its own settings; these differ: {}",
            dir.display(),
            clash.join(", ")
        )));
    }
    cfg.data.dataset = info.dataset;
    if !explicit.contains(&"--data-dir") {
        cfg.data.data_dir = info.data_dir.clone();
    }
    cfg.data.folder.color = info.color;
    cfg.data.folder.size = info.image_size;
    cfg.data.folder.validation_split = info.validation_split;
    cfg.data.folder.skip_bad_images = info.skip_bad_images;
    cfg.data.folder.seed = info.seed;
    cfg.batch = info.batch;
    cfg.lr = info.lr;
    cfg.optimizer = Optimizer {
        kind: recorded_optimizer,
        momentum: info.momentum,
        nesterov: info.nesterov,
        weight_decay: info.weight_decay,
        rho: info.rho,
        centered: info.centered,
        amsgrad: info.amsgrad,
        ..Optimizer::keras(recorded_optimizer)
    };
    cfg.lr_schedule = recorded_schedule;
    cfg.monitor = info.monitor;
    cfg.early_stopping = info.early_stopping;
    cfg.restore_best_weights = info.restore_best_weights;
    cfg.reduce_lr_on_plateau = info
        .reduce_lr_on_plateau
        .as_deref()
        .map(Plateau::parse)
        .transpose()
        .map_err(|e| Error::BadFile {
            path: dir.join(run_dir::RUN_JSON),
            msg: format!("reduce_lr_on_plateau: {e}"),
        })?;
    cfg.seed = info.seed;
    cfg.limit = info.limit;
    cfg.shuffle = info.shuffle;
    cfg.model = Some(info.model.clone());
    if !explicit.contains(&"--epochs") {
        cfg.epochs = info.epochs;
    }
    if !explicit.contains(&"--cpu") {
        cfg.cpu = info.cpu;
    }
    cfg.init = None;
    cfg.out = Some(dir.to_path_buf());
    cfg.resume = Some(dir.to_path_buf());
    Ok(cfg)
}

/// Trains as configured; prints the Keras-style lines to stdout; returns the history.
pub fn run(cfg: &TrainConfig) -> Result<History> {
    validate(cfg)?;
    // `--model`, read once for the whole run.
    let spec = cfg.model.as_deref().map(ModelSpec::parse).transpose()?;
    let say = |line: String| {
        if !cfg.quiet {
            println!("{line}");
        }
    };
    let out = cfg
        .out
        .clone()
        .unwrap_or_else(|| run_dir::default_dir(cfg.data.dataset.as_str()));
    let existed = out.exists();
    ensure_writable_dir(&out)?;
    crate::files::remove_stale_temps(&out);
    say(format!("Run folder: {}", out.display()));
    let result = run_in(cfg, spec.as_ref(), &out);
    // A run that failed before writing anything leaves no empty folder behind.
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir(&out);
    }
    result
}

fn run_in(cfg: &TrainConfig, spec: Option<&ModelSpec>, out: &Path) -> Result<History> {
    let say = |line: String| {
        if !cfg.quiet {
            println!("{line}");
        }
    };
    let mut data = data::load(&cfg.data)?;
    say(data.describe());
    if let Some(n) = cfg.limit {
        if n > data.train.len() {
            return Err(Error::Usage(format!(
                "--limit {n} is more than the {} training images of {}",
                data.train.len(),
                data.name
            )));
        }
        data.train.truncate(n);
    }
    // Keras' fit(validation_split=F): the last F of the training set (in file order, before
    // any shuffle) validates each epoch; the test set gives only the final Test line. (Image
    // folders without test/ hold out a seeded F of train/ as their test set instead.)
    let val = match cfg.data.folder.validation_split {
        Some(f) if data.name != "folder" => Some(hold_out_last(&mut data.train, f)?),
        _ => None,
    };
    let model = build_model(cfg, spec, &data)?;
    let resumed = match &cfg.resume {
        Some(dir) => Some(read_resume_state(dir, &model, cfg.epochs, &cfg.optimizer)?),
        None => None,
    };
    let weights = match (&resumed, &cfg.init) {
        (Some((state, _)), _) => state.weights.clone(),
        (None, Some(path)) => model.load_safetensors(path)?,
        (None, None) => model.init_glorot(cfg.seed),
    };
    // As Keras does, a batch larger than the training set trains the whole set in one step.
    let batch = cfg.batch.min(data.train.len());
    if batch < cfg.batch {
        output::note(format!(
            "--batch {} is more than the {} training images; training in batches of {batch}",
            cfg.batch,
            data.train.len()
        ));
    }
    // A resumed run's schedule is the recorded, resolved one.
    let run_steps = (cfg.epochs * data.train.len().div_ceil(batch)) as u64;
    let opt = Optimizer {
        lr: cfg.lr,
        schedule: cfg.lr_schedule.resolved(run_steps),
        ..cfg.optimizer
    };
    let (n_train, n_test) = (data.train.len(), data.test.len());
    let (train, mut test) = (
        std::mem::take(&mut data.train),
        std::mem::take(&mut data.test),
    );
    let n_val = val.as_ref().map(|v| v.len());
    // Each epoch evaluates the validation set when there is one; the test set waits.
    let eval = match val {
        Some(v) => v,
        None => std::mem::take(&mut test),
    };
    let mut backend = make_backend(cfg, &model, &weights, train, eval, batch, opt)?;
    if let Some((state, _)) = &resumed {
        backend.set_state(&state.weights, [&state.m, &state.v, &state.a], state.t)?;
    }
    let (adapter, backend_name, device_type) = backend.describe();
    let fixed = model.param_count() - model.trainable_count();
    let params = match fixed {
        0 => format!("{} parameters", model.param_count()),
        _ => format!(
            "{} parameters ({fixed} of them batch norm's moving statistics)",
            model.param_count()
        ),
    };
    // The tutorial's Adam goes unnamed; another optimizer is said with its settings.
    let optimizer = match opt.kind {
        OptimizerKind::Adam => String::new(),
        _ => format!(", {} at lr {}", opt.describe(), opt.lr),
    };
    let validation = n_val.map_or(String::new(), |n| format!("{n} validation / "));
    say(format!(
        "Training {params} on {adapter} ({backend_name}, {device_type}): {n_train} train / {validation}{n_test} test images, batch {batch}{optimizer}, {} steps per epoch",
        n_train.div_ceil(batch)
    ));
    let info = run_info(cfg, &opt, &data, &model, &adapter, &backend_name);
    run_dir::write_run_info(&out, &info)?;
    let (start, rng) = match &resumed {
        Some((state, epochs)) => {
            say(format!(
                "Resuming after epoch {} of {} (step {})",
                state.epoch, cfg.epochs, state.t
            ));
            (epochs.clone(), Rng::from_state(state.rng))
        }
        None => (Vec::new(), Rng::new(cfg.seed ^ 0x5eed_5eed)),
    };
    let mut history = History {
        dataset: data.name.clone(),
        data_dir: data.dir.clone(),
        run_dir: out.to_path_buf(),
        epochs: start,
        test_loss: f64::NAN,
        test_accuracy: f64::NAN,
        adapter: adapter.clone(),
        backend: backend_name,
        device_type,
    };
    let saver = Saver {
        dir: &out,
        model: &model,
        title: format!(
            "{} · {} · {adapter}",
            data.name,
            model_title(cfg.model.as_deref())
        ),
        optimizer: opt,
        meta: vec![
            ("dataset", data.name.clone()),
            (
                "classes",
                serde_json::to_string(&data.classes).unwrap_or_default(),
            ),
        ],
    };
    let mut run = EpochRunner {
        cfg,
        backend: &mut *backend,
        n_train,
        batch,
        opt,
        rng,
        saver: &saver,
        events: crate::tensorboard::EventFile::new(out),
    };
    let mut test_m = run.epochs(&mut history)?;
    if n_val.is_some() {
        // The weights the run ended with (the best epoch's, if restored) on the test set.
        let weights = model.load_safetensors(&out.join(run_dir::MODEL))?;
        let (_, [m, v, a], t) = backend.state()?;
        backend.set_state(&weights, [&m, &v, &a], t)?;
        backend.replace_eval(test)?;
        test_m = backend.evaluate()?;
    }
    history.test_loss = test_m.loss();
    history.test_accuracy = test_m.accuracy();
    finish(cfg, &saver, &history)?;
    Ok(history)
}

/// The end of a run: the test line, the text chart, the history files, what was written.
fn finish(cfg: &TrainConfig, saver: &Saver, history: &History) -> Result<()> {
    let say = |line: String| {
        if !cfg.quiet {
            println!("{line}");
        }
    };
    let out = saver.dir;
    say(format!(
        "Test loss: {:.4} - test accuracy: {:.4}",
        history.test_loss, history.test_accuracy
    ));
    if !cfg.quiet && !history.epochs.is_empty() {
        print!("{}", crate::plot::text_chart(&history.epochs, 8));
    }
    saver.save_history(history)?;
    say(format!(
        "Wrote {} ({}, {}, {}, {}, {}, {}, {}, {}/)",
        out.display(),
        run_dir::MODEL,
        run_dir::BEST,
        run_dir::CHECKPOINT,
        run_dir::HISTORY_JSON,
        run_dir::HISTORY_CSV,
        run_dir::HISTORY_PNG,
        run_dir::RUN_JSON,
        crate::tensorboard::DIR
    ));
    Ok(())
}

/// The model of `--model` (or the seed CNN) on the data's shape and classes. A resumed run's
/// text may predate `flatten` being spelled out.
fn build_model(cfg: &TrainConfig, spec: Option<&ModelSpec>, data: &data::Data) -> Result<Model> {
    let t = &data.train;
    let input = Shape::new(t.channels, t.rows, t.cols);
    match spec {
        Some(s) => s.build(input, data.classes.len(), cfg.resume.is_some()),
        None => Model::seed(input, data.classes.len()),
    }
}

/// What `run.json` records of a run.
fn run_info(
    cfg: &TrainConfig,
    opt: &Optimizer,
    data: &data::Data,
    model: &Model,
    adapter: &str,
    backend_name: &str,
) -> RunInfo {
    RunInfo {
        command: cfg.command.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        dataset: cfg.data.dataset,
        data_dir: cfg.data.data_dir.clone(),
        data_read: data.dir.clone(),
        color: cfg.data.folder.color,
        image_size: cfg.data.folder.size,
        validation_split: cfg.data.folder.validation_split,
        skip_bad_images: cfg.data.folder.skip_bad_images,
        limit: cfg.limit,
        batch: cfg.batch,
        lr: cfg.lr,
        optimizer: opt.kind.name().into(),
        momentum: opt.momentum,
        nesterov: opt.nesterov,
        rho: opt.rho,
        centered: opt.centered,
        amsgrad: opt.amsgrad,
        weight_decay: opt.weight_decay,
        lr_schedule: opt.schedule.to_string(),
        monitor: cfg.monitor,
        early_stopping: cfg.early_stopping,
        restore_best_weights: cfg.restore_best_weights,
        reduce_lr_on_plateau: cfg.reduce_lr_on_plateau.map(|p| p.to_string()),
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        init: cfg.init.clone(),
        model: model.describe(),
        epochs: cfg.epochs,
        cpu: cfg.cpu,
        adapter: adapter.to_string(),
        backend: backend_name.to_string(),
    }
}

/// The checkpoint and history of the run in `dir`, checked against `epochs` (the total asked).
fn read_resume_state(
    dir: &Path,
    model: &Model,
    epochs: usize,
    optimizer: &Optimizer,
) -> Result<(TrainState, Vec<EpochRecord>)> {
    let state = run_dir::read_checkpoint(model, &dir.join(run_dir::CHECKPOINT), optimizer)?;
    let mut history = run_dir::read_history(dir)?;
    if history.len() < state.epoch {
        return Err(Error::bad_file(
            dir.join(run_dir::HISTORY_JSON),
            format!(
                "holds {} epochs, the checkpoint {}",
                history.len(),
                state.epoch
            ),
        ));
    }
    history.truncate(state.epoch);
    if epochs <= state.epoch {
        return Err(Error::Usage(format!(
            "the run in {} has finished {} epochs; pass --epochs N with N > {} to train more",
            dir.display(),
            state.epoch,
            state.epoch
        )));
    }
    Ok((state, history))
}

/// The GPU trainer, or the CPU reference with `--cpu`.
fn make_backend(
    cfg: &TrainConfig,
    model: &Model,
    weights: &[f32],
    train: Dataset,
    test: Dataset,
    batch: usize,
    opt: Optimizer,
) -> Result<Box<dyn Backend>> {
    if !cfg.cpu {
        let gpu = Gpu::new(&cfg.adapter)?;
        let mut t = GpuTrainer::new(gpu, model, weights, &train, Some(&test), batch, opt)?;
        t.dropout_seed = cfg.seed as u32;
        return Ok(Box::new(t));
    }
    model.check_data("training", &train)?;
    model.check_data("test", &test)?;
    let fits = plan::max_batch(model, CPU_BUFFER_LIMIT);
    if batch > fits {
        return Err(Error::Usage(format!(
            "--batch {} with --cpu: a batch of {batch} images needs more than {CPU_BUFFER_LIMIT} bytes per activation buffer; the largest batch for this model is {fits}",
            cfg.batch
        )));
    }
    let mut net = CpuNet::new(
        model,
        weights,
        batch.max(plan::eval_batch(batch, test.len(), fits)),
    );
    net.dropout.seed = cfg.seed as u32;
    Ok(Box::new(CpuTrainer {
        net,
        opt,
        batch,
        t: 0,
        train,
        eval: test,
    }))
}

/// The epoch loop and what it needs.
struct EpochRunner<'a> {
    cfg: &'a TrainConfig,
    backend: &'a mut dyn Backend,
    n_train: usize,
    batch: usize,
    /// The optimizer's settings, for the learning rate each epoch ends at.
    opt: Optimizer,
    rng: Rng,
    saver: &'a Saver<'a>,
    /// TensorBoard's scalars of the epochs this process trains.
    events: crate::tensorboard::EventFile,
}

impl EpochRunner<'_> {
    /// Runs the epochs still to do, printing a line and saving after each; returns the test
    /// metrics (the last epoch's validation pass: as in the tutorial, the validation set is the
    /// test set).
    fn epochs(&mut self, history: &mut History) -> Result<Metrics> {
        let cfg = self.cfg;
        let mut order: Vec<u32> = (0..self.n_train as u32).collect();
        let mut last_val = None;
        let first = history.epochs.len() + 1;
        let mut watch = Watch::replay(cfg.monitor, &history.epochs);
        let mut plateau = cfg
            .reduce_lr_on_plateau
            .map(|p| PlateauWatch::replay(p, cfg.monitor, self.opt.lr, &history.epochs));
        if let Some(p) = &plateau {
            // A resumed run continues at the rate its plateaus left.
            self.opt.lr = p.lr;
            self.backend.set_lr(p.lr);
        }
        if let Some(last) = history
            .epochs
            .last()
            .filter(|_| watch.stops(cfg.early_stopping))
        {
            // A resumed run that had stopped early: nothing more to train. Its test numbers
            // are those of the weights it ended with (the last epoch's, or the best one's).
            output::note(format!(
                "the run stopped early after epoch {} ({} epochs without a better {}); nothing to resume",
                last.epoch,
                watch.wait,
                cfg.monitor.name()
            ));
            let e = match watch.best {
                Some((b, _)) if cfg.restore_best_weights => &history.epochs[b - 1],
                _ => last,
            };
            return Ok(Metrics::of(e.val_loss, e.val_accuracy));
        }
        for epoch in first..=cfg.epochs {
            if cfg.shuffle {
                order.sort_unstable();
                self.rng.shuffle(&mut order);
            }
            let start = Instant::now();
            let bar = epoch_bar(cfg, epoch, self.n_train.div_ceil(self.batch));
            let batch = self.batch;
            let mut progress = |p: &Progress| {
                if let Some(bar) = &bar {
                    bar.set_position(p.done as u64);
                    let secs = start.elapsed().as_secs_f64().max(1e-9);
                    let rate = (p.done * batch) as f64 / secs;
                    let metrics = if p.running.n > 0 {
                        format!(
                            " - loss: {:.4} - accuracy: {:.4}",
                            p.running.loss(),
                            p.running.accuracy()
                        )
                    } else {
                        String::new()
                    };
                    bar.set_message(format!("{rate:.0} img/s{metrics}"));
                }
                !output::interrupted()
            };
            let result = self.backend.epoch(&order, &mut progress);
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let (tm, vm) = result.map_err(|e| match e {
                // Caught mid-epoch, at a submit's readback: the files are those of epoch - 1.
                Error::Diverged(m) => {
                    let kept = kept_files(self.saver.dir, epoch);
                    Error::Diverged(format!("at epoch {epoch} ({m}){kept}; try a smaller --lr"))
                }
                e => self.stopped(e, epoch),
            })?;
            let seconds = start.elapsed().as_secs_f64();
            check_finite(epoch, &tm, &vm, self.saver.dir)?;
            // Every epoch takes the same number of steps, so this is the optimizer's step count now.
            let steps = (epoch * self.n_train.div_ceil(self.batch)) as u64;
            let lr = self.opt.schedule.lr_at(self.opt.lr, steps);
            if !cfg.quiet {
                // The rate, as Keras logs it, where a schedule moves it.
                let moves = self.opt.schedule != Schedule::Constant || plateau.is_some();
                let rate = match moves {
                    false => String::new(),
                    true => format!(" - learning_rate: {}", keras_number(lr)),
                };
                println!(
                    "Epoch {epoch}/{} - {seconds:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4}{rate}",
                    cfg.epochs,
                    tm.loss(),
                    tm.accuracy(),
                    vm.loss(),
                    vm.accuracy()
                );
            }
            history.epochs.push(EpochRecord {
                epoch,
                loss: tm.loss(),
                accuracy: tm.accuracy(),
                val_loss: vm.loss(),
                val_accuracy: vm.accuracy(),
                seconds,
                learning_rate: Some(lr),
            });
            let best = history.epochs.last().is_some_and(|e| watch.update(e));
            let reduced = match (&mut plateau, history.epochs.last()) {
                (Some(p), Some(e)) => p.update(e),
                _ => None,
            };
            if let Some(new) = reduced {
                if !cfg.quiet {
                    println!("Epoch {epoch}: ReduceLROnPlateau reducing learning rate to {new}.");
                }
                self.opt.lr = new;
                self.backend.set_lr(new);
            }
            last_val = Some(vm);
            self.saver
                .save(&*self.backend, history, epoch, self.rng.state(), best)
                .map_err(|e| match e {
                    Error::Diverged(m) => Error::Diverged(format!("at epoch {epoch}: {m}")),
                    e => e,
                })?;
            if let Some(e) = history.epochs.last() {
                self.events.log_epoch(epoch, e)?;
            }
            if watch.stops(cfg.early_stopping) && epoch < cfg.epochs {
                if !cfg.quiet {
                    println!("Epoch {epoch}: early stopping");
                }
                if cfg.restore_best_weights {
                    if let Some((b, _)) = watch.best.filter(|&(b, _)| b != epoch) {
                        if !cfg.quiet {
                            println!(
                                "Restoring model weights from the end of the best epoch: {b}."
                            );
                        }
                        self.saver.restore_best()?;
                        // The best epoch's validation pass evaluated these weights on the
                        // test set: its numbers are the test numbers.
                        let e = &history.epochs[b - 1];
                        return Ok(Metrics::of(e.val_loss, e.val_accuracy));
                    }
                }
                break;
            }
            if output::interrupted() && epoch < cfg.epochs {
                return Err(self.stopped(Error::Interrupted(String::new()), epoch + 1));
            }
        }
        match last_val {
            Some(m) => Ok(m),
            None => {
                // No epoch to train: evaluate the weights as they are, and save them.
                let m = self.backend.evaluate()?;
                if !m.loss().is_finite() {
                    return Err(Error::Diverged(format!(
                        "the test loss of these weights is {}",
                        m.loss()
                    )));
                }
                let done = history.epochs.len();
                self.saver
                    .save(&*self.backend, history, done, self.rng.state(), false)?;
                Ok(m)
            }
        }
    }

    /// An interruption during `epoch` becomes the message with the resume command.
    fn stopped(&self, e: Error, epoch: usize) -> Error {
        match e {
            Error::Interrupted(_) => Error::Interrupted(format!(
                "in epoch {epoch}; {} holds epoch {}; continue with: gpu-cnn train --resume {}",
                self.saver.dir.display(),
                epoch - 1,
                self.saver.dir.display()
            )),
            e => e,
        }
    }
}

/// The progress bar of one epoch on stderr: steps, images/s, the running loss and accuracy,
/// ETA. None off a terminal, with `--json` or `--quiet`.
fn epoch_bar(cfg: &TrainConfig, epoch: usize, steps: usize) -> Option<indicatif::ProgressBar> {
    if !cfg.bar || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(steps as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "Epoch {prefix} [{bar:25}] {pos}/{len} {msg} - ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
    Some(bar)
}

/// A non-finite training or validation metric stops the run, keeping the last good checkpoint.
fn check_finite(epoch: usize, tm: &Metrics, vm: &Metrics, dir: &Path) -> Result<()> {
    let values = [
        ("loss", tm.loss()),
        ("accuracy", tm.accuracy()),
        ("val_loss", vm.loss()),
        ("val_accuracy", vm.accuracy()),
    ];
    let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    Err(Error::Diverged(format!(
        "at epoch {epoch} ({name} is {v}){}; try a smaller --lr",
        kept_files(dir, epoch)
    )))
}

/// What a diverged run leaves: the files of the epoch before `epoch`, if any.
fn kept_files(dir: &Path, epoch: usize) -> String {
    let model = dir.join(run_dir::MODEL);
    match (model.exists(), epoch) {
        (true, 1) => format!("; {} was left as it was", model.display()),
        (true, _) => format!(
            "; {} holds the weights of epoch {}",
            model.display(),
            epoch - 1
        ),
        (false, _) => "; nothing was saved (it happened in the first epoch)".into(),
    }
}

/// Writes the run's files into `dir`, each atomically.
struct Saver<'a> {
    dir: &'a Path,
    model: &'a Model,
    /// The plot's title.
    title: String,
    meta: Vec<(&'static str, String)>,
    /// Which state the checkpoint holds.
    optimizer: Optimizer,
}

impl Saver<'_> {
    /// After `epoch`: the history (its plot takes longest), then the model and the checkpoint
    /// one right after the other, so that a kill almost never falls between those two; when
    /// it does, the model is one epoch ahead of the checkpoint, and a resumed run, starting
    /// from the checkpoint, computes the same epoch again. Refuses (`Error::Diverged`) weights
    /// that are not finite, so the last good files stay.
    fn save(
        &self,
        backend: &dyn Backend,
        history: &History,
        epoch: usize,
        rng: u64,
        best: bool,
    ) -> Result<()> {
        let (weights, [m, v, a], t) = backend.state()?;
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
        self.save_history(history)?;
        self.model
            .save_safetensors(&weights, &self.dir.join(run_dir::MODEL), &self.meta)?;
        if best {
            self.model
                .save_safetensors(&weights, &self.dir.join(run_dir::BEST), &self.meta)?;
        }
        let state = TrainState {
            weights,
            m,
            v,
            a,
            t,
            epoch,
            rng,
        };
        run_dir::write_checkpoint(
            self.model,
            &state,
            &self.optimizer,
            &self.meta,
            &self.dir.join(run_dir::CHECKPOINT),
        )
    }

    /// `best.safetensors` becomes `model.safetensors` (restore_best_weights); the checkpoint
    /// keeps the last epoch's state.
    fn restore_best(&self) -> Result<()> {
        let best = self.dir.join(run_dir::BEST);
        let bytes = std::fs::read(&best).map_err(|e| Error::io(&best, e))?;
        crate::files::write_atomic(&self.dir.join(run_dir::MODEL), &bytes)
    }

    fn save_history(&self, history: &History) -> Result<()> {
        run_dir::write_history(self.dir, history, &self.title)
    }
}

/// A logged value as Keras' progress bar prints it: 4 decimals above 1e-3, else 4 in scientific
/// notation with a signed two-digit exponent (`1.2500e-04`).
fn keras_number(v: f64) -> String {
    if v.abs() > 1e-3 {
        return format!("{v:.4}");
    }
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// The model's name for the plot's title: its preset, "seed CNN", or its text, shortened.
fn model_title(text: Option<&str>) -> String {
    match text.map(str::trim) {
        None => "seed CNN".into(),
        Some(t) if t.chars().count() <= 48 => t.into(),
        Some(t) => format!("{}…", t.chars().take(47).collect::<String>()),
    }
}

/// Keras' `validation_split`: the last `fraction` of `train` (split at ceil(n (1 - fraction)),
/// as Keras does), taken off and returned.
fn hold_out_last(train: &mut Dataset, fraction: f64) -> Result<Dataset> {
    let n = train.len();
    let keep = (n as f64 * (1.0 - fraction)).ceil() as usize;
    if keep == 0 || keep >= n {
        return Err(Error::Usage(format!(
            "--validation-split {fraction} of {n} training images leaves {} to validate and {keep} to train on: both need at least one",
            n - keep.min(n)
        )));
    }
    let px = train.pixels();
    let val = Dataset {
        images: train.images[keep * px..].to_vec(),
        labels: train.labels[keep..].to_vec(),
        ..train.empty_like()
    };
    train.truncate(keep);
    Ok(val)
}
