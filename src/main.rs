//! `gpu-cnn`: the command-line front end. Options are declared here; each command lives in its
//! own module of the library (`train`, `evaluate`, `predict`, `bench`, `datasets`, `devices`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use gpu_cnn::data::folder::{self, Color, FolderOptions};
use gpu_cnn::data::{DataOptions, DatasetName, Env};
use gpu_cnn::gpu::{AdapterOptions, BackendName};
use gpu_cnn::layers::{Optimizer, OptimizerKind, MODEL_HELP};
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
    /// Graphics backend (default: all available)
    #[arg(long, value_enum)]
    backend: Option<BackendName>,
    /// Use the adapter whose name contains this text (case-insensitive); see `gpu-cnn devices`
    #[arg(long, value_name = "SUBSTRING")]
    adapter: Option<String>,
}

impl AdapterArgs {
    fn options(&self) -> AdapterOptions {
        AdapterOptions {
            backend: self.backend,
            adapter: self.adapter.clone(),
            tune: false,
        }
    }
}

const NO_TUNE_HELP: &str = "Use each tunable pass's default tiling for this device type: no tuning, no tuning cache (the same numbers, maybe slower)";

#[derive(Subcommand)]
enum Command {
    /// Train the Keras tutorial CNN (Conv32-Pool-Conv64-Pool-Dense128-Dense10) and evaluate it
    Train(TrainArgs),
    /// Test loss and accuracy of a saved model, per-class accuracy and the confusion matrix
    Evaluate(EvaluateArgs),
    /// Classify your own pictures with a saved model
    Predict(PredictArgs),
    /// Write a saved model as an ONNX file (for ONNX Runtime, onnxruntime-web, OpenCV, ...)
    Export {
        /// A model.safetensors written by `train`
        #[arg(long, value_name = "FILE")]
        model: PathBuf,
        /// The ONNX file to write [default: the model's path with .onnx]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// ONNX opset to declare (11 to 21; the graph is the same)
        #[arg(long, value_name = "N", default_value_t = gpu_cnn::onnx::DEFAULT_OPSET)]
        opset: i64,
        /// End stdout with one JSON line
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
        /// Input data: seeded random pixels, or MNIST
        #[arg(long, value_enum, default_value_t = gpu_cnn::bench::BenchData::Synthetic)]
        data: gpu_cnn::bench::BenchData,
        /// Folder with MNIST's IDX files, for --data mnist (default: found as `train` finds it)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Copies of each pass per submit in the per-pass table (0 skips the table)
        #[arg(long, default_value_t = 20)]
        pass_reps: usize,
        /// The model to time: a preset, a Keras .json file or the one-line text form [default: the seed CNN]
        #[arg(long, value_name = "SPEC")]
        model: Option<String>,
        /// Input shape of the synthetic data, height x width x channels [default: 28x28x1, MNIST's]
        #[arg(long, value_name = "HxWxC")]
        input: Option<String>,
        /// Record the unfused passes instead of the fused ones (the same numbers), to compare
        #[arg(long)]
        unfused: bool,
        #[arg(long, help = NO_TUNE_HELP)]
        no_tune: bool,
        #[command(flatten)]
        adapter: AdapterArgs,
        /// End stdout with one JSON line of the results
        #[arg(long)]
        json: bool,
    },
    /// Time the candidate tilings of the tunable passes for a model and batch size on this
    /// adapter and cache the fastest ($XDG_CACHE_HOME/gpu-cnn/tuning.json); train and bench
    /// otherwise tune on first use
    Tune {
        /// Images per training step (the tiling is chosen per shape, batch included)
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, value_name = "SPEC", help = format!("{MODEL_HELP} [default: the seed CNN]"))]
        model: Option<String>,
        /// Input shape, height x width x channels [default: 28x28x1, MNIST's]
        #[arg(long, value_name = "HxWxC")]
        input: Option<String>,
        /// Time the candidates again even for shapes already in the cache
        #[arg(long)]
        again: bool,
        #[command(flatten)]
        adapter: AdapterArgs,
    },
    /// List the GPU adapters wgpu can see
    Devices {
        /// Only this backend
        #[arg(long, value_enum)]
        backend: Option<BackendName>,
    },
    /// Print a model's layers, output shapes and parameter counts, as Keras' model.summary()
    Summary {
        #[arg(long, value_name = "SPEC", help = format!("{MODEL_HELP} [default: the seed CNN]"))]
        model: Option<String>,
        /// Take the input shape and classes from this dataset [default: mnist]
        #[arg(long, value_enum)]
        dataset: Option<DatasetName>,
        /// Input shape instead of a dataset's, height x width x channels (e.g. 32x32x3)
        #[arg(long, value_name = "HxWxC")]
        input: Option<String>,
        /// Number of classes (with --input)
        #[arg(long, value_name = "N")]
        classes: Option<usize>,
        /// End stdout with one JSON line
        #[arg(long)]
        json: bool,
    },
    /// List the known datasets and where each is found, or download them
    Datasets {
        #[command(subcommand)]
        action: Option<DatasetsAction>,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Passes over the training set (with --resume: the total, counting those done)
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per training step (a smaller last batch trains too)
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// The optimizer, with Keras' update rule and defaults: adam, adamw (Adam with decoupled
    /// weight decay, --weight-decay), sgd (--momentum, --nesterov), rmsprop (--rho, --momentum,
    /// --centered)
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// Learning rate (where --lr-schedule starts) [default: Keras' for the optimizer: 0.001,
    /// sgd 0.01]
    #[arg(long)]
    lr: Option<f64>,
    /// SGD's or RMSprop's momentum, in [0, 1] (Keras' momentum=...; 0: none)
    #[arg(long, value_name = "F")]
    momentum: Option<f64>,
    /// RMSprop's discount of the average of squared gradients, in [0, 1) (Keras' rho)
    /// [default: 0.9]
    #[arg(long, value_name = "F")]
    rho: Option<f64>,
    /// Centered RMSprop: normalise by the gradients' estimated variance (Keras' centered=True)
    #[arg(long)]
    centered: bool,
    /// SGD with Nesterov's momentum (Keras' nesterov=True); needs --momentum above 0
    #[arg(long)]
    nesterov: bool,
    /// Adam or AdamW in AMSGrad's form: divide by the largest v so far (Keras' amsgrad=True)
    #[arg(long)]
    amsgrad: bool,
    /// AdamW's decoupled weight decay: each step first w -= w x F x lr, every weight and bias
    /// (Keras' AdamW(weight_decay=...)) [default: 0.004]
    #[arg(long, value_name = "F")]
    weight_decay: Option<f64>,
    /// Learning-rate schedule, as Keras' (keras.optimizers.schedules), from --lr, per step:
    /// constant; cosine[:DECAY_STEPS[:ALPHA[:WARMUP_STEPS:WARMUP_TARGET]]] (CosineDecay; over the
    /// whole run by default, to ALPHA x the start; with a warmup, linear from --lr to
    /// WARMUP_TARGET first); exponential:RATE:STEPS[:staircase] (ExponentialDecay: x RATE every
    /// STEPS steps); piecewise:B1=V1,B2=V2,... (PiecewiseConstantDecay: --lr up to step B1, V1
    /// after it, ...)
    #[arg(long, value_name = "SPEC", default_value = "constant")]
    lr_schedule: String,
    /// What "best" means for best.safetensors and --early-stopping
    #[arg(long, value_enum, default_value = "val-loss")]
    monitor: gpu_cnn::callbacks::Monitor,
    /// Stop after PATIENCE epochs in a row without a better --monitor (Keras' EarlyStopping,
    /// min_delta 0)
    #[arg(long, value_name = "PATIENCE")]
    early_stopping: Option<usize>,
    /// When --early-stopping stops the run, end with the best epoch's weights (model.safetensors
    /// and the Test line), as Keras' restore_best_weights
    #[arg(long)]
    restore_best_weights: bool,
    /// Multiply the learning rate by FACTOR after PATIENCE epochs in a row without a better
    /// --monitor (Keras' ReduceLROnPlateau: min_delta 1e-4, no cooldown, no floor); not with
    /// --lr-schedule
    #[arg(long, value_name = "FACTOR:PATIENCE")]
    reduce_lr_on_plateau: Option<String>,
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
    #[arg(long, value_name = "SPEC", help = format!("The model: {} [default: the seed CNN on the data's shape]", MODEL_HELP.replacen('A', "a", 1)))]
    model: Option<String>,
    /// The run folder: model, checkpoint, history (json, csv, png), run.json, rewritten after every epoch [default: runs/<dataset>-<yyyymmdd-hhmmss>, UTC]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its last finished epoch, with its recorded settings
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Train with the CPU reference implementation (slow; for checking)
    #[arg(long)]
    cpu: bool,
    #[arg(long, help = NO_TUNE_HELP)]
    no_tune: bool,
    #[command(flatten)]
    adapter: AdapterArgs,
    /// End stdout with one JSON line: per-epoch history, test metrics, adapter
    #[arg(long)]
    json: bool,
    /// Print only errors (and, with --json, the JSON line)
    #[arg(long)]
    quiet: bool,
}

/// A saved model and the data to run it on.
#[derive(clap::Args)]
struct ModelArgs {
    /// A model.safetensors written by `train`
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Images per step, at least: the GPU takes the largest batch that fits (up to the whole
    /// set, within 128 MiB of activations); --cpu takes this one
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Run on the CPU reference instead of the GPU
    #[arg(long)]
    cpu: bool,
    #[command(flatten)]
    adapter: AdapterArgs,
    /// End stdout with one JSON line
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Dataset [default: the one the model was trained on]
    #[arg(long, value_enum)]
    dataset: Option<DatasetName>,
    /// Folder with the dataset's files (default: found as `train` finds it)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Never download (also: GPU_CNN_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// Write a grid of the most confidently wrong test images to this PNG
    #[arg(long, value_name = "PNG")]
    misclassified: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image files, or folders of them
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum DatasetsAction {
    /// Download datasets into the cache ($XDG_CACHE_HOME/gpu-cnn, else ~/.cache/gpu-cnn) and verify them
    Fetch {
        /// Dataset names (see `gpu-cnn datasets`)
        #[arg(required = true)]
        names: Vec<String>,
        /// Download again even if a verified copy is cached
        #[arg(long)]
        force: bool,
    },
}

/// Where the training data comes from.
#[derive(clap::Args, Clone, Debug)]
struct DataArgs {
    /// Dataset
    #[arg(long, value_enum, default_value_t = DatasetName::Mnist)]
    dataset: DatasetName,
    /// Folder with the dataset's files (default: the first verified copy of $GPU_CNN_DATA/<dataset>, the cache, /usr/share/datasets/<dataset>, the project's assets/<dataset>; else a download)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Never download (also: GPU_CNN_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// Image folders: channels the images are converted to
    #[arg(long, value_enum, default_value_t = Color::Grayscale)]
    color: Color,
    /// Image folders: size every image is resized to (triangle filter), HxW
    #[arg(long, value_name = "HxW", default_value = "28x28", value_parser = folder::parse_size)]
    image_size: (usize, usize),
    /// Hold out the last F of the training images for validation, as Keras'
    /// fit(validation_split=F) (before any shuffle; val_* each epoch, the test set only for the
    /// final Test line). Image folders without test/: a seeded F of train/ instead, which is
    /// their test set too
    #[arg(long, value_name = "F")]
    validation_split: Option<f64>,
    /// Image folders: list and skip files that are not usable images instead of stopping
    #[arg(long)]
    skip_bad_images: bool,
}

impl DataArgs {
    fn options(&self, seed: u64) -> DataOptions {
        DataOptions {
            dataset: self.dataset,
            data_dir: self.data_dir.clone(),
            offline: self.offline,
            folder: FolderOptions {
                color: self.color,
                size: self.image_size,
                validation_split: self.validation_split,
                skip_bad_images: self.skip_bad_images,
                seed,
            },
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(gpu_cnn::Error::Interrupted(msg)) => {
            eprintln!("interrupted {msg}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            // 2 for bad usage, as clap's own errors; 1 for everything else.
            match e {
                gpu_cnn::Error::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// `--optimizer`'s values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OptimizerArg {
    Adam,
    Adamw,
    Sgd,
    Rmsprop,
}

impl OptimizerArg {
    fn kind(self) -> OptimizerKind {
        match self {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::AdamW,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
        }
    }
}

/// The `train` options given on the command line (not defaulted), by flag name.
fn explicit(m: &ArgMatches) -> Vec<&'static str> {
    let flags = [
        ("dataset", "--dataset"),
        ("data_dir", "--data-dir"),
        ("color", "--color"),
        ("image_size", "--image-size"),
        ("validation_split", "--validation-split"),
        ("epochs", "--epochs"),
        ("batch", "--batch"),
        ("lr", "--lr"),
        ("optimizer", "--optimizer"),
        ("momentum", "--momentum"),
        ("nesterov", "--nesterov"),
        ("rho", "--rho"),
        ("centered", "--centered"),
        ("amsgrad", "--amsgrad"),
        ("weight_decay", "--weight-decay"),
        ("lr_schedule", "--lr-schedule"),
        ("monitor", "--monitor"),
        ("early_stopping", "--early-stopping"),
        ("restore_best_weights", "--restore-best-weights"),
        ("reduce_lr_on_plateau", "--reduce-lr-on-plateau"),
        ("seed", "--seed"),
        ("limit", "--limit"),
        ("no_shuffle", "--no-shuffle"),
        ("cpu", "--cpu"),
        ("model", "--model"),
    ];
    flags
        .iter()
        .filter(|(id, _)| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(|(_, flag)| *flag)
        .collect()
}

fn train_config(a: TrainArgs, m: &ArgMatches) -> gpu_cnn::Result<TrainConfig> {
    let kind = a.optimizer.kind();
    let keras = Optimizer::keras(kind);
    let cfg = TrainConfig {
        data: a.data.options(a.seed),
        epochs: a.epochs,
        batch: a.batch,
        optimizer: Optimizer {
            momentum: a.momentum.unwrap_or(keras.momentum),
            nesterov: a.nesterov,
            rho: a.rho.unwrap_or(keras.rho),
            centered: a.centered,
            amsgrad: a.amsgrad,
            // Given for another optimizer, it reaches validate, which names the mismatch.
            weight_decay: a.weight_decay.unwrap_or(keras.weight_decay),
            ..keras
        },
        lr: a.lr.unwrap_or(keras.lr),
        lr_schedule: gpu_cnn::schedule::Schedule::parse(&a.lr_schedule)?,
        monitor: a.monitor,
        early_stopping: a.early_stopping,
        restore_best_weights: a.restore_best_weights,
        reduce_lr_on_plateau: a
            .reduce_lr_on_plateau
            .as_deref()
            .map(gpu_cnn::callbacks::Plateau::parse)
            .transpose()?,
        seed: a.seed,
        limit: a.limit,
        shuffle: !a.no_shuffle,
        init: a.init,
        model: a.model,
        out: a.out,
        resume: None,
        cpu: a.cpu,
        adapter: AdapterOptions {
            tune: !a.no_tune,
            ..a.adapter.options()
        },
        bar: !a.json && !a.quiet && std::io::stderr().is_terminal(),
        quiet: a.quiet,
        command: std::env::args().collect(),
    };
    match a.resume {
        None => Ok(cfg),
        Some(dir) => {
            if cfg.out.as_ref().is_some_and(|o| *o != dir) {
                return Err(gpu_cnn::Error::Usage(
                    "--resume DIR writes to DIR; --out cannot name another folder".into(),
                ));
            }
            train::resume_config(&dir, &cfg, &explicit(m))
        }
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> gpu_cnn::Result<()> {
    match cli.command {
        Command::Train(a) => {
            let json = a.json;
            gpu_cnn::output::set_quiet(a.quiet);
            let m = matches.subcommand_matches("train").unwrap_or(matches);
            let cfg = train_config(a, m)?;
            gpu_cnn::output::catch_interrupts();
            let history = train::run(&cfg)?;
            if json {
                println!("{}", serde_json::to_string(&history).unwrap_or_default());
            }
            Ok(())
        }
        Command::Evaluate(a) => {
            let opts = gpu_cnn::evaluate::EvaluateOptions {
                model: a.model.model,
                batch: a.model.batch,
                cpu: a.model.cpu,
                adapter: a.model.adapter.options(),
                dataset: a.dataset,
                data_dir: a.data_dir,
                offline: a.offline,
                misclassified: a.misclassified,
            };
            let report = gpu_cnn::evaluate::run(&opts)?;
            if a.model.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            }
            Ok(())
        }
        Command::Predict(a) => {
            let opts = gpu_cnn::predict::PredictOptions {
                model: a.model.model,
                batch: a.model.batch,
                cpu: a.model.cpu,
                adapter: a.model.adapter.options(),
                images: a.images,
            };
            let answers = gpu_cnn::predict::run(&opts)?;
            if a.model.json {
                println!("{}", serde_json::to_string(&answers).unwrap_or_default());
            }
            Ok(())
        }
        Command::Export {
            model,
            out,
            opset,
            json,
        } => {
            let e = gpu_cnn::export::run(&gpu_cnn::export::ExportOptions { model, out, opset })?;
            if json {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
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
            model,
            input,
            unfused,
            no_tune,
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
                model,
                input,
                unfused,
                adapter: AdapterOptions {
                    tune: !no_tune,
                    ..adapter.options()
                },
            };
            let report = gpu_cnn::bench::run(&cfg)?;
            report.print();
            if json {
                println!("{}", report.json());
            }
            Ok(())
        }
        Command::Summary {
            model,
            dataset,
            input,
            classes,
            json,
        } => {
            let (m, spec) =
                gpu_cnn::summary::build_spec(model.as_deref(), dataset, input.as_deref(), classes)?;
            let s = gpu_cnn::summary::summary_of(&m, spec.as_ref());
            print!("{}", gpu_cnn::summary::table(&s));
            if json {
                println!("{}", serde_json::to_string(&s).unwrap_or_default());
            }
            Ok(())
        }
        Command::Tune {
            batch,
            model,
            input,
            again,
            adapter,
        } => gpu_cnn::tune::run(&gpu_cnn::tune::TuneConfig {
            batch,
            model,
            input,
            again,
            adapter: adapter.options(),
        }),
        Command::Devices { backend } => {
            gpu_cnn::devices::print(backend.map_or(wgpu::Backends::all(), |b| b.backends()));
            Ok(())
        }
        Command::Datasets { action } => {
            let env = Env::from_process();
            match action {
                None => gpu_cnn::datasets::print_status(&gpu_cnn::datasets::status(&env)),
                Some(DatasetsAction::Fetch { names, force }) => {
                    gpu_cnn::datasets::fetch_all(&names, force, &env)?
                }
            }
            Ok(())
        }
    }
}
