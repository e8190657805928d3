//! What happens at an epoch's end beyond saving, as Keras' callbacks do it: which epoch is the
//! best so far (`ModelCheckpoint(save_best_only=True)` keeps its model as `best.safetensors`),
//! whether to stop early (`EarlyStopping(monitor, patience, min_delta=0)`) and whether to lower
//! the learning rate (`ReduceLROnPlateau(monitor, factor, patience)`).
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

/// `--reduce-lr-on-plateau FACTOR:PATIENCE`: Keras' `ReduceLROnPlateau(factor, patience)` with
/// its other defaults (min_delta 1e-4, cooldown 0, min_lr 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    pub factor: f64,
    pub patience: usize,
}

/// ReduceLROnPlateau's min_delta.
const PLATEAU_MIN_DELTA: f64 = 1e-4;

impl Plateau {
    /// Reads `FACTOR:PATIENCE` (0 < FACTOR < 1, PATIENCE >= 1).
    pub fn parse(spec: &str) -> crate::Result<Plateau> {
        let bad = |why: String| {
            crate::Error::Usage(format!(
                "--reduce-lr-on-plateau {spec}: {why} (form: FACTOR:PATIENCE, e.g. 0.1:10)"
            ))
        };
        let (f, p) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected FACTOR:PATIENCE".into()))?;
        let factor = match f.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v < 1.0 => v,
            _ => return Err(bad(format!("FACTOR must be between 0 and 1, got `{f}`"))),
        };
        let patience = match p.trim().parse::<usize>() {
            Ok(v) if v >= 1 => v,
            _ => {
                return Err(bad(format!(
                    "PATIENCE must be a whole number of epochs, at least 1, got `{p}`"
                )))
            }
        };
        Ok(Plateau { factor, patience })
    }
}

impl std::fmt::Display for Plateau {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.factor, self.patience)
    }
}

/// ReduceLROnPlateau's state: the best value, the epochs since, and the learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauWatch {
    pub plateau: Plateau,
    pub monitor: Monitor,
    best: f64,
    pub wait: usize,
    pub lr: f64,
}

impl PlateauWatch {
    pub fn new(plateau: Plateau, monitor: Monitor, lr: f64) -> PlateauWatch {
        let best = match monitor {
            Monitor::ValLoss => f64::INFINITY,
            Monitor::ValAccuracy => f64::NEG_INFINITY,
        };
        PlateauWatch {
            plateau,
            monitor,
            best,
            wait: 0,
            lr,
        }
    }

    /// The state after `epochs` (a resumed run's history), from the run's `lr`.
    pub fn replay(plateau: Plateau, monitor: Monitor, lr: f64, epochs: &[EpochRecord]) -> Self {
        let mut w = PlateauWatch::new(plateau, monitor, lr);
        for e in epochs {
            w.update(e);
        }
        w
    }

    /// Takes an epoch's record; returns the new learning rate when it reduces it.
    pub fn update(&mut self, e: &EpochRecord) -> Option<f64> {
        let v = self.monitor.value(e);
        let better = match self.monitor {
            Monitor::ValLoss => v < self.best - PLATEAU_MIN_DELTA,
            Monitor::ValAccuracy => v > self.best + PLATEAU_MIN_DELTA,
        };
        if better {
            self.best = v;
            self.wait = 0;
            return None;
        }
        self.wait += 1;
        if self.wait >= self.plateau.patience && self.lr > 0.0 {
            self.lr *= self.plateau.factor;
            self.wait = 0;
            return Some(self.lr);
        }
        None
    }
}
