//! The table of WGSL sources: one entry per file in `shaders/`, embedded at build time.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    GatherBatch,
    Conv2dForward,
    Conv2dForwardSubgroup,
    Conv2dForwardPooled,
    Conv2dForwardPooledSubgroup,
    Conv2dBackward,
    Conv2dBackwardSubgroup,
    Conv2dBackwardPooled,
    Conv2dTransposeWeight,
    Pad2dForward,
    Pad2dBackward,
    Subsample2dForward,
    Subsample2dBackward,
    Maxpool2dForward,
    Maxpool2dBackward,
    Avgpool2dForward,
    Avgpool2dBackward,
    DropoutForward,
    DropoutBackward,
    BatchnormForward,
    BatchnormBackward,
    ReluForward,
    ReluBackward,
    DenseForward,
    DenseForwardSubgroup,
    DenseForwardChain,
    DenseBackward,
    DenseBackwardSubgroup,
    SoftmaxXentForward,
    SoftmaxXentBackward,
    SoftmaxXent,
    AdamUpdate,
    ProbeSubgroup,
}

impl Shader {
    pub const ALL: [Shader; 33] = [
        Shader::GatherBatch,
        Shader::Conv2dForward,
        Shader::Conv2dForwardSubgroup,
        Shader::Conv2dForwardPooled,
        Shader::Conv2dForwardPooledSubgroup,
        Shader::Conv2dBackward,
        Shader::Conv2dBackwardSubgroup,
        Shader::Conv2dBackwardPooled,
        Shader::Conv2dTransposeWeight,
        Shader::Pad2dForward,
        Shader::Pad2dBackward,
        Shader::Subsample2dForward,
        Shader::Subsample2dBackward,
        Shader::Maxpool2dForward,
        Shader::Maxpool2dBackward,
        Shader::Avgpool2dForward,
        Shader::Avgpool2dBackward,
        Shader::DropoutForward,
        Shader::DropoutBackward,
        Shader::BatchnormForward,
        Shader::BatchnormBackward,
        Shader::ReluForward,
        Shader::ReluBackward,
        Shader::DenseForward,
        Shader::DenseForwardSubgroup,
        Shader::DenseForwardChain,
        Shader::DenseBackward,
        Shader::DenseBackwardSubgroup,
        Shader::SoftmaxXentForward,
        Shader::SoftmaxXentBackward,
        Shader::SoftmaxXent,
        Shader::AdamUpdate,
        Shader::ProbeSubgroup,
    ];

    /// File name under `shaders/`, without the extension; also the pass name.
    pub fn name(self) -> &'static str {
        match self {
            Shader::GatherBatch => "gather_batch",
            Shader::Conv2dForward => "conv2d_forward",
            Shader::Conv2dForwardSubgroup => "conv2d_forward_subgroup",
            Shader::Conv2dForwardPooled => "conv2d_forward_pooled",
            Shader::Conv2dForwardPooledSubgroup => "conv2d_forward_pooled_subgroup",
            Shader::Conv2dBackward => "conv2d_backward",
            Shader::Conv2dBackwardSubgroup => "conv2d_backward_subgroup",
            Shader::Conv2dBackwardPooled => "conv2d_backward_pooled",
            Shader::Conv2dTransposeWeight => "conv2d_transpose_weight",
            Shader::Pad2dForward => "pad2d_forward",
            Shader::Pad2dBackward => "pad2d_backward",
            Shader::Subsample2dForward => "subsample2d_forward",
            Shader::Subsample2dBackward => "subsample2d_backward",
            Shader::Maxpool2dForward => "maxpool2d_forward",
            Shader::Maxpool2dBackward => "maxpool2d_backward",
            Shader::Avgpool2dForward => "avgpool2d_forward",
            Shader::Avgpool2dBackward => "avgpool2d_backward",
            Shader::DropoutForward => "dropout_forward",
            Shader::DropoutBackward => "dropout_backward",
            Shader::BatchnormForward => "batchnorm_forward",
            Shader::BatchnormBackward => "batchnorm_backward",
            Shader::ReluForward => "relu_forward",
            Shader::ReluBackward => "relu_backward",
            Shader::DenseForward => "dense_forward",
            Shader::DenseForwardSubgroup => "dense_forward_subgroup",
            Shader::DenseForwardChain => "dense_forward_chain",
            Shader::DenseBackward => "dense_backward",
            Shader::DenseBackwardSubgroup => "dense_backward_subgroup",
            Shader::SoftmaxXentForward => "softmax_xent_forward",
            Shader::SoftmaxXentBackward => "softmax_xent_backward",
            Shader::SoftmaxXent => "softmax_xent",
            Shader::AdamUpdate => "adam_update",
            Shader::ProbeSubgroup => "probe_subgroup",
        }
    }

    /// Variants that use subgroup operations (file name `*_subgroup`): only for devices with
    /// subgroups of at least 8 invocations (`Gpu::subgroups`), except the probe that measures
    /// that size.
    pub fn needs_subgroups(self) -> bool {
        self.name().ends_with("_subgroup")
    }

    pub fn source(self) -> &'static str {
        match self {
            Shader::GatherBatch => include_str!("../shaders/gather_batch.wgsl"),
            Shader::Conv2dForward => include_str!("../shaders/conv2d_forward.wgsl"),
            Shader::Conv2dForwardSubgroup => {
                include_str!("../shaders/conv2d_forward_subgroup.wgsl")
            }
            Shader::Conv2dForwardPooled => include_str!("../shaders/conv2d_forward_pooled.wgsl"),
            Shader::Conv2dForwardPooledSubgroup => {
                include_str!("../shaders/conv2d_forward_pooled_subgroup.wgsl")
            }
            Shader::Conv2dBackward => include_str!("../shaders/conv2d_backward.wgsl"),
            Shader::Conv2dBackwardSubgroup => {
                include_str!("../shaders/conv2d_backward_subgroup.wgsl")
            }
            Shader::Conv2dBackwardPooled => include_str!("../shaders/conv2d_backward_pooled.wgsl"),
            Shader::Conv2dTransposeWeight => {
                include_str!("../shaders/conv2d_transpose_weight.wgsl")
            }
            Shader::Pad2dForward => include_str!("../shaders/pad2d_forward.wgsl"),
            Shader::Pad2dBackward => include_str!("../shaders/pad2d_backward.wgsl"),
            Shader::Subsample2dForward => include_str!("../shaders/subsample2d_forward.wgsl"),
            Shader::Subsample2dBackward => include_str!("../shaders/subsample2d_backward.wgsl"),
            Shader::Maxpool2dForward => include_str!("../shaders/maxpool2d_forward.wgsl"),
            Shader::Maxpool2dBackward => include_str!("../shaders/maxpool2d_backward.wgsl"),
            Shader::Avgpool2dForward => include_str!("../shaders/avgpool2d_forward.wgsl"),
            Shader::Avgpool2dBackward => include_str!("../shaders/avgpool2d_backward.wgsl"),
            Shader::DropoutForward => include_str!("../shaders/dropout_forward.wgsl"),
            Shader::DropoutBackward => include_str!("../shaders/dropout_backward.wgsl"),
            Shader::BatchnormForward => include_str!("../shaders/batchnorm_forward.wgsl"),
            Shader::BatchnormBackward => include_str!("../shaders/batchnorm_backward.wgsl"),
            Shader::ReluForward => include_str!("../shaders/relu_forward.wgsl"),
            Shader::ReluBackward => include_str!("../shaders/relu_backward.wgsl"),
            Shader::DenseForward => include_str!("../shaders/dense_forward.wgsl"),
            Shader::DenseForwardSubgroup => {
                include_str!("../shaders/dense_forward_subgroup.wgsl")
            }
            Shader::DenseForwardChain => include_str!("../shaders/dense_forward_chain.wgsl"),
            Shader::DenseBackward => include_str!("../shaders/dense_backward.wgsl"),
            Shader::DenseBackwardSubgroup => {
                include_str!("../shaders/dense_backward_subgroup.wgsl")
            }
            Shader::SoftmaxXentForward => include_str!("../shaders/softmax_xent_forward.wgsl"),
            Shader::SoftmaxXentBackward => include_str!("../shaders/softmax_xent_backward.wgsl"),
            Shader::SoftmaxXent => include_str!("../shaders/softmax_xent.wgsl"),
            Shader::AdamUpdate => include_str!("../shaders/adam_update.wgsl"),
            Shader::ProbeSubgroup => include_str!("../shaders/probe_subgroup.wgsl"),
        }
    }
}
