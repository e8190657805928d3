//! What a run reports: one record per epoch and the run's summary (`history.json`, `--json`).
//! Shared by the trainer, the run folder and the plots.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
    /// The learning rate after the epoch (the schedule at the steps taken: what Keras logs as
    /// `learning_rate`); absent in the histories of runs from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct History {
    pub dataset: String,
    /// The folder the data was read from.
    pub data_dir: PathBuf,
    /// The run folder.
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochRecord>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
}
