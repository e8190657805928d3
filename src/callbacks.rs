//! What happens at an epoch's end beyond saving, as Keras' callbacks do it: which epoch is the
//! best so far (`ModelCheckpoint(save_best_only=True)` keeps its model as `best.safetensors`)
//! and whether to stop early (`EarlyStopping(monitor, patience, min_delta=0)`).
//!
//! The state is a function of the history alone, so a resumed run replays it from
//! `history.json` and decides exactly as the uninterrupted run would.

use serde::{Deserialize, Serialize};

use crate::history::EpochRecord;

/// The metric "best" refers to: the lowest validation loss or the highest validation accuracy
/// (Keras' `mode="auto"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// The lowest validation loss
    #[default]
    ValLoss,
    /// The highest validation accuracy
    ValAccuracy,
}

impl Monitor {
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }

    /// The epoch's value of the metric.
    pub fn value(self, e: &EpochRecord) -> f64 {
        match self {
            Monitor::ValLoss => e.val_loss,
            Monitor::ValAccuracy => e.val_accuracy,
        }
    }

    /// Whether `v` improves on `best` (strictly, as Keras compares with min_delta 0).
    pub fn improves(self, v: f64, best: f64) -> bool {
        match self {
            Monitor::ValLoss => v < best,
            Monitor::ValAccuracy => v > best,
        }
    }
}

/// The best epoch so far and the epochs since it (Keras' `wait`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watch {
    pub monitor: Monitor,
    /// (epoch, value) of the best epoch; `None` before the first.
    pub best: Option<(usize, f64)>,
    /// Epochs since the best one.
    pub wait: usize,
}

impl Watch {
    pub fn new(monitor: Monitor) -> Watch {
        Watch {
            monitor,
            best: None,
            wait: 0,
        }
    }

    /// The watch after `epochs` (a resumed run's history).
    pub fn replay(monitor: Monitor, epochs: &[EpochRecord]) -> Watch {
        let mut w = Watch::new(monitor);
        for e in epochs {
            w.update(e);
        }
        w
    }

    /// Takes an epoch's record; returns whether it is the new best.
    pub fn update(&mut self, e: &EpochRecord) -> bool {
        let v = self.monitor.value(e);
        self.wait += 1;
        let better = match self.best {
            None => !v.is_nan(),
            Some((_, best)) => self.monitor.improves(v, best),
        };
        if better {
            self.best = Some((e.epoch, v));
            self.wait = 0;
        }
        better
    }

    /// Whether `EarlyStopping(patience)` stops the run here.
    pub fn stops(&self, patience: Option<usize>) -> bool {
        patience.is_some_and(|p| self.wait >= p)
    }
}
