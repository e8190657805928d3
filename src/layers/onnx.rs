//! The vocabulary in which each layer kind says which ONNX nodes it becomes (`onnx` in its
//! module); `crate::onnx` chains them into a graph and writes the file.

/// One ONNX node a layer becomes: the operator, its attributes, and which of the layer's
/// tensors it reads after the running activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub op_type: &'static str,
    pub attrs: Vec<(&'static str, Attr)>,
    pub params: Vec<Param>,
}

impl Op {
    pub fn new(op_type: &'static str) -> Op {
        Op {
            op_type,
            attrs: Vec::new(),
            params: Vec::new(),
        }
    }
    pub fn attr(mut self, name: &'static str, a: Attr) -> Op {
        self.attrs.push((name, a));
        self
    }
    pub fn params(mut self, p: &[Param]) -> Op {
        self.params.extend_from_slice(p);
        self
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

/// A layer's tensor, by role: batch norm's moving mean and variance are its statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Weight,
    Bias,
    Mean,
    Variance,
}
