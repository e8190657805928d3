//! Trains the tutorial's CNN from Rust with a config struct, as `gpu-cnn train` does:
//!
//!     cargo run --release --example train -- [OUT]
//!
//! Two epochs on the first 6,400 MNIST images (bundled in `assets/mnist`), SGD with Nesterov
//! momentum, into OUT (default `runs/example`); prints each epoch and returns the history.

use gpu_cnn::layers::{Optimizer, OptimizerKind};
use gpu_cnn::train::{self, TrainConfig};

fn main() -> std::process::ExitCode {
    match train() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn train() -> gpu_cnn::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/example".into());
    let cfg = TrainConfig {
        epochs: 2,
        limit: Some(6400),
        optimizer: Optimizer {
            momentum: 0.9,
            nesterov: true,
            ..Optimizer::keras(OptimizerKind::Sgd)
        },
        lr: OptimizerKind::Sgd.default_lr(),
        out: Some(out.into()),
        ..TrainConfig::default()
    };
    let history = train::run(&cfg)?;
    println!(
        "test accuracy {:.4} after {} epochs",
        history.test_accuracy,
        history.epochs.len()
    );
    Ok(())
}
