//! Checkpoint I/O: the parameters as f32 safetensors under PyTorch's names and layouts, with the
//! model's input shape, layers and class names in the header's metadata, so a model file can be
//! used alone.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::{Model, Shape};

impl Model {
    /// Writes the parameters as f32 safetensors under their PyTorch names, atomically
    /// (a temporary file renamed into place), so a failure never leaves a torn checkpoint.
    /// `meta` adds string entries to the header's metadata (class names, dataset, ...); the
    /// model's input shape (`input`, CxHxW) and layers (`architecture`) are always recorded.
    pub fn save_safetensors(
        &self,
        flat: &[f32],
        path: &Path,
        meta: &[(&str, String)],
    ) -> Result<()> {
        if flat.len() != self.flat_len {
            return Err(Error::Checkpoint {
                path: path.into(),
                msg: format!(
                    "{} parameters given, the model has {}",
                    flat.len(),
                    self.flat_len
                ),
            });
        }
        let bytes: Vec<Vec<u8>> = self
            .params
            .iter()
            .map(|p| {
                flat[p.offset..p.offset + p.len]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect()
            })
            .collect();
        let mut views = Vec::new();
        for (p, b) in self.params.iter().zip(&bytes) {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, p.shape.clone(), b)
                    .map_err(|e| Error::Checkpoint {
                    path: path.into(),
                    msg: e.to_string(),
                })?;
            views.push((p.name.clone(), view));
        }
        let extra = meta;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        meta.insert("input".to_string(), self.input.to_string());
        meta.insert("architecture".to_string(), self.describe());
        for (k, v) in extra {
            meta.insert(k.to_string(), v.clone());
        }
        let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Checkpoint {
            path: path.into(),
            msg: e.to_string(),
        })?;
        write_atomic(path, &canonical_safetensors(data, path)?)
    }

    /// Reads a checkpoint written by `save_safetensors` (or by PyTorch for an equivalent module):
    /// every tensor must be present with this model's name, shape and dtype f32.
    pub fn load_safetensors(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let err = |msg: String| Error::Checkpoint {
            path: path.into(),
            msg,
        };
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let mut extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !self.params.iter().any(|p| p.name == **n))
            .map(|n| n.to_string())
            .collect();
        if !extra.is_empty() {
            extra.sort();
            let expected: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
            return Err(err(format!(
                "tensors [{}] are not part of this model, which has [{}]",
                extra.join(", "),
                expected.join(", ")
            )));
        }
        let mut flat = vec![0.0f32; self.flat_len];
        for p in &self.params {
            let t = st.tensor(&p.name).map_err(|_| {
                let expected: Vec<String> = self
                    .params
                    .iter()
                    .map(|p| format!("{} {:?}", p.name, p.shape))
                    .collect();
                err(format!(
                    "missing tensor `{}`; this model needs [{}]",
                    p.name,
                    expected.join(", ")
                ))
            })?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(err(format!(
                    "tensor `{}` has dtype {:?}, expected F32",
                    p.name,
                    t.dtype()
                )));
            }
            if t.shape() != p.shape.as_slice() {
                return Err(err(format!(
                    "tensor `{}` has shape {:?}, this model needs {:?}",
                    p.name,
                    t.shape(),
                    p.shape
                )));
            }
            let dst = &mut flat[p.offset..p.offset + p.len];
            for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            if let Some(i) = dst.iter().position(|x| !x.is_finite()) {
                return Err(err(format!(
                    "tensor `{}` holds a non-finite value at {i}",
                    p.name
                )));
            }
        }
        Ok(flat)
    }
}

/// A model file as `train` writes it, with everything needed to use it alone.
#[derive(Clone, Debug)]
pub struct SavedModel {
    pub model: Model,
    pub weights: Vec<f32>,
    pub classes: Vec<String>,
    /// The dataset it was trained on (`mnist`, `fashion-mnist`, `folder`), if recorded.
    pub dataset: Option<String>,
}

/// Parses `CxHxW`.
fn parse_shape(s: &str) -> Option<Shape> {
    let v: Vec<usize> = s
        .split('x')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match v[..] {
        [c, h, w] => Some(Shape::new(c, h, w)),
        _ => None,
    }
}

/// Rebuilds the model of a `model.safetensors` from its metadata (input shape, layers, class
/// names) and loads its weights. A file without that metadata (written by an older gpu-cnn or by
/// PyTorch) is taken for the MNIST seed model, with a note.
pub fn load_saved(path: &Path) -> Result<SavedModel> {
    let (_, meta) = read_safetensors(path)?;
    let err = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let (input, classes) = match (meta.get("input"), meta.get("classes")) {
        (Some(i), Some(c)) => {
            let input = parse_shape(i)
                .ok_or_else(|| err(format!("metadata `input` is `{i}`, expected CxHxW")))?;
            let classes: Vec<String> = serde_json::from_str(c)
                .map_err(|e| err(format!("metadata `classes` is not a list of names: {e}")))?;
            (input, classes)
        }
        _ => {
            crate::output::note(format!(
                "{} has no gpu-cnn metadata; taking it for the MNIST seed model",
                path.display()
            ));
            (
                Shape::new(1, 28, 28),
                (0..10).map(|d| d.to_string()).collect(),
            )
        }
    };
    if classes.is_empty() || classes.len() > 256 {
        return Err(err(format!(
            "{} classes recorded (1 to 256 supported)",
            classes.len()
        )));
    }
    let model = match meta.get("architecture") {
        Some(arch) => crate::spec::build(arch, input, classes.len(), true)
            .map_err(|e| err(format!("its layers `{arch}` do not rebuild: {e}")))?,
        None => Model::seed(input, classes.len()).map_err(|e| err(e.to_string()))?,
    };
    let weights =
        model
            .load_safetensors(path)
            .map_err(|e| match (e, meta.get("architecture")) {
                (Error::Checkpoint { path, msg }, Some(arch)) => Error::Checkpoint {
                    path,
                    msg: format!("its tensors do not match its recorded layers `{arch}`: {msg}"),
                },
                (e, _) => e,
            })?;
    Ok(SavedModel {
        model,
        weights,
        classes,
        dataset: meta.get("dataset").cloned(),
    })
}

/// The bytes of a safetensors file and the string metadata of its header (empty if none).
pub fn read_safetensors(path: &Path) -> Result<(Vec<u8>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::Checkpoint {
            path: path.into(),
            msg: format!("not a safetensors file: {e}"),
        })?;
    let meta = header.metadata().clone().unwrap_or_default();
    Ok((bytes, meta))
}

/// `bytes` (a safetensors file) with its JSON header's keys sorted at every level: the crate
/// writes the metadata in a `HashMap`'s order, which changes from process to process, so two
/// runs of the same settings would write the same tensors under different bytes. The tensors'
/// data and offsets are untouched; the header is padded with spaces to a multiple of 8 bytes,
/// as the format asks.
pub fn canonical_safetensors(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<(String, serde_json::Value)> = m.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = serde_json::Map::new();
                for (k, v) in keys {
                    out.insert(k, sorted(v));
                }
                serde_json::Value::Object(out)
            }
            other => other,
        }
    }
    let err = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
        .filter(|&n| 8 + n <= bytes.len())
        .ok_or_else(|| err("safetensors wrote no header".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| err(format!("safetensors wrote an unreadable header: {e}")))?;
    // BTreeMap-backed maps serialise in key order; with serde_json's preserve_order the
    // insertion order above is the sorted one.
    let mut text = serde_json::to_vec(&sorted(header)).map_err(|e| err(format!("header: {e}")))?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}
