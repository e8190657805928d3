//! `gpu-cnn`: the command-line front end.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gpu_cnn::gpu::{enumerate_adapters, parse_backend, AdapterOptions};
use gpu_cnn::train::{self, TrainConfig};

#[derive(Parser)]
#[command(
    name = "gpu-cnn",
    version,
    about = "Train convolutional image classifiers on the GPU with WGSL compute shaders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Debug, Default)]
struct AdapterArgs {
    /// Graphics backend: vulkan, metal, dx12 or gl (default: all available)
    #[arg(long, value_name = "B")]
    backend: Option<String>,
    /// Use the adapter whose name contains this text (case-insensitive); see `gpu-cnn devices`
    #[arg(long, value_name = "SUBSTRING")]
    adapter: Option<String>,
}

impl AdapterArgs {
    fn options(&self) -> AdapterOptions {
        AdapterOptions {
            backend: self.backend.clone(),
            adapter: self.adapter.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train the Keras tutorial CNN (Conv32-Pool-Conv64-Pool-Dense128-Dense10) and evaluate it
    Train {
        /// Dataset: mnist or fashion-mnist
        #[arg(long, default_value = "mnist")]
        dataset: String,
        /// Folder with the IDX files (default: $GPU_CNN_DATA/<dataset>, else /usr/share/datasets/<dataset>)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Passes over the training set
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Images per training step (a smaller last batch trains too)
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Adam learning rate
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Seed of the weight init and the per-epoch shuffle
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Train on the first N training images only
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Keep file order instead of shuffling every epoch
        #[arg(long)]
        no_shuffle: bool,
        /// Start from this safetensors checkpoint instead of random init
        #[arg(long, value_name = "FILE")]
        init: Option<PathBuf>,
        /// Write DIR/model.safetensors and DIR/history.json (updated after every epoch)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Train with the CPU reference implementation (slow; for checking)
        #[arg(long)]
        cpu: bool,
        #[command(flatten)]
        adapter: AdapterArgs,
        /// End stdout with one JSON line: per-epoch history, test metrics, adapter
        #[arg(long)]
        json: bool,
    },
    /// Measure training throughput of the seed CNN (images/s, ms/step, per-pass times)
    Bench {
        /// Images per training step
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed training steps (the best of two runs counts)
        #[arg(long, default_value_t = 200)]
        steps: usize,
        /// Untimed steps first (pipeline compilation, caches)
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// Input data: synthetic (seeded random) or mnist
        #[arg(long, default_value = "synthetic")]
        data: String,
        /// Folder with MNIST's IDX files, for --data mnist (default: $GPU_CNN_DATA/mnist)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Copies of each pass per submit in the per-pass table (0 skips the table)
        #[arg(long, default_value_t = 20)]
        pass_reps: usize,
        #[command(flatten)]
        adapter: AdapterArgs,
        /// End stdout with one JSON line of the results
        #[arg(long)]
        json: bool,
    },
    /// List the GPU adapters wgpu can see
    Devices {
        /// Only this backend: vulkan, metal, dx12 or gl
        #[arg(long, value_name = "B")]
        backend: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> gpu_cnn::Result<()> {
    match cli.command {
        Command::Train {
            dataset,
            data_dir,
            epochs,
            batch,
            lr,
            seed,
            limit,
            no_shuffle,
            init,
            out,
            cpu,
            adapter,
            json,
        } => {
            let cfg = TrainConfig {
                dataset,
                data_dir,
                epochs,
                batch,
                lr,
                seed,
                limit,
                shuffle: !no_shuffle,
                init,
                out,
                cpu,
                adapter: adapter.options(),
            };
            let history = train::run(&cfg)?;
            if json {
                let line = serde_json::to_string(&history)
                    .map_err(|e| gpu_cnn::Error::Usage(e.to_string()))?;
                println!("{line}");
            }
            Ok(())
        }
        Command::Bench {
            batch,
            steps,
            warmup,
            data,
            data_dir,
            pass_reps,
            adapter,
            json,
        } => {
            let cfg = gpu_cnn::bench::BenchConfig {
                batch,
                steps,
                warmup,
                data,
                data_dir,
                pass_reps,
                adapter: adapter.options(),
            };
            let report = gpu_cnn::bench::run(&cfg)?;
            report.print();
            if json {
                let mut v = serde_json::to_value(&report)
                    .map_err(|e| gpu_cnn::Error::Usage(e.to_string()))?;
                // passes as {name: ms}
                let passes: serde_json::Map<String, serde_json::Value> = report
                    .passes
                    .iter()
                    .map(|(k, ms)| (k.clone(), serde_json::json!(ms)))
                    .collect();
                v["passes"] = serde_json::Value::Object(passes);
                println!("{v}");
            }
            Ok(())
        }
        Command::Devices { backend } => {
            let backends = match backend {
                Some(b) => parse_backend(&b)?,
                None => wgpu::Backends::all(),
            };
            let adapters = enumerate_adapters(backends);
            if adapters.is_empty() {
                println!("no adapters found (on Linux without a GPU: apt-get install mesa-vulkan-drivers)");
            }
            for a in adapters {
                let i = a.get_info();
                // The same test Gpu::from_adapter makes for the subgroup conv kernels.
                let sub =
                    a.features().contains(wgpu::Features::SUBGROUP) && i.subgroup_min_size >= 8;
                println!(
                    "{} | {:?} | {:?} | driver {} {} | {} kernels",
                    i.name,
                    i.backend,
                    i.device_type,
                    i.driver,
                    i.driver_info,
                    if sub { "subgroup" } else { "portable" }
                );
            }
            Ok(())
        }
    }
}
