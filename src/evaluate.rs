//! `gpu-cnn evaluate`: a saved model on a test set, as Keras' `model.evaluate` and a little
//! more: loss and accuracy (the numbers `train` reports for the same weights), per-class
//! accuracy, the confusion matrix, and optionally a picture of the most confidently wrong images.

use std::path::PathBuf;

use serde::Serialize;

use crate::checkpoint::load_saved;
use crate::data::folder::{Color, FolderOptions};
use crate::data::{self, DataOptions, Dataset, DatasetName};
use crate::error::{Error, Result};
use crate::gpu::AdapterOptions;
use crate::infer::{argmax, logits, softmax};

#[derive(Clone, Debug)]
pub struct EvaluateOptions {
    pub model: PathBuf,
    pub batch: usize,
    pub cpu: bool,
    pub adapter: AdapterOptions,
    /// The model's own dataset when `None`.
    pub dataset: Option<DatasetName>,
    pub data_dir: Option<PathBuf>,
    pub offline: bool,
    pub misclassified: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EvaluateReport {
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]`: image counts.
    pub confusion: Vec<Vec<usize>>,
    pub classes: Vec<String>,
}

/// Loss, accuracy, per-class accuracy and confusion from logits and labels.
pub fn report(logits: &[f32], labels: &[u8], classes: &[String]) -> EvaluateReport {
    let k = classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss = 0.0f64;
    for (row, &y) in logits.chunks_exact(k).zip(labels) {
        let p = softmax(row);
        loss -= p[y as usize].max(f64::MIN_POSITIVE).ln();
        confusion[y as usize][argmax(row)] += 1;
    }
    let n = labels.len().max(1) as f64;
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let total: usize = row.iter().sum();
            if total == 0 {
                f64::NAN
            } else {
                row[i] as f64 / total as f64
            }
        })
        .collect();
    EvaluateReport {
        test_loss: loss / n,
        test_accuracy: correct as f64 / n,
        per_class_accuracy,
        confusion,
        classes: classes.to_vec(),
    }
}

/// Runs the evaluation and prints it; returns the report (for `--json`).
pub fn run(opts: &EvaluateOptions) -> Result<EvaluateReport> {
    let saved = load_saved(&opts.model)?;
    let dataset = match (opts.dataset, saved.dataset.as_deref()) {
        (Some(d), _) => d,
        (None, Some(name)) => DatasetName::parse(name).ok_or_else(|| {
            Error::Usage(format!(
                "{} was trained on `{name}`, which gpu-cnn does not know; pass --dataset",
                opts.model.display()
            ))
        })?,
        (None, None) => DatasetName::Mnist,
    };
    let input = saved.model.input;
    let data = data::load(&DataOptions {
        dataset,
        data_dir: opts.data_dir.clone(),
        offline: opts.offline,
        folder: FolderOptions {
            color: if input.c == 3 {
                Color::Rgb
            } else {
                Color::Grayscale
            },
            size: (input.h, input.w),
            ..Default::default()
        },
    })?;
    if data.classes.len() != saved.classes.len() {
        return Err(Error::Usage(format!(
            "{} has {} classes, the model {} ({})",
            data.name,
            data.classes.len(),
            saved.classes.len(),
            opts.model.display()
        )));
    }
    println!("{}", data.describe());
    let test = data.test;
    let (logits, adapter) = logits(
        &saved.model,
        &saved.weights,
        &test,
        opts.batch,
        opts.cpu,
        &opts.adapter,
    )?;
    let r = report(&logits, &test.labels, &saved.classes);
    println!(
        "Evaluated {} on {} test images on {adapter}",
        opts.model.display(),
        test.len()
    );
    println!(
        "Test loss: {:.4} - test accuracy: {:.4}",
        r.test_loss, r.test_accuracy
    );
    print!("{}", confusion_table(&r));
    if let Some(path) = &opts.misclassified {
        let n = misclassified_png(&test, &logits, &saved.classes, path)?;
        println!(
            "Wrote {} ({n} most confidently wrong images)",
            path.display()
        );
    }
    Ok(r)
}

/// The confusion matrix with class names, per-class accuracy in the last column.
pub fn confusion_table(r: &EvaluateReport) -> String {
    // Each row's label: the class index, and its name where that is not the index.
    let labels: Vec<String> = r
        .classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if *name == i.to_string() {
                name.clone()
            } else {
                format!("{i} {name}")
            }
        })
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
        .max(5);
    let cell = r
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(4);
    let mut s = format!(
        "Confusion matrix (rows: true class, columns: predicted)\n{:>width$}",
        ""
    );
    for i in 0..r.classes.len() {
        s.push_str(&format!(" {i:>cell$}"));
    }
    s.push_str("  accuracy\n");
    for (i, row) in r.confusion.iter().enumerate() {
        s.push_str(&format!("{:>width$}", labels[i]));
        for v in row {
            s.push_str(&format!(" {v:>cell$}"));
        }
        // A class with no test images has no accuracy.
        let acc = r.per_class_accuracy[i];
        let acc = if acc.is_finite() {
            format!("{acc:.4}")
        } else {
            "-".into()
        };
        s.push_str(&format!("  {acc:>6}\n"));
    }
    s
}

/// A grid of the (up to 25) wrong answers given with the highest probability, each captioned
/// "true → predicted probability"; returns how many it shows.
pub fn misclassified_png(
    d: &Dataset,
    logits: &[f32],
    classes: &[String],
    path: &std::path::Path,
) -> Result<usize> {
    let k = classes.len();
    let mut wrong: Vec<(f64, usize, usize)> = logits
        .chunks_exact(k)
        .enumerate()
        .filter_map(|(i, row)| {
            let p = argmax(row);
            (p != d.labels[i] as usize).then(|| (softmax(row)[p], i, p))
        })
        .collect();
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    wrong.truncate(25);
    let cells: Vec<(usize, String)> = wrong
        .iter()
        .map(|&(p, i, pred)| {
            (
                i,
                format!(
                    "{} → {} {:.2}",
                    classes[d.labels[i] as usize], classes[pred], p
                ),
            )
        })
        .collect();
    crate::plot::image_grid(
        d,
        &cells,
        "Most confidently wrong (true → predicted probability)",
        path,
    )?;
    Ok(cells.len())
}
