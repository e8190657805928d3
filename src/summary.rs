//! `gpu-cnn summary`: Keras' `model.summary()` table for a model description: each Keras layer
//! with its output shape in Keras' (height, width, channels) order and its parameter count.

use serde::Serialize;

use crate::layers::Placement;
use crate::model::Model;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SummaryLayer {
    /// Keras' default name: `conv2d`, `conv2d_1`, `max_pooling2d`, `flatten`, `dense`, ...
    pub name: String,
    /// Keras' class: `Conv2D`, `MaxPooling2D`, `Flatten`, `Dense`.
    #[serde(rename = "type")]
    pub kind: String,
    /// (h, w, c) for spatial outputs, (units) after a flatten or dense.
    pub output_shape: Vec<usize>,
    pub params: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// The model's name in the title: `sequential`, or a Functional file's own.
    pub name: String,
    pub layers: Vec<SummaryLayer>,
    pub total_params: usize,
    pub trainable_params: usize,
}

/// The Keras layers of `model`, a Flatten before the first Dense as in Keras.
pub fn summary(model: &Model) -> Summary {
    let mut counts = std::collections::HashMap::new();
    let mut name = |base: &str| {
        let n = counts.entry(base.to_string()).or_insert(0usize);
        let s = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        s
    };
    let mut layers = Vec::new();
    let flatten_at = model.flatten_at();
    let mut flat = false;
    for (i, l) in model.layers.iter().enumerate() {
        if flatten_at == Some(i) {
            flat = true;
            layers.push(SummaryLayer {
                name: name("flatten"),
                kind: "Flatten".into(),
                output_shape: vec![l.input.len()],
                params: 0,
            });
        }
        let o = l.output;
        let (base, kind) = l.layer.keras_names();
        // Every tensor the layer owns, trainable or not (batch norm's moving statistics too).
        let n: usize = model
            .params
            .iter()
            .filter(|p| p.name.starts_with(&format!("{}.", l.name)))
            .map(|p| p.len)
            .sum();
        flat |= matches!(l.layer.placement(), Placement::Flattening | Placement::Flat);
        layers.push(SummaryLayer {
            name: name(base),
            kind: kind.into(),
            output_shape: if flat {
                vec![o.len()]
            } else {
                vec![o.h, o.w, o.c]
            },
            params: n,
        });
    }
    Summary {
        name: "sequential".into(),
        layers,
        total_params: model.param_count(),
        trainable_params: model.trainable_count(),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes of f32 parameters, as Keras prints them (1 KB = 1024 B).
fn size(n: usize) -> String {
    let b = n as f64 * 4.0;
    if b < 1024.0 {
        format!("{b:.2} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{:.2} MB", b / 1024.0 / 1024.0)
    }
}

/// The table as Keras 3 draws it.
pub fn table(s: &Summary) -> String {
    let (w1, w2, w3) = (33, 24, 15);
    let row = |a: &str, b: &str, c: &str| {
        format!(
            "│ {a:<w$} │ {b:<v$} │ {c:>u$} │\n",
            w = w1 - 2,
            v = w2 - 2,
            u = w3 - 2
        )
    };
    let line = |l: &str, m: &str, r: &str, f: &str| {
        format!(
            "{l}{}{m}{}{m}{}{r}\n",
            f.repeat(w1),
            f.repeat(w2),
            f.repeat(w3)
        )
    };
    let mut out = format!("Model: \"{}\"\n", s.name);
    out.push_str(&line("┏", "┳", "┓", "━"));
    out.push_str(&format!(
        "┃ {:<w$} ┃ {:<v$} ┃ {:>u$} ┃\n",
        "Layer (type)",
        "Output Shape",
        "Param #",
        w = w1 - 2,
        v = w2 - 2,
        u = w3 - 2
    ));
    out.push_str(&line("┡", "╇", "┩", "━"));
    for (i, l) in s.layers.iter().enumerate() {
        let shape = format!(
            "(None, {})",
            l.output_shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cell = format!("{} ({})", l.name, l.kind);
        if cell.chars().count() <= w1 - 2 {
            out.push_str(&row(&cell, &shape, &thousands(l.params)));
        } else {
            // As Keras wraps a long cell: the name, then the type on a line of its own.
            out.push_str(&row(&l.name, &shape, &thousands(l.params)));
            out.push_str(&row(&format!("({})", l.kind), "", ""));
        }
        if i + 1 < s.layers.len() {
            out.push_str(&line("├", "┼", "┤", "─"));
        }
    }
    out.push_str(&line("└", "┴", "┘", "─"));
    let non = s.total_params - s.trainable_params;
    out.push_str(&format!(
        " Total params: {} ({})\n Trainable params: {} ({})\n Non-trainable params: {} ({})\n",
        thousands(s.total_params),
        size(s.total_params),
        thousands(s.trainable_params),
        size(s.trainable_params),
        thousands(non),
        size(non)
    ));
    out
}

/// `summary` as Keras prints it for the model file `spec` was read from: for a Functional file
/// its name and the InputLayer's row first.
pub fn summary_of(model: &Model, spec: Option<&crate::spec::ModelSpec>) -> Summary {
    let mut s = summary(model);
    if let Some((name, input)) = spec.and_then(|sp| sp.functional.clone()) {
        s.name = name;
        let i = model.input;
        s.layers.insert(
            0,
            SummaryLayer {
                name: input,
                kind: "InputLayer".into(),
                output_shape: vec![i.h, i.w, i.c],
                params: 0,
            },
        );
    }
    s
}

/// The model `spec` (the seed CNN when `None`) on the input of `dataset`, or of `input` (HxWxC)
/// with `classes`.
pub fn build(
    spec: Option<&str>,
    dataset: Option<crate::data::DatasetName>,
    input: Option<&str>,
    classes: Option<usize>,
) -> crate::Result<Model> {
    build_spec(spec, dataset, input, classes).map(|(m, _)| m)
}

/// `build`, with the description it read (`None` for the seed CNN), for `summary_of`.
pub fn build_spec(
    spec: Option<&str>,
    dataset: Option<crate::data::DatasetName>,
    input: Option<&str>,
    classes: Option<usize>,
) -> crate::Result<(Model, Option<crate::spec::ModelSpec>)> {
    use crate::error::Error;
    use crate::model::Shape;
    let (shape, n) = match (dataset, input) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage("pass --dataset or --input, not both".into()));
        }
        (_, Some(text)) => {
            let dims: Option<Vec<usize>> = text
                .split(['x', 'X'])
                .map(|p| p.trim().parse().ok().filter(|&v: &usize| v >= 1))
                .collect();
            let Some([h, w, c]) = dims
                .as_deref()
                .map(|d| <[usize; 3]>::try_from(d).ok())
                .flatten()
            else {
                return Err(Error::Usage(format!(
                    "--input `{text}` is not HxWxC (e.g. 28x28x1)"
                )));
            };
            let n = classes.ok_or_else(|| Error::Usage("--input needs --classes N".into()))?;
            (Shape::new(c, h, w), n)
        }
        (d, None) => {
            let d = d.unwrap_or_default();
            let known = d.known().ok_or_else(|| {
                Error::Usage(
                    "--dataset folder has no fixed shape: pass --input HxWxC --classes N".into(),
                )
            })?;
            let (c, h, w) = known.shape;
            (Shape::new(c, h, w), classes.unwrap_or(known.classes.len()))
        }
    };
    match spec.map(crate::spec::ModelSpec::parse).transpose()? {
        Some(parsed) => Ok((parsed.build(shape, n, false)?, Some(parsed))),
        None => Ok((Model::seed(shape, n)?, None)),
    }
}
