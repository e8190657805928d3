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
    /// For a graph (a Functional model that is not a chain), Keras' "Connected to": the rows
    /// it reads, as `conv2d[0][0]` (`-` for the input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_to: Option<Vec<String>>,
}

impl SummaryLayer {
    /// The output shape as Keras prints it: `(None, 26, 26, 32)`.
    fn shape_text(&self) -> String {
        let dims: Vec<String> = self.output_shape.iter().map(|d| d.to_string()).collect();
        format!("(None, {})", dims.join(", "))
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// The model's name in the title: `sequential`, or a Functional file's own.
    pub name: String,
    pub layers: Vec<SummaryLayer>,
    pub total_params: usize,
    pub trainable_params: usize,
}

/// The Keras layers of `model`, a Flatten before the first Dense as in Keras; for a graph,
/// Keras' Functional rows (`graph_summary`).
pub fn summary(model: &Model) -> Summary {
    if !model.is_chain() {
        return graph_summary(model);
    }
    let mut names = Names::default();
    let mut layers = Vec::new();
    let flatten_at = model.flatten_at();
    let mut flat = false;
    for (i, l) in model.layers.iter().enumerate() {
        if flatten_at == Some(i) {
            flat = true;
            layers.push(SummaryLayer {
                name: names.next("flatten"),
                kind: "Flatten".into(),
                output_shape: vec![l.input.len()],
                params: 0,
                connected_to: None,
            });
        }
        let o = l.output;
        let (base, kind) = l.layer.keras_names();
        flat |= matches!(l.layer.placement(), Placement::Flattening | Placement::Flat);
        layers.push(SummaryLayer {
            name: names.next(base),
            kind: kind.into(),
            output_shape: if flat {
                vec![o.len()]
            } else {
                vec![o.h, o.w, o.c]
            },
            params: owned(model, l),
            connected_to: None,
        });
    }
    Summary {
        name: "sequential".into(),
        layers,
        total_params: model.param_count(),
        trainable_params: model.trainable_count(),
    }
}

/// Keras' default names, numbered per base as Keras numbers them: `conv2d`, `conv2d_1`, ...
#[derive(Default)]
struct Names(std::collections::HashMap<String, usize>);

impl Names {
    fn next(&mut self, base: &str) -> String {
        let n = self.0.entry(base.to_string()).or_insert(0);
        let s = match *n {
            0 => base.to_string(),
            k => format!("{base}_{k}"),
        };
        *n += 1;
        s
    }
}

/// Parameters layer `l` of `model` owns, trainable or not (batch norm's moving statistics too).
fn owned(model: &Model, l: &crate::model::LayerPlan) -> usize {
    model
        .params
        .iter()
        .filter(|p| p.name.starts_with(&format!("{}.", l.name)))
        .map(|p| p.len)
        .sum()
}

/// A graph's rows as Keras' Functional summary has them: the InputLayer first, each layer with
/// the rows it reads ("Connected to"), a Flatten before a dense layer on an image.
fn graph_summary(model: &Model) -> Summary {
    let mut names = Names::default();
    let input = names.next("input_layer");
    let i = model.input;
    let mut layers = vec![SummaryLayer {
        name: input.clone(),
        kind: "InputLayer".into(),
        output_shape: vec![i.h, i.w, i.c],
        params: 0,
        connected_to: Some(vec!["-".into()]),
    }];
    // Per tensor: the row that makes it, and whether it is flat.
    let mut rows = vec![(input, false)];
    for l in &model.layers {
        let mut from: Vec<(String, bool)> = l.inputs.iter().map(|&t| rows[t].clone()).collect();
        let place = l.layer.placement();
        if place == Placement::Flat && !from[0].1 {
            let name = names.next("flatten");
            layers.push(SummaryLayer {
                name: name.clone(),
                kind: "Flatten".into(),
                output_shape: vec![l.input.len()],
                params: 0,
                connected_to: Some(vec![format!("{}[0][0]", from[0].0)]),
            });
            from[0] = (name, true);
        }
        let flat = from[0].1 || matches!(place, Placement::Flattening | Placement::Flat);
        let (base, kind) = l.layer.keras_names();
        let name = names.next(base);
        let o = l.output;
        layers.push(SummaryLayer {
            name: name.clone(),
            kind: kind.into(),
            output_shape: if flat {
                vec![o.len()]
            } else {
                vec![o.h, o.w, o.c]
            },
            params: owned(model, l),
            connected_to: Some(from.iter().map(|(n, _)| format!("{n}[0][0]")).collect()),
        });
        rows.push((name, flat));
    }
    Summary {
        name: "functional".into(),
        layers,
        total_params: model.param_count(),
        trainable_params: model.trainable_count(),
    }
}

/// `text` as rich wraps a table cell `width` characters wide: words filled greedily, a word
/// longer than the width cut to it with `…`.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let word = if word.chars().count() > width {
            let mut w: String = word.chars().take(width - 1).collect();
            w.push('…');
            w
        } else {
            word.to_string()
        };
        if cur.is_empty() {
            cur = word;
        } else if cur.chars().count() + 1 + word.chars().count() <= width {
            cur = format!("{cur} {word}");
        } else {
            lines.push(std::mem::replace(&mut cur, word));
        }
    }
    lines.push(cur);
    lines
}

/// The four-column table Keras 3 draws for a Functional model that is not a chain (at its
/// default width, 76 columns).
fn graph_table(s: &Summary) -> String {
    let widths = [21, 19, 12, 19];
    let line = |l: &str, m: &str, r: &str, f: &str| {
        let cells: Vec<String> = widths.iter().map(|&w| f.repeat(w)).collect();
        format!("{l}{}{r}\n", cells.join(m))
    };
    let row = |cells: [&str; 4], sep: &str| {
        let mut out = String::from(sep);
        for (k, (c, &w)) in cells.iter().zip(&widths).enumerate() {
            match k {
                2 => out.push_str(&format!(" {c:>u$} {sep}", u = w - 2)),
                _ => out.push_str(&format!(" {c:<u$} {sep}", u = w - 2)),
            }
        }
        out.push('\n');
        out
    };
    let mut out = format!("Model: \"{}\"\n", s.name);
    out.push_str(&line("┏", "┳", "┓", "━"));
    out.push_str(&row(
        ["Layer (type)", "Output Shape", "Param #", "Connected to"],
        "┃",
    ));
    out.push_str(&line("┡", "╇", "┩", "━"));
    for (i, l) in s.layers.iter().enumerate() {
        let shape = l.shape_text();
        let connected = l.connected_to.clone().unwrap_or_default().join(", ");
        let cells = [
            wrap(&format!("{} ({})", l.name, l.kind), widths[0] - 2),
            wrap(&shape, widths[1] - 2),
            vec![thousands(l.params)],
            wrap(&connected, widths[3] - 2),
        ];
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let at = |c: &Vec<String>| c.get(k).cloned().unwrap_or_default();
            out.push_str(&row(
                [
                    &at(&cells[0]),
                    &at(&cells[1]),
                    &at(&cells[2]),
                    &at(&cells[3]),
                ],
                "│",
            ));
        }
        if i + 1 < s.layers.len() {
            out.push_str(&line("├", "┼", "┤", "─"));
        }
    }
    out.push_str(&line("└", "┴", "┘", "─"));
    out.push_str(&totals(s));
    out
}

/// The three lines under the table.
fn totals(s: &Summary) -> String {
    let non = s.total_params - s.trainable_params;
    format!(
        " Total params: {} ({})\n Trainable params: {} ({})\n Non-trainable params: {} ({})\n",
        thousands(s.total_params),
        size(s.total_params),
        thousands(s.trainable_params),
        size(s.trainable_params),
        thousands(non),
        size(non)
    )
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
    if s.layers.iter().any(|l| l.connected_to.is_some()) {
        return graph_table(s);
    }
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
        let shape = l.shape_text();
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
    out.push_str(&totals(s));
    out
}

/// `summary` as Keras prints it for the model file `spec` was read from: for a Functional file
/// its name and the InputLayer's row first.
pub fn summary_of(model: &Model, spec: Option<&crate::spec::ModelSpec>) -> Summary {
    let mut s = summary(model);
    let functional = spec.and_then(|sp| sp.functional.clone());
    if let (Some((name, input)), false) = (&functional, model.is_chain()) {
        // A graph's rows already start with the input: it takes the file's names.
        let old = format!("{}[0][0]", s.layers[0].name);
        for l in &mut s.layers {
            for c in l.connected_to.iter_mut().flatten() {
                if *c == old {
                    *c = format!("{input}[0][0]");
                }
            }
        }
        s.layers[0].name = input.clone();
        s.name = name.clone();
        return s;
    }
    if let Some((name, input)) = functional {
        s.name = name;
        let i = model.input;
        s.layers.insert(
            0,
            SummaryLayer {
                name: input,
                kind: "InputLayer".into(),
                output_shape: vec![i.h, i.w, i.c],
                params: 0,
                connected_to: None,
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
