//! The optimizers on the CPU (Keras' forms), over the flat parameter buffer.

use super::Real;
use crate::layers::{AdamParams, RmspropParams, SgdParams};

/// One Adam step in Keras' form; `alpha` = lr * sqrt(1 - beta2^t) / (1 - beta1^t). AdamW
/// (`p.weight_decay` > 0) first decays the weights: w -= w * weight_decay * lr. AMSGrad
/// (`p.amsgrad`) divides by v_hat = max(v_hat, v), kept in `a`.
#[allow(clippy::too_many_arguments)]
pub fn adam_update<T: Real>(
    weights: &mut [T],
    m: &mut [T],
    v: &mut [T],
    a: &mut [T],
    grads: &[T],
    alpha: T,
    lr: T,
    p: &AdamParams,
) {
    let b1 = T::from_f64(p.beta1 as f64);
    let b2 = T::from_f64(p.beta2 as f64);
    let eps = T::from_f64(p.eps as f64);
    let wd = T::from_f64(p.weight_decay as f64);
    let one = T::from_f64(1.0);
    for i in 0..p.len as usize {
        let g = grads[i];
        m[i] = b1 * m[i] + (one - b1) * g;
        v[i] = b2 * v[i] + (one - b2) * g * g;
        let mut w = weights[i];
        if p.weight_decay != 0.0 {
            w = w - w * wd * lr;
        }
        let mut vh = v[i];
        if p.amsgrad != 0 {
            if a[i] > vh {
                vh = a[i];
            }
            a[i] = vh;
        }
        weights[i] = w - alpha * m[i] / (vh.sqrt() + eps);
    }
}

/// One SGD step in Keras' form, learning rate `lr`: with momentum, m = momentum * m - lr * g
/// and w += m (Nesterov: w += momentum * m - lr * g); without, w -= lr * g.
pub fn sgd_update<T: Real>(weights: &mut [T], m: &mut [T], grads: &[T], lr: T, p: &SgdParams) {
    let mu = T::from_f64(p.momentum as f64);
    for i in 0..p.len as usize {
        let g = grads[i];
        if p.momentum == 0.0 {
            weights[i] = weights[i] - g * lr;
            continue;
        }
        m[i] = m[i] * mu - g * lr;
        weights[i] = if p.nesterov != 0 {
            weights[i] + (m[i] * mu - g * lr)
        } else {
            weights[i] + m[i]
        };
    }
}

/// One RMSprop step in Keras' form, learning rate `lr`: v = rho v + (1 - rho) g^2; centered,
/// a = rho a + (1 - rho) g and d = v - a^2 + eps, else d = v + eps; increment = lr g / sqrt(d);
/// with momentum m = momentum m + increment and w -= m, else w -= increment.
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_update<T: Real>(
    weights: &mut [T],
    m: &mut [T],
    v: &mut [T],
    a: &mut [T],
    grads: &[T],
    lr: T,
    p: &RmspropParams,
) {
    let rho = T::from_f64(p.rho as f64);
    let mu = T::from_f64(p.momentum as f64);
    let eps = T::from_f64(p.eps as f64);
    let one = T::from_f64(1.0);
    for i in 0..p.len as usize {
        let g = grads[i];
        v[i] = rho * v[i] + (one - rho) * (g * g);
        let d = if p.centered != 0 {
            a[i] = rho * a[i] + (one - rho) * g;
            v[i] - a[i] * a[i] + eps
        } else {
            v[i] + eps
        };
        let increment = lr * g / d.sqrt();
        if p.momentum > 0.0 {
            m[i] = mu * m[i] + increment;
            weights[i] = weights[i] - m[i];
        } else {
            weights[i] = weights[i] - increment;
        }
    }
}
