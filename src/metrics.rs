//! What both trainers report: summed loss and correct count, and where an epoch stands.

/// Summed loss and correct count over `n` samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub loss_sum: f64,
    pub correct: f64,
    pub n: usize,
}

impl Metrics {
    /// Metrics whose loss and accuracy are these (one sample's worth: a recorded epoch's).
    pub fn of(loss: f64, accuracy: f64) -> Metrics {
        Metrics {
            loss_sum: loss,
            correct: accuracy,
            n: 1,
        }
    }
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.n.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct / self.n.max(1) as f64
    }
    /// Sums `(loss, correct)` slots read back from a metrics buffer.
    pub fn from_slots(slots: &[f32], n: usize) -> Metrics {
        let mut m = Metrics {
            n,
            ..Default::default()
        };
        for s in slots.chunks_exact(2) {
            m.loss_sum += s[0] as f64;
            m.correct += s[1] as f64;
        }
        m
    }
}

/// Where an epoch stands: training steps finished of `total`, and the summed metrics of the
/// submits whose results are back (`running.n` images).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub running: Metrics,
}
