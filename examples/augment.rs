//! Shows what a model's augmentation layers do to MNIST test digits, as training sees them:
//!
//!     cargo run --release --example augment -- [MODEL] [PNG]
//!
//! MODEL is a description as `--model` takes it (its leading augmentation layers are used;
//! default `randomrotation(0.1) randomzoom(0.15) randomtranslation(0.1,0.1)`); PNG the picture
//! to write (default `augmented.png`): the first 5 test digits of `assets/mnist`, then three
//! training steps' draws of them, on the CPU reference (the GPU draws the same).

use gpu_cnn::layers::{random_affine_params, random_contrast_params, Augment, Layer, StepRecord};
use gpu_cnn::reference::{random_affine_forward, random_contrast_forward};

fn main() -> std::process::ExitCode {
    match show() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn show() -> gpu_cnn::Result<()> {
    let mut args = std::env::args().skip(1);
    let spec = args.next().unwrap_or_else(|| {
        "randomrotation(0.1) randomzoom(0.15) randomtranslation(0.1,0.1)".into()
    });
    let png = std::path::PathBuf::from(args.next().unwrap_or_else(|| "augmented.png".into()));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    let (_, test) = gpu_cnn::data::probe(&gpu_cnn::data::registry::MNIST, &dir)
        .map_err(|e| gpu_cnn::Error::bad_file(&dir, e))?;
    let text = if spec.contains("dense") {
        spec.clone()
    } else {
        format!("{spec} flatten dense(10)")
    };
    let model = gpu_cnn::spec::ModelSpec::parse(&text)?.build(test_shape(&test), 10, false)?;
    let augment: Vec<_> = model
        .layers
        .iter()
        .enumerate()
        .take_while(|(_, l)| matches!(l.layer, Layer::Augment(_)))
        .collect();
    if augment.is_empty() {
        return Err(gpu_cnn::Error::Usage(format!(
            "`{spec}` starts with no augmentation layer"
        )));
    }
    let (n, pixels) = (5, test.pixels());
    let mut d = gpu_cnn::data::Dataset {
        images: test.images[..n * pixels].to_vec(),
        labels: vec![0; n],
        ..test.clone()
    };
    let mut cells: Vec<(usize, String)> = (0..n).map(|i| (i, "original".into())).collect();
    for t in 1..=3u32 {
        let step = StepRecord {
            t,
            seed: 42,
            ..Default::default()
        };
        let mut x: Vec<f32> = d.images[..n * pixels]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        for &(i, l) in &augment {
            let mut out = vec![0.0f32; x.len()];
            if let Layer::Augment(Augment::Contrast { .. }) = l.layer {
                random_contrast_forward(
                    &mut out,
                    &x,
                    &step,
                    &random_contrast_params(l, n, i, true),
                );
            } else {
                random_affine_forward(&mut out, &x, &step, &random_affine_params(l, n, i, true));
            }
            x = out;
        }
        for v in x.chunks(pixels) {
            d.images.extend(
                v.iter()
                    .map(|&p| (p * 255.0).round().clamp(0.0, 255.0) as u8),
            );
            d.labels.push(0);
            cells.push((d.labels.len() - 1, format!("step {t}")));
        }
    }
    let names: Vec<String> = augment.iter().map(|(_, l)| l.layer.to_text()).collect();
    gpu_cnn::plot::image_grid(&d, &cells, &names.join(" "), &png)?;
    println!(
        "Wrote {} ({} digits, 3 steps of {})",
        png.display(),
        n,
        names.join(" ")
    );
    Ok(())
}

fn test_shape(d: &gpu_cnn::data::Dataset) -> gpu_cnn::model::Shape {
    gpu_cnn::model::Shape::new(d.channels, d.rows, d.cols)
}
