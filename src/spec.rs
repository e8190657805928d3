//! Model descriptions: the presets and the one-line text form, in Keras' vocabulary in lower
//! case: `"conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) flatten dense(128,relu)
//! dense(10)"`. A syntax error shows the line with a caret under the bad token.
//!
//! Each layer kind reads its own call and Keras class (`layers`); this module reads the text into
//! calls, a Keras file into layers, and checks the order Keras builds models in.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::layers::read::{caret, channels_last, Call, CallReader, KerasLayer, Token};
use crate::layers::{self, Layer, Placement, KERAS_CLASSES, TEXT_NAMES};
use crate::model::{Model, Shape};

/// The presets by name, with their text. The ResNets are He et al. (2016)'s CIFAR ResNets with
/// projection shortcuts (a 1x1 conv with stride 2 and batch norm where a block strides or
/// widens; the paper's option B), convs without bias before batch norm, and their layers in
/// the order Keras' Functional API keeps them (`tests/fixtures/keras/make_resnet.py` writes
/// their Keras twins): `resnet20-cifar10` (3 stages of 3 basic blocks, 16/32/64 filters,
/// 274,042 parameters) and `resnet-mini` (one block per stage, for MNIST-sized inputs).
pub const PRESETS: [(&str, &str); 4] = [
    (
        "keras-mnist",
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) flatten dense(128,relu) dense(10)",
    ),
    (
        "keras-cifar10",
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) conv2d(64,3,relu) flatten dense(64,relu) dense(10)",
    ),
    (
        "resnet20-cifar10",
        concat!(
            "conv2d(16,3,padding=same,use_bias=false) batchnorm relu",
            " as(b1) conv2d(16,3,padding=same,use_bias=false) batchnorm relu conv2d(16,3,padding=same,use_bias=false) batchnorm add(b1) relu",
            " as(b2) conv2d(16,3,padding=same,use_bias=false) batchnorm relu conv2d(16,3,padding=same,use_bias=false) batchnorm add(b2) relu",
            " as(b3) conv2d(16,3,padding=same,use_bias=false) batchnorm relu conv2d(16,3,padding=same,use_bias=false) batchnorm add(b3) relu",
            " as(b4) conv2d(32,3,stride=2,padding=same,use_bias=false) batchnorm relu conv2d(32,3,padding=same,use_bias=false) as(m4) from(b4) conv2d(32,1,stride=2,padding=same,use_bias=false) as(p4) from(m4) batchnorm as(y4) from(p4) batchnorm as(s4) from(y4) add(s4) relu",
            " as(b5) conv2d(32,3,padding=same,use_bias=false) batchnorm relu conv2d(32,3,padding=same,use_bias=false) batchnorm add(b5) relu",
            " as(b6) conv2d(32,3,padding=same,use_bias=false) batchnorm relu conv2d(32,3,padding=same,use_bias=false) batchnorm add(b6) relu",
            " as(b7) conv2d(64,3,stride=2,padding=same,use_bias=false) batchnorm relu conv2d(64,3,padding=same,use_bias=false) as(m7) from(b7) conv2d(64,1,stride=2,padding=same,use_bias=false) as(p7) from(m7) batchnorm as(y7) from(p7) batchnorm as(s7) from(y7) add(s7) relu",
            " as(b8) conv2d(64,3,padding=same,use_bias=false) batchnorm relu conv2d(64,3,padding=same,use_bias=false) batchnorm add(b8) relu",
            " as(b9) conv2d(64,3,padding=same,use_bias=false) batchnorm relu conv2d(64,3,padding=same,use_bias=false) batchnorm add(b9) relu",
            " globalavgpool dense(10)",
        ),
    ),
    (
        "resnet-mini",
        concat!(
            "conv2d(16,3,padding=same,use_bias=false) batchnorm relu",
            " as(b1) conv2d(16,3,padding=same,use_bias=false) batchnorm relu conv2d(16,3,padding=same,use_bias=false) batchnorm add(b1) relu",
            " as(b2) conv2d(32,3,stride=2,padding=same,use_bias=false) batchnorm relu conv2d(32,3,padding=same,use_bias=false) as(m2) from(b2) conv2d(32,1,stride=2,padding=same,use_bias=false) as(p2) from(m2) batchnorm as(y2) from(p2) batchnorm as(s2) from(y2) add(s2) relu",
            " as(b3) conv2d(64,3,stride=2,padding=same,use_bias=false) batchnorm relu conv2d(64,3,padding=same,use_bias=false) as(m3) from(b3) conv2d(64,1,stride=2,padding=same,use_bias=false) as(p3) from(m3) batchnorm as(y3) from(p3) batchnorm as(s3) from(y3) add(s3) relu",
            " globalavgpool dense(10)",
        ),
    ),
];

/// One layer as written, before shapes are known. `Flatten` is explicit, as in Keras. Each
/// layer reads the tensor so far (the one before it); a graph names tensors and joins them:
/// `as(x)` names the tensor so far, `from(x)` goes on from tensor x, and `add(x)` or
/// `concatenate(x)` join the tensor so far with x (in that order).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    Layer(Layer),
    Flatten,
    /// `as(x)`.
    Name(String),
    /// `from(x)`.
    From(String),
    /// `add(x, ...)`, `concatenate(x, ...)`: the tensor so far, then these.
    Join(Layer, Vec<String>),
}

/// A model description, read once from what `--model` holds (a preset, a Keras `.json` file or
/// the text form) and used from then on: its layers as written, the input shape a Keras file
/// declares, and the text its errors quote.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub layers: Vec<LayerSpec>,
    /// A Keras file's `InputLayer` shape, checked against the data's by `build`.
    pub input: Option<Shape>,
    /// What was given (the preset's name, the file's path or the text).
    pub given: String,
    /// A Keras Functional file's model name and input layer name (`summary` prints them as
    /// Keras does); `None` for the rest.
    pub functional: Option<(String, String)>,
}

impl ModelSpec {
    /// Reads `--model`: a `.json` file (Keras' `model.to_json()`), a preset's name or the text.
    pub fn parse(given: &str) -> Result<ModelSpec> {
        let (layers, input, functional) = if given.trim().ends_with(".json") {
            let path = std::path::Path::new(given.trim());
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            read_keras_json(&text, path)?
        } else {
            (parse(given)?, None, None)
        };
        Ok(ModelSpec {
            layers,
            input,
            given: given.to_string(),
            functional,
        })
    }

    fn input_mismatch(&self, declared: Shape, data: Shape) -> Error {
        Error::bad_file(
            std::path::Path::new(self.given.trim()),
            format!(
                "the model's InputLayer takes {declared} (channels x height x width), the data is {data}"
            ),
        )
    }

    /// The layers in the text form.
    pub fn text(&self) -> String {
        to_text(&self.layers)
    }

    /// The model on `input` images with `classes` outputs (see `build`). A Keras file's declared
    /// input shape other than `input` is an error.
    pub fn build(&self, input: Shape, classes: usize, lenient: bool) -> Result<Model> {
        if let Some(d) = self.input.filter(|&d| d != input) {
            return Err(self.input_mismatch(d, input));
        }
        // Errors quote the text as given, or a Keras file's layers in the text form.
        let quoted = match self.given.trim().ends_with(".json") {
            true => self.text(),
            false => self.given.clone(),
        };
        build_layers(&self.layers, &quoted, input, classes, lenient)
    }
}

fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
            let mut text = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                    text.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token { text, at: i });
        } else {
            out.push(Token {
                text: c.to_string(),
                at: i,
            });
            chars.next();
        }
    }
    out
}

fn calls(line: &str) -> Result<Vec<Call>> {
    let toks = tokens(line);
    let mut out = Vec::new();
    let mut i = 0;
    let end = line.len();
    while i < toks.len() {
        let name = toks[i].clone();
        if !name.text.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(caret(
                line,
                name.at,
                &format!("expected a layer name, found `{}`", name.text),
            ));
        }
        i += 1;
        let mut call = Call {
            name,
            args: Vec::new(),
            kwargs: Vec::new(),
        };
        if toks.get(i).is_some_and(|t| t.text == "(") {
            i += 1;
            loop {
                let Some(t) = toks.get(i) else {
                    return Err(caret(line, end, "missing `)`"));
                };
                if t.text == ")" && call.args.is_empty() && call.kwargs.is_empty() {
                    i += 1;
                    break;
                }
                if t.text == ")" || t.text == "," || t.text == "=" || t.text == "(" {
                    return Err(caret(
                        line,
                        t.at,
                        &format!("expected a value, found `{}`", t.text),
                    ));
                }
                if toks.get(i + 1).is_some_and(|e| e.text == "=") {
                    let Some(v) = toks
                        .get(i + 2)
                        .filter(|v| !"(),=".contains(v.text.as_str()))
                    else {
                        let at = toks.get(i + 2).map_or(end, |v| v.at);
                        return Err(caret(line, at, "expected a value after `=`"));
                    };
                    call.kwargs.push((t.clone(), v.clone()));
                    i += 3;
                } else {
                    if !call.kwargs.is_empty() {
                        return Err(caret(line, t.at, "a positional value after a keyword one"));
                    }
                    call.args.push(t.clone());
                    i += 1;
                }
                match toks.get(i) {
                    Some(t) if t.text == "," => i += 1,
                    Some(t) if t.text == ")" => {
                        i += 1;
                        break;
                    }
                    Some(t) => {
                        return Err(caret(
                            line,
                            t.at,
                            &format!("expected `,` or `)`, found `{}`", t.text),
                        ))
                    }
                    None => return Err(caret(line, end, "missing `)`")),
                }
            }
        }
        out.push(call);
    }
    if out.is_empty() {
        return Err(Error::Usage("--model: the description is empty".into()));
    }
    Ok(out)
}

/// Parses the one-line text form (or a preset's name) into layers: one small reader per layer.
pub fn parse(line: &str) -> Result<Vec<LayerSpec>> {
    let line = PRESETS
        .iter()
        .find(|(name, _)| *name == line.trim())
        .map_or(line, |(_, text)| *text);
    let mut out = Vec::new();
    for c in calls(line)? {
        let r = CallReader { line, c: &c };
        let name = c.name.text.as_str();
        out.push(match name {
            "flatten" => text_flatten(&r)?,
            "as" | "from" | "add" | "concatenate" => text_graph(&r)?,
            _ => match layers::read_text(name, &r) {
                Some(layer) => LayerSpec::Layer(layer?),
                None => unknown(line, &c, name)?,
            },
        });
    }
    Ok(out)
}

fn text_flatten(r: &CallReader) -> Result<LayerSpec> {
    r.arity(0)?;
    Ok(LayerSpec::Flatten)
}

/// Whether `s` may name a tensor: a letter, then letters, digits and `_`.
fn is_label(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `as(x)`, `from(x)`, `add(x, ...)`, `concatenate(x, ...)`: the names of tensors.
fn text_graph(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    let name = c.name.text.as_str();
    if let Some((key, _)) = c.kwargs.first() {
        return Err(caret(
            line,
            key.at,
            &format!("{name} takes tensor names, not options"),
        ));
    }
    let one = matches!(name, "as" | "from");
    if c.args.is_empty() || (one && c.args.len() > 1) {
        let want = if one {
            "one tensor name"
        } else {
            "the names of the tensors it joins to the one so far"
        };
        return Err(caret(
            line,
            c.name.at,
            &format!("{name} takes {want}, e.g. {name}(x)"),
        ));
    }
    for a in &c.args {
        if !is_label(&a.text) {
            return Err(caret(
                line,
                a.at,
                &format!(
                    "`{}` is not a tensor name (a letter, then letters, digits and _)",
                    a.text
                ),
            ));
        }
    }
    let labels: Vec<String> = c.args.iter().map(|a| a.text.clone()).collect();
    Ok(match name {
        "as" => LayerSpec::Name(labels[0].clone()),
        "from" => LayerSpec::From(labels[0].clone()),
        "add" => LayerSpec::Join(Layer::Add, labels),
        _ => LayerSpec::Join(Layer::Concatenate, labels),
    })
}

/// An unknown layer name, with the names there are.
fn unknown(line: &str, c: &Call, other: &str) -> Result<LayerSpec> {
    Err(caret(
        line,
        c.name.at,
        &format!(
            "unknown layer `{other}` ({TEXT_NAMES}; presets: {})",
            PRESETS.map(|p| p.0).join(", ")
        ),
    ))
}

/// The model of `text` on `input` with `classes` outputs. As in Keras, a dense layer after a
/// spatial one needs a flatten first; the last layer must be a dense layer with one unit per
/// class. `lenient` accepts a dense layer right after a spatial one (model files written before
/// flatten was spelled out).
pub fn build(text: &str, input: Shape, classes: usize, lenient: bool) -> Result<Model> {
    build_layers(&parse(text)?, text, input, classes, lenient)
}

/// `build` of parsed layers; `text` is what errors quote.
fn build_layers(
    specs: &[LayerSpec],
    text: &str,
    input: Shape,
    classes: usize,
    lenient: bool,
) -> Result<Model> {
    let usage = |msg: String| Error::Usage(format!("--model `{text}`: {msg}"));
    let mut nodes: Vec<(Layer, Vec<usize>)> = Vec::new();
    // Per tensor (0 the input, j + 1 layer j's output): whether it is flat, and whether a
    // flatten made it so from an image (no dense or global pooling since).
    let mut state = vec![(false, false)];
    let mut labels: std::collections::HashMap<&str, usize> = Default::default();
    let mut cur = 0;
    for s in specs {
        let (mut flat, mut flattened_spatial) = state[cur];
        let l = match s {
            LayerSpec::Flatten => {
                state[cur] = (true, flattened_spatial | !flat);
                continue;
            }
            LayerSpec::Name(n) => {
                if labels.insert(n, cur).is_some() {
                    return Err(usage(format!(
                        "as({n}): `{n}` names another tensor already"
                    )));
                }
                continue;
            }
            LayerSpec::From(n) => {
                cur = *labels.get(n.as_str()).ok_or_else(|| {
                    usage(format!(
                        "from({n}): no tensor is named `{n}` before it (as({n}) names one)"
                    ))
                })?;
                continue;
            }
            LayerSpec::Join(l, names) => {
                let mut inputs = vec![cur];
                for n in names {
                    inputs.push(*labels.get(n.as_str()).ok_or_else(|| {
                        usage(format!(
                            "{}({n}): no tensor is named `{n}` before it (as({n}) names one)",
                            l.to_text()
                        ))
                    })?);
                }
                nodes.push((*l, inputs));
                cur = nodes.len();
                state.push((flat, flattened_spatial));
                continue;
            }
            LayerSpec::Layer(l) => *l,
        };
        match l.placement() {
            Placement::First => {
                if let Some(before) = nodes
                    .iter()
                    .map(|n| n.0)
                    .find(|b: &Layer| b.placement() != Placement::First)
                {
                    let name = |l: &Layer| l.to_text().split('(').next().unwrap_or("").to_string();
                    return Err(usage(format!(
                        "{} after {}: augmentation layers come first, before any other layer (as Keras' preprocessing layers)",
                        name(&l),
                        name(&before)
                    )));
                }
                if flat {
                    return Err(usage(
                        "augmentation after flatten: augmentation layers come first".into(),
                    ));
                }
                if cur != nodes.len() {
                    return Err(usage(
                        "augmentation after from(): augmentation layers come first, one after another".into(),
                    ));
                }
            }
            Placement::Elementwise | Placement::Merge => {}
            Placement::PerChannel if flattened_spatial => {
                let text_name = l.to_text();
                let name = text_name.split('(').next().unwrap_or("");
                return Err(usage(format!(
                    "{name} right after flatten is not supported (put it before flatten, or after a dense layer)"
                )));
            }
            Placement::PerChannel => {}
            Placement::Flattening if !flat => flat = true,
            Placement::Flat => {
                if !flat && !lenient {
                    return Err(usage(
                        "a dense layer after a spatial one needs `flatten` first, as in Keras"
                            .into(),
                    ));
                }
                flat = true;
                flattened_spatial = false;
            }
            Placement::Spatial | Placement::Flattening => {
                if flat {
                    return Err(usage(format!(
                        "{l:?} after flatten or dense: spatial layers come first"
                    )));
                }
            }
        }
        nodes.push((l, vec![cur]));
        cur = nodes.len();
        state.push((flat, flattened_spatial));
    }
    if cur != nodes.len() {
        return Err(usage(
            "the model ends with from(): its output is the last layer's".into(),
        ));
    }
    match nodes.last().map(|n| n.0) {
        Some(Layer::Dense { out, relu: false }) if out == classes => {}
        Some(Layer::Dense { out, relu: false }) => {
            return Err(usage(format!(
                "the last layer has {out} units, the data has {classes} classes"
            )))
        }
        _ => {
            return Err(usage(format!(
                "the last layer must be dense({classes}) without relu (the logits; softmax is in the loss)"
            )))
        }
    }
    Model::graph(input, &nodes).map_err(|e| match e {
        Error::Model(m) if nodes.iter().any(|n| n.1.len() > 1) => usage(m),
        e => e,
    })
}

/// The layers of a Keras model as `model.to_json()` writes it (Keras 3, and Keras 2 where the
/// same), with the input shape its `InputLayer` declares, if any: a `Sequential` model, or a
/// `Functional` one whose layers form a chain from its one input to its one output (each layer
/// fed by the one before it). Whatever gpu-cnn cannot train is an error naming the layer, the
/// option and what is supported; nothing is silently ignored.
pub fn parse_keras_json(
    text: &str,
    path: &std::path::Path,
) -> Result<(Vec<LayerSpec>, Option<Shape>)> {
    read_keras_json(text, path).map(|(layers, input, _)| (layers, input))
}

/// `parse_keras_json`, and for a Functional file its model's and input layer's names.
type KerasModel = (Vec<LayerSpec>, Option<Shape>, Option<(String, String)>);

fn read_keras_json(text: &str, path: &std::path::Path) -> Result<KerasModel> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(layers) = v["config"]["layers"].as_array() else {
        return Err(bad("config.layers is missing".into()));
    };
    let mut functional = None;
    // The layers in order, and for a Functional model each one's inputs by name.
    let (layers, feeds): (Vec<&Value>, Option<Vec<Vec<String>>>) = match v["class_name"].as_str() {
        Some("Sequential") => (layers.iter().collect(), None),
        Some("Functional" | "Model") => {
            let graph = functional_graph(&v["config"], layers, path)?;
            let name = |v: &Value, default: &str| v.as_str().unwrap_or(default).to_string();
            let first = graph.first().map_or(String::new(), |(l, _)| {
                name(
                    &l["name"],
                    l["config"]["name"].as_str().unwrap_or("input_layer"),
                )
            });
            functional = Some((name(&v["config"]["name"], "functional"), first));
            let (layers, feeds) = graph.into_iter().unzip();
            (layers, Some(feeds))
        }
        other => {
            return Err(bad(format!(
                "the model is a {}, only Sequential and Functional models are supported",
                other.unwrap_or("(no class_name)")
            )))
        }
    };
    let mut specs = Vec::new();
    let mut names = Vec::new();
    let mut input = None;
    for (i, l) in layers.iter().enumerate() {
        let class = l["class_name"].as_str().unwrap_or("");
        let c = &l["config"];
        let k = KerasLayer {
            path,
            class,
            name: c["name"].as_str().unwrap_or(class),
            c,
            last: i + 1 == layers.len(),
        };
        k.no_regularisers(&[
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ])?;
        names.push(
            l["name"]
                .as_str()
                .or(c["name"].as_str())
                .unwrap_or("")
                .to_string(),
        );
        let spec = match class {
            "InputLayer" => {
                input = keras_input(&k)?.or(input);
                None
            }
            "Flatten" => {
                k.require("data_format", &channels_last, "channels_last")?;
                Some(LayerSpec::Flatten)
            }
            _ => match layers::read_keras(class, &k) {
                Some(layer) => layer?.map(|l| match l.placement() {
                    Placement::Merge => LayerSpec::Join(l, Vec::new()),
                    _ => LayerSpec::Layer(l),
                }),
                None => {
                    return Err(k.err(format!(
                        "class `{class}` is not supported ({KERAS_CLASSES})"
                    )))
                }
            },
        };
        let joins = feeds.as_ref().map_or(1, |f| f[i].len());
        match (&spec, joins) {
            (Some(LayerSpec::Join(..)), n) if n < 2 => {
                return Err(k.err(format!("joins {n} tensor; it needs two or more")))
            }
            (Some(LayerSpec::Join(..)), _) if feeds.is_none() => {
                return Err(k.err("joins tensors: in a Sequential model there is one".into()))
            }
            (Some(LayerSpec::Join(..)), _) => {}
            (_, n) if n > 1 => {
                return Err(k.err(format!(
                    "reads {n} tensors; only Add and Concatenate join several"
                )))
            }
            _ => {}
        }
        specs.push(spec);
    }
    let out: Vec<LayerSpec> = match &feeds {
        // A Functional model's input is its first layer, an InputLayer.
        Some(feeds) => {
            let class = layers.first().and_then(|l| l["class_name"].as_str());
            if class != Some("InputLayer") {
                return Err(bad(format!(
                    "the model's input `{}` is a {}, not an InputLayer",
                    names.first().map_or("", String::as_str),
                    class.unwrap_or("(no class)")
                )));
            }
            graph_to_specs(&names, feeds, specs.split_off(1))
        }
        None => specs.into_iter().flatten().collect(),
    };
    if out.is_empty() {
        return Err(bad("the model has no layers".into()));
    }
    Ok((out, input, functional))
}

/// The names of the layers whose outputs feed a Functional layer's `inbound_nodes`: each
/// `keras_history` (Keras 3) or `[name, node, tensor, kwargs]` entry (Keras 2), with its node
/// and tensor indices.
fn inbound(nodes: &Value, out: &mut Vec<(String, i64, i64)>) {
    match nodes {
        Value::Object(o) => {
            if let Some(Value::Array(h)) = o.get("keras_history") {
                out.push(history(h));
            } else {
                o.values().for_each(|v| inbound(v, out));
            }
        }
        Value::Array(a) if a.first().is_some_and(Value::is_string) => out.push(history(a)),
        Value::Array(a) => a.iter().for_each(|v| inbound(v, out)),
        _ => {}
    }
}

fn history(h: &[Value]) -> (String, i64, i64) {
    let at = |i: usize| h.get(i).and_then(Value::as_i64).unwrap_or(-1);
    (
        h.first().and_then(Value::as_str).unwrap_or("").to_string(),
        at(1),
        at(2),
    )
}

/// A Functional model's layers in an order where each comes after the layers that feed it
/// (the file's order where it allows), from its one input to its one output, each with the
/// names of the layers feeding it; otherwise an error naming the layer where the graph is not
/// one gpu-cnn trains (shared layers, several inputs or outputs, cycles, unknown names, layers
/// off the path from the input to the output).
fn functional_graph<'a>(
    config: &Value,
    layers: &'a [Value],
    path: &std::path::Path,
) -> Result<Vec<(&'a Value, Vec<String>)>> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let name_of = |l: &Value| -> String {
        l["name"]
            .as_str()
            .or(l["config"]["name"].as_str())
            .unwrap_or("")
            .to_string()
    };
    // The model's inputs and outputs: [name, 0, 0], or a list of them.
    let ends = |key: &str| -> Result<String> {
        let mut v = Vec::new();
        inbound(&config[key], &mut v);
        match v.as_slice() {
            [(name, 0, 0)] => Ok(name.clone()),
            [] => Err(bad(format!("config.{key} is missing"))),
            [_] => Err(bad(format!(
                "config.{key} {} is not a layer's first output",
                config[key]
            ))),
            _ => Err(bad(format!(
                "the model has {} {key}: gpu-cnn trains models with one input and one output",
                v.len()
            ))),
        }
    };
    let (first, last) = (ends("input_layers")?, ends("output_layers")?);
    let mut by_name = std::collections::HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        if by_name.insert(name_of(l), i).is_some() {
            return Err(bad(format!("two layers are named `{}`", name_of(l))));
        }
    }
    let layer_err = |l: &Value, msg: String| {
        bad(format!(
            "layer `{}` ({}): {msg}",
            name_of(l),
            l["class_name"].as_str().unwrap_or("?")
        ))
    };
    // Each layer's inputs, by name.
    let mut feeds = Vec::new();
    for l in layers {
        let nodes = l["inbound_nodes"].as_array().map_or(0, Vec::len);
        let mut from = Vec::new();
        inbound(&l["inbound_nodes"], &mut from);
        if nodes > 1 {
            return Err(layer_err(
                l,
                format!("is called {nodes} times: layers called more than once (shared) are not supported"),
            ));
        }
        let mut names = Vec::new();
        for (name, node, tensor) in from {
            if node != 0 {
                return Err(layer_err(l, format!(
                    "reads call {} of `{name}`: layers called more than once (shared) are not supported",
                    node + 1
                )));
            }
            if tensor != 0 {
                return Err(layer_err(
                    l,
                    format!("reads output {tensor} of `{name}`, which has one"),
                ));
            }
            if !by_name.contains_key(&name) {
                return Err(bad(format!(
                    "no layer is named `{name}` (in keras_history or the model's inputs and outputs)"
                )));
            }
            names.push(name);
        }
        feeds.push(names);
    }
    for key in [&first, &last] {
        if !by_name.contains_key(key) {
            return Err(bad(format!(
                "no layer is named `{key}` (in keras_history or the model's inputs and outputs)"
            )));
        }
    }
    // Depth-first from the output, each layer after its inputs; a layer met again while its
    // inputs are being visited closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; layers.len()];
    let mut order = Vec::new();
    // (layer, next input to visit)
    let mut stack = vec![(by_name[&last], 0)];
    while let Some(&mut (i, ref mut next)) = stack.last_mut() {
        if *next == 0 {
            mark[i] = Mark::Open;
            if feeds[i].is_empty() && name_of(&layers[i]) != first {
                return Err(layer_err(
                    &layers[i],
                    format!("is not fed by the model's input `{first}`"),
                ));
            }
        }
        match feeds[i].get(*next) {
            Some(name) => {
                *next += 1;
                let j = by_name[name];
                match mark[j] {
                    Mark::New => stack.push((j, 0)),
                    Mark::Open => {
                        return Err(layer_err(&layers[j], "its inputs form a cycle".into()))
                    }
                    Mark::Done => {}
                }
            }
            None => {
                mark[i] = Mark::Done;
                order.push(i);
                stack.pop();
            }
        }
    }
    if let Some(off) = (0..layers.len()).find(|&i| mark[i] != Mark::Done) {
        return Err(layer_err(
            &layers[off],
            format!("is not on the path from `{first}` to `{last}`"),
        ));
    }
    if order.first() != Some(&by_name[&first]) {
        let l = &layers[by_name[&first]];
        return Err(layer_err(l, "the model's input reads another layer".into()));
    }
    // The file's order where it allows (Keras writes layers as they were made): each time the
    // first layer whose inputs are all placed.
    let mut placed = vec![false; layers.len()];
    let mut out = Vec::new();
    while out.len() < order.len() {
        let Some(i) = (0..layers.len()).find(|&i| {
            mark[i] == Mark::Done && !placed[i] && feeds[i].iter().all(|f| placed[by_name[f]])
        }) else {
            break;
        };
        placed[i] = true;
        out.push((&layers[i], feeds[i].clone()));
    }
    Ok(out)
}

/// A label of the text form for Keras layer `name` (its name where it is one, else `t` and
/// the rest), not one of `taken`.
fn label_for(name: &str, taken: &std::collections::HashSet<String>) -> String {
    let mut l: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !is_label(&l) {
        l = format!("t{l}");
    }
    let base = l.clone();
    let mut n = 1;
    while taken.contains(&l) {
        l = format!("{base}_{n}");
        n += 1;
    }
    l
}

/// The text form's layers for a Functional graph: `specs[k]` (None: a layer that is nothing
/// here, such as a linear Activation; it stands for its input) is the layer named
/// `graph[k + 1].0` reading `graph[k + 1].1` (`graph[0]` is the input layer). Adds `from(x)`
/// where a layer reads another tensor than the one so far, and `as(x)` after each tensor read
/// elsewhere.
fn graph_to_specs(
    names: &[String],
    feeds: &[Vec<String>],
    specs: Vec<Option<LayerSpec>>,
) -> Vec<LayerSpec> {
    use std::collections::{HashMap, HashSet};
    // Which layer's output each name stands for (a linear Activation or a Flatten its input's).
    let mut owner: HashMap<&str, &str> = HashMap::new();
    owner.insert(&names[0], &names[0]);
    let mut out = Vec::new();
    // Where each tensor's `as(x)` would go, and the tensors that need one.
    let mut at: HashMap<&str, usize> = HashMap::new();
    at.insert(&names[0], 0);
    let mut needed: Vec<&str> = Vec::new();
    let mut cur: &str = &names[0];
    for ((name, feed), spec) in names[1..].iter().zip(&feeds[1..]).zip(specs) {
        let ins: Vec<&str> = feed.iter().map(|f| owner[f.as_str()]).collect();
        if ins[0] != cur {
            out.push(LayerSpec::From(ins[0].to_string()));
            needed.push(ins[0]);
            cur = ins[0];
        }
        match spec {
            None => {
                owner.insert(name, ins[0]);
            }
            Some(LayerSpec::Flatten) => {
                out.push(LayerSpec::Flatten);
                owner.insert(name, ins[0]);
            }
            Some(LayerSpec::Join(l, _)) => {
                needed.extend(&ins[1..]);
                out.push(LayerSpec::Join(
                    l,
                    ins[1..].iter().map(|s| s.to_string()).collect(),
                ));
                owner.insert(name, name);
                cur = name;
                at.insert(name, out.len());
            }
            Some(s) => {
                out.push(s);
                owner.insert(name, name);
                cur = name;
                at.insert(name, out.len());
            }
        }
    }
    // Labels: the Keras names where they are labels, unique.
    let mut taken = HashSet::new();
    let mut label: HashMap<String, String> = HashMap::new();
    for n in &needed {
        if !label.contains_key(*n) {
            let l = label_for(n, &taken);
            taken.insert(l.clone());
            label.insert(n.to_string(), l);
        }
    }
    let rename = |n: &String| label[n].clone();
    for s in &mut out {
        match s {
            LayerSpec::From(n) => *n = rename(n),
            LayerSpec::Join(_, ns) => ns.iter_mut().for_each(|n| *n = rename(n)),
            _ => {}
        }
    }
    let mut names: Vec<(usize, String)> = label
        .iter()
        .map(|(n, l)| (at[n.as_str()], l.clone()))
        .collect();
    names.sort();
    for (pos, l) in names.into_iter().rev() {
        out.insert(pos, LayerSpec::Name(l));
    }
    out
}

/// `InputLayer`: the data's shape, (height, width, channels), if given.
fn keras_input(k: &KerasLayer) -> Result<Option<Shape>> {
    let shape =
        k.c.get("batch_shape")
            .or_else(|| k.c.get("batch_input_shape"));
    let Some(Value::Array(s)) = shape else {
        return Ok(None);
    };
    let dims: Vec<usize> = s[1..]
        .iter()
        .filter_map(|d| d.as_u64().map(|d| d as usize))
        .collect();
    match dims[..] {
        [h, w, ch] if s.len() == 4 => Ok(Some(Shape::new(ch, h, w))),
        _ => Err(k.err(format!(
            "input shape {} is not (height, width, channels)",
            Value::Array(s.clone())
        ))),
    }
}

/// The text form of parsed layers.
pub fn to_text(specs: &[LayerSpec]) -> String {
    specs
        .iter()
        .map(|s| match s {
            LayerSpec::Flatten => "flatten".to_string(),
            LayerSpec::Layer(l) => l.to_text(),
            LayerSpec::Name(n) => format!("as({n})"),
            LayerSpec::From(n) => format!("from({n})"),
            LayerSpec::Join(l, names) => format!("{}({})", l.to_text(), names.join(",")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--model` as given in the text form: a `.json` file (Keras' `model.to_json()`) becomes the
/// text form; a preset or text stays as it is. A Keras input shape other than `input` is an
/// error.
pub fn resolve(spec: &str, input: Option<Shape>) -> Result<String> {
    if !spec.trim().ends_with(".json") {
        return Ok(spec.to_string());
    }
    let m = ModelSpec::parse(spec)?;
    if let (Some(d), Some(i)) = (m.input, input) {
        if d != i {
            return Err(m.input_mismatch(d, i));
        }
    }
    Ok(m.text())
}

impl Model {
    /// The layers in the one-line text form (`spec`): `conv2d(32,3,relu) maxpool(2) ... flatten
    /// dense(128,relu) dense(10)`.
    pub fn describe(&self) -> String {
        if !self.is_chain() {
            return to_text(&self.graph_specs());
        }
        let mut specs = Vec::new();
        let at = self.flatten_at();
        for (i, l) in self.layers.iter().enumerate() {
            if at == Some(i) {
                specs.push(LayerSpec::Flatten);
            }
            specs.push(LayerSpec::Layer(l.layer));
        }
        to_text(&specs)
    }

    /// A graph's layers in the text form's terms: `from(x)` where a layer reads another tensor
    /// than the one so far, `as(x)` after a tensor read elsewhere (named after the layer that
    /// makes it, `input` for the input), `flatten` before a dense layer on an image.
    fn graph_specs(&self) -> Vec<LayerSpec> {
        let label = |t: usize| match t {
            0 => "input".to_string(),
            _ => self.layers[t - 1].name.clone(),
        };
        // Read other than as the next layer's first input: needs a name.
        let named = |t: usize| self.consumers(t).iter().any(|&(i, k)| !(i == t && k == 0));
        let mut specs = Vec::new();
        let mut flat = vec![false];
        if named(0) {
            specs.push(LayerSpec::Name(label(0)));
        }
        let mut cur = 0;
        for (i, l) in self.layers.iter().enumerate() {
            let first = l.inputs[0];
            if first != cur {
                specs.push(LayerSpec::From(label(first)));
            }
            let f = flat[first];
            flat.push(match l.layer.placement() {
                Placement::Flat => {
                    if !f {
                        specs.push(LayerSpec::Flatten);
                    }
                    true
                }
                Placement::Flattening => true,
                _ => f,
            });
            specs.push(match l.layer.placement() {
                Placement::Merge => {
                    LayerSpec::Join(l.layer, l.inputs[1..].iter().map(|&t| label(t)).collect())
                }
                _ => LayerSpec::Layer(l.layer),
            });
            cur = i + 1;
            if named(cur) {
                specs.push(LayerSpec::Name(label(cur)));
            }
        }
        specs
    }
}
