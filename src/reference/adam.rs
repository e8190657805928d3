//! Adam on the CPU (Keras' form), over the flat parameter buffer.

use super::Real;
use crate::layers::AdamParams;

/// One Adam step in Keras' form; `alpha` = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
pub fn adam_update<T: Real>(
    weights: &mut [T],
    m: &mut [T],
    v: &mut [T],
    grads: &[T],
    alpha: T,
    p: &AdamParams,
) {
    let b1 = T::from_f64(p.beta1 as f64);
    let b2 = T::from_f64(p.beta2 as f64);
    let eps = T::from_f64(p.eps as f64);
    let one = T::from_f64(1.0);
    for i in 0..p.len as usize {
        let g = grads[i];
        m[i] = b1 * m[i] + (one - b1) * g;
        v[i] = b2 * v[i] + (one - b2) * g * g;
        weights[i] = weights[i] - alpha * m[i] / (v[i].sqrt() + eps);
    }
}
