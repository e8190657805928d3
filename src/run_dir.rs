//! The run folder: what `train` leaves behind, every file rewritten atomically after every
//! epoch, and what `train --resume` reads back.
//!
//! - `model.safetensors`: the weights (PyTorch names and layouts) with the model's input shape,
//!   layers, dataset and class names in the metadata.
//! - `checkpoint.safetensors`: the weights, Adam's moments and step, the shuffle generator's
//!   state and the epoch, as flat tensors.
//! - `history.json`, `history.csv`, `history.png`: the per-epoch metrics.
//! - `run.json`: the settings of the run.
//!
//! Order of writes: model, history, checkpoint last, so a run killed between two of them
//! resumes from the checkpoint's epoch with the history cut to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::folder::Color;
use crate::data::DatasetName;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::history::{EpochRecord, History};
use crate::layers::Optimizer;
use crate::model::Model;

pub const MODEL: &str = "model.safetensors";
/// The model after the best epoch so far (`--monitor`).
pub const BEST: &str = "best.safetensors";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const HISTORY_JSON: &str = "history.json";
pub const HISTORY_CSV: &str = "history.csv";
pub const HISTORY_PNG: &str = "history.png";
pub const RUN_JSON: &str = "run.json";

fn constant_schedule() -> String {
    "constant".into()
}

fn adam() -> String {
    "adam".into()
}

fn rho() -> f64 {
    0.9
}

/// The settings of a run, as `run.json` records them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The command line, program name first.
    pub command: Vec<String>,
    pub version: String,
    pub dataset: DatasetName,
    /// `--data-dir` as given (resuming may change it).
    pub data_dir: Option<PathBuf>,
    /// The folder the data was read from.
    pub data_read: PathBuf,
    pub color: Color,
    pub image_size: (usize, usize),
    pub validation_split: Option<f64>,
    pub skip_bad_images: bool,
    pub limit: Option<usize>,
    pub batch: usize,
    pub lr: f64,
    /// `--optimizer` (`adam` for runs recorded before there was a choice) and its settings.
    #[serde(default = "adam")]
    pub optimizer: String,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default = "rho")]
    pub rho: f64,
    #[serde(default)]
    pub centered: bool,
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(default)]
    pub weight_decay: f64,
    /// The learning-rate schedule from `lr`, resolved for the run (`Schedule`'s text form);
    /// runs recorded before schedules existed read as `constant`.
    #[serde(default = "constant_schedule")]
    pub lr_schedule: String,
    /// What `best.safetensors` and `--early-stopping` watch (`val_loss` before they existed).
    #[serde(default)]
    pub monitor: crate::callbacks::Monitor,
    /// `--early-stopping PATIENCE`, `--restore-best-weights`.
    #[serde(default)]
    pub early_stopping: Option<usize>,
    #[serde(default)]
    pub restore_best_weights: bool,
    /// `--reduce-lr-on-plateau FACTOR:PATIENCE`.
    #[serde(default)]
    pub reduce_lr_on_plateau: Option<String>,
    pub seed: u64,
    pub shuffle: bool,
    pub init: Option<PathBuf>,
    /// The layers, in the one-line text form.
    pub model: String,
    /// Epochs asked for (the total).
    pub epochs: usize,
    pub cpu: bool,
    pub adapter: String,
    pub backend: String,
}

/// Everything a run needs to continue exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub weights: Vec<f32>,
    /// The optimizer's state (`Optimizer::state_names`; zeros where it keeps none).
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub a: Vec<f32>,
    /// Optimizer steps taken.
    pub t: u64,
    /// Epochs finished.
    pub epoch: usize,
    /// The shuffle generator after that epoch.
    pub rng: u64,
}

/// `runs/<dataset>-<yyyymmdd-hhmmss>` (UTC), under the current folder.
pub fn default_dir(dataset: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    PathBuf::from("runs").join(format!(
        "{dataset}-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

fn to_json<T: Serialize>(v: &T, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Model(format!("{what}: {e}")))
}

pub fn write_run_info(dir: &Path, info: &RunInfo) -> Result<()> {
    write_atomic(&dir.join(RUN_JSON), &to_json(info, RUN_JSON)?)
}

pub fn read_run_info(dir: &Path) -> Result<RunInfo> {
    let path = dir.join(RUN_JSON);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_file(&path, format!("not a run.json of gpu-cnn: {e}")))
}

/// `history.json`, `history.csv` and `history.png` (titled `title`).
pub fn write_history(dir: &Path, history: &History, title: &str) -> Result<()> {
    write_atomic(&dir.join(HISTORY_JSON), &to_json(history, HISTORY_JSON)?)?;
    let mut csv = String::from("epoch,loss,accuracy,val_loss,val_accuracy,seconds,learning_rate\n");
    for e in &history.epochs {
        let lr = e.learning_rate.map(|v| v.to_string()).unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{},{},{:.3},{lr}\n",
            e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.seconds
        ));
    }
    write_atomic(&dir.join(HISTORY_CSV), csv.as_bytes())?;
    if !history.epochs.is_empty() {
        crate::plot::history_png(&history.epochs, title, &dir.join(HISTORY_PNG))?;
    }
    Ok(())
}

/// The epochs recorded in `history.json`.
pub fn read_history(dir: &Path) -> Result<Vec<EpochRecord>> {
    let path = dir.join(HISTORY_JSON);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_file(&path, format!("not JSON: {e}")))?;
    serde_json::from_value(v["epochs"].clone())
        .map_err(|e| Error::bad_file(&path, format!("no list of epochs: {e}")))
}

/// Writes `checkpoint.safetensors`: flat `weights` and the optimizer's state (`adam.m` and
/// `adam.v`, or `sgd.momentum`: `Optimizer::state_names`), and the step, epoch, generator
/// state and optimizer (with `meta`) in the metadata.
pub fn write_checkpoint(
    model: &Model,
    state: &TrainState,
    optimizer: &Optimizer,
    meta: &[(&str, String)],
    path: &Path,
) -> Result<()> {
    let err = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let bytes: Vec<Vec<u8>> = [&state.weights, &state.m, &state.v, &state.a]
        .iter()
        .map(|t| bytemuck::cast_slice(t.as_slice()).to_vec())
        .collect();
    let [m_name, v_name, a_name] = optimizer.state_names();
    let mut views = Vec::new();
    for (name, b) in [Some("weights"), m_name, v_name, a_name].iter().zip(&bytes) {
        let Some(name) = name else { continue };
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![b.len() / 4], b)
                .map_err(|e| err(e.to_string()))?;
        views.push((name.to_string(), view));
    }
    let mut m: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    m.insert("step".into(), state.t.to_string());
    m.insert("epoch".into(), state.epoch.to_string());
    m.insert("rng".into(), state.rng.to_string());
    m.insert("optimizer".into(), optimizer.kind.name().into());
    m.insert("input".into(), model.input.to_string());
    m.insert("architecture".into(), model.describe());
    let data = safetensors::serialize(views, Some(m)).map_err(|e| err(e.to_string()))?;
    write_atomic(path, &crate::checkpoint::canonical_safetensors(data, path)?)
}

/// Reads `checkpoint.safetensors` for `model` and `optimizer`: every tensor and number present,
/// the model's size, finite (a state the optimizer does not keep reads as zeros).
pub fn read_checkpoint(model: &Model, path: &Path, optimizer: &Optimizer) -> Result<TrainState> {
    let (bytes, meta) = crate::checkpoint::read_safetensors(path)?;
    let err = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let number = |key: &str| -> Result<u64> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err(format!("metadata lacks a number `{key}`")))
    };
    if let Some(arch) = meta.get("architecture") {
        let same =
            crate::spec::build(arch, model.input, model.classes, true).is_ok_and(|m| m == *model);
        if !same {
            return Err(err(format!(
                "it is for the model `{arch}`, this run's is `{}`",
                model.describe()
            )));
        }
    }
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let flat = |name: &str| -> Result<Vec<f32>> {
        let t = st
            .tensor(name)
            .map_err(|_| err(format!("missing tensor `{name}`")))?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != [model.flat_len] {
            return Err(err(format!(
                "tensor `{name}` is {:?} {:?}, expected F32 [{}]",
                t.dtype(),
                t.shape(),
                model.flat_len
            )));
        }
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(err(format!(
                "tensor `{name}` holds a non-finite value at {i}"
            )));
        }
        Ok(v)
    };
    if let Some(o) = meta.get("optimizer") {
        if o != optimizer.kind.name() {
            return Err(err(format!(
                "it holds the state of {o}, this run's optimizer is {}",
                optimizer.kind.name()
            )));
        }
    }
    let [m_name, v_name, a_name] = optimizer.state_names();
    let state = |name: Option<&str>| match name {
        Some(n) => flat(n),
        None => Ok(vec![0.0; model.flat_len]),
    };
    Ok(TrainState {
        weights: flat("weights")?,
        m: state(m_name)?,
        v: state(v_name)?,
        a: state(a_name)?,
        t: number("step")?,
        epoch: number("epoch")? as usize,
        rng: number("rng")?,
    })
}
