//! gpu-cnn against PyTorch: 20 training steps on real MNIST from the same initial weights,
//! compared with what the PyTorch replica of the model and of Keras' Adam computed
//! (`tests/fixtures/torch_reference.json`, written by `tests/fixtures/torch_reference.py`).
//! An oracle we did not write: it catches a shared mistake of our GPU kernels and our CPU
//! reference (a transposed layout, a wrong Adam form, a mis-scaled loss) that the GPU-vs-CPU
//! tests cannot. A residual graph is held to Keras itself the same way
//! (`tests/fixtures/keras/residual_trajectory.json`, `make_residual_trajectory.py`).

mod common;
use common::*;

use gpu_cnn::data::Dataset;
use gpu_cnn::gpu::trainer::GpuTrainer;
use gpu_cnn::layers::{Optimizer, OptimizerKind};
use gpu_cnn::model::Model;
use serde_json::Value;

/// The seed `gpu-cnn train --seed 3 --epochs 0` initialises with, as the fixture's run did.
const SEED: u64 = 3;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("read the fixture");
    serde_json::from_str(&text).expect("parse the fixture")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

#[test]
fn twenty_steps_match_pytorch() {
    let fx = fixture("torch_reference.json");
    assert_eq!(fx["lr"].as_f64(), Some(Optimizer::default().lr));
    twenty_steps_match(&Model::keras_mnist(), &fx, &fx, Optimizer::default());
}

/// Every other optimizer (and one under a schedule) against Keras itself: 20 steps of the seed
/// model (10 for centered RMSprop, whose denominator cancels: see the script) from
/// `keras/optimizers.json`, written by `keras/make_optimizers.py` with Keras' own optimizers,
/// each with the `gpu-cnn train` flags the fixture names.
#[test]
fn twenty_steps_of_each_optimizer_match_keras() {
    let fx = fixture("keras/optimizers.json");
    let sgd = Optimizer::keras(OptimizerKind::Sgd);
    let momentum = Optimizer {
        momentum: 0.9,
        ..sgd
    };
    let runs = [
        ("sgd", "--optimizer sgd", sgd),
        (
            "sgd_nesterov",
            "--optimizer sgd --momentum 0.9 --nesterov",
            Optimizer {
                nesterov: true,
                ..momentum
            },
        ),
        (
            "sgd_momentum_exponential",
            "--optimizer sgd --momentum 0.9 --lr-schedule exponential:0.5:5",
            Optimizer {
                schedule: gpu_cnn::schedule::Schedule::parse("exponential:0.5:5").unwrap(),
                ..momentum
            },
        ),
        (
            "adamw",
            "--optimizer adamw",
            Optimizer::keras(OptimizerKind::AdamW),
        ),
        (
            "adam_amsgrad",
            "--amsgrad",
            Optimizer {
                amsgrad: true,
                ..Optimizer::default()
            },
        ),
        (
            "rmsprop",
            "--optimizer rmsprop",
            Optimizer::keras(OptimizerKind::Rmsprop),
        ),
        (
            "rmsprop_centered_momentum",
            "--optimizer rmsprop --momentum 0.5 --centered",
            Optimizer {
                momentum: 0.5,
                centered: true,
                ..Optimizer::keras(OptimizerKind::Rmsprop)
            },
        ),
    ];
    assert_eq!(fx["runs"].as_object().map(|r| r.len()), Some(runs.len()));
    for (name, flags, opt) in runs {
        let run = &fx["runs"][name];
        let recorded: Vec<&str> = run["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(recorded.join(" "), flags, "{name}");
        eprintln!("{name}");
        twenty_steps_match(&Model::keras_mnist(), &fx, run, opt);
    }
}

/// The same for a model with batch norm (moving statistics included), a separate ReLU, average
/// and global average pooling, and dropout at rate 0 (`torch_every_layer.py`).
#[test]
fn twenty_steps_of_every_layer_kind_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torch_every_layer.txt"
    ))
    .unwrap();
    let model =
        gpu_cnn::spec::build(&text, gpu_cnn::model::Shape::new(1, 28, 28), 10, false).unwrap();
    let fx = fixture("torch_every_layer.json");
    twenty_steps_match(&model, &fx, &fx, Optimizer::default());
}

/// A Keras Functional graph (a residual `Add`, a `Concatenate` branch, global average
/// pooling), read from the file Keras wrote, against 20 steps Keras 3 itself trained from the
/// same weights.
#[test]
fn twenty_steps_of_a_residual_graph_match_keras() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keras/functional_skip.json"
    );
    let model = gpu_cnn::spec::ModelSpec::parse(path)
        .unwrap()
        .build(gpu_cnn::model::Shape::new(1, 28, 28), 10, false)
        .unwrap();
    assert!(!model.is_chain());
    let fx = fixture("keras/residual_trajectory.json");
    assert_eq!(fx["lr"].as_f64(), Some(Optimizer::default().lr));
    twenty_steps_match(&model, &fx, &fx, Optimizer::default());
}

/// `model` trained by `opt` for 20 steps against `fx` (images, batch) and its run `run` (per-step
/// losses and correct counts, the test set's, every tensor).
fn twenty_steps_match(model: &Model, fx: &Value, run: &Value, opt: Optimizer) {
    // The data first: missing MNIST fails this test, adapter or not.
    let (train, test) = mnist();
    let Some(gpu) = gpu() else { return };
    // A run may be shorter than the fixture's (its own `images`).
    let (images, batch) = (
        run["images"].as_u64().or(fx["images"].as_u64()).unwrap() as usize,
        fx["batch"].as_u64().unwrap() as usize,
    );
    let fx = run;
    let px = train.pixels();
    let first = Dataset {
        images: train.images[..images * px].to_vec(),
        labels: train.labels[..images].to_vec(),
        ..train
    };
    let w0 = model.init_glorot(SEED);
    let mut t = GpuTrainer::new(gpu, model, &w0, &first, Some(&test), batch, opt).unwrap();
    let order: Vec<u32> = (0..images as u32).collect();
    let (_, val) = t.epoch(&order, &mut |_| true).unwrap();
    let val = val.expect("validation metrics");

    // Per step: the batch's mean loss and correct count, from the forward pass before the update.
    let slots = t.read_train_slots().unwrap();
    let losses: Vec<f32> = slots.chunks(2).map(|s| s[0] / batch as f32).collect();
    let correct: Vec<f32> = slots.chunks(2).map(|s| s[1]).collect();
    assert_close(
        "step losses",
        &losses,
        &f32s(&fx["step_losses"]),
        TORCH_LOSS,
    );
    assert_eq!(correct, f32s(&fx["step_correct"]), "correct per step");

    // After the run: the 10,000 test images, and every tensor.
    assert_eq!(val.n, 10_000);
    assert_close(
        "test loss",
        &[val.loss() as f32],
        &[fx["test_loss"].as_f64().unwrap() as f32],
        TORCH_LOSS,
    );
    let want_correct = fx["test_correct"].as_f64().unwrap();
    // A test image whose top two logits are within rounding of each other may go either way.
    assert!(
        (val.correct - want_correct).abs() <= 2.0,
        "test correct {} vs PyTorch {want_correct}",
        val.correct
    );
    let w = t.read_weights().unwrap();
    for (i, p) in model.params.iter().enumerate() {
        let ours = model.tensor(&w, i);
        let want = &fx["tensors"][&p.name];
        let sum: f64 = ours.iter().map(|&v| v as f64).sum();
        let sum_sq: f64 = ours.iter().map(|&v| (v as f64) * (v as f64)).sum();
        assert_close(
            &format!("{} sum, sum of squares", p.name),
            &[sum as f32, sum_sq as f32],
            &[
                want["sum"].as_f64().unwrap() as f32,
                want["sum_sq"].as_f64().unwrap() as f32,
            ],
            TORCH_WEIGHTS,
        );
        assert_close(
            &format!("{} first values", p.name),
            &ours[..8.min(ours.len())],
            &f32s(&want["first"]),
            TORCH_WEIGHTS,
        );
    }
}
