//! Classifies pictures with a model `gpu-cnn train` saved:
//!
//!     cargo run --example classify -- [MODEL] [PICTURE...]
//!
//! With no arguments: the bundled seed model (`tests/fixtures/mnist_seed.safetensors`) on the
//! bundled digits (`assets/digits/`, each named `<digit>-<n>`). Set `GPU_CNN_CPU=1` to run on
//! the CPU reference instead of a GPU adapter.

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    match classify() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn classify() -> gpu_cnn::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/mnist_seed.safetensors".into());
    let mut pictures: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if pictures.is_empty() {
        let dir = std::path::Path::new("assets/digits");
        let entries = std::fs::read_dir(dir).map_err(|e| gpu_cnn::Error::io(dir, e))?;
        let picture = |p: &PathBuf| {
            p.extension()
                .is_some_and(|x| ["png", "jpg", "jpeg", "bmp"].contains(&&*x.to_string_lossy()))
        };
        pictures = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(picture)
            .collect();
        pictures.sort();
    }
    let mut c = gpu_cnn::Classifier::load(&model)?;
    if std::env::var_os("GPU_CNN_CPU").is_some() {
        c = c.on_cpu();
    }
    let images = pictures
        .iter()
        .map(|p| c.prepare(p))
        .collect::<gpu_cnn::Result<Vec<_>>>()?;
    for (p, a) in pictures.iter().zip(c.predict(&images)?) {
        println!(
            "{}: {} ({:.3})",
            p.display(),
            c.classes()[a.class],
            a.probability
        );
    }
    Ok(())
}
