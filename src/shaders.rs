//! The table of WGSL sources: one entry per file in `shaders/`, embedded at build time. Each
//! entry is written once (variant and file name); the enum, `Shader::ALL`, `name` and `source`
//! are made from it.

macro_rules! shader_table {
    ($($variant:ident => $file:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Shader {
            $($variant,)*
        }

        impl Shader {
            pub const ALL: &'static [Shader] = &[$(Shader::$variant,)*];

            /// File name under `shaders/`, without the extension; also the pass name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Shader::$variant => $file,)*
                }
            }

            pub fn source(self) -> &'static str {
                match self {
                    $(Shader::$variant => include_str!(concat!("../shaders/", $file, ".wgsl")),)*
                }
            }
        }
    };
}

shader_table! {
    GatherBatch => "gather_batch",
    Conv2dForward => "conv2d_forward",
    Conv2dForwardSubgroup => "conv2d_forward_subgroup",
    Conv2dForwardPooled => "conv2d_forward_pooled",
    Conv2dForwardPooledSubgroup => "conv2d_forward_pooled_subgroup",
    Conv2dBackward => "conv2d_backward",
    Conv2dBackwardSubgroup => "conv2d_backward_subgroup",
    Conv2dBackwardPooled => "conv2d_backward_pooled",
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
    BatchnormForward => "batchnorm_forward",
    BatchnormBackward => "batchnorm_backward",
    ReluForward => "relu_forward",
    ReluBackward => "relu_backward",
    DenseForward => "dense_forward",
    DenseForwardSubgroup => "dense_forward_subgroup",
    DenseForwardChain => "dense_forward_chain",
    DenseBackward => "dense_backward",
    DenseBackwardSubgroup => "dense_backward_subgroup",
    SoftmaxXentForward => "softmax_xent_forward",
    SoftmaxXentBackward => "softmax_xent_backward",
    SoftmaxXent => "softmax_xent",
    AdamUpdate => "adam_update",
    ProbeSubgroup => "probe_subgroup",
}

impl Shader {
    /// Variants that use subgroup operations (file name `*_subgroup`): only for devices with
    /// subgroups of at least 8 invocations (`Gpu::subgroups`), except the probe that measures
    /// that size.
    pub fn needs_subgroups(self) -> bool {
        self.name().ends_with("_subgroup")
    }
}
