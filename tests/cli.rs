//! The `gpu-cnn` binary as a user runs it: training end to end on real MNIST, the CPU and GPU
//! paths agreeing, checkpoints, and clear errors (never a panic) on bad input.

mod common;
use common::*;

use std::process::{Command, Output};

use gpu_cnn::data::Dataset;

fn gpu_cnn(args: &[&str]) -> Output {
    gpu_cnn_env(args, &[])
}

fn gpu_cnn_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpu-cnn"));
    cmd.args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gpu-cnn")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses the last stdout line as JSON, after checking the run succeeded.
fn json_tail(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "gpu-cnn failed: {}\n{}",
        stdout(o),
        stderr(o)
    );
    let out = stdout(o);
    let last = out.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// Fails unless GPU_CNN_REQUIRE_GPU is unset and no adapter exists (then the test is skipped).
fn have_gpu() -> bool {
    gpu().is_some()
}

#[test]
fn trains_on_an_mnist_subset_and_writes_a_loadable_checkpoint() {
    if !have_gpu() {
        return;
    }
    // The data is found through $GPU_CNN_DATA/mnist, as a user would set it up.
    let data = mnist_dir();
    let root = data.parent().unwrap().as_os_str();
    let out = temp_dir("cli-train");
    let o = gpu_cnn_env(
        &[
            "train",
            "--limit",
            "2000",
            "--epochs",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        &[("GPU_CNN_DATA", root)],
    );
    let j = json_tail(&o);
    let text = stdout(&o);
    assert!(
        text.contains("Epoch 1/2") && text.contains("val_accuracy:") && text.contains("Test loss:"),
        "{text}"
    );
    let epochs = j["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for key in [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
    ] {
        assert!(epochs[1][key].is_number(), "epochs[1].{key} missing: {j}");
    }
    assert!(
        epochs[1]["loss"].as_f64() < epochs[0]["loss"].as_f64(),
        "training loss falls: {j}"
    );
    // Stated bar: 2,000 MNIST images, 2 epochs, batch 32, seed 42 reaches >= 90% on the
    // 10,000 test images.
    let acc = j["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.90, "test accuracy {acc}");
    assert_eq!(j["test_accuracy"], epochs[1]["val_accuracy"]);
    for key in ["adapter", "backend", "device_type"] {
        assert!(j[key].as_str().is_some_and(|s| !s.is_empty()), "{key}: {j}");
    }

    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(history, j, "history.json holds what --json printed");
    let ckpt = out.join("model.safetensors");
    let model = gpu_cnn::model::Model::keras_mnist();
    model.load_safetensors(&ckpt).unwrap();

    // Starting from the checkpoint with no training evaluates the same weights: same numbers.
    let o = gpu_cnn(&[
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--init",
        ckpt.to_str().unwrap(),
        "--epochs",
        "0",
        "--json",
    ]);
    let j2 = json_tail(&o);
    let (a, b) = (j2["test_accuracy"].as_f64().unwrap(), acc);
    assert!((a - b).abs() < 1e-9, "reloaded accuracy {a} vs {b}");
    let (l2, l1) = (
        j2["test_loss"].as_f64().unwrap(),
        j["test_loss"].as_f64().unwrap(),
    );
    assert!(
        (l2 - l1).abs() < 1e-5 * l1.abs(),
        "reloaded loss {l2} vs {l1}"
    );
}

/// A small learnable dataset: the label sets the brightness of a square.
fn small_dataset(n: usize, seed: u64) -> Dataset {
    let mut rng = gpu_cnn::rng::Rng::new(seed);
    let mut images = vec![0u8; n * 784];
    let mut labels = vec![0u8; n];
    for i in 0..n {
        let l = rng.below(10);
        labels[i] = l as u8;
        for y in 0..28 {
            for x in 0..28 {
                let noise = rng.below(40) as u8;
                let on = (4 + l..14 + l).contains(&y) && (6..20).contains(&x);
                images[i * 784 + y * 28 + x] = if on { 120 + noise } else { noise };
            }
        }
    }
    Dataset {
        images,
        labels,
        rows: 28,
        cols: 28,
    }
}

#[test]
fn cpu_reference_and_gpu_train_the_same_numbers() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-cpu-gpu");
    // 70 images in batches of 16: the 6-image tail batch must train too.
    // 300 test images: the GPU evaluates them as a 256-image batch and a 44-image tail.
    write_dataset(&dir, &small_dataset(70, 1), &small_dataset(300, 2));
    let args = [
        "train",
        "--data-dir",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch",
        "16",
        "--json",
    ];
    let g = json_tail(&gpu_cnn(&args));
    let mut cpu_args = args.to_vec();
    cpu_args.push("--cpu");
    let o = gpu_cnn(&cpu_args);
    assert!(stdout(&o).contains("5 steps per epoch"), "{}", stdout(&o));
    let c = json_tail(&o);
    assert_eq!(c["backend"], "cpu");
    for e in 0..2 {
        for key in ["loss", "val_loss"] {
            let (a, b) = (
                g["epochs"][e][key].as_f64().unwrap(),
                c["epochs"][e][key].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-4 * b.abs() + 1e-5,
                "epoch {} {key}: gpu {a} cpu {b}",
                e + 1
            );
        }
        for key in ["accuracy", "val_accuracy"] {
            assert_eq!(
                g["epochs"][e][key],
                c["epochs"][e][key],
                "epoch {} {key}",
                e + 1
            );
        }
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let good = temp_dir("cli-good");
    write_dataset(&good, &small_dataset(20, 3), &small_dataset(10, 4));
    let dir = temp_dir("cli-bad");
    write_dataset(&dir, &small_dataset(20, 3), &small_dataset(10, 4));
    // Truncate the test images: the error must name the file.
    let f = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let d = dir.to_str().unwrap();
    let g = good.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--data-dir", d],
            "t10k-images-idx3-ubyte: truncated",
        ),
        (
            vec!["train", "--data-dir", "/nonexistent/mnist"],
            "/nonexistent/mnist does not exist",
        ),
        (vec!["train", "--batch", "0"], "--batch must be at least 1"),
        (vec!["train", "--lr=-1"], "--lr must be a positive number"),
        (
            vec!["train", "--dataset", "cifar"],
            "unknown dataset `cifar`",
        ),
        (vec!["train", "--limit", "0"], "--limit must be at least 1"),
        (
            vec![
                "train",
                "--data-dir",
                g,
                "--init",
                "/nonexistent.safetensors",
            ],
            "/nonexistent.safetensors",
        ),
        (
            vec!["train", "--backend", "glide"],
            "unknown backend `glide`",
        ),
        (vec!["train", "--epochs", "many"], "invalid value 'many'"),
        (
            vec!["bench", "--data", "imagenet"],
            "unknown --data `imagenet`",
        ),
    ];
    for (args, want) in cases {
        let o = gpu_cnn(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            err.contains(want),
            "{args:?}: stderr lacks `{want}`:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }
}

#[test]
fn help_lists_the_commands_and_options() {
    let o = gpu_cnn(&["--help"]);
    assert!(o.status.success());
    for cmd in ["train", "bench", "devices"] {
        assert!(stdout(&o).contains(cmd), "{}", stdout(&o));
    }
    let o = gpu_cnn(&["train", "--help"]);
    for opt in [
        "--dataset",
        "--data-dir",
        "--epochs",
        "--batch",
        "--lr",
        "--seed",
        "--limit",
        "--no-shuffle",
        "--init",
        "--out",
        "--cpu",
        "--backend",
        "--adapter",
        "--json",
    ] {
        assert!(stdout(&o).contains(opt), "train --help lacks {opt}");
    }
}

#[test]
fn bench_reports_throughput_as_json() {
    if !have_gpu() {
        return;
    }
    let j = json_tail(&gpu_cnn(&[
        "bench",
        "--batch",
        "8",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--pass-reps",
        "1",
        "--json",
    ]));
    for key in [
        "images_per_s",
        "epoch_s",
        "ms_per_step",
        "gflops",
        "dispatches_per_step",
        "submits_per_epoch",
    ] {
        assert!(j[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {j}");
    }
    let passes = j["passes"].as_object().unwrap();
    // Named by pass, whichever shader variant ran.
    for pass in [
        "conv1 fwd",
        "conv2 fwd",
        "conv2 bwd input",
        "conv2 bwd weight",
        "pool1 bwd",
        "fc1 bwd weight",
        "adam adam_update",
    ] {
        assert!(passes.contains_key(pass), "{pass}: {j}");
    }
    assert!(j["adapter"].is_string() && j["backend"].is_string() && j["subgroups"].is_boolean());
}
