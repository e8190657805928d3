//! gpu-cnn: trains convolutional image classifiers on the GPU through WGSL compute shaders.
//!
//! As a library:
//! - classify with a saved model: [`Classifier`] (`Classifier::load(path)?`, `prepare` a
//!   picture as training did, `predict`); `examples/classify.rs`.
//! - train: [`train::run`] with a [`train::TrainConfig`] (the `gpu-cnn train` options as
//!   fields, `..TrainConfig::default()` for the rest), returning the [`history::History`];
//!   `examples/train.rs`.
//! - export: [`onnx::export`] gives the ONNX file of a [`checkpoint::SavedModel`] (what
//!   `gpu-cnn export` writes).
//!
//! ```no_run
//! # fn main() -> gpu_cnn::Result<()> {
//! use gpu_cnn::train::{run, TrainConfig};
//! let history = run(&TrainConfig {
//!     epochs: 1,
//!     limit: Some(6400),
//!     out: Some("runs/doc".into()),
//!     ..TrainConfig::default()
//! })?;
//! println!("test accuracy {:.4}", history.test_accuracy);
//! # Ok(())
//! # }
//! ```
//!
//! The modules:
//! - `shaders/`: the WGSL files and their shared parts; `shaders` is their table, `wgsl` the
//!   composer that puts each variant together.
//! - `layers`: what each layer kind is, one module per kind (options, shapes, tensors, text form,
//!   Keras class, the `Params` of its passes), the same for the GPU and the CPU.
//! - `plan`: the stage plan (which passes run each layer, fused or not), read by both sides.
//! - `gpu`: adapter/device, one module per layer kind (`gpu::layers`: launchers, buffers,
//!   recording), the epoch recorder (`gpu::trainer`).
//! - `reference`: the CPU oracle, one module per layer kind as on the GPU, and `CpuNet`.
//! - `model`: the placed layer sequence; `spec`: model descriptions; `checkpoint`: model files;
//!   `data`: datasets, where they come from, IDX and image folders; `files`: atomic writes.

pub mod backend;
pub mod bench;
pub mod callbacks;
pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod datasets;
pub mod devices;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod files;
pub mod gpu;
pub mod history;
pub mod infer;
pub mod layers;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod output;
pub mod plan;
pub mod plot;
pub mod predict;
pub mod reference;
pub mod rng;
pub mod run_dir;
pub mod schedule;
pub mod shaders;
pub mod spec;
pub mod summary;
pub mod tensorboard;
pub mod train;
pub mod tune;
pub mod wgsl;

pub use error::{Error, Result};

pub use classifier::{Answer, Classifier};
