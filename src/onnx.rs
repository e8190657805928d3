//! A trained model as an ONNX file: the graph each layer kind describes (`layers::*::onnx`), its
//! tensors as initializers, and the model's metadata, encoded with prost.
//!
//! The graph takes `input`, float32 `[batch, C, H, W]` scaled as training scales the pixels (each
//! 8-bit value / 255, so 0..1, channels first) and gives `probabilities`, float32
//! `[batch, classes]`, the softmax of the logits. `batch` is a named (dynamic) dimension.
//! Dropout is left out (it is the identity outside training); batch norm is ONNX's
//! `BatchNormalization` with the moving statistics. The same model always gives the same bytes.

use crate::checkpoint::SavedModel;
use crate::error::{Error, Result};
use crate::model::LayerPlan;

pub use crate::layers::onnx::{Attr, Op, Param};

/// The opsets `export` writes; every operator used has had its current meaning since 11.
pub const OPSETS: std::ops::RangeInclusive<i64> = 11..=21;
/// The default opset: read by ONNX Runtime (and onnxruntime-web), OpenCV's DNN module and tract.
pub const DEFAULT_OPSET: i64 = 13;
/// How the input must be prepared, as the metadata and `export` say it.
pub const INPUT_SCALING: &str = "float32 [batch, C, H, W]: each 8-bit pixel value / 255 (0..1), channels first, as training feeds it";

/// The IR version an opset belongs to (onnx/helper.py's table), so that a runtime of that
/// opset's time accepts the file.
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// The ONNX file of `saved` at `opset`: the bytes to write.
pub fn export(saved: &SavedModel, opset: i64) -> Result<Vec<u8>> {
    use prost::Message;
    Ok(model_proto(saved, opset)?.encode_to_vec())
}

/// The model as ONNX's `ModelProto`.
pub fn model_proto(saved: &SavedModel, opset: i64) -> Result<proto::Model> {
    if !OPSETS.contains(&opset) {
        return Err(Error::Usage(format!(
            "--opset {opset}: gpu-cnn writes opsets {} to {}",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let model = &saved.model;
    let mut g = Graph::default();
    // Each tensor's name (0 the input, j + 1 layer j's output) and rank: 4 over the image, 2
    // once flat.
    let mut names = vec!["input".to_string()];
    let mut ranks = vec![4];
    let flatten = |g: &mut Graph, name: String, x: String| {
        g.node(
            &name,
            Op::new("Flatten").attr("axis", Attr::Int(1)),
            vec![x],
        )
    };
    for l in &model.layers {
        let mut x = names[l.inputs[0]].clone();
        let mut rank = ranks[l.inputs[0]];
        // A join of flat and image-shaped (C x 1 x 1) tensors flattens the latter first.
        let mut joined = Vec::new();
        if l.inputs.len() > 1 {
            let flat = l.inputs.iter().any(|&t| ranks[t] == 2);
            for (k, &t) in l.inputs.iter().enumerate() {
                let mut name = names[t].clone();
                if flat && ranks[t] == 4 {
                    name = flatten(&mut g, format!("{}/Flatten{k}", l.name), name);
                }
                joined.push(name);
            }
            x = joined.remove(0);
            rank = if flat { 2 } else { 4 };
        }
        for (k, op) in l.layer.onnx(l.input).into_iter().enumerate() {
            if op.op_type == "Gemm" && rank == 4 {
                x = flatten(&mut g, format!("{}/Flatten", l.name), x);
                rank = 2;
            }
            let mut inputs = vec![x];
            if k == 0 {
                inputs.append(&mut joined);
            }
            for &p in &op.params {
                inputs.push(g.initializer(saved, l, p)?);
            }
            let name = match k {
                0 => l.name.clone(),
                _ => format!("{}/{}", l.name, op.op_type),
            };
            x = g.node(&name, op, inputs);
        }
        names.push(x);
        ranks.push(rank);
    }
    g.node(
        "softmax",
        Op::new("Softmax").attr("axis", Attr::Int(1)),
        vec![names.pop().expect("the input's name")],
    );
    let last = g.nodes.last_mut().expect("softmax node");
    last.output = vec!["probabilities".to_string()];

    let dims = |rest: &[usize]| -> proto::TensorShape {
        let mut dim = vec![proto::Dimension {
            dim_value: None,
            dim_param: Some("batch".to_string()),
        }];
        dim.extend(rest.iter().map(|&d| proto::Dimension {
            dim_value: Some(d as i64),
            dim_param: None,
        }));
        proto::TensorShape { dim }
    };
    let value = |name: &str, shape: proto::TensorShape, doc: &str| proto::ValueInfo {
        name: name.to_string(),
        r#type: Some(proto::Type {
            tensor_type: Some(proto::TypeTensor {
                elem_type: proto::FLOAT,
                shape: Some(shape),
            }),
        }),
        doc_string: doc.to_string(),
    };
    let i = model.input;
    let graph = proto::Graph {
        node: g.nodes,
        name: "gpu-cnn".to_string(),
        initializer: g.initializers,
        doc_string: model.describe(),
        input: vec![value("input", dims(&[i.c, i.h, i.w]), INPUT_SCALING)],
        output: vec![value(
            "probabilities",
            dims(&[model.classes]),
            "each class's probability (softmax), in the order of the `classes` metadata",
        )],
    };
    let classes = serde_json::to_string(&saved.classes).unwrap_or_default();
    // Sorted by key, so the same model gives the same bytes.
    let mut meta = vec![
        ("architecture", model.describe()),
        ("classes", classes),
        ("input", i.to_string()),
        ("input_scaling", INPUT_SCALING.to_string()),
    ];
    if let Some(d) = &saved.dataset {
        meta.push(("dataset", d.clone()));
    }
    meta.sort();
    Ok(proto::Model {
        ir_version: ir_version(opset),
        opset_import: vec![proto::OperatorSetId {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "gpu-cnn".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: "A convolutional image classifier trained by gpu-cnn".to_string(),
        graph: Some(graph),
        metadata_props: meta
            .into_iter()
            .map(|(k, v)| proto::StringStringEntry {
                key: k.to_string(),
                value: v,
            })
            .collect(),
    })
}

/// The graph being built: nodes in order, and each tensor once as an initializer.
#[derive(Default)]
struct Graph {
    nodes: Vec<proto::Node>,
    initializers: Vec<proto::Tensor>,
}

impl Graph {
    /// Adds a node reading `inputs`; returns the name of its output (the node's name).
    fn node(&mut self, name: &str, op: Op, inputs: Vec<String>) -> String {
        let attribute = op
            .attrs
            .into_iter()
            .map(|(n, a)| {
                let mut p = proto::Attribute {
                    name: n.to_string(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => (p.r#type, p.i) = (proto::ATTR_INT, Some(i)),
                    Attr::Ints(v) => (p.r#type, p.ints) = (proto::ATTR_INTS, v),
                    Attr::Float(f) => (p.r#type, p.f) = (proto::ATTR_FLOAT, Some(f)),
                }
                p
            })
            .collect();
        self.nodes.push(proto::Node {
            input: inputs,
            output: vec![name.to_string()],
            name: name.to_string(),
            op_type: op.op_type.to_string(),
            attribute,
        });
        name.to_string()
    }

    /// Layer `l`'s tensor `p` as an initializer (little-endian float32); returns its name.
    fn initializer(&mut self, saved: &SavedModel, l: &LayerPlan, p: Param) -> Result<String> {
        let index = match p {
            Param::Weight => l.weight,
            Param::Bias => l.bias,
            Param::Mean => l.stats,
            Param::Variance => l.stats.map(|s| s + 1),
        };
        let t = index
            .and_then(|i| saved.model.params.get(i))
            .ok_or_else(|| Error::Model(format!("layer {} has no {p:?} tensor", l.name)))?;
        let values = saved
            .weights
            .get(t.offset..t.offset + t.len)
            .ok_or_else(|| Error::Model(format!("tensor {} is past the weights", t.name)))?;
        self.initializers.push(proto::Tensor {
            dims: t.shape.iter().map(|&d| d as i64).collect(),
            data_type: proto::FLOAT,
            name: t.name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        Ok(t.name.clone())
    }
}

/// The messages of `onnx.proto` that gpu-cnn writes, with its field numbers; fields it never
/// writes are left out (a reader takes them as absent).
pub mod proto {
    /// `TensorProto.DataType.FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `AttributeProto.AttributeType`'s FLOAT, INT and INTS.
    pub const ATTR_FLOAT: i32 = 1;
    pub const ATTR_INT: i32 = 2;
    pub const ATTR_INTS: i32 = 7;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetId>,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(string, tag = "6")]
        pub doc_string: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetId {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(string, tag = "10")]
        pub doc_string: String,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<Attribute>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
        // Optional, so that a zero is written too (an absent value means the default).
        #[prost(float, optional, tag = "2")]
        pub f: Option<f32>,
        #[prost(int64, optional, tag = "3")]
        pub i: Option<i64>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
        #[prost(string, tag = "3")]
        pub doc_string: String,
    }

    /// `TypeProto` with its `tensor_type` case (field 1 of the oneof).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TypeTensor>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeTensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShape>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension`: a size or a name (the oneof's two cases).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}
