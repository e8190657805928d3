//! Softmax cross-entropy on the CPU: the loss sum and correct count, the logits' gradient, and
//! both at once.

use super::Real;
use crate::layers::SoftmaxXentParams;

/// logits is (N, K), labels is (N). `metrics[0]` = summed cross-entropy, `metrics[1]` = correct count.
pub fn softmax_xent_forward<T: Real>(
    metrics: &mut [T],
    logits: &[T],
    labels: &[u32],
    p: &SoftmaxXentParams,
) {
    let [n_, k_] = [p.batch, p.classes].map(|v| v as usize);
    let (mut loss, mut correct) = (T::zero(), T::zero());
    for n in 0..n_ {
        let row = &logits[n * k_..(n + 1) * k_];
        let (mut mx, mut arg) = (row[0], 0);
        for (k, &v) in row.iter().enumerate().skip(1) {
            if v > mx {
                mx = v;
                arg = k;
            }
        }
        let mut s = T::zero();
        for &v in row {
            s += (v - mx).exp();
        }
        let y = labels[n] as usize;
        loss += s.ln() + mx - row[y];
        if arg == y {
            correct += T::from_f64(1.0);
        }
    }
    metrics[0] = loss;
    metrics[1] = correct;
}

/// softmax_xent_forward then softmax_xent_backward, as the fused training pass computes them:
/// metrics = [loss sum, correct], dlogits (N, K).
pub fn softmax_xent<T: Real>(
    metrics: &mut [T],
    dlogits: &mut [T],
    logits: &[T],
    y: &[u32],
    p: &SoftmaxXentParams,
) {
    softmax_xent_forward(metrics, logits, y, p);
    softmax_xent_backward(dlogits, logits, y, p);
}

/// dlogits and logits are (N, K), labels is (N): gradient of the batch-mean cross-entropy.
pub fn softmax_xent_backward<T: Real>(
    dlogits: &mut [T],
    logits: &[T],
    labels: &[u32],
    p: &SoftmaxXentParams,
) {
    let [n_, k_] = [p.batch, p.classes].map(|v| v as usize);
    let scale = T::from_f64(1.0) / T::from_f64(n_ as f64);
    for n in 0..n_ {
        let row = &logits[n * k_..(n + 1) * k_];
        let mut mx = row[0];
        for &v in row {
            if v > mx {
                mx = v;
            }
        }
        let mut s = T::zero();
        for &v in row {
            s += (v - mx).exp();
        }
        for k in 0..k_ {
            let onehot = if k == labels[n] as usize {
                T::from_f64(1.0)
            } else {
                T::zero()
            };
            dlogits[n * k_ + k] = ((row[k] - mx).exp() / s - onehot) * scale;
        }
    }
}
