//! What trains: the GPU trainer, or the CPU reference with `--cpu`, behind one trait so that
//! `train` tells one story for both.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::trainer::GpuTrainer;
use crate::layers::Optimizer;
use crate::metrics::{Metrics, Progress};
use crate::plan;
use crate::reference::CpuNet;

pub trait Backend {
    /// One epoch over the training rows in `order`, then the evaluation set. `progress` hears
    /// now and then how far the epoch is; when it returns false the backend finishes the work in
    /// flight and returns `Error::Interrupted`.
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<(Metrics, Metrics)>;
    fn evaluate(&mut self) -> Result<Metrics>;
    /// Weights, the optimizer's state (`OptimizerKind::state_names`), its step count.
    fn state(&self) -> Result<(Vec<f32>, [Vec<f32>; 3], u64)>;
    fn set_state(&mut self, weights: &[f32], state: [&[f32]; 3], t: u64) -> Result<()>;
    /// (adapter name, backend, device type) for the output.
    fn describe(&self) -> (String, String, String);
    /// The optimizer's learning rate from the next epoch on (ReduceLROnPlateau).
    fn set_lr(&mut self, lr: f64);
    /// Evaluate on `set` from now on (the test set after a run with a validation split).
    fn replace_eval(&mut self, set: Dataset) -> Result<()>;
}

impl Backend for GpuTrainer {
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(&Progress) -> bool,
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
    fn state(&self) -> Result<(Vec<f32>, [Vec<f32>; 3], u64)> {
        Ok((self.read_weights()?, self.read_moments()?, self.t))
    }
    fn set_state(&mut self, weights: &[f32], state: [&[f32]; 3], t: u64) -> Result<()> {
        self.write_state(weights, state, t)
    }
    fn describe(&self) -> (String, String, String) {
        (
            self.gpu.info.name.clone(),
            self.gpu.backend_name(),
            self.gpu.device_type_name(),
        )
    }
    fn set_lr(&mut self, lr: f64) {
        self.opt.lr = lr;
    }
    fn replace_eval(&mut self, set: Dataset) -> Result<()> {
        GpuTrainer::replace_eval(self, &set)
    }
}

/// The CPU reference as a backend (plain loops, f32).
pub struct CpuTrainer {
    pub net: CpuNet<f32>,
    pub opt: Optimizer,
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
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<Metrics> {
        let d = if training { &self.train } else { &self.eval };
        let batch = if training {
            self.batch
        } else {
            plan::eval_batch(self.batch, d.len(), self.net.max_batch)
        };
        let mut m = Metrics {
            n: d.len(),
            ..Default::default()
        };
        let mut y = vec![0u32; batch];
        let mut p = Progress {
            total: d.len().div_ceil(batch),
            ..Default::default()
        };
        for start in (0..d.len()).step_by(batch) {
            if !progress(&p) {
                return Err(Error::Interrupted(format!(
                    "during an epoch, after {} of {} steps",
                    p.done, p.total
                )));
            }
            let b = batch.min(d.len() - start);
            self.net.load_batch(&mut y, d, order, start, b);
            let r = if training {
                self.t += 1;
                self.net.dropout.t = self.t as u32;
                self.net.train_step(&y, b, self.t, &self.opt)
            } else {
                self.net.evaluate(&y, b)
            };
            m.loss_sum += r[0] as f64;
            m.correct += r[1] as f64;
            if training && !m.loss_sum.is_finite() {
                return Err(Error::Diverged(format!(
                    "the loss of the steps up to {} of {} is {}",
                    p.done + 1,
                    p.total,
                    m.loss_sum
                )));
            }
            p.done += 1;
            p.running.loss_sum += r[0] as f64;
            p.running.correct += r[1] as f64;
            p.running.n += b;
        }
        progress(&p);
        Ok(m)
    }
}

impl Backend for CpuTrainer {
    fn epoch(
        &mut self,
        order: &[u32],
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<(Metrics, Metrics)> {
        let t = self.run(true, order, progress)?;
        Ok((t, self.evaluate()?))
    }
    fn evaluate(&mut self) -> Result<Metrics> {
        let ident: Vec<u32> = (0..self.eval.len() as u32).collect();
        self.run(false, &ident, &mut |_| true)
    }
    fn state(&self) -> Result<(Vec<f32>, [Vec<f32>; 3], u64)> {
        let n = &self.net;
        Ok((
            n.weights_f32(),
            [n.m.clone(), n.v.clone(), n.a.clone()],
            self.t,
        ))
    }
    fn set_state(&mut self, weights: &[f32], [m, v, a]: [&[f32]; 3], t: u64) -> Result<()> {
        let n = self.net.weights.len();
        if [weights, m, v, a].iter().any(|s| s.len() != n) {
            return Err(Error::Model(format!(
                "state of {} values given, the model has {n}",
                weights.len()
            )));
        }
        self.net.weights.copy_from_slice(weights);
        self.net.m.copy_from_slice(m);
        self.net.v.copy_from_slice(v);
        self.net.a.copy_from_slice(a);
        self.t = t;
        Ok(())
    }
    fn describe(&self) -> (String, String, String) {
        ("CPU reference".into(), "cpu".into(), "Cpu".into())
    }
    fn set_lr(&mut self, lr: f64) {
        self.opt.lr = lr;
    }
    fn replace_eval(&mut self, set: Dataset) -> Result<()> {
        self.net.model.check_data("evaluation", &set)?;
        self.eval = set;
        Ok(())
    }
}
