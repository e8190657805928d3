//! `gpu-cnn export`: a saved model as an ONNX file (`onnx` builds it), for ONNX Runtime,
//! onnxruntime-web, OpenCV's DNN module and the other runtimes that read ONNX.

use std::path::{Path, PathBuf};

use crate::checkpoint::load_saved;
use crate::error::{Error, Result};
use crate::files::{ensure_writable_dir, write_atomic};
use crate::onnx;

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// A model.safetensors written by `train`.
    pub model: PathBuf,
    /// Where to write; the model's path with `.onnx` when `None`.
    pub out: Option<PathBuf>,
    pub opset: i64,
}

/// What `export` wrote.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Exported {
    pub path: PathBuf,
    pub bytes: usize,
    pub opset: i64,
}

/// Writes the ONNX file of `opts.model` and says what it takes and gives.
pub fn run(opts: &ExportOptions) -> Result<Exported> {
    let saved = load_saved(&opts.model)?;
    let bytes = onnx::export(&saved, opts.opset)?;
    let path = opts
        .out
        .clone()
        .unwrap_or_else(|| opts.model.with_extension("onnx"));
    if same_file(&path, &opts.model) {
        return Err(Error::Usage(format!(
            "--out {} is the model file itself; choose another name",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_writable_dir(dir)?;
    }
    write_atomic(&path, &bytes)?;
    let i = saved.model.input;
    println!(
        "Wrote {} (ONNX opset {}, {} bytes)",
        path.display(),
        opts.opset,
        bytes.len()
    );
    println!(
        "  input:  `input` float32 [batch, {}, {}, {}]: each pixel value / 255 (0..1), channels first",
        i.c, i.h, i.w
    );
    println!(
        "  output: `probabilities` float32 [batch, {}]: softmax over {}",
        saved.model.classes,
        class_list(&saved.classes)
    );
    Ok(Exported {
        path,
        bytes: bytes.len(),
        opset: opts.opset,
    })
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The class names, the first few and a count past them.
fn class_list(classes: &[String]) -> String {
    let shown: Vec<&str> = classes.iter().take(10).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if classes.len() > shown.len() {
        s.push_str(&format!(", ... ({} classes)", classes.len()));
    }
    s
}
