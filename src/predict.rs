//! `gpu-cnn predict`: classify your own pictures with a saved model. For a model trained on MNIST
//! or Fashion-MNIST, each picture is prepared as MNIST's digits were made; for a model trained on
//! an image folder, as that folder's images were.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checkpoint::{load_saved, SavedModel};
use crate::data::folder::{self, Color};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::AdapterOptions;
use crate::infer::{logits, softmax};

#[derive(Clone, Debug)]
pub struct PredictOptions {
    pub model: PathBuf,
    pub batch: usize,
    pub cpu: bool,
    pub adapter: AdapterOptions,
    /// Files, or folders whose images are all classified.
    pub images: Vec<PathBuf>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Guess {
    pub class: usize,
    pub label: String,
    pub probability: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Prediction {
    pub file: PathBuf,
    pub class: usize,
    pub label: String,
    pub probability: f64,
    /// The three most probable classes, most probable first.
    pub top: Vec<Guess>,
}

/// An image as MNIST's digits were made: grey, inverted when the background is light, the
/// background level taken off, cropped to the ink, scaled to fit 20x20 keeping the aspect
/// ratio, and placed in 28x28 with its centre of mass at the centre. Errors name the file.
pub fn mnist_style(path: &Path) -> Result<Vec<u8>> {
    let (w, h, grey) = decode_grey(path)?;
    let at = |x: usize, y: usize| grey[y * w + x] as f32;
    // The background: the median of the border pixels.
    let mut border: Vec<f32> = (0..w)
        .flat_map(|x| [at(x, 0), at(x, h - 1)])
        .chain((0..h).flat_map(|y| [at(0, y), at(w - 1, y)]))
        .collect();
    border.sort_by(f32::total_cmp);
    let bg = border[border.len() / 2];
    let invert = bg > 127.0;
    let ink: Vec<f32> = grey
        .iter()
        .map(|&v| {
            let v = if invert { 255.0 - v as f32 } else { v as f32 };
            let b = if invert { 255.0 - bg } else { bg };
            (v - b).max(0.0)
        })
        .collect();
    let peak = ink.iter().cloned().fold(0.0f32, f32::max);
    if peak < 16.0 {
        return Err(Error::bad_file(
            path,
            "no ink found (the picture is one flat colour)",
        ));
    }
    // Crop to the pixels with at least a fifth of the strongest ink.
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if ink[y * w + x] >= 0.2 * peak {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = image::GrayImage::from_fn(cw as u32, ch as u32, |x, y| {
        let v = ink[(y0 + y as usize) * w + x0 + x as usize] / peak * 255.0;
        image::Luma([v.round().clamp(0.0, 255.0) as u8])
    });
    let s = 20.0 / cw.max(ch) as f64;
    let (nw, nh) = (
        ((cw as f64 * s).round() as u32).clamp(1, 20),
        ((ch as f64 * s).round() as u32).clamp(1, 20),
    );
    let small = image::imageops::resize(&crop, nw, nh, image::imageops::FilterType::Triangle);
    // Centre of mass of the scaled digit, moved to (14, 14).
    let (mut m, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f64;
        m += v;
        mx += v * x as f64;
        my += v * y as f64;
    }
    let (cx, cy) = if m > 0.0 {
        (mx / m, my / m)
    } else {
        (nw as f64 / 2.0, nh as f64 / 2.0)
    };
    let (ox, oy) = ((14.0 - cx).round() as i64, (14.0 - cy).round() as i64);
    let mut out = vec![0u8; 784];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (x as i64 + ox, y as i64 + oy);
        if (0..28).contains(&tx) && (0..28).contains(&ty) {
            out[ty as usize * 28 + tx as usize] = p.0[0];
        }
    }
    Ok(out)
}

/// A grey version of the image file: (width, height, pixels), memory capped as for folders.
fn decode_grey(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    // decode_image at the file's own size keeps every pixel; read the size first.
    let (w, h) = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .into_dimensions()
        .map_err(|e| Error::bad_file(path, format!("not a usable image: {e}")))?;
    if w == 0 || h == 0 || w > folder::MAX_IMAGE_SIDE || h > folder::MAX_IMAGE_SIDE {
        return Err(Error::bad_file(
            path,
            format!(
                "{w}x{h} pixels (1 to {} a side supported)",
                folder::MAX_IMAGE_SIDE
            ),
        ));
    }
    let px = folder::decode_image(path, Color::Grayscale, (h as usize, w as usize))?;
    Ok((w as usize, h as usize, px))
}

/// The image files to classify: files as given, folders' files in name order (hidden ones and
/// those that are not images skipped, with a note).
fn expand(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && !f
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|f| (f, true)));
        } else {
            out.push((p.clone(), false));
        }
    }
    Ok(out)
}

/// A picture as `saved`'s training images were made: for a model trained on MNIST or
/// Fashion-MNIST (one channel, 28x28) the digit treatment of `mnist_style`; for one trained on
/// an image folder, converted and resized as that folder was.
pub fn prepare(saved: &SavedModel, picture: &Path) -> Result<Vec<u8>> {
    let input = saved.model.input;
    let digits = saved.dataset.as_deref() != Some("folder")
        && input.c == 1
        && (input.h, input.w) == (28, 28);
    if digits {
        return mnist_style(picture);
    }
    let color = if input.c == 3 {
        Color::Rgb
    } else {
        Color::Grayscale
    };
    folder::decode_image(picture, color, (input.h, input.w))
}

/// Classifies the images and prints the three most probable classes of each; returns them.
pub fn run(opts: &PredictOptions) -> Result<Vec<Prediction>> {
    let saved = load_saved(&opts.model)?;
    let input = saved.model.input;
    let mut files = Vec::new();
    let mut d = Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        channels: input.c,
        rows: input.h,
        cols: input.w,
    };
    for (file, from_folder) in expand(&opts.images)? {
        match prepare(&saved, &file) {
            Ok(px) => {
                d.images.extend_from_slice(&px);
                d.labels.push(0);
                files.push(file);
            }
            Err(e) if from_folder => crate::output::note(format!("skipped {e}")),
            Err(e) => return Err(e),
        }
    }
    if files.is_empty() {
        return Err(Error::Dataset(format!(
            "no usable image in {}",
            opts.images
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (logits, _) = logits(
        &saved.model,
        &saved.weights,
        &d,
        opts.batch,
        opts.cpu,
        &opts.adapter,
    )?;
    let k = saved.classes.len();
    let mut out = Vec::new();
    for (file, row) in files.into_iter().zip(logits.chunks_exact(k)) {
        let p = softmax(row);
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let top: Vec<Guess> = order
            .iter()
            .take(3)
            .map(|&c| Guess {
                class: c,
                label: saved.classes[c].clone(),
                probability: p[c],
            })
            .collect();
        let shown: Vec<String> = top
            .iter()
            .map(|g| {
                if g.label == g.class.to_string() {
                    format!("{} ({:.3})", g.label, g.probability)
                } else {
                    format!("{} {} ({:.3})", g.class, g.label, g.probability)
                }
            })
            .collect();
        println!("{}: {}", file.display(), shown.join(", "));
        out.push(Prediction {
            file,
            class: top[0].class,
            label: top[0].label.clone(),
            probability: top[0].probability,
            top,
        });
    }
    Ok(out)
}
