//! Your own pictures, as Keras' `image_dataset_from_directory` reads them: `DIR/train/<class>/*`
//! and `DIR/test/<class>/*` (or a seeded `--validation-split` of `train/`), class names from the
//! sorted folder names, every file decoded once, converted to the model's channels and resized.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Most classes a folder dataset may have (labels are stored as bytes).
pub const MAX_CLASSES: usize = 256;
/// Largest width or height of an image file we decode, and the most memory one decode may take:
/// a hostile 50,000 x 50,000 PNG is refused instead of exhausting memory.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;
/// The resampling filter of `--image-size`: `image`'s triangle filter, which is bilinear when
/// enlarging and averages over the whole footprint when shrinking.
pub const FILTER: image::imageops::FilterType = image::imageops::FilterType::Triangle;

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// One channel (luma)
    #[default]
    Grayscale,
    /// Three channels (red, green, blue)
    Rgb,
}

impl Color {
    pub fn channels(self) -> usize {
        match self {
            Color::Grayscale => 1,
            Color::Rgb => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FolderOptions {
    pub color: Color,
    /// (height, width) every image is resized to.
    pub size: (usize, usize),
    /// Fraction of `train/` held out for validation when there is no `test/`.
    pub validation_split: Option<f64>,
    /// List and skip files that do not decode, instead of stopping.
    pub skip_bad_images: bool,
    /// Seed of the validation split.
    pub seed: u64,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            color: Color::Grayscale,
            size: (28, 28),
            validation_split: None,
            skip_bad_images: false,
            seed: 42,
        }
    }
}

/// Parses `--image-size`: `HxW` (e.g. `28x28`) or one number for a square.
pub fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let parse = |v: &str| -> std::result::Result<usize, String> {
        match v.trim().parse::<usize>() {
            Ok(n) if (1..=4096).contains(&n) => Ok(n),
            _ => Err(format!("`{v}` is not a size from 1 to 4096")),
        }
    };
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok((parse(h)?, parse(w)?)),
        None => parse(s).map(|n| (n, n)),
    }
}

/// The sorted sub-folders of `dir` (hidden ones skipped).
fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The sorted files of a class folder (hidden ones skipped).
fn class_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Decodes an image file of any supported format with capped memory, converts it to `color`
/// and resizes it to `size`; returns channel-major (C, H, W) bytes.
pub fn decode_image(path: &Path, color: Color, size: (usize, usize)) -> Result<Vec<u8>> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(bad("not an image (PNG, JPEG, BMP, GIF or WebP)".into()));
    }
    let img = reader
        .decode()
        .map_err(|e| bad(format!("cannot decode the image: {e}")))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(bad("the image has no pixels".into()));
    }
    let (h, w) = (size.0 as u32, size.1 as u32);
    let resize = |i: image::DynamicImage| {
        if (i.width(), i.height()) == (w, h) {
            i
        } else {
            i.resize_exact(w, h, FILTER)
        }
    };
    Ok(match color {
        Color::Grayscale => resize(image::DynamicImage::ImageLuma8(img.to_luma8()))
            .to_luma8()
            .into_raw(),
        Color::Rgb => {
            let rgb = resize(image::DynamicImage::ImageRgb8(img.to_rgb8())).to_rgb8();
            let plane = (w * h) as usize;
            let mut chw = vec![0u8; 3 * plane];
            for (i, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    chw[c * plane + i] = px.0[c];
                }
            }
            chw
        }
    })
}

/// Reads every image under `root/<class>/` for the given classes (label = index in `classes`).
fn read_split(
    root: &Path,
    classes: &[String],
    opts: &FolderOptions,
    skipped: &mut Vec<String>,
) -> Result<Dataset> {
    let mut d = Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        channels: opts.color.channels(),
        rows: opts.size.0,
        cols: opts.size.1,
    };
    for (name, dir) in class_folders(root)? {
        let Some(label) = classes.iter().position(|c| *c == name) else {
            return Err(Error::Dataset(format!(
                "{}: class `{name}` is not among the training classes [{}]",
                dir.display(),
                classes.join(", ")
            )));
        };
        let files = class_files(&dir)?;
        if files.is_empty() {
            return Err(Error::Dataset(format!(
                "class folder {} holds no files",
                dir.display()
            )));
        }
        for f in files {
            match decode_image(&f, opts.color, opts.size) {
                Ok(px) => {
                    d.images.extend_from_slice(&px);
                    d.labels.push(label as u8);
                }
                Err(e) if opts.skip_bad_images => skipped.push(e.to_string()),
                Err(e) => {
                    return Err(Error::Dataset(format!(
                        "{e} (pass --skip-bad-images to list and skip such files)"
                    )))
                }
            }
        }
    }
    Ok(d)
}

/// Loads an image-folder dataset: (training set, test or validation set, class names).
pub fn load(dir: &Path, opts: &FolderOptions) -> Result<(Dataset, Dataset, Vec<String>)> {
    let train_dir = dir.join("train");
    if !train_dir.is_dir() {
        return Err(Error::Dataset(format!(
            "{} is not a folder (an image folder dataset is DIR/train/<class>/* and DIR/test/<class>/*)",
            train_dir.display()
        )));
    }
    let classes: Vec<String> = class_folders(&train_dir)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if classes.is_empty() {
        return Err(Error::Dataset(format!(
            "{} has no class folders (expected {}/<class>/<image files>)",
            train_dir.display(),
            train_dir.display()
        )));
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::Dataset(format!(
            "{} has {} class folders; at most {MAX_CLASSES} are supported",
            train_dir.display(),
            classes.len()
        )));
    }
    let mut skipped = Vec::new();
    let mut train = read_split(&train_dir, &classes, opts, &mut skipped)?;
    let test_dir = dir.join("test");
    let test = if test_dir.is_dir() {
        if opts.validation_split.is_some() {
            return Err(Error::Usage(format!(
                "--validation-split holds out part of train/, but {} exists: remove one or the other",
                test_dir.display()
            )));
        }
        read_split(&test_dir, &classes, opts, &mut skipped)?
    } else {
        match opts.validation_split {
            Some(f) if f > 0.0 && f < 1.0 => split_off(&mut train, f, opts.seed)?,
            Some(f) => {
                return Err(Error::Usage(format!(
                    "--validation-split must be between 0 and 1 (exclusive), got {f}"
                )))
            }
            None => {
                return Err(Error::Dataset(format!(
                    "{} does not exist: add DIR/test/<class>/* or hold out part of train/ with --validation-split 0.2",
                    test_dir.display()
                )))
            }
        }
    };
    if !skipped.is_empty() {
        crate::output::note(format!(
            "skipped {} files that are not usable images:\n  {}",
            skipped.len(),
            skipped.join("\n  ")
        ));
    }
    for (what, d) in [("training", &train), ("test", &test)] {
        if d.is_empty() {
            return Err(Error::Dataset(format!(
                "{}: no usable {what} images",
                dir.display()
            )));
        }
    }
    Ok((train, test, classes))
}

/// Moves a seeded `fraction` of `train`'s records (at least one) into the returned set.
fn split_off(train: &mut Dataset, fraction: f64, seed: u64) -> Result<Dataset> {
    let n = train.len();
    let n_val = ((n as f64 * fraction).round() as usize).max(1);
    if n_val >= n {
        return Err(Error::Dataset(format!(
            "--validation-split {fraction} of {n} images leaves none to train on"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed ^ 0x0da7_a5e7).shuffle(&mut order);
    let (keep, val) = order.split_at(n - n_val);
    let (mut keep, mut val) = (keep.to_vec(), val.to_vec());
    keep.sort_unstable();
    val.sort_unstable();
    let pick = |rows: &[usize]| Dataset {
        images: rows
            .iter()
            .flat_map(|&r| train.image(r).iter().copied())
            .collect(),
        labels: rows.iter().map(|&r| train.labels[r]).collect(),
        ..train.empty_like()
    };
    let (t, v) = (pick(&keep), pick(&val));
    *train = t;
    Ok(v)
}
