//! Adam (Keras' form): its hyper-parameters, and the constants of its pass with the table of the
//! conv weight copies it keeps.

use bytemuck::{Pod, Zeroable};

use crate::schedule::Schedule;

/// Constants of `adam_update`; the per-step size `alpha` comes from the step records.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct AdamParams {
    pub len: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Entries of `table` in use: conv weights whose channel-last copy (`wt`, the layout of
    /// conv2d_transpose_weight) Adam writes along with the weights. 0: none.
    pub copies: u32,
    /// The flat range [lo, hi) the entries cover (the shader skips the table outside it).
    pub lo: u32,
    pub hi: u32,
    pub _pad: u32,
    /// In the uniform, not a storage buffer: CPU adapters load uniforms once per workgroup.
    pub table: [AdamCopy; MAX_ADAM_COPIES],
}

/// Most conv weight tensors whose copies one `adam_update` keeps (the rest keep their
/// transposition passes).
pub const MAX_ADAM_COPIES: usize = 8;

impl AdamParams {
    /// These params with `table` as the copies to keep (at most `MAX_ADAM_COPIES`).
    pub fn with_copies(self, table: &[AdamCopy]) -> AdamParams {
        assert!(table.len() <= MAX_ADAM_COPIES, "{} copies", table.len());

        let mut p = AdamParams {
            copies: table.len() as u32,
            lo: table.iter().map(|c| c.offset).min().unwrap_or(0),
            hi: table
                .iter()
                .map(|c| c.offset + c.weight_len())
                .max()
                .unwrap_or(0),
            ..self
        };
        p.table[..table.len()].copy_from_slice(table);
        p
    }
}

/// One conv weight tensor whose channel-last copy `adam_update` keeps: the weights
/// (c_out, c_in, taps) at `offset` of the flat parameters, the copy (taps, c_in, c4 * 4) at
/// `wt_offset` of the copies buffer (elements).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamCopy {
    pub offset: u32,
    pub c_out: u32,
    pub c_in: u32,
    pub taps: u32,
    pub wt_offset: u32,
    pub c4: u32,
    pub _pad: [u32; 2],
}

impl AdamCopy {
    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> u32 {
        self.c_out * self.c_in * self.taps
    }
}

/// Adam hyper-parameters, Keras' defaults; `lr` is where `schedule` starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub schedule: Schedule,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            schedule: Schedule::Constant,
        }
    }
}

impl Adam {
    /// Keras' step size for step t (1-based): lr * sqrt(1 - beta2^t) / (1 - beta1^t), lr the
    /// schedule's value after the t - 1 updates before this one (as Keras evaluates it).
    pub fn alpha(&self, t: u64) -> f32 {
        let lr = self.schedule.lr_at(self.lr, t.saturating_sub(1));
        let t = t as f64;
        (lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t))) as f32
    }
    pub fn params(&self, len: usize) -> AdamParams {
        AdamParams {
            len: len as u32,
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            eps: self.eps as f32,
            copies: 0,
            lo: 0,
            hi: 0,
            _pad: 0,
            table: [AdamCopy::default(); MAX_ADAM_COPIES],
        }
    }
}
