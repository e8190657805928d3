//! What the layer kinds' readers share: a call of the one-line text form (`conv2d(32,3,relu)`)
//! with its line for carets, and a layer of a Keras file with its config.

use serde_json::Value;

use crate::error::{Error, Result};

/// A word or symbol of the text, with its byte offset.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub text: String,
    pub at: usize,
}

/// `msg` with the line and a caret under byte `at`.
pub fn caret(line: &str, at: usize, msg: &str) -> Error {
    let col = line[..at.min(line.len())].chars().count();
    Error::Usage(format!("--model: {msg}\n  {line}\n  {}^", " ".repeat(col)))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Token,
    pub args: Vec<Token>,
    pub kwargs: Vec<(Token, Token)>,
}

/// One call of the text form being read: its line (for carets) and the call.
pub struct CallReader<'a> {
    pub line: &'a str,
    pub c: &'a Call,
}

impl CallReader<'_> {
    pub fn number(&self, t: &Token, what: &str) -> Result<usize> {
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
    pub fn arity(&self, n: usize) -> Result<()> {
        if self.c.args.len() > n {
            return Err(caret(
                self.line,
                self.c.args[n].at,
                &format!("{} takes at most {n} values", self.c.name.text),
            ));
        }
        Ok(())
    }
    pub fn activation(&self, t: &Token, softmax_ok: bool) -> Result<bool> {
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
    pub fn real(&self, t: &Token, what: &str) -> Result<f32> {
        t.text
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| caret(self.line, t.at, &format!("{what} must be a number")))
    }
}

/// One layer of a Keras file being read: its class, name and config, and whether it is last.
pub struct KerasLayer<'a> {
    pub path: &'a std::path::Path,
    pub class: &'a str,
    pub name: &'a str,
    pub c: &'a Value,
    pub last: bool,
}

pub fn channels_last(v: &Value) -> bool {
    v == "channels_last"
}

impl KerasLayer<'_> {
    /// An error naming the file and the layer.
    pub fn err(&self, msg: String) -> Error {
        Error::bad_file(
            self.path,
            format!("layer `{}` ({}): {msg}", self.name, self.class),
        )
    }
    /// A square size or stride from an int or a [h, w] pair.
    pub fn square(&self, key: &str) -> Result<Option<usize>> {
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
    pub fn required_square(&self, key: &str) -> Result<usize> {
        self.square(key)?
            .ok_or_else(|| self.err(format!("{key} is missing")))
    }
    /// Whether the layer's `activation` is relu (softmax allowed on the last layer).
    pub fn activation(&self, last: bool) -> Result<bool> {
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
    pub fn require(&self, key: &str, ok: &dyn Fn(&Value) -> bool, supported: &str) -> Result<()> {
        let v = &self.c[key];
        if v.is_null() || ok(v) {
            Ok(())
        } else {
            Err(self.err(format!("{key} {v} is not supported ({supported})")))
        }
    }
    pub fn no_regularisers(&self, keys: &[&str]) -> Result<()> {
        match keys.iter().find(|k| !self.c[**k].is_null()) {
            Some(key) => Err(self.err(format!("{key} is not supported"))),
            None => Ok(()),
        }
    }
    /// A whole number of at least 1 that must be there.
    pub fn count(&self, key: &str) -> Result<usize> {
        self.c[key]
            .as_u64()
            .filter(|&u| u >= 1)
            .map(|u| u as usize)
            .ok_or_else(|| self.err(format!("{key} is missing")))
    }
}
