//! Shared test helpers: the one place tolerances live, the comparison that reports where and by how
//! much two tensors differ, seeded inputs, and the GPU fixture.
#![allow(dead_code)]
// `!(diff <= tol)` is deliberate: a NaN difference must fail.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod http;

use gpu_cnn::gpu::{AdapterOptions, Gpu};
use gpu_cnn::rng::Rng;

/// |got - want| <= atol + rtol * |want|, element-wise.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

/// One GPU pass against the f32 CPU reference (same inputs; only summation order and fused
/// multiply-adds differ).
pub const PASS: Tol = Tol {
    atol: 1e-5,
    rtol: 1e-4,
};
/// The f64 reference's analytic gradient against central finite differences.
pub const GRADCHECK: Tol = Tol {
    atol: 1e-7,
    rtol: 1e-5,
};
/// One full training step, GPU against CPU: loss and every parameter.
pub const STEP: Tol = Tol {
    atol: 1e-5,
    rtol: 1e-4,
};
/// After 100 Adam steps (lr 1e-4, see train_step.rs), GPU against CPU: rounding differences
/// carried through the updates. Seen on lavapipe: parameters within 6e-8, per-step losses within
/// 2e-7 relative; this allows about 10x that.
pub const RUN_100: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-5,
};

/// 20 Adam steps at lr 1e-3 on real MNIST against PyTorch (tests/torch_reference.rs): other
/// kernels, so other summation orders from the first step on. Losses (per step, and over the
/// test set after the run): seen within 1.3e-5 relative on lavapipe; this allows about 8x.
pub const TORCH_LOSS: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-4,
};
/// The same run's weights, per tensor: sum, sum of squares and first 8 values. Adam moves a
/// weight by about lr per step whatever its gradient's size, so weights whose gradient is near
/// zero take rounding-driven steps; seen: values within 6.1e-6, sums within 5.2e-4 relative
/// (conv1.weight); this allows 4x to 8x.
pub const TORCH_WEIGHTS: Tol = Tol {
    atol: 5e-5,
    rtol: 2e-3,
};

pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f64);
    let mut bad = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w as f64).abs();
        if d > worst.1 || !d.is_finite() {
            worst = (i, d);
        }
        if bad.is_none() && !(d <= tol.atol + tol.rtol * (w as f64).abs()) {
            bad = Some(i);
        }
    }
    if let Some(i) = bad {
        panic!(
            "{what}: element {i} of {}: got {} want {} (|diff| {:e}); max |diff| {:e} at {}; tolerance {tol:?}",
            got.len(),
            got[i],
            want[i],
            (got[i] as f64 - want[i] as f64).abs(),
            worst.1,
            worst.0
        );
    }
}

/// `assert_close` in f64 precision.
pub fn assert_close_f64(what: &str, got: &[f64], want: &[f64], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f64);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let d = (a - b).abs();
        if d > worst.1 || !d.is_finite() {
            worst = (i, d);
        }
    }
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        if !((a - b).abs() <= tol.atol + tol.rtol * b.abs()) {
            panic!(
                "{what}: element {i} of {}: got {a} want {b} (|diff| {:e}); max |diff| {:e} at {}; tolerance {tol:?}",
                got.len(),
                (a - b).abs(),
                worst.1,
                worst.0
            );
        }
    }
}

/// Seeded uniform values in [lo, hi).
pub fn rand_vec(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.uniform(lo, hi) as f32).collect()
}

/// The GPU to test on. With GPU_CNN_REQUIRE_GPU=1 (CI) a missing adapter fails the test;
/// otherwise the test writes `SKIPPED <test>` straight to the terminal (past libtest's output
/// capture, so it is seen; `.ci/run` counts these lines and does not count them as passed) and
/// returns without checking anything.
pub fn gpu() -> Option<Gpu> {
    match Gpu::new(&AdapterOptions::default()) {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("GPU_CNN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("GPU_CNN_REQUIRE_GPU=1 but no GPU adapter is available: {e}");
            }
            use std::io::Write;
            let test = std::thread::current()
                .name()
                .unwrap_or("a GPU test")
                .to_string();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no GPU adapter ({e}); set GPU_CNN_REQUIRE_GPU=1 to make this a failure"
            );
            None
        }
    }
}

/// A fresh empty folder under the system temp folder, unique to this test and process, removed
/// when dropped (kept when the test fails, for a look).
pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("gpu-cnn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    TempDir(d)
}

/// IDX bytes of unsigned-byte data with the given dimensions.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A `.tar.gz` holding `members` under `cifar-10-batches-bin/`, as CIFAR-10's archive does.
pub fn cifar_archive(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), &bytes[..])
            .unwrap();
    }
    gzip(&b.into_inner().unwrap())
}

/// Writes a dataset folder with the standard MNIST file names (train gzip-compressed, test raw).
pub fn write_dataset(
    dir: &std::path::Path,
    train: &gpu_cnn::data::Dataset,
    test: &gpu_cnn::data::Dataset,
) {
    for (prefix, d, gz) in [("train", train, true), ("t10k", test, false)] {
        assert_eq!(d.channels, 1, "IDX files hold one channel");
        let img = idx_bytes(&[d.len() as u32, d.rows as u32, d.cols as u32], &d.images);
        let lab = idx_bytes(&[d.len() as u32], &d.labels);
        let (ext, img, lab) = if gz {
            (".gz", gzip(&img), gzip(&lab))
        } else {
            ("", img, lab)
        };
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lab).unwrap();
    }
}

/// The real MNIST folder: the copy that ships in `assets/mnist`. Its absence is a failure.
pub fn mnist_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    assert!(dir.is_dir(), "MNIST not found at {}", dir.display());
    dir
}

/// Real MNIST, verified: (training set, test set).
pub fn mnist() -> (gpu_cnn::data::Dataset, gpu_cnn::data::Dataset) {
    gpu_cnn::data::probe(&gpu_cnn::data::registry::MNIST, &mnist_dir())
        .unwrap_or_else(|e| panic!("MNIST in {}: {e}", mnist_dir().display()))
}

/// An image folder of generated PNGs, JPEGs and a BMP: three classes, mixed sizes, one RGB.
pub fn image_folder(dir: &std::path::Path) {
    let classes = ["circle", "cross", "empty"];
    for (split, n) in [("train", 4), ("test", 2)] {
        for (c, name) in classes.iter().enumerate() {
            let d = dir.join(split).join(name);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let size = 20 + 7 * i as u32;
                let img = image::GrayImage::from_fn(size, size, |x, y| {
                    let v = ((x * 31 + y * 17 + c as u32 * 80) % 256) as u8;
                    image::Luma([v])
                });
                let file = match i % 3 {
                    0 => d.join(format!("{i}.png")),
                    1 => d.join(format!("{i}.jpg")),
                    _ => d.join(format!("{i}.bmp")),
                };
                if i == 2 {
                    image::DynamicImage::ImageLuma8(img)
                        .to_rgb8()
                        .save(&file)
                        .unwrap();
                } else {
                    img.save(&file).unwrap();
                }
            }
        }
    }
}
