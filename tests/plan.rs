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

/// `share`: first fit by start; an item reuses a buffer only after its last item ended; items
/// kept apart (`None`) take none.
#[test]
fn buffers_are_shared_only_between_items_that_never_overlap() {
    use gpu_cnn::plan::share;
    let items = [
        Some((0, 2)),
        Some((1, 3)),
        None,
        Some((3, 4)), // buffer 0 ended at 2
        Some((3, 3)), // buffer 1 ends at 3: overlaps
        Some((5, 5)),
    ];
    let (at, n) = share(&items);
    assert_eq!(at, [Some(0), Some(1), None, Some(0), Some(2), Some(0)]);
    assert_eq!(n, 3);
}

/// A residual graph's gradient buffers: a block input read by two layers gets a buffer for
/// each reader and its own sum; whatever shares storage never overlaps in time, and two
/// buffers one backward stage uses (the gradient it reads and those it writes) always differ.
/// Far fewer buffers than gradients, so a ResNet's gradients take a few activations' room.
#[test]
fn a_graphs_gradients_share_buffers_without_overlap() {
    use gpu_cnn::plan::{gradient_lifetimes, gradient_slots, share};
    let m = model("resnet-mini", Shape::new(1, 28, 28));
    let stages = plan(&m, true);
    let slots = gradient_slots(&m);
    let life = gradient_lifetimes(&m, &stages, &slots);
    assert_eq!(life.len(), m.layers.len() + 1 + slots.extra.len());
    let (at, n) = share(&life);
    let used = life.iter().filter(|l| l.is_some()).count();
    assert!(n * 4 <= used, "{n} shared buffers for {used} gradients");
    for a in 0..life.len() {
        for b in a + 1..life.len() {
            if let (Some(x), Some(y), Some((s, e)), Some((s2, e2))) =
                (at[a], at[b], life[a], life[b])
            {
                if x == y {
                    assert!(e < s2 || e2 < s, "buffers {a} and {b} overlap in time");
                }
            }
        }
    }
    // Each stage's backward reads its output's gradient and writes its inputs': never one
    // buffer.
    let last = stages.len() - 1;
    for (k, st) in stages.iter().enumerate() {
        let step = last - k;
        let out = st.layers().end;
        for i in st.layers() {
            for &w in &slots.slot[i] {
                if let (Some(a), Some(b)) = (at[w], at[out]) {
                    if m.needs_gradient(m.layers[i].inputs[0]) {
                        assert!(
                            a != b,
                            "stage {k} (step {step}) reads and writes buffer {a}"
                        );
                    }
                }
            }
        }
    }
}
