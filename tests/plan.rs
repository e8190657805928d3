//! The stage plan: which passes run each layer, decided from the model alone. No GPU needed.

use gpu_cnn::model::{Model, Shape};
use gpu_cnn::plan::{plan, written, Stage};

fn model(text: &str, input: Shape) -> Model {
    gpu_cnn::spec::build(text, input, 10, false).expect("a valid model")
}

/// Every layer in exactly one stage, in order.
fn covers_in_order(stages: &[Stage], layers: usize) {
    let flat: Vec<usize> = stages.iter().flat_map(|s| s.layers()).collect();
    assert_eq!(flat, (0..layers).collect::<Vec<_>>(), "{stages:?}");
}

#[test]
fn the_seed_model_fuses_both_conv_pool_pairs_and_the_dense_pair() {
    let m = Model::keras_mnist();
    let fused = plan(&m, true);
    assert_eq!(
        fused,
        vec![
            Stage::ConvPool {
                conv: 0,
                forward: true
            },
            Stage::ConvPool {
                conv: 2,
                forward: true
            },
            Stage::DenseChain(4),
        ]
    );
    assert_eq!(
        written(&fused, m.layers.len()),
        vec![false, true, false, true, true, true],
        "a conv whose pool runs in its forward pass is never stored"
    );
    let unfused = plan(&m, false);
    assert_eq!(unfused, (0..6).map(Stage::Single).collect::<Vec<_>>());
    assert_eq!(written(&unfused, 6), vec![true; 6]);
}

#[test]
fn only_the_patterns_the_fused_kernels_take_are_fused() {
    let input = Shape::new(3, 40, 40);
    // Gapped windows fuse backward only; overlapping windows and a strided conv not at all.
    let m = model(
        "conv2d(8,3,relu) maxpool(2,stride=3) conv2d(8,3,relu) maxpool(3,stride=2) \
         conv2d(4,3,relu,stride=2) maxpool(1) flatten dense(16,relu) dense(10)",
        input,
    );
    let s = plan(&m, true);
    covers_in_order(&s, m.layers.len());
    assert_eq!(
        s,
        vec![
            Stage::ConvPool {
                conv: 0,
                forward: false
            },
            Stage::Single(2),
            Stage::Single(3),
            Stage::Single(4),
            Stage::Single(5),
            Stage::DenseChain(6),
        ]
    );
    assert_eq!(written(&s, m.layers.len()), vec![true; 8]);
}

#[test]
fn dense_layers_chain_in_pairs_from_the_left_and_only_when_narrow_enough() {
    let input = Shape::new(1, 4, 4);
    let m = model(
        "flatten dense(32,relu) dense(32,relu) dense(32,relu) dense(10)",
        input,
    );
    assert_eq!(
        plan(&m, true),
        vec![Stage::DenseChain(0), Stage::DenseChain(2)]
    );
    let m = model("flatten dense(32,relu) dense(32,relu) dense(10)", input);
    assert_eq!(plan(&m, true), vec![Stage::DenseChain(0), Stage::Single(2)]);
    // Wider than one workgroup's 512 outputs: each alone.
    let m = model("flatten dense(600,relu) dense(10)", input);
    assert_eq!(plan(&m, true), vec![Stage::Single(0), Stage::Single(1)]);
    // A layer between two dense layers breaks the pattern.
    let m = model("flatten dense(32,relu) dropout(0.5) dense(10)", input);
    assert_eq!(
        plan(&m, true),
        (0..3).map(Stage::Single).collect::<Vec<_>>()
    );
}
