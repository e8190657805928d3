//! The optimizers (Keras' forms): Adam, AdamW, SGD and RMSprop; their hyper-parameters, and
//! the constants of their passes (`adam_update`, `sgd_update`, `rmsprop_update`) with the
//! table of the conv weight copies the pass keeps.

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
    /// AdamW's decoupled weight decay (0 for Adam): each step first
    /// w -= w * weight_decay * lr, lr the step's learning rate.
    pub weight_decay: f32,
    /// 1: AMSGrad, the step divided by the largest v so far (kept in the third state tensor).
    pub amsgrad: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
    /// In the uniform, not a storage buffer: CPU adapters load uniforms once per workgroup.
    pub table: [AdamCopy; MAX_ADAM_COPIES],
}

/// Most conv weight tensors whose copies one `adam_update` keeps (the rest keep their
/// transposition passes).
pub const MAX_ADAM_COPIES: usize = 8;

impl AdamParams {
    /// These params with `table` as the copies to keep (at most `MAX_ADAM_COPIES`).
    pub fn with_copies(self, table: &[AdamCopy]) -> AdamParams {
        let (copies, lo, hi, table) = copies_fields(table);
        AdamParams {
            copies,
            lo,
            hi,
            table,
            ..self
        }
    }
}

/// The fields every optimizer pass's params give the copies to keep (at most
/// `MAX_ADAM_COPIES`): their count, the flat range [lo, hi) they cover, the table.
fn copies_fields(table: &[AdamCopy]) -> (u32, u32, u32, [AdamCopy; MAX_ADAM_COPIES]) {
    assert!(table.len() <= MAX_ADAM_COPIES, "{} copies", table.len());
    let lo = table.iter().map(|c| c.offset).min().unwrap_or(0);
    let hi = table
        .iter()
        .map(|c| c.offset + c.weight_len())
        .max()
        .unwrap_or(0);
    let mut t = [AdamCopy::default(); MAX_ADAM_COPIES];
    t[..table.len()].copy_from_slice(table);
    (table.len() as u32, lo, hi, t)
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

/// The update rule, as `--optimizer` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OptimizerKind {
    #[default]
    Adam,
    AdamW,
    Sgd,
    Rmsprop,
}

impl OptimizerKind {
    pub const NAMES: &'static str = "adam, adamw, sgd, rmsprop";
    pub fn parse(s: &str) -> Option<OptimizerKind> {
        match s {
            "adam" => Some(OptimizerKind::Adam),
            "adamw" => Some(OptimizerKind::AdamW),
            "sgd" => Some(OptimizerKind::Sgd),
            "rmsprop" => Some(OptimizerKind::Rmsprop),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Rmsprop => "rmsprop",
        }
    }
    /// Keras' default learning rate (`keras.optimizers.SGD` 0.01, the others 0.001).
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Sgd => 0.01,
            _ => 1e-3,
        }
    }
    /// The checkpoint's names for the three state buffers (`m`, `v`, `a`); `None`: not kept.
    /// `amsgrad`: Adam's and AdamW's largest v so far, in `a`.
    pub fn state_names(self, amsgrad: bool) -> [Option<&'static str>; 3] {
        match self {
            OptimizerKind::Adam | OptimizerKind::AdamW => [
                Some("adam.m"),
                Some("adam.v"),
                amsgrad.then_some("adam.v_hat"),
            ],
            OptimizerKind::Sgd => [Some("sgd.momentum"), None, None],
            OptimizerKind::Rmsprop => [
                Some("rmsprop.momentum"),
                Some("rmsprop.velocity"),
                Some("rmsprop.average_gradient"),
            ],
        }
    }
}

/// The optimizer and its hyper-parameters, Keras' defaults (Adam unless `kind` says otherwise);
/// `lr` is where `schedule` starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// Adam, AdamW.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// AdamW (Keras' default 0.004).
    pub weight_decay: f64,
    /// SGD and RMSprop (Keras' default 0: none).
    pub momentum: f64,
    /// SGD with momentum: Nesterov's form.
    pub nesterov: bool,
    /// RMSprop's discount of the squared gradients' average (Keras' default 0.9).
    pub rho: f64,
    /// RMSprop: divide by the gradients' estimated variance instead (also keeps their mean).
    pub centered: bool,
    /// Adam and AdamW: AMSGrad's form, dividing by the largest v so far.
    pub amsgrad: bool,
    pub schedule: Schedule,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::keras(OptimizerKind::Adam)
    }
}

impl Optimizer {
    /// `kind` with Keras' defaults.
    pub fn keras(kind: OptimizerKind) -> Optimizer {
        Optimizer {
            kind,
            lr: kind.default_lr(),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            weight_decay: if kind == OptimizerKind::AdamW {
                0.004
            } else {
                0.0
            },
            momentum: 0.0,
            nesterov: false,
            rho: 0.9,
            centered: false,
            amsgrad: false,
            schedule: Schedule::Constant,
        }
    }
    /// The checkpoint's names for the state buffers (`OptimizerKind::state_names`).
    pub fn state_names(&self) -> [Option<&'static str>; 3] {
        self.kind.state_names(self.amsgrad)
    }
    /// Whether the third state tensor (`a`) is kept: centered RMSprop, AMSGrad.
    pub fn keeps_a(&self) -> bool {
        self.state_names()[2].is_some()
    }
    /// The learning rate of step t (1-based): the schedule's value after the t - 1 updates
    /// before it (as Keras evaluates it).
    pub fn lr_step(&self, t: u64) -> f32 {
        self.schedule.lr_at(self.lr, t.saturating_sub(1)) as f32
    }
    /// The step size the pass reads for step t (1-based): Adam's and AdamW's
    /// lr * sqrt(1 - beta2^t) / (1 - beta1^t), SGD's and RMSprop's learning rate.
    pub fn alpha(&self, t: u64) -> f32 {
        let lr = self.schedule.lr_at(self.lr, t.saturating_sub(1));
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::Rmsprop => lr as f32,
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let t = t as f64;
                (lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t))) as f32
            }
        }
    }
    /// What `run.json` records and the output shows: `adam`, `adamw(weight_decay=0.004)`,
    /// `sgd(momentum=0.9, nesterov)`, `rmsprop(rho=0.9, momentum=0.5, centered)`.
    pub fn describe(&self) -> String {
        match self.kind {
            OptimizerKind::Adam if self.amsgrad => "adam(amsgrad)".into(),
            OptimizerKind::Adam => "adam".into(),
            OptimizerKind::AdamW => format!(
                "adamw(weight_decay={}{})",
                self.weight_decay,
                if self.amsgrad { ", amsgrad" } else { "" }
            ),
            OptimizerKind::Sgd if self.momentum == 0.0 => "sgd".into(),
            OptimizerKind::Sgd => format!(
                "sgd(momentum={}{})",
                self.momentum,
                if self.nesterov { ", nesterov" } else { "" }
            ),
            OptimizerKind::Rmsprop => format!(
                "rmsprop(rho={}{}{})",
                self.rho,
                if self.momentum > 0.0 {
                    format!(", momentum={}", self.momentum)
                } else {
                    String::new()
                },
                if self.centered { ", centered" } else { "" }
            ),
        }
    }
    pub fn rmsprop_params(&self, len: usize) -> RmspropParams {
        RmspropParams {
            len: len as u32,
            rho: self.rho as f32,
            momentum: self.momentum as f32,
            eps: self.eps as f32,
            copies: 0,
            lo: 0,
            hi: 0,
            centered: self.centered as u32,
            table: [AdamCopy::default(); MAX_ADAM_COPIES],
        }
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
            weight_decay: self.weight_decay as f32,
            amsgrad: self.amsgrad as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
            table: [AdamCopy::default(); MAX_ADAM_COPIES],
        }
    }
    pub fn sgd_params(&self, len: usize) -> SgdParams {
        SgdParams {
            len: len as u32,
            momentum: self.momentum as f32,
            nesterov: self.nesterov as u32,
            _pad0: 0,
            copies: 0,
            lo: 0,
            hi: 0,
            _pad1: 0,
            table: [AdamCopy::default(); MAX_ADAM_COPIES],
        }
    }
}

/// Constants of `sgd_update` (Keras' SGD); the learning rate comes from the step records.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct SgdParams {
    pub len: u32,
    /// 0: plain SGD, w -= lr * g; else m = momentum * m - lr * g and w += m (Nesterov:
    /// w += momentum * m - lr * g).
    pub momentum: f32,
    pub nesterov: u32,
    pub _pad0: u32,
    /// The conv weight copies kept, as in `AdamParams`.
    pub copies: u32,
    pub lo: u32,
    pub hi: u32,
    pub _pad1: u32,
    pub table: [AdamCopy; MAX_ADAM_COPIES],
}

impl SgdParams {
    /// These params with `table` as the copies to keep (at most `MAX_ADAM_COPIES`).
    pub fn with_copies(self, table: &[AdamCopy]) -> SgdParams {
        let (copies, lo, hi, table) = copies_fields(table);
        SgdParams {
            copies,
            lo,
            hi,
            table,
            ..self
        }
    }
}

/// Constants of `rmsprop_update` (Keras' RMSprop); the learning rate comes from the step
/// records.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct RmspropParams {
    pub len: u32,
    pub rho: f32,
    /// 0: none; else the increments accumulate: m = momentum * m + increment, w -= m.
    pub momentum: f32,
    pub eps: f32,
    /// The conv weight copies kept, as in `AdamParams`.
    pub copies: u32,
    pub lo: u32,
    pub hi: u32,
    /// 1: the velocity minus the squared mean gradient in the denominator.
    pub centered: u32,
    pub table: [AdamCopy; MAX_ADAM_COPIES],
}

impl RmspropParams {
    /// These params with `table` as the copies to keep (at most `MAX_ADAM_COPIES`).
    pub fn with_copies(self, table: &[AdamCopy]) -> RmspropParams {
        let (copies, lo, hi, table) = copies_fields(table);
        RmspropParams {
            copies,
            lo,
            hi,
            table,
            ..self
        }
    }
}
