//! Each shader's `Params` uniform against its `#[repr(C)]` Rust twin in `src/layers.rs`: the
//! same named members (padding aside) at the same byte offsets, and the same size, read from
//! the WGSL with naga's layouter. Nested structs are compared member by member on both sides
//! (WGSL may flatten what Rust nests).

use std::mem::{offset_of, size_of};

use gpu_cnn::layers::{
    AdamParams, AddParams, Avgpool2dParams, BatchnormParams, ConcatenateParams, Conv2dParams,
    Conv2dPooledParams, DenseChainParams, DenseParams, DropoutParams, GatherParams,
    Maxpool2dParams, Pad2dParams, RandomAffineParams, RandomContrastParams, ReluParams,
    RmspropParams, SgdParams, SoftmaxXentParams, Subsample2dParams,
};
use gpu_cnn::shaders::Shader;
use naga::TypeInner;

/// The uniform's named leaf members (struct members expanded, arrays kept whole) with their
/// byte offsets, and the struct's size.
fn wgsl_params(shader: Shader) -> (Vec<(String, usize)>, usize) {
    let source = shader.source().unwrap();
    let module =
        naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{}: {e}", shader.name()));
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .unwrap_or_else(|e| panic!("{}: {e}", shader.name()));
    let uniform = module
        .global_variables
        .iter()
        .find(|(_, v)| v.space == naga::AddressSpace::Uniform)
        .unwrap_or_else(|| panic!("{} has no uniform", shader.name()))
        .1;
    fn walk(
        module: &naga::Module,
        ty: naga::Handle<naga::Type>,
        base: usize,
        out: &mut Vec<(String, usize)>,
    ) {
        if let TypeInner::Struct { members, .. } = &module.types[ty].inner {
            for m in members {
                let at = base + m.offset as usize;
                let name = m.name.clone().unwrap_or_default();
                match module.types[m.ty].inner {
                    TypeInner::Struct { .. } => walk(module, m.ty, at, out),
                    _ if name.starts_with('_') => {}
                    _ => out.push((name, at)),
                }
            }
        }
    }
    let mut leaves = Vec::new();
    walk(&module, uniform.ty, 0, &mut leaves);
    (leaves, layouter[uniform.ty].size as usize)
}

/// Shaders sharing a Params struct, the struct's size, and its (member, byte offset) leaves.
type Entry = (&'static [&'static str], usize, Vec<(&'static str, usize)>);

#[test]
fn every_params_uniform_matches_its_rust_struct() {
    let table: Vec<Entry> = vec![
        (
            &["gather_batch"][..],
            size_of::<GatherParams>(),
            vec![
                ("batch", offset_of!(GatherParams, batch)),
                ("pixels", offset_of!(GatherParams, pixels)),
                ("first", offset_of!(GatherParams, first)),
                ("rows", offset_of!(GatherParams, rows)),
            ],
        ),
        (
            &[
                "conv2d_forward",
                "conv2d_forward_subgroup",
                "conv2d_backward",
                "conv2d_backward_subgroup",
                "conv2d_transpose_weight",
            ][..],
            size_of::<Conv2dParams>(),
            vec![
                ("batch", offset_of!(Conv2dParams, batch)),
                ("c_in", offset_of!(Conv2dParams, c_in)),
                ("h_in", offset_of!(Conv2dParams, h_in)),
                ("w_in", offset_of!(Conv2dParams, w_in)),
                ("c_out", offset_of!(Conv2dParams, c_out)),
                ("h_out", offset_of!(Conv2dParams, h_out)),
                ("w_out", offset_of!(Conv2dParams, w_out)),
                ("kh", offset_of!(Conv2dParams, kh)),
                ("kw", offset_of!(Conv2dParams, kw)),
                ("relu", offset_of!(Conv2dParams, relu)),
                ("chunk", offset_of!(Conv2dParams, chunk)),
                ("channel_last", offset_of!(Conv2dParams, channel_last)),
            ],
        ),
        (
            &[
                "conv2d_forward_pooled",
                "conv2d_forward_pooled_subgroup",
                "conv2d_backward_pooled",
            ][..],
            size_of::<Conv2dPooledParams>(),
            vec![
                (
                    "batch",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, batch),
                ),
                (
                    "c_in",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, c_in),
                ),
                (
                    "h_in",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, h_in),
                ),
                (
                    "w_in",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, w_in),
                ),
                (
                    "c_out",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, c_out),
                ),
                (
                    "h_out",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, h_out),
                ),
                (
                    "w_out",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, w_out),
                ),
                (
                    "kh",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, kh),
                ),
                (
                    "kw",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, kw),
                ),
                (
                    "relu",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, relu),
                ),
                (
                    "chunk",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, chunk),
                ),
                (
                    "channel_last",
                    offset_of!(Conv2dPooledParams, conv) + offset_of!(Conv2dParams, channel_last),
                ),
                ("pool_size", offset_of!(Conv2dPooledParams, pool_size)),
                ("pool_stride", offset_of!(Conv2dPooledParams, pool_stride)),
                ("h_pool", offset_of!(Conv2dPooledParams, h_pool)),
                ("w_pool", offset_of!(Conv2dPooledParams, w_pool)),
            ],
        ),
        (
            &["pad2d_forward", "pad2d_backward"][..],
            size_of::<Pad2dParams>(),
            vec![
                ("batch", offset_of!(Pad2dParams, batch)),
                ("channels", offset_of!(Pad2dParams, channels)),
                ("h_in", offset_of!(Pad2dParams, h_in)),
                ("w_in", offset_of!(Pad2dParams, w_in)),
                ("h_out", offset_of!(Pad2dParams, h_out)),
                ("w_out", offset_of!(Pad2dParams, w_out)),
                ("top", offset_of!(Pad2dParams, top)),
                ("left", offset_of!(Pad2dParams, left)),
            ],
        ),
        (
            &["subsample2d_forward", "subsample2d_backward"][..],
            size_of::<Subsample2dParams>(),
            vec![
                ("batch", offset_of!(Subsample2dParams, batch)),
                ("channels", offset_of!(Subsample2dParams, channels)),
                ("h_in", offset_of!(Subsample2dParams, h_in)),
                ("w_in", offset_of!(Subsample2dParams, w_in)),
                ("h_out", offset_of!(Subsample2dParams, h_out)),
                ("w_out", offset_of!(Subsample2dParams, w_out)),
                ("stride", offset_of!(Subsample2dParams, stride)),
            ],
        ),
        (
            &["maxpool2d_forward", "maxpool2d_backward"][..],
            size_of::<Maxpool2dParams>(),
            vec![
                ("batch", offset_of!(Maxpool2dParams, batch)),
                ("channels", offset_of!(Maxpool2dParams, channels)),
                ("h_in", offset_of!(Maxpool2dParams, h_in)),
                ("w_in", offset_of!(Maxpool2dParams, w_in)),
                ("h_out", offset_of!(Maxpool2dParams, h_out)),
                ("w_out", offset_of!(Maxpool2dParams, w_out)),
                ("size", offset_of!(Maxpool2dParams, size)),
                ("stride", offset_of!(Maxpool2dParams, stride)),
            ],
        ),
        (
            &["avgpool2d_forward", "avgpool2d_backward"][..],
            size_of::<Avgpool2dParams>(),
            vec![
                ("batch", offset_of!(Avgpool2dParams, batch)),
                ("channels", offset_of!(Avgpool2dParams, channels)),
                ("h_in", offset_of!(Avgpool2dParams, h_in)),
                ("w_in", offset_of!(Avgpool2dParams, w_in)),
                ("h_out", offset_of!(Avgpool2dParams, h_out)),
                ("w_out", offset_of!(Avgpool2dParams, w_out)),
                ("kh", offset_of!(Avgpool2dParams, kh)),
                ("kw", offset_of!(Avgpool2dParams, kw)),
                ("stride", offset_of!(Avgpool2dParams, stride)),
            ],
        ),
        (
            &["dropout_forward", "dropout_backward"][..],
            size_of::<DropoutParams>(),
            vec![
                ("len", offset_of!(DropoutParams, len)),
                ("threshold", offset_of!(DropoutParams, threshold)),
                ("scale", offset_of!(DropoutParams, scale)),
                ("salt", offset_of!(DropoutParams, salt)),
                ("training", offset_of!(DropoutParams, training)),
            ],
        ),
        (
            &["random_affine_forward", "affine_transform"][..],
            size_of::<RandomAffineParams>(),
            vec![
                ("batch", offset_of!(RandomAffineParams, batch)),
                ("channels", offset_of!(RandomAffineParams, channels)),
                ("height", offset_of!(RandomAffineParams, height)),
                ("width", offset_of!(RandomAffineParams, width)),
                ("kind", offset_of!(RandomAffineParams, kind)),
                ("mode", offset_of!(RandomAffineParams, mode)),
                ("fill", offset_of!(RandomAffineParams, fill)),
                ("salt", offset_of!(RandomAffineParams, salt)),
                ("training", offset_of!(RandomAffineParams, training)),
                ("lo0", offset_of!(RandomAffineParams, lo0)),
                ("hi0", offset_of!(RandomAffineParams, hi0)),
                ("lo1", offset_of!(RandomAffineParams, lo1)),
                ("hi1", offset_of!(RandomAffineParams, hi1)),
                ("fill_value", offset_of!(RandomAffineParams, fill_value)),
            ],
        ),
        (
            &["random_contrast_forward"][..],
            size_of::<RandomContrastParams>(),
            vec![
                ("batch", offset_of!(RandomContrastParams, batch)),
                ("channels", offset_of!(RandomContrastParams, channels)),
                ("height", offset_of!(RandomContrastParams, height)),
                ("width", offset_of!(RandomContrastParams, width)),
                ("salt", offset_of!(RandomContrastParams, salt)),
                ("training", offset_of!(RandomContrastParams, training)),
                ("lo", offset_of!(RandomContrastParams, lo)),
                ("hi", offset_of!(RandomContrastParams, hi)),
                ("range_lo", offset_of!(RandomContrastParams, range_lo)),
                ("range_hi", offset_of!(RandomContrastParams, range_hi)),
            ],
        ),
        (
            &["batchnorm_forward", "batchnorm_backward"][..],
            size_of::<BatchnormParams>(),
            vec![
                ("batch", offset_of!(BatchnormParams, batch)),
                ("channels", offset_of!(BatchnormParams, channels)),
                ("plane", offset_of!(BatchnormParams, plane)),
                ("training", offset_of!(BatchnormParams, training)),
                ("momentum", offset_of!(BatchnormParams, momentum)),
                ("epsilon", offset_of!(BatchnormParams, epsilon)),
            ],
        ),
        (
            &["relu_forward", "relu_backward"][..],
            size_of::<ReluParams>(),
            vec![("len", offset_of!(ReluParams, len))],
        ),
        (
            &["add_forward", "add_backward"][..],
            size_of::<AddParams>(),
            vec![("len", offset_of!(AddParams, len))],
        ),
        (
            &["concatenate_forward", "concatenate_backward"][..],
            size_of::<ConcatenateParams>(),
            vec![
                ("batch", offset_of!(ConcatenateParams, batch)),
                ("c_in", offset_of!(ConcatenateParams, c_in)),
                ("c_out", offset_of!(ConcatenateParams, c_out)),
                ("c_off", offset_of!(ConcatenateParams, c_off)),
                ("plane", offset_of!(ConcatenateParams, plane)),
            ],
        ),
        (
            &[
                "dense_forward",
                "dense_forward_subgroup",
                "dense_backward",
                "dense_backward_subgroup",
            ][..],
            size_of::<DenseParams>(),
            vec![
                ("batch", offset_of!(DenseParams, batch)),
                ("n_in", offset_of!(DenseParams, n_in)),
                ("n_out", offset_of!(DenseParams, n_out)),
                ("relu", offset_of!(DenseParams, relu)),
            ],
        ),
        (
            &["dense_forward_chain", "dense_forward_chain_subgroup"][..],
            size_of::<DenseChainParams>(),
            vec![
                (
                    "batch",
                    offset_of!(DenseChainParams, first) + offset_of!(DenseParams, batch),
                ),
                (
                    "n_in",
                    offset_of!(DenseChainParams, first) + offset_of!(DenseParams, n_in),
                ),
                (
                    "n_out",
                    offset_of!(DenseChainParams, first) + offset_of!(DenseParams, n_out),
                ),
                (
                    "relu",
                    offset_of!(DenseChainParams, first) + offset_of!(DenseParams, relu),
                ),
                (
                    "batch",
                    offset_of!(DenseChainParams, second) + offset_of!(DenseParams, batch),
                ),
                (
                    "n_in",
                    offset_of!(DenseChainParams, second) + offset_of!(DenseParams, n_in),
                ),
                (
                    "n_out",
                    offset_of!(DenseChainParams, second) + offset_of!(DenseParams, n_out),
                ),
                (
                    "relu",
                    offset_of!(DenseChainParams, second) + offset_of!(DenseParams, relu),
                ),
            ],
        ),
        (
            &[
                "softmax_xent_forward",
                "softmax_xent_backward",
                "softmax_xent",
            ][..],
            size_of::<SoftmaxXentParams>(),
            vec![
                ("batch", offset_of!(SoftmaxXentParams, batch)),
                ("classes", offset_of!(SoftmaxXentParams, classes)),
            ],
        ),
        (
            &["adam_update"][..],
            size_of::<AdamParams>(),
            vec![
                ("len", offset_of!(AdamParams, len)),
                ("beta1", offset_of!(AdamParams, beta1)),
                ("beta2", offset_of!(AdamParams, beta2)),
                ("eps", offset_of!(AdamParams, eps)),
                ("copies", offset_of!(AdamParams, copies)),
                ("lo", offset_of!(AdamParams, lo)),
                ("hi", offset_of!(AdamParams, hi)),
                ("weight_decay", offset_of!(AdamParams, weight_decay)),
                ("amsgrad", offset_of!(AdamParams, amsgrad)),
                ("table", offset_of!(AdamParams, table)),
            ],
        ),
        (
            &["rmsprop_update"][..],
            size_of::<RmspropParams>(),
            vec![
                ("len", offset_of!(RmspropParams, len)),
                ("rho", offset_of!(RmspropParams, rho)),
                ("momentum", offset_of!(RmspropParams, momentum)),
                ("eps", offset_of!(RmspropParams, eps)),
                ("copies", offset_of!(RmspropParams, copies)),
                ("lo", offset_of!(RmspropParams, lo)),
                ("hi", offset_of!(RmspropParams, hi)),
                ("centered", offset_of!(RmspropParams, centered)),
                ("table", offset_of!(RmspropParams, table)),
            ],
        ),
        (
            &["sgd_update"][..],
            size_of::<SgdParams>(),
            vec![
                ("len", offset_of!(SgdParams, len)),
                ("momentum", offset_of!(SgdParams, momentum)),
                ("nesterov", offset_of!(SgdParams, nesterov)),
                ("copies", offset_of!(SgdParams, copies)),
                ("lo", offset_of!(SgdParams, lo)),
                ("hi", offset_of!(SgdParams, hi)),
                ("table", offset_of!(SgdParams, table)),
            ],
        ),
    ];
    let mut seen = Vec::new();
    for (shaders, size, rust) in &table {
        for name in *shaders {
            let shader = Shader::ALL
                .iter()
                .copied()
                .find(|s| s.name() == *name)
                .unwrap_or_else(|| panic!("no shader {name}"));
            let (wgsl, wgsl_size) = wgsl_params(shader);
            let rust: Vec<(String, usize)> =
                rust.iter().map(|(n, o)| (n.to_string(), *o)).collect();
            assert_eq!(
                wgsl, rust,
                "{name}: WGSL Params members (left) against Rust (right)"
            );
            assert_eq!(wgsl_size, *size, "{name}: WGSL Params size against Rust");
            seen.push(*name);
        }
    }
    // Every shader with a uniform is in the table.
    for s in Shader::ALL {
        let has_uniform = s.source().unwrap().contains("var<uniform>");
        assert_eq!(
            has_uniform,
            seen.contains(&s.name()),
            "{}: in the table exactly when it has a uniform",
            s.name()
        );
    }
}
