//! The tuner: every tiling gives the same bits, the tuner picks one of its candidates and caches
//! it per adapter and shape, `gpu-cnn tune` works from the command line, and the cache file is
//! checked like any other input.

mod common;

use common::{gpu, temp_dir};
use gpu_cnn::gpu::trainer::GpuTrainer;
use gpu_cnn::gpu::tuning::{Choice, ConvBackwardTiling, TuningCache};
use gpu_cnn::layers::Optimizer;
use std::process::Command;

fn learnable(n: usize, shape: gpu_cnn::model::Shape, seed: u64) -> gpu_cnn::data::Dataset {
    gpu_cnn::bench::synthetic_of(n, shape, 10, seed)
}

fn tiling(wg: u32, co_groups: u32, ci_groups: u32, joined: bool) -> ConvBackwardTiling {
    ConvBackwardTiling {
        wg,
        co_groups,
        ci_groups,
        joined,
    }
}

/// An epoch with evaluation under four tilings of the conv backward pass (the CPU and GPU
/// defaults, the widest tiles, a joined 32-invocation one) computes the same weights and
/// metrics bit for bit: the seed CNN, and convs whose channel counts leave the 16-channel
/// groups partly empty (20 and 36 channels under groups of 32 and 64).
#[test]
fn every_tiling_gives_the_same_bits() {
    let Some(g) = gpu() else { return };
    let subgroups = g.subgroups;
    drop(g);
    let tilings: Vec<ConvBackwardTiling> = [
        ConvBackwardTiling::default_for(wgpu::DeviceType::Cpu),
        ConvBackwardTiling::default_for(wgpu::DeviceType::DiscreteGpu),
        tiling(8, 4, 2, false),
        tiling(32, 2, 2, true),
    ]
    .into_iter()
    .filter(|t| t.check(subgroups).is_ok())
    .collect();
    assert!(tilings.len() >= 3 || !subgroups, "{tilings:?}");
    for (text, shape) in [
        ("keras-mnist", gpu_cnn::model::Shape::new(1, 28, 28)),
        (
            "conv2d(20,3,relu) conv2d(36,3,relu) maxpool(2) conv2d(20,2,relu) flatten dense(10)",
            gpu_cnn::model::Shape::new(3, 12, 12),
        ),
    ] {
        let model = gpu_cnn::spec::build(text, shape, 10, false).unwrap();
        let data = learnable(22, shape, 3);
        let eval = learnable(9, shape, 4);
        let order: Vec<u32> = (0..22).map(|i| (i * 7) % 22).collect();
        let w0 = model.init_glorot(5);
        let mut results = Vec::new();
        for &t in &tilings {
            let mut g = gpu_cnn::gpu::Gpu::new(&Default::default()).unwrap();
            g.conv_backward_tiling = Some(t);
            let mut tr =
                GpuTrainer::new(g, &model, &w0, &data, Some(&eval), 4, Optimizer::default())
                    .unwrap();
            let (m, e) = tr.epoch(&order, &mut |_| true).unwrap();
            let bits: Vec<u32> = tr
                .read_weights()
                .unwrap()
                .iter()
                .map(|w| w.to_bits())
                .collect();
            results.push((t, m, e, bits));
        }
        let first = &results[0];
        assert!(
            first.1.loss().is_finite() && first.1.loss() > 0.0,
            "{text}: {:?}",
            first.1
        );
        for r in &results[1..] {
            assert_eq!(
                (r.1, r.2),
                (first.1, first.2),
                "{text}: metrics, {} against {}",
                r.0,
                first.0
            );
            assert_eq!(r.3, first.3, "{text}: weights, {} against {}", r.0, first.0);
        }
    }
}

/// The tuner times the device type's candidates and returns the fastest of them, never slower
/// than the default it also timed.
#[test]
fn the_tuner_picks_its_fastest_candidate() {
    let Some(g) = gpu() else { return };
    let model = gpu_cnn::spec::build(
        "conv2d(8,3,relu) conv2d(16,3,relu) flatten dense(10)",
        gpu_cnn::model::Shape::new(4, 8, 8),
        10,
        false,
    )
    .unwrap();
    let l = &model.layers[1];
    let p = gpu_cnn::gpu::layers::conv2d::conv2d_select(&g, gpu_cnn::layers::conv_params(l, 2));
    let c: Choice = gpu_cnn::gpu::layers::conv2d::tune_conv2d_backward(&g, &p, true).unwrap();
    let candidates = ConvBackwardTiling::candidates(g.info.device_type, g.subgroups);
    let default = ConvBackwardTiling::default_for(g.info.device_type);
    assert!(
        c.tiling == default || candidates.contains(&c.tiling),
        "{c:?}"
    );
    assert!(c.ms > 0.0 && c.ms <= c.default_ms, "{c:?}");
}

/// `gpu-cnn tune` tunes each conv of the model once, caches the choice under the adapter and
/// the shape, and reads it back the next time instead of timing again; bench then runs it.
#[test]
fn the_tune_command_caches_its_choices() {
    let Some(g) = gpu() else { return };
    drop(g);
    let dir = temp_dir("tune-cli");
    let cache = dir.join("tuning.json");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gpu-cnn"))
            .args(args)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .env("GPU_CNN_TUNING", &cache)
            .env_remove("GPU_CNN_NO_TUNE")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{args:?}: {out}{err}");
        (out, err)
    };
    let model = "conv2d(8,3,relu) conv2d(16,3,relu) flatten dense(10)";
    let args = ["tune", "--model", model, "--input", "8x8x4", "--batch", "2"];
    let (out, err) = run(&args);
    let key = "conv2d_backward b2 c8 6x6 -> c16 4x4 k3x3";
    assert!(out.contains(key) && out.contains("(tuned: "), "{out}");
    assert_eq!(err.matches("note: tuned ").count(), 2, "{err}");
    let saved = TuningCache::load(&cache).unwrap();
    assert_eq!(saved.adapters.len(), 1, "{saved:?}");
    let shapes = saved.adapters.values().next().unwrap();
    assert_eq!(shapes.len(), 2, "{shapes:?}");
    // Cached now: no timing, the same choices.
    let (again, err) = run(&args);
    assert!(!err.contains("note: tuned "), "{err}");
    assert_eq!(again, out);
    let bench_args = |extra: &[&'static str]| {
        let mut a = vec![
            "bench",
            "--model",
            model,
            "--input",
            "8x8x4",
            "--batch",
            "2",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--pass-reps",
            "0",
        ];
        a.extend_from_slice(extra);
        a
    };
    let (bench, _) = run(&bench_args(&[]));
    let tiled = shapes
        .iter()
        .find(|(k, _)| k.starts_with(key))
        .unwrap()
        .1
        .tiling;
    assert!(bench.contains(&format!("{tiled} (tuned)")), "{bench}");
    // --no-tune: the defaults, whatever the cache says.
    let (plain, _) = run(&bench_args(&["--no-tune"]));
    assert!(
        plain.contains("(default)") && !plain.contains("(tuned)"),
        "{plain}"
    );
}

/// A cache file that is not ours is an error naming it (and is left alone); one of another
/// format version is ignored; invalid tilings are refused.
#[test]
fn the_tuning_cache_is_checked() {
    let dir = temp_dir("tune-cache");
    let path = dir.join("sub").join("tuning.json");
    assert!(TuningCache::load(&path).unwrap().adapters.is_empty());
    let mut c = TuningCache::default();
    let choice = Choice {
        tiling: tiling(8, 2, 1, false),
        ms: 1.5,
        default_ms: 2.0,
    };
    c.insert("adapter A", "shape 1".into(), choice.clone());
    c.save(&path).unwrap();
    let back = TuningCache::load(&path).unwrap();
    assert_eq!(back.get("adapter A", "shape 1"), Some(&choice));
    assert_eq!(back.get("adapter B", "shape 1"), None);

    std::fs::write(&path, "{\"version\": 2, \"adapters\": [1, 2]}").unwrap();
    let e = TuningCache::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tuning.json") && e.contains("not a gpu-cnn tuning cache"),
        "{e}"
    );
    std::fs::write(&path, "{\"version\": 99, \"adapters\": {}}").unwrap();
    assert!(TuningCache::load(&path).unwrap().adapters.is_empty());

    for bad in [
        tiling(7, 1, 1, false),
        tiling(8, 5, 1, false),
        tiling(8, 1, 3, true),
    ] {
        let e = bad.check(true).unwrap_err().to_string();
        assert!(e.contains("invalid conv backward tiling"), "{e}");
    }
    assert!(
        tiling(8, 1, 2, false).check(false).is_err(),
        "input channel groups need subgroups"
    );
    assert!(tiling(8, 4, 1, false).check(false).is_ok());
    assert!(tiling(64, 1, 1, true).check(false).is_ok());
}
