//! Model descriptions: the presets and the one-line text form, in Keras' vocabulary in lower
//! case: `"conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) flatten dense(128,relu)
//! dense(10)"`. A syntax error shows the line with a caret under the bad token.
//!
//! gpu-cnn trains conv2d (any stride, `valid` or `same` padding, with or without bias),
//! maxpool and avgpool (any stride), globalavgpool, dropout, batchnorm, relu, flatten and dense
//! layers.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{Layer, Model, Padding, Shape};

/// The presets by name, with their text.
pub const PRESETS: [(&str, &str); 2] = [
    (
        "keras-mnist",
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) flatten dense(128,relu) dense(10)",
    ),
    (
        "keras-cifar10",
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) conv2d(64,3,relu) flatten dense(64,relu) dense(10)",
    ),
];

/// One layer as written, before shapes are known. `Flatten` is explicit, as in Keras.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    Layer(Layer),
    Flatten,
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
}

impl ModelSpec {
    /// Reads `--model`: a `.json` file (Keras' `model.to_json()`), a preset's name or the text.
    pub fn parse(given: &str) -> Result<ModelSpec> {
        let (layers, input) = if given.trim().ends_with(".json") {
            let path = std::path::Path::new(given.trim());
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            parse_keras_json(&text, path)?
        } else {
            (parse(given)?, None)
        };
        Ok(ModelSpec {
            layers,
            input,
            given: given.to_string(),
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

/// A word or symbol of the text, with its byte offset.
#[derive(Clone, Debug, PartialEq)]
struct Token {
    text: String,
    at: usize,
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

/// `msg` with the line and a caret under byte `at`.
fn caret(line: &str, at: usize, msg: &str) -> Error {
    let col = line[..at.min(line.len())].chars().count();
    Error::Usage(format!("--model: {msg}\n  {line}\n  {}^", " ".repeat(col)))
}

/// One parsed layer call: name, positional arguments, keyword arguments (all with offsets).
struct Call {
    name: Token,
    args: Vec<Token>,
    kwargs: Vec<(Token, Token)>,
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
        out.push(match c.name.text.as_str() {
            "conv2d" => text_conv2d(&r)?,
            "maxpool" | "avgpool" => text_pool(&r)?,
            "dense" => text_dense(&r)?,
            "flatten" => text_flatten(&r)?,
            "globalavgpool" => text_globalavgpool(&r)?,
            "dropout" => text_dropout(&r)?,
            "batchnorm" => text_batchnorm(&r)?,
            "relu" => text_relu(&r)?,
            other => unknown(line, &c, other)?,
        });
    }
    Ok(out)
}

/// One call of the text form being read: its line (for carets) and the call.
struct CallReader<'a> {
    line: &'a str,
    c: &'a Call,
}

impl CallReader<'_> {
    fn number(&self, t: &Token, what: &str) -> Result<usize> {
        t.text
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                caret(
                    self.line,
                    t.at,
                    &format!("{what} must be a whole number of at least 1"),
                )
            })
    }
    fn arity(&self, n: usize) -> Result<()> {
        if self.c.args.len() > n {
            return Err(caret(
                self.line,
                self.c.args[n].at,
                &format!("{} takes at most {n} values", self.c.name.text),
            ));
        }
        Ok(())
    }
    fn activation(&self, t: &Token, softmax_ok: bool) -> Result<bool> {
        match t.text.as_str() {
            "relu" => Ok(true),
            "linear" | "none" => Ok(false),
            "softmax" if softmax_ok => Ok(false),
            other => Err(caret(
                self.line,
                t.at,
                &format!(
                    "activation `{other}` is not supported (relu or linear{})",
                    if softmax_ok {
                        ", softmax on the last layer"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }
    fn real(&self, t: &Token, what: &str) -> Result<f32> {
        t.text
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| caret(self.line, t.at, &format!("{what} must be a number")))
    }
}

fn text_conv2d(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(3)?;
    let (Some(f), Some(k)) = (c.args.first(), c.args.get(1)) else {
        return Err(caret(
            line,
            c.name.at,
            "conv2d needs (filters, kernel size)",
        ));
    };
    let mut relu = match c.args.get(2) {
        Some(a) => r.activation(a, false)?,
        None => false,
    };
    let (mut stride, mut padding, mut bias) = (1, Padding::Valid, true);
    for (key, v) in &c.kwargs {
        match (key.text.as_str(), v.text.as_str()) {
            ("activation", _) => relu = r.activation(v, false)?,
            ("stride" | "strides", _) => stride = r.number(v, "the stride")?,
            ("padding", "valid") => padding = Padding::Valid,
            ("padding", "same") => padding = Padding::Same,
            ("padding", _) => {
                return Err(caret(
                    line,
                    v.at,
                    &format!("padding={} is not supported (valid or same)", v.text),
                ))
            }
            ("use_bias", "true") => bias = true,
            ("use_bias", "false") => bias = false,
            ("use_bias", _) => return Err(caret(line, v.at, "use_bias is true or false")),
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!(
                        "conv2d has no option `{}` (activation, stride, padding, use_bias)",
                        key.text
                    ),
                ))
            }
        }
    }
    Ok(LayerSpec::Layer(Layer::Conv2d {
        out_channels: r.number(f, "filters")?,
        kernel: r.number(k, "the kernel size")?,
        stride,
        padding,
        bias,
        relu,
    }))
}

fn text_pool(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    let kind = c.name.text.as_str();
    r.arity(1)?;
    let Some(s) = c.args.first() else {
        return Err(caret(line, c.name.at, &format!("{kind} needs (pool size)")));
    };
    let size = r.number(s, "the pool size")?;
    let mut stride = size;
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "stride" | "strides" => stride = r.number(v, "the stride")?,
            "padding" if v.text == "valid" => {}
            "padding" => {
                return Err(caret(
                    line,
                    v.at,
                    &format!("padding={} is not supported (valid)", v.text),
                ))
            }
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("{kind} has no option `{}`", key.text),
                ))
            }
        }
    }
    Ok(LayerSpec::Layer(if kind == "maxpool" {
        Layer::MaxPool2d { size, stride }
    } else {
        Layer::AvgPool2d { size, stride }
    }))
}

fn text_dense(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(2)?;
    let Some(u) = c.args.first() else {
        return Err(caret(line, c.name.at, "dense needs (units)"));
    };
    let mut relu = match c.args.get(1) {
        Some(a) => r.activation(a, true)?,
        None => false,
    };
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "activation" => relu = r.activation(v, true)?,
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("dense has no option `{}`", key.text),
                ))
            }
        }
    }
    Ok(LayerSpec::Layer(Layer::Dense {
        out: r.number(u, "units")?,
        relu,
    }))
}

fn text_flatten(r: &CallReader) -> Result<LayerSpec> {
    r.arity(0)?;
    Ok(LayerSpec::Flatten)
}

fn text_globalavgpool(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    if let Some((key, _)) = c.kwargs.first() {
        return Err(caret(line, key.at, "globalavgpool has no options"));
    }
    Ok(LayerSpec::Layer(Layer::GlobalAvgPool2d))
}

fn text_dropout(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(1)?;
    let mut rate = None;
    if let Some(t) = c.args.first() {
        rate = Some((r.real(t, "the rate")?, t.at));
    }
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "rate" => rate = Some((r.real(v, "the rate")?, v.at)),
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("dropout has no option `{}`", key.text),
                ))
            }
        }
    }
    let Some((rate, at)) = rate else {
        return Err(caret(line, c.name.at, "dropout needs (rate)"));
    };
    Layer::check_rate(rate).map_err(|e| caret(line, at, &e))?;
    Ok(LayerSpec::Layer(Layer::Dropout { rate }))
}

fn text_batchnorm(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    let (mut momentum, mut epsilon) = (0.99f32, 0.001f32);
    for (key, v) in &c.kwargs {
        match key.text.as_str() {
            "momentum" => momentum = r.real(v, "momentum")?,
            "epsilon" => epsilon = r.real(v, "epsilon")?,
            _ => {
                return Err(caret(
                    line,
                    key.at,
                    &format!("batchnorm has no option `{}` (momentum, epsilon)", key.text),
                ))
            }
        }
    }
    Layer::check_batchnorm(momentum, epsilon).map_err(|e| caret(line, c.name.at, &e))?;
    Ok(LayerSpec::Layer(Layer::BatchNorm { momentum, epsilon }))
}

fn text_relu(r: &CallReader) -> Result<LayerSpec> {
    let (line, c) = (r.line, r.c);
    r.arity(0)?;
    if let Some((key, _)) = c.kwargs.first() {
        return Err(caret(line, key.at, "relu has no options"));
    }
    Ok(LayerSpec::Layer(Layer::Relu))
}

/// An unknown layer name, with the names there are.
fn unknown(line: &str, c: &Call, other: &str) -> Result<LayerSpec> {
    Err(caret(
            line,
            c.name.at,
            &format!("unknown layer `{other}` (conv2d, maxpool, avgpool, globalavgpool, dropout, batchnorm, relu, flatten, dense; presets: {})", PRESETS.map(|p| p.0).join(", ")),
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
    let mut layers = Vec::new();
    let mut flat = false;
    // A flatten whose input is still spatial (no dense or global pooling since).
    let mut flattened_spatial = false;
    for s in specs {
        match s {
            LayerSpec::Flatten => {
                flattened_spatial |= !flat;
                flat = true;
            }
            LayerSpec::Layer(l @ (Layer::Dropout { .. } | Layer::Relu)) => layers.push(*l),
            LayerSpec::Layer(l @ Layer::BatchNorm { .. }) => {
                if flattened_spatial {
                    return Err(Error::Usage(format!(
                        "--model `{text}`: batchnorm right after flatten is not supported (put it before flatten, or after a dense layer)"
                    )));
                }
                layers.push(*l);
            }
            LayerSpec::Layer(l @ Layer::GlobalAvgPool2d) if !flat => {
                flat = true;
                layers.push(*l);
            }
            LayerSpec::Layer(l @ Layer::Dense { .. }) => {
                if !flat && !lenient {
                    return Err(Error::Usage(format!(
                        "--model `{text}`: a dense layer after a spatial one needs `flatten` first, as in Keras"
                    )));
                }
                flat = true;
                flattened_spatial = false;
                layers.push(*l);
            }
            LayerSpec::Layer(l) => {
                if flat {
                    return Err(Error::Usage(format!(
                        "--model `{text}`: {l:?} after flatten or dense: spatial layers come first"
                    )));
                }
                layers.push(*l);
            }
        }
    }
    match layers.last() {
        Some(Layer::Dense { out, relu: false }) if *out == classes => {}
        Some(Layer::Dense { out, relu: false }) => {
            return Err(Error::Usage(format!(
                "--model `{text}`: the last layer has {out} units, the data has {classes} classes"
            )))
        }
        _ => {
            return Err(Error::Usage(format!(
                "--model `{text}`: the last layer must be dense({classes}) without relu (the logits; softmax is in the loss)"
            )))
        }
    }
    Model::new(input, &layers)
}

/// The layers of a Keras `Sequential` model as `model.to_json()` writes it (Keras 3, and Keras 2
/// where the same), with the input shape its `InputLayer` declares, if any. Whatever gpu-cnn
/// cannot train is an error naming the layer, the option and what is supported; nothing is
/// silently ignored.
pub fn parse_keras_json(
    text: &str,
    path: &std::path::Path,
) -> Result<(Vec<LayerSpec>, Option<Shape>)> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v["class_name"] != "Sequential" {
        return Err(bad(format!(
            "the model is a {}, only Sequential models are supported",
            v["class_name"].as_str().unwrap_or("(no class_name)")
        )));
    }
    let Some(layers) = v["config"]["layers"].as_array() else {
        return Err(bad("config.layers is missing".into()));
    };
    let mut out = Vec::new();
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
        let spec = match class {
            "InputLayer" => {
                input = keras_input(&k)?.or(input);
                None
            }
            "Conv2D" => Some(keras_conv2d(&k)?),
            "MaxPooling2D" | "AveragePooling2D" => Some(keras_pool(&k)?),
            "Flatten" => {
                k.require("data_format", &channels_last, "channels_last")?;
                Some(LayerSpec::Flatten)
            }
            "Dense" => Some(keras_dense(&k)?),
            "GlobalAveragePooling2D" => {
                k.require("data_format", &channels_last, "channels_last")?;
                k.require("keepdims", &|v| v == false, "false")?;
                Some(LayerSpec::Layer(Layer::GlobalAvgPool2d))
            }
            "Dropout" => Some(keras_dropout(&k)?),
            "BatchNormalization" => Some(keras_batchnorm(&k)?),
            "Activation" => keras_activation(&k)?,
            "ReLU" => Some(keras_relu(&k)?),
            other => {
                return Err(k.err(format!(
                    "class `{other}` is not supported (InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dropout, BatchNormalization, Activation, ReLU, Flatten, Dense)"
                )))
            }
        };
        out.extend(spec);
    }
    if out.is_empty() {
        return Err(bad("the model has no layers".into()));
    }
    Ok((out, input))
}

/// One layer of a Keras file being read: its class, name and config, and whether it is last.
struct KerasLayer<'a> {
    path: &'a std::path::Path,
    class: &'a str,
    name: &'a str,
    c: &'a Value,
    last: bool,
}

fn channels_last(v: &Value) -> bool {
    v == "channels_last"
}

impl KerasLayer<'_> {
    /// An error naming the file and the layer.
    fn err(&self, msg: String) -> Error {
        Error::bad_file(
            self.path,
            format!("layer `{}` ({}): {msg}", self.name, self.class),
        )
    }
    /// A square size or stride from an int or a [h, w] pair.
    fn square(&self, key: &str) -> Result<Option<usize>> {
        match &self.c[key] {
            Value::Null => Ok(None),
            Value::Number(x) => x
                .as_u64()
                .filter(|&x| x >= 1)
                .map(|x| Some(x as usize))
                .ok_or_else(|| self.err(format!("{key} {x} is not a size"))),
            Value::Array(a)
                if a.len() == 2 && a[0] == a[1] && a[0].as_u64().is_some_and(|x| x >= 1) =>
            {
                Ok(a[0].as_u64().map(|x| x as usize))
            }
            other => Err(self.err(format!(
                "{key} {other} is not supported (square sizes only)"
            ))),
        }
    }
    /// A size that must be there.
    fn required_square(&self, key: &str) -> Result<usize> {
        self.square(key)?
            .ok_or_else(|| self.err(format!("{key} is missing")))
    }
    /// Whether the layer's `activation` is relu (softmax allowed on the last layer).
    fn activation(&self, last: bool) -> Result<bool> {
        match self.c["activation"].as_str() {
            None | Some("linear") => Ok(false),
            Some("relu") => Ok(true),
            Some("softmax") if last => Ok(false),
            Some(a) => Err(self.err(format!(
                "activation `{a}` is not supported (relu, linear{})",
                if last { ", softmax" } else { "" }
            ))),
        }
    }
    /// `key` absent or `ok`; else an error saying what is `supported`.
    fn require(&self, key: &str, ok: &dyn Fn(&Value) -> bool, supported: &str) -> Result<()> {
        let v = &self.c[key];
        if v.is_null() || ok(v) {
            Ok(())
        } else {
            Err(self.err(format!("{key} {v} is not supported ({supported})")))
        }
    }
    fn no_regularisers(&self, keys: &[&str]) -> Result<()> {
        match keys.iter().find(|k| !self.c[**k].is_null()) {
            Some(key) => Err(self.err(format!("{key} is not supported"))),
            None => Ok(()),
        }
    }
    /// A whole number of at least 1 that must be there.
    fn count(&self, key: &str) -> Result<usize> {
        self.c[key]
            .as_u64()
            .filter(|&u| u >= 1)
            .map(|u| u as usize)
            .ok_or_else(|| self.err(format!("{key} is missing")))
    }
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

fn keras_conv2d(k: &KerasLayer) -> Result<LayerSpec> {
    let ones = |v: &Value| v == 1 || *v == serde_json::json!([1, 1]);
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("dilation_rate", &ones, "1")?;
    k.require("groups", &|v| v == 1, "1")?;
    let padding = match k.c["padding"].as_str() {
        None | Some("valid") => Padding::Valid,
        Some("same") => Padding::Same,
        Some(other) => {
            return Err(k.err(format!(
                "padding \"{other}\" is not supported (valid, same)"
            )))
        }
    };
    let bias = match &k.c["use_bias"] {
        Value::Null => true,
        Value::Bool(b) => *b,
        other => return Err(k.err(format!("use_bias {other} is not true or false"))),
    };
    Ok(LayerSpec::Layer(Layer::Conv2d {
        out_channels: k.count("filters")?,
        kernel: k.required_square("kernel_size")?,
        stride: k.square("strides")?.unwrap_or(1),
        padding,
        bias,
        relu: k.activation(false)?,
    }))
}

/// `MaxPooling2D` and `AveragePooling2D`.
fn keras_pool(k: &KerasLayer) -> Result<LayerSpec> {
    k.require("data_format", &channels_last, "channels_last")?;
    k.require("padding", &|v| v == "valid", "valid")?;
    let size = k.required_square("pool_size")?;
    // Keras: strides None means the pool size.
    let stride = k.square("strides")?.unwrap_or(size);
    Ok(LayerSpec::Layer(match k.class {
        "MaxPooling2D" => Layer::MaxPool2d { size, stride },
        _ => Layer::AvgPool2d { size, stride },
    }))
}

fn keras_dense(k: &KerasLayer) -> Result<LayerSpec> {
    k.require("use_bias", &|v| v == true, "true")?;
    Ok(LayerSpec::Layer(Layer::Dense {
        out: k.count("units")?,
        relu: k.activation(k.last)?,
    }))
}

fn keras_dropout(k: &KerasLayer) -> Result<LayerSpec> {
    k.require("noise_shape", &|_| false, "null")?;
    let rate = k.c["rate"]
        .as_f64()
        .ok_or_else(|| k.err("rate is missing".into()))? as f32;
    Layer::check_rate(rate).map_err(|e| k.err(e))?;
    Ok(LayerSpec::Layer(Layer::Dropout { rate }))
}

fn keras_batchnorm(k: &KerasLayer) -> Result<LayerSpec> {
    let axis = |v: &Value| {
        v == -1 || v == 3 || *v == serde_json::json!([-1]) || *v == serde_json::json!([3])
    };
    k.require("axis", &axis, "-1, the channels")?;
    k.require("center", &|v| v == true, "true")?;
    k.require("scale", &|v| v == true, "true")?;
    k.require("renorm", &|v| v == false, "false")?;
    k.require("synchronized", &|v| v == false, "false")?;
    k.no_regularisers(&[
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
    ])?;
    let get = |key: &str, default: f64| -> Result<f32> {
        match &k.c[key] {
            Value::Null => Ok(default as f32),
            v => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| k.err(format!("{key} {v} is not a number"))),
        }
    };
    let (momentum, epsilon) = (get("momentum", 0.99)?, get("epsilon", 0.001)?);
    Layer::check_batchnorm(momentum, epsilon).map_err(|e| k.err(e))?;
    Ok(LayerSpec::Layer(Layer::BatchNorm { momentum, epsilon }))
}

/// `Activation`: relu is a layer; linear, and softmax on the last layer, are nothing.
fn keras_activation(k: &KerasLayer) -> Result<Option<LayerSpec>> {
    match k.c["activation"].as_str() {
        Some("relu") => Ok(Some(LayerSpec::Layer(Layer::Relu))),
        Some("linear") => Ok(None),
        Some("softmax") if k.last => Ok(None),
        other => Err(k.err(format!(
            "activation {} is not supported (relu, linear, softmax last)",
            other.unwrap_or("(none)")
        ))),
    }
}

fn keras_relu(k: &KerasLayer) -> Result<LayerSpec> {
    let plain = [
        ("max_value", Value::Null),
        ("negative_slope", serde_json::json!(0.0)),
        ("threshold", serde_json::json!(0.0)),
    ];
    for (key, plain) in plain {
        if !k.c[key].is_null() && k.c[key] != plain {
            return Err(k.err(format!(
                "{key} {} is not supported (a plain ReLU)",
                k.c[key]
            )));
        }
    }
    Ok(LayerSpec::Layer(Layer::Relu))
}

/// The text form of parsed layers.
pub fn to_text(specs: &[LayerSpec]) -> String {
    specs
        .iter()
        .map(|s| match s {
            LayerSpec::Flatten => "flatten".to_string(),
            LayerSpec::Layer(Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                relu,
            }) => {
                let mut t = format!("conv2d({out_channels},{kernel}");
                if *relu {
                    t.push_str(",relu");
                }
                if *stride != 1 {
                    t.push_str(&format!(",stride={stride}"));
                }
                if *padding == Padding::Same {
                    t.push_str(",padding=same");
                }
                if !bias {
                    t.push_str(",use_bias=false");
                }
                t + ")"
            }
            LayerSpec::Layer(Layer::MaxPool2d { size, stride }) if stride == size => {
                format!("maxpool({size})")
            }
            LayerSpec::Layer(Layer::MaxPool2d { size, stride }) => {
                format!("maxpool({size},stride={stride})")
            }
            LayerSpec::Layer(Layer::Dense { out, relu }) => {
                format!("dense({out}{})", if *relu { ",relu" } else { "" })
            }
            LayerSpec::Layer(Layer::AvgPool2d { size, stride }) if stride == size => {
                format!("avgpool({size})")
            }
            LayerSpec::Layer(Layer::AvgPool2d { size, stride }) => {
                format!("avgpool({size},stride={stride})")
            }
            LayerSpec::Layer(Layer::GlobalAvgPool2d) => "globalavgpool".to_string(),
            // `{}` of an f32 is the shortest text that reads back as the same value.
            LayerSpec::Layer(Layer::Dropout { rate }) => format!("dropout({rate})"),
            LayerSpec::Layer(Layer::BatchNorm { momentum, epsilon }) => {
                // Keras' defaults are left out.
                let mut opts = Vec::new();
                if *momentum != 0.99 {
                    opts.push(format!("momentum={momentum}"));
                }
                if *epsilon != 0.001 {
                    opts.push(format!("epsilon={epsilon}"));
                }
                if opts.is_empty() {
                    "batchnorm".to_string()
                } else {
                    format!("batchnorm({})", opts.join(","))
                }
            }
            LayerSpec::Layer(Layer::Relu) => "relu".to_string(),
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
}
