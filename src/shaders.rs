//! The table of WGSL sources, embedded at build time: one entry per shader variant, written
//! once (variant, pass name, and the file and flags it is composed from when they differ); the
//! enum, `Shader::ALL`, `name`, `file`, `flags` and `source` are made from it. `PARTS` lists
//! the shared parts under `shaders/parts/`.

use crate::wgsl::{compose, ComposeError};

/// The text of part `name`.
pub fn part(name: &str) -> Option<&'static str> {
    PARTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

macro_rules! shader_table {
    ($($variant:ident => $name:literal $(from $file:literal)? $(if $($flag:ident)&+)?,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Shader {
            $($variant,)*
        }

        impl Shader {
            pub const ALL: &'static [Shader] = &[$(Shader::$variant,)*];

            /// The pass name (and pipeline label); the file under `shaders/` unless `file` says
            /// another.
            pub fn name(self) -> &'static str {
                match self {
                    $(Shader::$variant => $name,)*
                }
            }

            /// The file under `shaders/` (without `.wgsl`) this variant is composed from.
            pub fn file(self) -> &'static str {
                match self {
                    $(Shader::$variant => shader_table!(@file $name $(, $file)?),)*
                }
            }

            /// The flags its conditional blocks see (`SUBGROUP`, ...).
            pub fn flags(self) -> &'static [&'static str] {
                match self {
                    $(Shader::$variant => &[$($(stringify!($flag)),+)?],)*
                }
            }

            /// The file's text as embedded at build time, directives and all.
            pub fn file_source(self) -> &'static str {
                match self {
                    $(Shader::$variant => include_str!(concat!(
                        "../shaders/", shader_table!(@file $name $(, $file)?), ".wgsl"
                    )),)*
                }
            }
        }
    };
    (@file $name:literal) => { $name };
    (@file $name:literal, $file:literal) => { $file };
}

macro_rules! parts_table {
    ($($name:literal,)*) => {
        /// The shared parts under `shaders/parts/` that files `#include`.
        pub const PARTS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../shaders/parts/", $name, ".wgsl"))),)*
        ];
    };
}

shader_table! {
    GatherBatch => "gather_batch",
    Conv2dForward => "conv2d_forward",
    Conv2dForwardSubgroup => "conv2d_forward_subgroup" from "conv2d_forward" if SUBGROUP,
    Conv2dForwardPooled => "conv2d_forward_pooled" if POOLED,
    Conv2dForwardPooledSubgroup => "conv2d_forward_pooled_subgroup" from "conv2d_forward_pooled" if POOLED & SUBGROUP,
    Conv2dBackward => "conv2d_backward",
    Conv2dBackwardSubgroup => "conv2d_backward_subgroup" from "conv2d_backward" if SUBGROUP,
    Conv2dBackwardPooled => "conv2d_backward_pooled" if POOLED,
    Conv2dTransposeWeight => "conv2d_transpose_weight",
    Pad2dForward => "pad2d_forward",
    Pad2dBackward => "pad2d_backward",
    Subsample2dForward => "subsample2d_forward",
    Subsample2dBackward => "subsample2d_backward",
    Maxpool2dForward => "maxpool2d_forward",
    Maxpool2dBackward => "maxpool2d_backward",
    Avgpool2dForward => "avgpool2d_forward",
    Avgpool2dBackward => "avgpool2d_backward",
    DropoutForward => "dropout_forward",
    DropoutBackward => "dropout_backward",
    RandomAffineForward => "random_affine_forward",
    AffineTransform => "affine_transform" from "random_affine_forward" if GIVEN,
    RandomContrastForward => "random_contrast_forward",
    BatchnormForward => "batchnorm_forward",
    BatchnormBackward => "batchnorm_backward",
    ReluForward => "relu_forward",
    ReluBackward => "relu_backward",
    AddForward => "add_forward",
    AddBackward => "add_backward",
    ConcatenateForward => "concatenate_forward",
    ConcatenateBackward => "concatenate_backward",
    DenseForward => "dense_forward",
    DenseForwardSubgroup => "dense_forward_subgroup" from "dense_forward" if SUBGROUP,
    DenseForwardChain => "dense_forward_chain",
    DenseForwardChainSubgroup => "dense_forward_chain_subgroup" from "dense_forward_chain" if SUBGROUP,
    DenseBackward => "dense_backward",
    DenseBackwardSubgroup => "dense_backward_subgroup" from "dense_backward" if SUBGROUP,
    SoftmaxXentForward => "softmax_xent_forward" from "softmax_xent",
    SoftmaxXentBackward => "softmax_xent_backward",
    SoftmaxXent => "softmax_xent" if GRADIENT,
    AdamUpdate => "adam_update",
    SgdUpdate => "sgd_update",
    RmspropUpdate => "rmsprop_update",
    ProbeSubgroup => "probe_subgroup",
    DivmodCheck => "divmod_check",
    ProbeFma => "probe_fma",
}

impl Shader {
    /// The WGSL the pipeline is built from: the file composed for this variant's flags
    /// (`crate::wgsl`).
    pub fn source(self) -> Result<String, ComposeError> {
        compose(
            &format!("{}.wgsl", self.file()),
            self.file_source(),
            self.flags(),
            &part,
        )
    }

    /// Variants that use subgroup operations (file name `*_subgroup`): only for devices with
    /// subgroups of at least 8 invocations (`Gpu::subgroups`), except the probe that measures
    /// that size.
    pub fn needs_subgroups(self) -> bool {
        self.name().ends_with("_subgroup")
    }
}

parts_table! {
    "acc8x2_zero",
    "add_params",
    "augment_draw",
    "avgpool2d_params",
    "backward_input_entry",
    "blocks8",
    "chan8",
    "batchnorm_params",
    "concatenate_params",
    "conv2d_acc",
    "conv2d_acc_channel_last",
    "conv2d_params",
    "conv2d_partial",
    "dense_acc8x2",
    "dense_params",
    "dense_rows_acc",
    "divmod",
    "dropout_hash",
    "dropout_params",
    "each_input_pixel",
    "each_output_pixel",
    "each_pool_window",
    "lanes",
    "maxpool2d_params",
    "pad2d_params",
    "random_affine_params",
    "random_contrast_params",
    "plane_shapes",
    "relu_params",
    "share8",
    "softmax_xent_params",
    "step",
    "weight_copies",
    "subsample2d_params",
}
