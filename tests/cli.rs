//! The `gpu-cnn` binary as a user runs it: training end to end on real MNIST, the CPU and GPU
//! paths agreeing, checkpoints, and clear errors (never a panic) on bad input.

mod common;
use common::*;

use std::process::{Command, Output};

use gpu_cnn::data::Dataset;

fn gpu_cnn(args: &[&str]) -> Output {
    gpu_cnn_env(args, &[])
}

/// Runs the binary in a scratch folder (a run without --out writes runs/ there).
fn gpu_cnn_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let cwd = std::env::temp_dir().join(format!("gpu-cnn-cli-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("scratch folder");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpu-cnn"));
    cmd.args(args)
        .current_dir(&cwd)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        // Default tilings, no tuning cache: tests leave the user's cache alone (the tuning
        // tests set their own cache file).
        .env("GPU_CNN_NO_TUNE", "1");
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
    // The data first: missing MNIST fails this test, adapter or not.
    mnist();
    if !have_gpu() {
        return;
    }
    // No flags about data: MNIST is found in the project's assets and verified.
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
        &[("GPU_CNN_DATA", std::ffi::OsStr::new(""))],
    );
    let j = json_tail(&o);
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("Run folder: {}", out.display()).as_str())
    );
    let first = lines.next().unwrap_or("");
    let assets = mnist_dir();
    assert_eq!(
        first,
        format!("Data: mnist from {} (assets, verified)", assets.display())
    );
    assert_eq!(j["dataset"], "mnist");
    assert_eq!(j["data_dir"], assets.to_str().unwrap());
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
    let meta = checkpoint_metadata(&ckpt);
    assert_eq!(meta["dataset"], "mnist");
    assert_eq!(meta["input"], "1x28x28");
    assert_eq!(
        meta["classes"],
        r#"["0","1","2","3","4","5","6","7","8","9"]"#
    );
    assert_eq!(
        meta["architecture"],
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) flatten dense(128,relu) dense(10)"
    );

    // Starting from the checkpoint with no training evaluates the same weights: same numbers.
    let o = gpu_cnn(&[
        "train",
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

/// The string metadata of a safetensors file's header.
fn checkpoint_metadata(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().clone().unwrap_or_default()
}

/// `gpu-cnn train --data-dir data --batch 16 --out out` and `extra` (the CLI tests' small
/// datasets, each run in its own folder).
fn train_small(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--batch",
        "16",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    gpu_cnn(&args)
}

/// A small learnable dataset: the label sets the brightness of a square.
/// The weights of a seed-model file, as bits (files of equal weights may still differ in their
/// headers' key order).
fn weight_bits(path: std::path::PathBuf) -> Vec<u32> {
    let w = gpu_cnn::model::Model::keras_mnist()
        .load_safetensors(&path)
        .unwrap();
    w.iter().map(|x| x.to_bits()).collect()
}

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
        channels: 1,
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

/// IDX files of another image size train a model of that size on both paths, with the same
/// numbers (the CPU path once skipped the shape check and indexed out of bounds on 32x32).
#[test]
fn other_image_sizes_train_on_cpu_and_gpu_alike() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-32x32");
    let big = |n: usize, seed: u64| {
        let d = small_dataset(n, seed);
        let mut images = Vec::with_capacity(n * 1024);
        for i in 0..n {
            for y in 0..32 {
                for x in 0..32 {
                    images.push(if y < 28 && x < 28 {
                        d.images[i * 784 + y * 28 + x]
                    } else {
                        0
                    });
                }
            }
        }
        Dataset {
            images,
            rows: 32,
            cols: 32,
            ..d
        }
    };
    write_dataset(&dir, &big(40, 5), &big(30, 6));
    let args = [
        "train",
        "--data-dir",
        dir.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "8",
        "--json",
    ];
    let g = json_tail(&gpu_cnn(&args));
    let mut cpu_args = args.to_vec();
    cpu_args.push("--cpu");
    let c = json_tail(&gpu_cnn(&cpu_args));
    let (a, b) = (
        g["test_loss"].as_f64().unwrap(),
        c["test_loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-4 * b.abs(), "gpu {a} cpu {b}");
    assert_eq!(g["test_accuracy"], c["test_accuracy"]);
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
    // 32x32 and 2x2 IDX files: the first trains a model of that shape, the second fits no model.
    let tiny = temp_dir("cli-2x2");
    let d2 = Dataset {
        images: vec![1; 40],
        labels: vec![1; 10],
        channels: 1,
        rows: 2,
        cols: 2,
    };
    write_dataset(&tiny, &d2, &d2);
    let file = temp_dir("cli-file");
    std::fs::write(file.join("plain"), b"x").unwrap();
    let (d, g, t) = (
        dir.to_str().unwrap(),
        good.to_str().unwrap(),
        tiny.to_str().unwrap(),
    );
    let plain = file.join("plain");
    let plain = plain.to_str().unwrap();
    let mnist = mnist_dir();
    let mnist = mnist.to_str().unwrap();
    // (arguments, what stderr says, exit status: 2 bad usage, 1 anything else)
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["train", "--data-dir", d],
            "t10k-images-idx3-ubyte: truncated",
            1,
        ),
        (
            vec!["train", "--data-dir", "/nonexistent/mnist"],
            "data folder /nonexistent/mnist does not exist",
            1,
        ),
        (
            vec!["train", "--batch", "0"],
            "--batch must be at least 1",
            2,
        ),
        (
            vec!["train", "--lr=-1"],
            "--lr must be a positive number",
            2,
        ),
        (
            vec!["train", "--lr", "NaN"],
            "--lr must be a positive number",
            2,
        ),
        (
            vec!["train", "--lr", "1e39"],
            "fits in 32-bit floating point",
            2,
        ),
        (
            vec!["train", "--epochs", "1000000"],
            "--epochs 1000000 is more than",
            2,
        ),
        (
            vec!["train", "--dataset", "cifar"],
            "invalid value 'cifar'",
            2,
        ),
        (
            vec!["train", "--limit", "0"],
            "--limit must be at least 1",
            2,
        ),
        (
            vec!["train", "--limit", "70000"],
            "--limit 70000 is more than the 60000 training images of mnist",
            2,
        ),
        (
            vec![
                "train",
                "--data-dir",
                g,
                "--init",
                "/nonexistent.safetensors",
            ],
            "/nonexistent.safetensors",
            1,
        ),
        (
            vec!["train", "--backend", "glide"],
            "invalid value 'glide'",
            2,
        ),
        (vec!["train", "--epochs", "many"], "invalid value 'many'", 2),
        (
            vec!["train", "--cpu", "--adapter", "llvmpipe"],
            "--cpu trains on the CPU reference",
            2,
        ),
        (
            vec!["train", "--dataset", "fashion-mnist", "--data-dir", mnist],
            "holds mnist, not fashion-mnist",
            2,
        ),
        (
            vec!["train", "--dataset", "folder"],
            "--dataset folder needs --data-dir",
            2,
        ),
        (
            vec!["train", "--data-dir", t, "--cpu"],
            "the seed CNN does not fit 1x2x2 images",
            1,
        ),
        (
            vec!["train", "--data-dir", t],
            "the seed CNN does not fit 1x2x2 images",
            1,
        ),
        (
            vec!["train", "--out", plain, "--epochs", "0"],
            "is a file, expected a folder",
            1,
        ),
        // Not creatable, even by root: /proc takes no new folders.
        (
            vec!["train", "--out", "/proc/gpu-cnn-run", "--epochs", "0"],
            "/proc/gpu-cnn-run: cannot create this folder for the output",
            1,
        ),
        (
            vec!["train", "--cpu", "--batch", "1000000000000"],
            "the largest batch for this model is 12409",
            2,
        ),
        (
            vec!["bench", "--steps", "100000", "--batch", "100000"],
            "more than the 1000000 images bench holds",
            2,
        ),
        (
            vec!["bench", "--steps", "4294967296", "--batch", "4294967296"],
            "more than the 1000000 images bench holds",
            2,
        ),
        (
            vec!["bench", "--data", "imagenet"],
            "invalid value 'imagenet'",
            2,
        ),
        (
            vec!["datasets", "fetch", "imagenet"],
            "unknown dataset `imagenet`",
            2,
        ),
    ];
    // No adapter of the kind asked for (Linux has no Metal): the backends tried and what to do.
    #[cfg(target_os = "linux")]
    let cases = {
        let mut c = cases;
        c.push((
            vec!["train", "--backend", "metal"],
            "no GPU adapter: none found for Metal; without a GPU install a software adapter (Debian/Ubuntu: apt-get install mesa-vulkan-drivers), or train on the CPU reference with --cpu",
            1,
        ));
        c
    };
    for (args, want, code) in cases {
        let o = gpu_cnn(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: exit status\n{err}");
        assert!(
            err.contains(want),
            "{args:?}: stderr lacks `{want}`:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }
}

/// Batches beyond the adapter's limits: the error names the largest batch it takes. A batch
/// beyond the training set trains the whole set in one step, as Keras does.
#[test]
fn batch_sizes_are_clamped_or_explained() {
    if !have_gpu() {
        return;
    }
    let o = gpu_cnn(&["train", "--batch", "9223372036854775808", "--epochs", "0"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("storage binding limit")
            && err.contains("the largest batch it takes for this model is"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    let o = gpu_cnn(&[
        "train", "--limit", "64", "--batch", "100000", "--epochs", "1", "--json",
    ]);
    let j = json_tail(&o);
    assert!(
        stdout(&o).contains("batch 64, 1 steps per epoch"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("training in batches of 64"),
        "{}",
        stderr(&o)
    );
    assert!(j["epochs"][0]["loss"].as_f64().unwrap().is_finite());
}

/// A learning rate that blows the weights up stops the run with its own error, naming the epoch
/// and suggesting a lower --lr, and keeps the checkpoint that was there.
#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    if !have_gpu() {
        return;
    }
    let out = temp_dir("cli-diverge");
    let o = out.to_str().unwrap();
    json_tail(&gpu_cnn(&[
        "train", "--limit", "64", "--epochs", "1", "--out", o, "--json",
    ]));
    let ckpt = out.join("model.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let history = std::fs::read(out.join("history.json")).unwrap();
    let c = ckpt.to_str().unwrap();
    // 640 images, 20 steps: the loss is checked at each submit's readback, so the run stops
    // within the epoch, at the first submit whose loss is not finite.
    let run = gpu_cnn(&[
        "train", "--limit", "640", "--epochs", "3", "--lr", "1e30", "--init", c, "--out", o,
    ]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    let prefix = "error: training diverged: at epoch 1 (the loss of the steps up to ";
    let at = err.find(prefix).unwrap_or_else(|| panic!("{err}"));
    let steps: usize = err[at + prefix.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(steps <= 20 && err.contains(" of 20 is NaN)"), "{err}");
    assert!(
        err.contains("was left as it was") && err.contains("try a smaller --lr"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "checkpoint untouched"
    );
    assert_eq!(std::fs::read(out.join("history.json")).unwrap(), history);
    assert!(!stdout(&run).contains("Epoch 1/3"), "{}", stdout(&run));
}

#[test]
fn datasets_lists_where_each_is_found_and_fetches_through_a_mirror() {
    let cache = temp_dir("cli-cache");
    let nothing = temp_dir("cli-nothing");
    let env =
        |extra: &[(&'static str, &std::ffi::OsStr)]| -> Vec<(&'static str, std::ffi::OsString)> {
            let mut v: Vec<(&'static str, std::ffi::OsString)> = vec![
                ("XDG_CACHE_HOME", cache.as_os_str().to_owned()),
                ("GPU_CNN_SYSTEM_DATA", nothing.as_os_str().to_owned()),
                ("GPU_CNN_DATA", "".into()),
                ("GPU_CNN_OFFLINE", "".into()),
            ];
            v.extend(extra.iter().map(|(k, x)| (*k, x.to_os_string())));
            v
        };
    let run = |args: &[&str], env: Vec<(&'static str, std::ffi::OsString)>| {
        let e: Vec<(&str, &std::ffi::OsStr)> =
            env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        gpu_cnn_env(args, &e)
    };
    let o = run(&["datasets"], env(&[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line:\n{text}"))
            .to_string()
    };
    assert!(
        line("mnist").contains(&format!("{} (assets, verified)", mnist_dir().display())),
        "{text}"
    );
    assert!(
        line("mnist").contains("60000") && line("mnist").contains("1x28x28"),
        "{text}"
    );
    assert!(line("fashion-mnist").contains("not found"), "{text}");

    // Offline, with no copy anywhere: one error saying where it looked and what to do.
    let o = run(
        &["train", "--dataset", "fashion-mnist", "--offline"],
        env(&[]),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "fashion-mnist not found; looked in:",
        "(cache): absent",
        "(system): absent",
        "download: offline",
        "gpu-cnn datasets fetch fashion-mnist",
        "fashion-mnist.s3-website.eu-central-1.amazonaws.com/<file>.gz",
        "dataset-fashion-mnist",
    ] {
        assert!(err.contains(want), "lacks `{want}`:\n{err}");
    }

    // `datasets fetch` through a local mirror: downloads, verifies, caches.
    let files = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    let mut routes = std::collections::HashMap::new();
    for f in files {
        let gz = std::fs::read(mnist_dir().join(format!("{f}.gz"))).unwrap();
        routes.insert(format!("/mirror/{f}.gz"), common::http::Reply::Ok(gz));
    }
    let server = common::http::Server::start(routes);
    let mirrors = format!("{}/nothing-here/,{}/mirror/", server.base, server.base);
    let o = run(
        &["datasets", "fetch", "mnist"],
        env(&[("GPU_CNN_MIRRORS", std::ffi::OsStr::new(&mirrors))]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cached = cache.join("gpu-cnn/mnist");
    assert!(
        stdout(&o).contains(&format!(
            "mnist: 4 verified in {} (4 downloaded, 0 already cached)",
            cached.display()
        )),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("HTTP 404"), "{}", stderr(&o));
    let o = run(&["datasets"], env(&[]));
    assert!(
        stdout(&o).contains(&format!("{} (cache, verified)", cached.display())),
        "{}",
        stdout(&o)
    );
    // The cache now comes before the assets for training too.
    let o = run(
        &["train", "--epochs", "0", "--cpu", "--limit", "10"],
        env(&[]),
    );
    assert!(
        stdout(&o).contains(&format!(
            "\nData: mnist from {} (cache, verified)\n",
            cached.display()
        )),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_image_folder_trains_and_evaluates() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-images");
    image_folder(&dir);
    let out = temp_dir("cli-images-out");
    let mut args = vec![
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        dir.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch",
        "4",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = gpu_cnn(&args);
    let j = json_tail(&o);
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "\nData: folder from {} (--data-dir, image folder)\n",
            dir.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("12 train / 6 test images, batch 4, 3 steps per epoch"),
        "{text}"
    );
    assert_eq!(j["epochs"].as_array().unwrap().len(), 2);
    assert!(j["test_loss"].as_f64().unwrap().is_finite(), "{j}");
    let meta = checkpoint_metadata(&out.join("model.safetensors"));
    assert_eq!(meta["classes"], r#"["circle","cross","empty"]"#);
    assert_eq!(meta["dataset"], "folder");
    // RGB at another size: a model with three input channels.
    args.extend(["--color", "rgb", "--image-size", "24x30"]);
    let o = gpu_cnn(&args);
    json_tail(&o);
    assert_eq!(
        checkpoint_metadata(&out.join("model.safetensors"))["input"],
        "3x24x30"
    );
    // A broken picture stops the run before training, naming the file.
    std::fs::write(dir.join("train/cross/broken.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let o = gpu_cnn(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("train/cross/broken.jpg") && err.contains("--skip-bad-images"),
        "{err}"
    );
    assert!(!stdout(&o).contains("Epoch"), "{}", stdout(&o));
}

/// CIFAR-10 read from its `.tar.gz` through `--data-dir`: the TensorFlow tutorial's model
/// trains on 3x32x32 images, the checkpoint keeps the class names, and `evaluate` reads the
/// archive again. A run whose data cannot be found leaves no empty run folder.
#[test]
fn cifar10_trains_from_its_archive_and_evaluates() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-cifar");
    let record = |i: usize, salt: usize| {
        let label = ((i * 3 + salt) % 10) as u8;
        let mut r = vec![label];
        r.extend((0..3072).map(|p| label * 20 + ((p + i) % 7) as u8));
        r
    };
    let mut members = Vec::new();
    for (b, name) in gpu_cnn::data::cifar::TRAIN_MEMBERS.iter().enumerate() {
        members.push((
            name.to_string(),
            (0..8).flat_map(|i| record(i, b)).collect(),
        ));
    }
    members.push((
        "test_batch.bin".to_string(),
        (0..6).flat_map(|i| record(i, 9)).collect(),
    ));
    members.push((
        "batches.meta.txt".to_string(),
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".to_vec(),
    ));
    std::fs::write(dir.join("cifar-10-binary.tar.gz"), cifar_archive(&members)).unwrap();
    let out = temp_dir("cli-cifar-out");
    let o = gpu_cnn(&[
        "train",
        "--dataset",
        "cifar10",
        "--data-dir",
        dir.to_str().unwrap(),
        "--model",
        "keras-cifar10",
        "--epochs",
        "2",
        "--batch",
        "8",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let j = json_tail(&o);
    let text = stdout(&o);
    assert!(
        text.contains("(--data-dir, not the published files)")
            && text.contains("40 train / 6 test images, batch 8, 5 steps per epoch"),
        "{text}"
    );
    assert!(stderr(&o).contains("does not hold the published cifar10 files"));
    assert!(j["test_loss"].as_f64().unwrap().is_finite(), "{j}");
    let meta = checkpoint_metadata(&out.join("model.safetensors"));
    assert_eq!(meta["input"], "3x32x32");
    assert_eq!(meta["dataset"], "cifar10");
    assert!(
        meta["classes"].starts_with(r#"["airplane","automobile""#),
        "{}",
        meta["classes"]
    );
    let model = out.join("model.safetensors");
    let o = gpu_cnn(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    let e = json_tail(&o);
    // The confusion matrix's rows line up, long class names included.
    let text = stdout(&o);
    let rows: Vec<usize> = text
        .lines()
        .skip_while(|l| !l.starts_with("Confusion matrix"))
        .skip(2)
        .take(10)
        .map(|l| l.chars().count())
        .collect();
    assert!(
        rows.len() == 10 && rows.iter().all(|&n| n == rows[0]),
        "{text}"
    );
    assert!(text.contains("\n1 automobile "), "{text}");
    // Another batch size sums in another order: equal to float rounding.
    let (a, b) = (
        e["test_loss"].as_f64().unwrap(),
        j["test_loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * b, "evaluate {a}, train {b}");
    assert_eq!(e["classes"][9], "truck");

    // Not found anywhere, offline: an error listing the places and the mirrors, and the
    // run folder it announced is removed again.
    let empty = temp_dir("cli-cifar-none");
    let runs = empty.join("runs/c10");
    let o = gpu_cnn_env(
        &[
            "train",
            "--dataset",
            "cifar10",
            "--out",
            runs.to_str().unwrap(),
        ],
        &[
            ("XDG_CACHE_HOME", empty.as_os_str()),
            ("GPU_CNN_SYSTEM_DATA", empty.as_os_str()),
            ("GPU_CNN_ASSETS", empty.as_os_str()),
            ("GPU_CNN_OFFLINE", "1".as_ref()),
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cifar10 not found")
            && err.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
        "{err}"
    );
    assert!(!runs.exists(), "an empty run folder was left behind");
}

#[test]
fn help_lists_the_commands_and_options() {
    let o = gpu_cnn(&["--help"]);
    assert!(o.status.success());
    for cmd in [
        "train", "evaluate", "predict", "bench", "devices", "datasets",
    ] {
        assert!(stdout(&o).contains(cmd), "{}", stdout(&o));
    }
    let o = gpu_cnn(&["train", "--help"]);
    for opt in [
        "--dataset",
        "--data-dir",
        "--offline",
        "--color",
        "--image-size",
        "--validation-split",
        "--skip-bad-images",
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
        "--resume",
        "--quiet",
    ] {
        assert!(stdout(&o).contains(opt), "train --help lacks {opt}");
    }
    // Every choice lists its values, and every option with a default says it.
    let help = stdout(&o);
    for values in [
        "- mnist:",
        "- fashion-mnist:",
        "- folder:",
        "[possible values: vulkan, metal, dx12, gl]",
        "- grayscale:",
        "- rgb:",
        "[default: 32]",
        "[default: Keras' for the optimizer: 0.001, sgd 0.01]",
        "[possible values: adam, adamw, sgd, rmsprop]",
        "[default: 0.004]",
        "[default: runs/<dataset>-<yyyymmdd-hhmmss>, UTC]",
    ] {
        assert!(
            help.contains(values),
            "train --help lacks `{values}`:\n{help}"
        );
    }
    let o = gpu_cnn(&["bench", "--help"]);
    assert!(
        stdout(&o).contains("- synthetic:") && stdout(&o).contains("- mnist:"),
        "{}",
        stdout(&o)
    );
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
    // GFLOP/s for the passes that multiply and add, from their FLOPs and time: conv2's pooled
    // forward at batch 8 is 2 x (8 x 11 x 11 pixels x 64 channels) x (32 channels x 3 x 3).
    let gflops = j["pass_gflops"].as_object().unwrap();
    let ms = passes["conv2 fwd pooled"].as_f64().unwrap();
    let rate = gflops["conv2 fwd pooled"].as_f64().unwrap();
    let flops = 2.0 * (8 * 11 * 11 * 64) as f64 * (32 * 9) as f64;
    assert!(
        (rate * ms * 1e6 - flops).abs() <= 1e-6 * flops,
        "{rate} GFLOP/s over {ms} ms"
    );
    // The dense forward passes run chained, except on a CPU adapter whose chain would give each
    // workgroup fewer rows than fc1 alone does (`dense::chain_pays`): at batch 8 with subgroups
    // and several threads.
    let chained = passes.contains_key("fc1 fwd chain");
    let cpu = j["device_type"] == "Cpu";
    assert!(
        chained || (cpu && passes.contains_key("fc1 fwd") && passes.contains_key("fc2 fwd")),
        "{j}"
    );
    let fc1_fwd = if chained { "fc1 fwd chain" } else { "fc1 fwd" };
    for pass in ["conv1 fwd pooled", fc1_fwd, "fc1 bwd weight+input"] {
        assert!(
            gflops[pass].as_f64().is_some_and(|g| g > 0.0),
            "{pass}: {j}"
        );
    }
    for pass in ["input gather_batch", "adam adam_update", "conv2 bwd pooled"] {
        assert!(!gflops.contains_key(pass), "{pass} multiplies nothing: {j}");
    }
    assert!(j["peak_gflops"].as_f64().is_some_and(|g| g > 0.0), "{j}");
    // The default tiling of a CPU adapter (GPU_CNN_NO_TUNE) runs conv2's weight and input
    // gradients in two dispatches, a GPU's in one.
    let conv2_bwd: &[&str] = match cpu {
        true => &["conv2 bwd weight", "conv2 bwd input"],
        false => &["conv2 bwd weight+input"],
    };
    // (conv2's channel-last input copy, with subgroups, comes from conv1's pooled forward.)
    let step = if cpu { 14 } else { 13 } + usize::from(!chained);
    let tilings = j["tilings"].as_array().unwrap();
    // conv2's backward pass; conv1's weight gradient comes from pool1's winners, untiled.
    assert_eq!(tilings.len(), 1, "{j}");
    assert!(tilings.iter().all(|t| t[2] == "default"), "{j}");
    let split = tilings
        .iter()
        .all(|t| t[1].as_str().unwrap().ends_with(" split"));
    assert_eq!(split, cpu, "{j}");
    for pass in conv2_bwd {
        assert!(passes.contains_key(*pass), "{pass}: {j}");
    }
    // Named by pass, whichever shader variant ran.
    for pass in [
        "conv1 fwd pooled",
        "conv2 fwd pooled",
        fc1_fwd,
        "conv1 bwd pooled weight",
        "conv2 bwd pooled",
        "fc1 bwd weight+input",
        "adam adam_update",
    ] {
        assert!(passes.contains_key(pass), "{pass}: {j}");
    }
    assert!(j["adapter"].is_string() && j["backend"].is_string() && j["subgroups"].is_boolean());
    assert_eq!(j["dispatches_per_step"], step, "the seed model's step");
    // Each dispatch with its workgroups: conv1's pooled forward at batch 8 covers 8 * 13 * 13 pool
    // cells, 2 per invocation, 64 invocations per workgroup, and 32 channels, 8 per workgroup row
    // (conv1 has one input channel, so the kernel for any c_in runs), times the blocks of 8 its
    // subgroup variant takes on a CPU adapter (4: one row).
    let wg = j["workgroups"].as_array().unwrap();
    assert_eq!(wg.len(), step, "{j}");
    assert!(
        wg.iter().all(|w| w[1].as_u64().is_some_and(|n| n > 0)),
        "{j}"
    );
    let conv1 = wg.iter().find(|w| w[0] == "conv1 fwd pooled").unwrap();
    let blocks = if j["subgroups"] == true && cpu { 4 } else { 1 };
    assert_eq!(
        conv1[1],
        ((8 * 13 * 13usize).div_ceil(2).div_ceil(64) * 32 / (8 * blocks)) as u64
    );
    for pass in ["pool1 fwd", "pool1 bwd", "pool2 fwd", "pool2 bwd"] {
        assert!(
            !passes.contains_key(pass),
            "{pass}: fused into the conv's: {j}"
        );
    }
    // The unfused passes, to compare: ten (CPU tiling) or eleven dispatches and some bytes more.
    let u = json_tail(&gpu_cnn(&[
        "bench",
        "--batch",
        "8",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--pass-reps",
        "0",
        "--unfused",
        "--json",
    ]));
    assert_eq!(
        (u["dispatches_per_step"].as_u64(), u["fused"].as_bool()),
        (Some(26), Some(false))
    );
    assert!(
        u["bytes_per_step"].as_u64() > j["bytes_per_step"].as_u64(),
        "{u}\n{j}"
    );
    // Your own model on synthetic data of another shape: its own passes, one dispatch each
    // (batch norm two), padding and stride around the conv.
    let j = json_tail(&gpu_cnn(&[
        "bench",
        "--model",
        "conv2d(4,3,stride=2,padding=same) batchnorm relu dropout(0.5) globalavgpool dense(10)",
        "--input",
        "15x13x3",
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
    let passes = j["passes"].as_object().unwrap();
    assert_eq!(
        passes.len(),
        j["dispatches_per_step"].as_u64().unwrap() as usize,
        "{j}"
    );
    for pass in [
        "conv1 fwd pad",
        "conv1 fwd",
        "conv1 fwd stride",
        "conv1 bwd stride",
        "conv1 bwd weight",
        "bn1 fwd stats",
        "bn1 bwd reduce",
        "relu1 fwd",
        "dropout1 bwd",
        "pool1 fwd",
    ] {
        assert!(passes.contains_key(pass), "{pass}: {j}");
    }
    let o = gpu_cnn(&["bench", "--data", "mnist", "--input", "32x32x3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--input shapes the synthetic data"),
        "{}",
        stderr(&o)
    );
}

/// `--lr-schedule`: the GPU and the CPU reference follow it alike, it changes the run, run.json
/// records it resolved (a cosine over the run's steps), and a resume keeps it: the same schedule
/// or the bare form continues, another is refused naming the recorded one.
#[test]
fn a_learning_rate_schedule_trains_records_and_resumes() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-schedule");
    write_dataset(&dir, &small_dataset(48, 1), &small_dataset(40, 2));
    let out = dir.join("run");
    // Each run in its own folder (tests in this process share a working directory, where
    // runs/<dataset>-<time> could collide).
    let runs = std::cell::Cell::new(0);
    let run = |extra: &[&str]| {
        runs.set(runs.get() + 1);
        let folder = dir.join(format!("r{}", runs.get()));
        let mut args = vec![
            "train",
            "--data-dir",
            dir.to_str().unwrap(),
            "--batch",
            "16",
            "--json",
        ];
        args.extend_from_slice(extra);
        if !extra.contains(&"--out") {
            args.extend_from_slice(&["--out", folder.to_str().unwrap()]);
        }
        gpu_cnn(&args)
    };
    let halving = [
        "--epochs",
        "2",
        "--lr",
        "0.003",
        "--lr-schedule",
        "exponential:0.5:1",
    ];
    let g = json_tail(&run(&[&halving[..], &["--no-shuffle"]].concat()));
    let c = json_tail(&run(&[&halving[..], &["--no-shuffle", "--cpu"]].concat()));
    let plain = json_tail(&run(&["--epochs", "2", "--lr", "0.003", "--no-shuffle"]));
    for e in 0..2 {
        let (a, b) = (
            g["epochs"][e]["loss"].as_f64().unwrap(),
            c["epochs"][e]["loss"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-4 * b.abs() + 1e-5,
            "epoch {e}: gpu {a} cpu {b}"
        );
    }
    assert_ne!(
        g["epochs"][1]["loss"], plain["epochs"][1]["loss"],
        "the schedule changes the run"
    );
    // The rate each epoch ends at: 3 steps per epoch, halved each step.
    for (e, want) in [(0, 0.003 * 0.5f64.powi(3)), (1, 0.003 * 0.5f64.powi(6))] {
        let got = g["epochs"][e]["learning_rate"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-12,
            "epoch {e}: {got} against {want}"
        );
    }
    assert_eq!(plain["epochs"][1]["learning_rate"], 0.003);
    let o = run(&["--epochs", "1", "--lr-schedule", "exponential:0.5:1"]);
    assert!(
        stdout(&o).contains("val_accuracy: ")
            && stdout(&o).contains(" - learning_rate: 1.2500e-04"),
        "{}",
        stdout(&o)
    );
    let o = run(&["--epochs", "1"]);
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("Epoch 1/1"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !line.is_empty() && !line.contains("learning_rate"),
        "the tutorial's line: {line}"
    );

    // A cosine over the run: 3 steps per epoch, 1 epoch; resumed to 2, it keeps its 3 steps.
    let o = run(&[
        "--epochs",
        "1",
        "--lr-schedule",
        "cosine",
        "--out",
        out.to_str().unwrap(),
    ]);
    json_tail(&o);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["lr_schedule"], "cosine:3");
    let resume = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--resume",
            out.to_str().unwrap(),
            "--epochs",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        gpu_cnn(&args)
    };
    let o = resume(&["--lr-schedule", "exponential:0.5:1"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("--lr-schedule (the run has cosine:3)"), "{e}");
    let o = resume(&["--lr-schedule", "cosine"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        info["lr_schedule"], "cosine:3",
        "the resumed run keeps the recorded decay"
    );
    let o = run(&["--lr-schedule", "cosine:0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("DECAY_STEPS must be a whole number"),
        "{}",
        stderr(&o)
    );
}

/// `best.safetensors`, `--early-stopping` and `--restore-best-weights` as Keras' ModelCheckpoint
/// (save_best_only) and EarlyStopping: the run stops after PATIENCE epochs without a lower
/// val_loss, ends with the best epoch's weights and test numbers, and those weights are bit for
/// bit the model of a run trained to that epoch; a resume of a stopped run trains nothing.
#[test]
fn early_stopping_keeps_and_restores_the_best_epoch() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-early");
    // Few images, a high rate: the validation loss turns up within a few epochs.
    write_dataset(&dir, &small_dataset(64, 3), &small_dataset(48, 4));
    let (out, again) = (dir.join("run"), dir.join("again"));
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data-dir",
            dir.to_str().unwrap(),
            "--batch",
            "16",
            "--lr",
            "0.01",
            "--json",
        ];
        args.extend_from_slice(extra);
        gpu_cnn(&args)
    };
    let o = train(&[
        "--epochs",
        "12",
        "--early-stopping",
        "1",
        "--restore-best-weights",
        "--out",
        out.to_str().unwrap(),
    ]);
    let j = json_tail(&o);
    let epochs = j["epochs"].as_array().unwrap();
    let n = epochs.len();
    assert!(n < 12, "it stopped early: {}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("Epoch {n}: early stopping")),
        "{}",
        stdout(&o)
    );
    let losses: Vec<f64> = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    // The last epoch did not beat the best before it; every earlier one did (patience 1).
    let best = (0..n - 1)
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .unwrap();
    assert!(losses[n - 1] >= losses[best], "{losses:?}");
    assert_eq!(
        best,
        n - 2,
        "patience 1 stops at the first epoch without a better loss"
    );
    // The best epoch's weights and numbers.
    assert!(
        stdout(&o).contains(&format!(
            "Restoring model weights from the end of the best epoch: {}.",
            best + 1
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(j["test_loss"], epochs[best]["val_loss"]);
    assert_eq!(j["test_accuracy"], epochs[best]["val_accuracy"]);
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(
        read(&out.join("model.safetensors")),
        read(&out.join("best.safetensors"))
    );
    // The same run trained to the best epoch ends with those weights, bit for bit.
    let epochs_best = (best + 1).to_string();
    let o = train(&["--epochs", &epochs_best, "--out", again.to_str().unwrap()]);
    json_tail(&o);
    assert_eq!(
        weight_bits(again.join("model.safetensors")),
        weight_bits(out.join("best.safetensors"))
    );
    assert_eq!(
        weight_bits(again.join("best.safetensors")),
        weight_bits(again.join("model.safetensors"))
    );
    // Resuming the stopped run trains nothing and reports the same test numbers.
    let o = gpu_cnn(&["train", "--resume", out.to_str().unwrap(), "--json"]);
    let r = json_tail(&o);
    assert!(
        stderr(&o).contains("the run stopped early after epoch"),
        "{}",
        stderr(&o)
    );
    assert_eq!(r["epochs"].as_array().unwrap().len(), n);
    assert_eq!(r["test_loss"], j["test_loss"]);
    // The options, recorded; and misused.
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        (
            &info["monitor"],
            &info["early_stopping"],
            &info["restore_best_weights"]
        ),
        (
            &serde_json::json!("val_loss"),
            &serde_json::json!(1),
            &serde_json::json!(true)
        )
    );
    for (args, says) in [
        (
            &["--early-stopping", "0"][..],
            "--early-stopping PATIENCE must be at least 1",
        ),
        (&["--restore-best-weights"][..], "give --early-stopping too"),
        (
            &["--monitor", "loss"][..],
            "invalid value 'loss' for '--monitor",
        ),
    ] {
        let o = train(args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

/// `--reduce-lr-on-plateau`: the GPU and the CPU reference lower the rate alike, the history and
/// the epoch line show it, and a run resumed half way ends bit for bit as the whole run (the
/// rate is replayed from the history).
#[test]
fn plateaus_lower_the_rate_and_resume_exactly() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-plateau");
    write_dataset(&dir, &small_dataset(64, 3), &small_dataset(48, 4));
    let train = |out: &str, extra: &[&str]| {
        let folder = dir.join(out);
        let mut args = vec![
            "train",
            "--data-dir",
            dir.to_str().unwrap(),
            "--batch",
            "16",
            "--lr",
            "0.01",
            "--reduce-lr-on-plateau",
            "0.5:1",
            "--json",
            "--out",
            folder.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        gpu_cnn(&args)
    };
    let o = train("whole", &["--epochs", "10"]);
    let g = json_tail(&o);
    let c = json_tail(&train("cpu", &["--epochs", "10", "--cpu"]));
    let rates = |j: &serde_json::Value| -> Vec<f64> {
        j["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["learning_rate"].as_f64().unwrap())
            .collect()
    };
    let r = rates(&g);
    assert_eq!(r, rates(&c), "GPU and CPU reduce at the same epochs");
    assert_eq!(r[0], 0.01);
    assert!(
        r.iter().any(|&x| x < 0.01),
        "some epoch reduced the rate: {r:?}"
    );
    for w in r.windows(2) {
        assert!(w[1] == w[0] || w[1] == w[0] * 0.5, "{r:?}");
    }
    assert!(
        stdout(&o).contains("ReduceLROnPlateau reducing learning rate to 0.005."),
        "{}",
        stdout(&o)
    );
    // 9 epochs (past the first reduction), then resumed to 10: the same weights at the end.
    json_tail(&train("half", &["--epochs", "9"]));
    let half = dir.join("half");
    let o = gpu_cnn(&[
        "train",
        "--resume",
        half.to_str().unwrap(),
        "--epochs",
        "10",
        "--json",
    ]);
    let h = json_tail(&o);
    assert_eq!(rates(&h), r);
    // The weights (the files' headers may order their keys differently).
    let same = weight_bits(dir.join("whole").join("model.safetensors"))
        == weight_bits(half.join("model.safetensors"));
    assert!(same, "the resumed run ends with the whole run's weights");
}

/// `--optimizer sgd` (momentum, Nesterov) and `adamw`: GPU and CPU reference agree, run.json
/// and the checkpoint record the choice, a resumed run ends bit for bit as the whole run, and
/// hostile combinations are refused with the flag named.
#[test]
fn optimizers_train_record_and_resume_exactly() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-optimizers");
    write_dataset(&dir, &small_dataset(48, 5), &small_dataset(32, 6));
    let train = |out: &str, extra: &[&str]| {
        train_small(&dir, &dir.join(out), &[&["--json"], extra].concat())
    };
    let sgd = ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov"];
    let g = json_tail(&train("sgd", &[&sgd[..], &["--epochs", "3"]].concat()));
    let c = json_tail(&train(
        "sgd-cpu",
        &[&sgd[..], &["--epochs", "3", "--cpu"]].concat(),
    ));
    let adam = json_tail(&train("adam", &["--epochs", "3"]));
    for e in 0..3 {
        let (a, b) = (
            g["epochs"][e]["loss"].as_f64().unwrap(),
            c["epochs"][e]["loss"].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-4 * b.abs() + 1e-5,
            "epoch {e}: gpu {a} cpu {b}"
        );
    }
    assert_ne!(g["epochs"][2]["loss"], adam["epochs"][2]["loss"]);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sgd").join("run.json")).unwrap())
            .unwrap();
    assert_eq!(info["optimizer"], "sgd");
    assert_eq!(info["momentum"], 0.9);
    assert_eq!(info["nesterov"], true);
    // Keras' default rate for SGD.
    assert_eq!(info["lr"], 0.01);
    let (_, meta) =
        gpu_cnn::checkpoint::read_safetensors(&dir.join("sgd").join("checkpoint.safetensors"))
            .unwrap();
    assert_eq!(meta.get("optimizer").map(String::as_str), Some("sgd"));

    // Two epochs, resumed to three (the momentum from the checkpoint): the whole run's weights.
    json_tail(&train("sgd-half", &[&sgd[..], &["--epochs", "2"]].concat()));
    let half = dir.join("sgd-half");
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", half.to_str().unwrap(), "--epochs", "3"];
        args.extend_from_slice(extra);
        gpu_cnn(&args)
    };
    let o = resume(&["--optimizer", "adam"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--optimizer (the run has sgd)"),
        "{}",
        stderr(&o)
    );
    json_tail(&resume(&["--json"]));
    assert!(
        weight_bits(dir.join("sgd").join("model.safetensors"))
            == weight_bits(half.join("model.safetensors")),
        "the resumed run ends with the whole run's weights"
    );

    // AdamW: its decay moves the run away from Adam's; GPU and CPU agree.
    let w = [
        "--optimizer",
        "adamw",
        "--weight-decay",
        "0.05",
        "--epochs",
        "2",
    ];
    let g = json_tail(&train("adamw", &w));
    let c = json_tail(&train("adamw-cpu", &[&w[..], &["--cpu"]].concat()));
    let (a, b) = (
        g["epochs"][1]["loss"].as_f64().unwrap(),
        c["epochs"][1]["loss"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() <= 1e-4 * b.abs() + 1e-5,
        "adamw: gpu {a} cpu {b}"
    );
    assert_ne!(g["epochs"][1]["loss"], adam["epochs"][1]["loss"]);

    // Optimizers with a third state tensor (centered RMSprop's average gradient, AMSGrad's
    // v_hat): 1 epoch resumed to 2 ends with the 2-epoch run's bits, the checkpoint naming the
    // optimizer.
    for (name, flags, optimizer) in [
        (
            "rms",
            &["--optimizer", "rmsprop", "--momentum", "0.5", "--centered"][..],
            "rmsprop",
        ),
        ("ams", &["--amsgrad"][..], "adam"),
    ] {
        let half = dir.join(format!("{name}-half"));
        json_tail(&train(name, &[flags, &["--epochs", "2"]].concat()));
        json_tail(&train(
            &format!("{name}-half"),
            &[flags, &["--epochs", "1"]].concat(),
        ));
        let (_, meta) =
            gpu_cnn::checkpoint::read_safetensors(&half.join("checkpoint.safetensors")).unwrap();
        assert_eq!(meta.get("optimizer").map(String::as_str), Some(optimizer));
        let resume = [
            "train",
            "--resume",
            half.to_str().unwrap(),
            "--epochs",
            "2",
            "--json",
        ];
        json_tail(&gpu_cnn(&resume));
        assert!(
            weight_bits(dir.join(name).join("model.safetensors"))
                == weight_bits(half.join("model.safetensors")),
            "{name}: the resumed run ends with the whole run's weights"
        );
    }

    for (args, says) in [
        (
            &["--momentum", "0.9"][..],
            "--momentum is SGD's and RMSprop's",
        ),
        (&["--centered"][..], "--rho and --centered are RMSprop's"),
        (
            &["--optimizer", "rmsprop", "--rho", "1"][..],
            "--rho must lie in [0, 1)",
        ),
        (
            &["--optimizer", "sgd", "--momentum", "2"][..],
            "--momentum must lie in [0, 1]",
        ),
        (&["--optimizer", "sgd", "--nesterov"][..], "--nesterov"),
        (&["--weight-decay", "0.1"][..], "--weight-decay is AdamW's"),
        (
            &["--optimizer", "adamw", "--weight-decay=-1"][..],
            "--weight-decay must be",
        ),
        (
            &["--optimizer", "sgd", "--amsgrad"][..],
            "--amsgrad is Adam's and AdamW's",
        ),
        (
            &["--optimizer", "adagrad"][..],
            "possible values: adam, adamw, sgd, rmsprop",
        ),
    ] {
        let o = train("bad", &[args, &["--epochs", "1"]].concat());
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            !dir.join("bad").join("model.safetensors").exists(),
            "{args:?}"
        );
    }
}

/// `--validation-split F` on an IDX dataset, as Keras' fit(validation_split=F): the last F of
/// the training images validate each epoch (the count in the training line, val_* from them),
/// the test set gives the Test line, which `evaluate` of the saved model repeats; GPU and CPU
/// alike; impossible fractions refused.
#[test]
fn a_validation_split_holds_out_the_last_training_images() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-validation-split");
    write_dataset(&dir, &small_dataset(48, 7), &small_dataset(32, 8));
    let train = |out: &str, extra: &[&str]| {
        train_small(&dir, &dir.join(out), &[&["--epochs", "2"], extra].concat())
    };
    let o = train("gpu", &["--validation-split", "0.25", "--json"]);
    // ceil(48 x 0.75) = 36 train, the last 12 validate.
    assert!(
        stdout(&o)
            .contains(": 36 train / 12 validation / 32 test images, batch 16, 3 steps per epoch"),
        "{}",
        stdout(&o)
    );
    let g = json_tail(&o);
    let c = json_tail(&train(
        "cpu",
        &["--validation-split", "0.25", "--json", "--cpu"],
    ));
    for k in ["test_loss", "test_accuracy"] {
        let (a, b) = (g[k].as_f64().unwrap(), c[k].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-4 * b.abs() + 1e-5,
            "{k}: gpu {a} cpu {b}"
        );
    }
    // val_accuracy counts 12 images; the test line, 32.
    let val = g["epochs"][1]["val_accuracy"].as_f64().unwrap();
    assert!(
        ((val * 12.0).round() - val * 12.0).abs() < 1e-9,
        "val_accuracy {val} of 12 images"
    );
    let e = json_tail(&gpu_cnn(&[
        "evaluate",
        "--model",
        dir.join("gpu").join("model.safetensors").to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--json",
    ]));
    // The same images and weights; the loss summed in other batches (evaluate takes the whole
    // set at once, the trainer the validation set's batch): equal to rounding.
    let (a, b) = (
        e["test_loss"].as_f64().unwrap(),
        g["test_loss"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() <= 1e-6 * b.abs(),
        "evaluate {a}, train's Test line {b}"
    );
    assert_eq!(e["test_accuracy"], g["test_accuracy"]);
    // Without the split the same 48 images train and the test set validates.
    let plain = json_tail(&train("plain", &["--json"]));
    assert_eq!(plain["epochs"][1]["val_loss"], plain["test_loss"]);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gpu").join("run.json")).unwrap())
            .unwrap();
    assert_eq!(info["validation_split"], 0.25);

    for (args, says) in [
        (
            &["--validation-split", "0"][..],
            "--validation-split must be between 0 and 1",
        ),
        (
            &["--validation-split", "1"][..],
            "--validation-split must be between 0 and 1",
        ),
        (
            &["--validation-split", "0.5", "--limit", "1"][..],
            "--validation-split 0.5 of 1 training images leaves 0 to validate",
        ),
    ] {
        let o = train("bad", args);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// TensorBoard's scalars in a run folder: one event file per process, the file-version record
/// first, each epoch's loss, accuracy, val_loss, val_accuracy and learning_rate with the epoch
/// as step and the history's values; a resumed run writes a second file with only its epochs.
#[test]
fn runs_log_tensorboard_scalars_without_duplicates_on_resume() {
    if !have_gpu() {
        return;
    }
    let dir = temp_dir("cli-tensorboard");
    write_dataset(&dir, &small_dataset(32, 9), &small_dataset(16, 10));
    let out = dir.join("run");
    json_tail(&train_small(&dir, &out, &["--epochs", "1", "--json"]));
    // A second process.
    let h = json_tail(&gpu_cnn(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--json",
    ]));
    let mut files: Vec<_> = std::fs::read_dir(out.join("tensorboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    // (file, step, tag, value) of every scalar.
    let mut scalars = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        let mut b = &std::fs::read(f).unwrap()[..];
        let mut first = true;
        while !b.is_empty() {
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let data = &b[12..12 + n];
            let crc = u32::from_le_bytes(b[12 + n..16 + n].try_into().unwrap());
            assert_eq!(crc, gpu_cnn::tensorboard::masked_crc32c(data));
            if first {
                assert!(data.ends_with(b"brain.Event:2"), "{data:?}");
                first = false;
            } else {
                // wall_time (9 bytes), step (0x10, one byte here), summary.
                assert_eq!((data[0], data[9]), (0x09, 0x10));
                let step = data[10] as usize;
                let v = &data[13..];
                // Value: tag (0x0a, len, bytes), simple_value (0x15, 4 bytes).
                assert_eq!((v[0], v[1]), (0x0a, v.len() as u8 - 2));
                let tag_len = v[3] as usize;
                let tag = std::str::from_utf8(&v[4..4 + tag_len]).unwrap().to_string();
                assert_eq!(v[4 + tag_len], 0x15);
                let val = f32::from_le_bytes(v[5 + tag_len..9 + tag_len].try_into().unwrap());
                scalars.push((k, step, tag, val));
            }
            b = &b[16 + n..];
        }
    }
    assert_eq!(
        scalars.len(),
        10,
        "5 scalars in each of 2 epochs, once: {scalars:?}"
    );
    // Each process's file holds its own epoch (names sort by second, then pid).
    let steps_of = |k: usize| -> std::collections::BTreeSet<usize> {
        scalars.iter().filter(|s| s.0 == k).map(|s| s.1).collect()
    };
    let (a, b) = (steps_of(0), steps_of(1));
    assert!(a.len() == 1 && b.len() == 1 && a != b, "{a:?} {b:?}");
    for (_, step, tag, val) in &scalars {
        let want = h["epochs"][step - 1][tag.as_str()].as_f64().unwrap() as f32;
        assert_eq!(*val, want, "{tag} at epoch {step}");
    }
}

/// `export`: model.onnx beside the model, what it takes and gives on stdout, the same bytes each
/// time, and clear errors (the model file is never overwritten).
#[test]
fn export_writes_onnx_beside_the_model_and_refuses_what_it_cannot() {
    let dir = temp_dir("cli-export");
    let model = dir.join("model.safetensors");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mnist_seed.safetensors"
        ),
        &model,
    )
    .unwrap();
    let before = std::fs::read(&model).unwrap();
    let m = model.to_str().unwrap();
    let o = gpu_cnn(&["export", "--model", m, "--json"]);
    let j = json_tail(&o);
    let onnx = dir.join("model.onnx");
    assert_eq!(j["path"], onnx.to_str().unwrap());
    assert_eq!(j["opset"], 13);
    let bytes = std::fs::read(&onnx).unwrap();
    assert_eq!(j["bytes"], bytes.len());
    let out = stdout(&o);
    for want in [
        &format!(
            "Wrote {} (ONNX opset 13, {} bytes)",
            onnx.display(),
            bytes.len()
        ),
        "input:  `input` float32 [batch, 1, 28, 28]: each pixel value / 255 (0..1), channels first",
        "output: `probabilities` float32 [batch, 10]: softmax over 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    // Again, elsewhere (a new folder is made), at another opset: the same graph, the same
    // tensors; the opset and IR version differ.
    let other = dir.join("new/sub/seed.onnx");
    let o = gpu_cnn(&[
        "export",
        "--model",
        m,
        "--out",
        other.to_str().unwrap(),
        "--opset",
        "17",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = std::fs::read(&other).unwrap();
    assert_eq!(again.len(), bytes.len());
    assert_ne!(again, bytes);
    let o = gpu_cnn(&["export", "--model", m, "--out", other.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&other).unwrap(), bytes);

    let plain = dir.join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let p = plain.to_str().unwrap();
    let inside_plain = plain.join("x.onnx");
    // (arguments, what stderr says, exit status: 2 bad usage, 1 anything else)
    let cases: Vec<(Vec<&str>, String, i32)> = vec![
        (
            vec!["export", "--model", "/nonexistent.safetensors"],
            "/nonexistent.safetensors: No such file".into(),
            1,
        ),
        (
            vec!["export", "--model", p],
            format!("checkpoint {p}: not a safetensors file"),
            1,
        ),
        (
            vec!["export", "--model", m, "--opset", "99"],
            "--opset 99: gpu-cnn writes opsets 11 to 21".into(),
            2,
        ),
        (
            vec!["export", "--model", m, "--opset", "10"],
            "--opset 10: gpu-cnn writes opsets 11 to 21".into(),
            2,
        ),
        (
            vec!["export", "--model", m, "--out", m],
            format!("--out {m} is the model file itself"),
            2,
        ),
        (
            vec![
                "export",
                "--model",
                m,
                "--out",
                inside_plain.to_str().unwrap(),
            ],
            format!("{p}: is a file, expected a folder"),
            1,
        ),
        (
            vec!["export", "--model", m, "--out", dir.to_str().unwrap()],
            "is a folder, cannot write a file there".into(),
            1,
        ),
        (vec!["export"], "--model <FILE>".into(), 2),
    ];
    for (args, want, code) in cases {
        let o = gpu_cnn(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {e}");
        assert!(e.contains(&want), "{args:?}: {want:?} in {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    assert_eq!(std::fs::read(&model).unwrap(), before);
}
