//! The CPU oracle: plain loops, one function per shader pass with the same name and argument order
//! as the GPU launchers (outputs first, then saved activations, then inputs, then shapes).
//! Generic over `Real` so that the same code trains in f32 and is gradient-checked in f64.
//! Every backward function overwrites its outputs. Sums over a whole batch's pixels (a conv's
//! weight gradient, batch norm's statistics) are added in chunks, as the GPU adds them, so that
//! float32 keeps their precision. One module per layer kind, as on the GPU
//! (`gpu::layers`): its passes and its part of `CpuNet`, which walks the stage plan.
// `!(x > 0)` is deliberate: a NaN pre-activation counts as not positive, as in the shaders.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod augment;
pub mod batchnorm;
pub mod conv2d;
pub mod data;
pub mod dense;
pub mod elementwise;
pub mod loss;
pub mod merge;
pub mod net;
pub mod optimizer;
pub mod pool;

pub use augment::*;
pub use batchnorm::*;
pub use conv2d::*;
pub use data::*;
pub use dense::*;
pub use elementwise::*;
pub use loss::*;
pub use merge::*;
pub use net::CpuNet;
pub use optimizer::*;
pub use pool::*;

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Send
    + Sync
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn zero() -> Self {
        Self::from_f64(0.0)
    }
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

pub(crate) fn relu_grad<T: Real>(relu: u32, out: T, dout: T) -> T {
    if relu != 0 && !(out > T::zero()) {
        T::zero()
    } else {
        dout
    }
}
