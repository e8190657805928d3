//! Model descriptions: the text form parses, round-trips and explains its errors with a caret;
//! `summary` gives Keras' numbers for the Keras tutorials' models (published in the tutorials:
//! 225,034 parameters for the MNIST CNN, 122,570 for the TensorFlow CIFAR-10 CNN).

mod common;

use gpu_cnn::model::{Model, Shape};
use gpu_cnn::spec::{self, LayerSpec, PRESETS};
use gpu_cnn::summary::{summary, table};

fn rows(m: &Model) -> Vec<(String, String, Vec<usize>, usize)> {
    summary(m)
        .layers
        .into_iter()
        .map(|l| (l.name, l.kind, l.output_shape, l.params))
        .collect()
}

fn row(
    name: &str,
    kind: &str,
    shape: &[usize],
    params: usize,
) -> (String, String, Vec<usize>, usize) {
    (name.into(), kind.into(), shape.to_vec(), params)
}

#[test]
fn summary_equals_keras_for_the_mnist_tutorial() {
    let m = spec::build("keras-mnist", Shape::new(1, 28, 28), 10, false).unwrap();
    assert_eq!(m, Model::keras_mnist());
    assert_eq!(
        rows(&m),
        vec![
            row("conv2d", "Conv2D", &[26, 26, 32], 320),
            row("max_pooling2d", "MaxPooling2D", &[13, 13, 32], 0),
            row("conv2d_1", "Conv2D", &[11, 11, 64], 18_496),
            row("max_pooling2d_1", "MaxPooling2D", &[5, 5, 64], 0),
            row("flatten", "Flatten", &[1600], 0),
            row("dense", "Dense", &[128], 204_928),
            row("dense_1", "Dense", &[10], 1_290),
        ]
    );
    let s = summary(&m);
    assert_eq!((s.total_params, s.trainable_params), (225_034, 225_034));
    let t = table(&s);
    assert!(
        t.contains("│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │"),
        "{t}"
    );
    assert!(t.contains(" Total params: 225,034 (879.04 KB)"), "{t}");
    assert!(t.contains(" Non-trainable params: 0 (0.00 B)"), "{t}");
}

#[test]
fn summary_equals_keras_for_the_cifar10_tutorial() {
    let m = spec::build("keras-cifar10", Shape::new(3, 32, 32), 10, false).unwrap();
    assert_eq!(
        rows(&m),
        vec![
            row("conv2d", "Conv2D", &[30, 30, 32], 896),
            row("max_pooling2d", "MaxPooling2D", &[15, 15, 32], 0),
            row("conv2d_1", "Conv2D", &[13, 13, 64], 18_496),
            row("max_pooling2d_1", "MaxPooling2D", &[6, 6, 64], 0),
            row("conv2d_2", "Conv2D", &[4, 4, 64], 36_928),
            row("flatten", "Flatten", &[1024], 0),
            row("dense", "Dense", &[64], 65_600),
            row("dense_1", "Dense", &[10], 650),
        ]
    );
    assert_eq!(summary(&m).total_params, 122_570);
}

#[test]
fn the_text_form_round_trips() {
    for (name, text) in PRESETS {
        let input = if name == "keras-cifar10" {
            Shape::new(3, 32, 32)
        } else {
            Shape::new(1, 28, 28)
        };
        let m = spec::build(text, input, 10, false).unwrap();
        // A graph's text names its tensors after the layers that make them.
        if m.is_chain() {
            assert_eq!(m.describe(), text, "{name}");
        }
        assert_eq!(spec::build(&m.describe(), input, 10, false).unwrap(), m);
    }
    // Keyword options and spacing as a user may write them.
    let a = spec::parse("conv2d(16, 5, activation=relu, stride=1, padding=valid) maxpool(3, stride=3) flatten dense(7, activation=softmax)").unwrap();
    let b = spec::parse("conv2d(16,5,relu) maxpool(3) flatten dense(7)").unwrap();
    assert_eq!(
        spec::parse("maxpool(3, stride=2)").unwrap(),
        vec![LayerSpec::Layer(gpu_cnn::model::Layer::MaxPool2d {
            size: 3,
            stride: 2
        })]
    );
    assert_eq!(a, b);
    assert_eq!(b.len(), 4);
    assert_eq!(b[2], LayerSpec::Flatten);
    // Every layer kind, options off their defaults, round-trips through the text form.
    let every = "conv2d(16,3,stride=2,padding=same,use_bias=false) batchnorm(momentum=0.9,epsilon=0.00001) relu maxpool(2) avgpool(3,stride=2) dropout(0.25) globalavgpool dense(32,relu) batchnorm dropout(0.5) dense(10)";
    let m = spec::build(every, Shape::new(3, 28, 28), 10, false).unwrap();
    assert_eq!(m.describe(), every);
    assert_eq!(
        spec::build(&m.describe(), Shape::new(3, 28, 28), 10, false).unwrap(),
        m
    );
    assert_eq!(
        spec::parse("dropout(rate=0.125) batchnorm").unwrap(),
        vec![
            LayerSpec::Layer(gpu_cnn::model::Layer::Dropout { rate: 0.125 }),
            LayerSpec::Layer(gpu_cnn::model::Layer::BatchNorm {
                momentum: 0.99,
                epsilon: 0.001
            }),
        ]
    );
    // Files written before flatten was spelled out still load (leniently).
    let legacy =
        "conv2d(32,3,relu) maxpool(2) conv2d(64,3,relu) maxpool(2) dense(128,relu) dense(10)";
    assert!(spec::build(legacy, Shape::new(1, 28, 28), 10, false).is_err());
    assert_eq!(
        spec::build(legacy, Shape::new(1, 28, 28), 10, true).unwrap(),
        Model::keras_mnist()
    );
}

#[test]
fn bad_text_shows_a_caret_under_the_bad_token() {
    let cases = [
        (
            "conv2d(32,3,relu) maxpol(2) flatten dense(10)",
            "unknown layer `maxpol`",
            18,
        ),
        (
            "conv2d(32,3,relu flatten dense(10)",
            "expected `,` or `)`, found `flatten`",
            17,
        ),
        (
            "conv2d(32,x) flatten dense(10)",
            "the kernel size must be a whole number",
            10,
        ),
        (
            "conv2d(32,3,tanh) flatten dense(10)",
            "activation `tanh` is not supported",
            12,
        ),
        (
            "conv2d(32,3,stride=0) flatten dense(10)",
            "the stride must be a whole number of at least 1",
            19,
        ),
        (
            "conv2d(32,3,padding=full) flatten dense(10)",
            "padding=full is not supported (valid or same)",
            20,
        ),
        (
            "conv2d(32,3,use_bias=no) flatten dense(10)",
            "use_bias is true or false",
            21,
        ),
        (
            "conv2d(32,3,dilation=2) flatten dense(10)",
            "conv2d has no option `dilation`",
            12,
        ),
        (
            "flatten dropout(1.5) dense(10)",
            "dropout rate 1.5 is not in [0, 1)",
            16,
        ),
        (
            "flatten dropout(x) dense(10)",
            "the rate must be a number",
            16,
        ),
        (
            "batchnorm(mom=0.9) flatten dense(10)",
            "batchnorm has no option `mom` (momentum, epsilon)",
            10,
        ),
        (
            "batchnorm(epsilon=0) flatten dense(10)",
            "batchnorm epsilon 0 is not above 0",
            0,
        ),
        (
            "avgpool(2, padding=same) flatten dense(10)",
            "padding=same is not supported (valid)",
            19,
        ),
        (
            "globalavgpool(2) dense(10)",
            "globalavgpool takes at most 0 values",
            14,
        ),
        (
            "maxpool(2, padding=same) flatten dense(10)",
            "padding=same is not supported (valid)",
            19,
        ),
        ("flatten dense(10", "missing `)`", 16),
        (
            "flatten dense(10) )",
            "expected a layer name, found `)`",
            18,
        ),
        ("flatten dense()", "dense needs (units)", 8),
        (
            "flatten dense(0)",
            "units must be a whole number of at least 1",
            14,
        ),
    ];
    for (text, want, col) in cases {
        let err = spec::parse(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert_eq!(lines[1], format!("  {text}"));
        assert_eq!(lines[2], format!("  {}^", " ".repeat(col)), "{text}\n{err}");
    }
    assert!(spec::parse("   ")
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

#[test]
fn models_that_do_not_fit_the_data_are_refused() {
    let input = Shape::new(1, 28, 28);
    let cases = [
        ("conv2d(8,3) maxpool(2) dense(10)", "needs `flatten` first"),
        (
            "conv2d(8,3) flatten dense(7)",
            "the last layer has 7 units, the data has 10 classes",
        ),
        (
            "conv2d(8,3) flatten dense(10,relu)",
            "the last layer must be dense(10) without relu",
        ),
        (
            "flatten dense(64) conv2d(8,3) dense(10)",
            "spatial layers come first",
        ),
        (
            "conv2d(8,30) flatten dense(10)",
            "does not fit input 1x28x28",
        ),
        (
            "conv2d(8,3) flatten batchnorm dense(10)",
            "batchnorm right after flatten is not supported",
        ),
        (
            "conv2d(8,3) avgpool(27) flatten dense(10)",
            "average pool 27x27 stride 27 does not fit input 8x26x26",
        ),
    ];
    for (text, want) in cases {
        let err = spec::build(text, input, 10, false).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

fn keras_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/keras/{name}.json"))
}

/// Keras' own files (tests/fixtures/keras, written by Keras 3.15): the tutorials' models read
/// into the same models as the presets, and `summary` equals what Keras counted for them.
#[test]
fn keras_json_files_read_as_keras_wrote_them() {
    let counted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keras_file("summaries")).unwrap()).unwrap();
    for (name, input, preset) in [
        ("mnist_tutorial", Shape::new(1, 28, 28), "keras-mnist"),
        ("cifar10_tutorial", Shape::new(3, 32, 32), "keras-cifar10"),
        (
            "every_layer",
            Shape::new(1, 28, 28),
            "conv2d(16,3,padding=same) conv2d(16,3,stride=2,padding=same,use_bias=false) batchnorm relu maxpool(2) conv2d(16,3,relu) avgpool(2,stride=1) relu batchnorm(momentum=0.9,epsilon=0.00001) dropout(0.25) globalavgpool dense(32,relu) batchnorm dropout(0.5) dense(10)",
        ),
        (
            "strided",
            Shape::new(1, 27, 27),
            "conv2d(8,3,relu,stride=3) conv2d(8,4,stride=2,padding=same,use_bias=false) flatten dense(10)",
        ),
        (
            "dropout",
            Shape::new(1, 28, 28),
            "conv2d(8,3,relu) flatten dropout(0.5) dense(10)",
        ),
    ] {
        let path = keras_file(name);
        let text = spec::resolve(path.to_str().unwrap(), Some(input)).unwrap();
        let m = spec::build(&text, input, 10, false).unwrap();
        assert_eq!(m, spec::build(preset, input, 10, false).unwrap(), "{name}");
        let ours = summary(&m);
        let keras = &counted[name];
        assert_eq!(
            ours.total_params as u64,
            keras["total_params"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.trainable_params as u64,
            keras["trainable_params"].as_u64().unwrap(),
            "{name}"
        );
        let theirs = keras["layers"].as_array().unwrap();
        assert_eq!(ours.layers.len(), theirs.len(), "{name}");
        for (o, k) in ours.layers.iter().zip(theirs) {
            // gpu-cnn has one ReLU layer; Keras has two classes for it.
            let kind = match k["type"].as_str().unwrap() {
                "ReLU" => "Activation",
                other => other,
            };
            assert_eq!(o.kind, kind, "{name}");
            assert_eq!(
                serde_json::json!(o.output_shape),
                k["output_shape"],
                "{name} {}",
                o.kind
            );
            assert_eq!(
                o.params as u64,
                k["params"].as_u64().unwrap(),
                "{name} {}",
                o.kind
            );
        }
    }
    // The InputLayer's shape must be the data's.
    let err = spec::resolve(
        keras_file("mnist_tutorial").to_str().unwrap(),
        Some(Shape::new(3, 32, 32)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("InputLayer takes 1x28x28") && err.contains("the data is 3x32x32"),
        "{err}"
    );
}

#[test]
fn keras_options_gpu_cnn_cannot_train_are_named() {
    let cases = [
        (
            "dilated",
            "(Conv2D): dilation_rate [2,2] is not supported (1)",
        ),
        (
            "batchnorm_no_scale",
            "(BatchNormalization): scale false is not supported (true)",
        ),
        (
            "leaky",
            "(ReLU): negative_slope 0.1 is not supported (a plain ReLU)",
        ),
        (
            "regularised",
            "(Conv2D): kernel_regularizer is not supported",
        ),
        (
            "tanh",
            "(Dense): activation `tanh` is not supported (relu, linear)",
        ),
    ];
    for (name, want) in cases {
        let path = keras_file(name);
        let err = spec::resolve(path.to_str().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{name}.json")) && err.contains(want),
            "{name}: {err}"
        );
    }
    let dir = common::temp_dir("keras-bad");
    for (file, text, want) in [
        (
            "functional.json",
            r#"{"class_name": "Functional", "config": {}}"#,
            "config.layers is missing",
        ),
        (
            "subclassed.json",
            r#"{"class_name": "MyModel", "config": {"layers": []}}"#,
            "the model is a MyModel, only Sequential and Functional models are supported",
        ),
        (
            "empty.json",
            r#"{"class_name": "Sequential", "config": {"layers": []}}"#,
            "no layers",
        ),
        ("junk.json", "{", "not JSON"),
        (
            "lambda.json",
            r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "l"}}]}}"#,
            "layer `l` (Lambda): class `Lambda` is not supported",
        ),
        (
            "first.json",
            r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], "data_format": "channels_first"}}]}}"#,
            "layer `c` (Conv2D): data_format \"channels_first\" is not supported (channels_last)",
        ),
    ] {
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        let err = spec::resolve(p.to_str().unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(file) && err.contains(want), "{file}: {err}");
    }
}

/// `--model` is read once into a `ModelSpec`: the same layers from a preset's name, its text and
/// the Keras file of the same model; the file's declared input is checked when the model is
/// built; errors quote what was given.
#[test]
fn a_model_spec_reads_presets_text_and_keras_files_alike() {
    use gpu_cnn::spec::ModelSpec;
    let input = Shape::new(1, 28, 28);
    let preset = ModelSpec::parse("keras-mnist").unwrap();
    let text = ModelSpec::parse(PRESETS[0].1).unwrap();
    let path = keras_file("mnist_tutorial");
    let keras = ModelSpec::parse(path.to_str().unwrap()).unwrap();
    assert_eq!(preset.layers, text.layers);
    assert_eq!(keras.layers, text.layers);
    assert_eq!((preset.input, keras.input), (None, Some(input)));
    assert_eq!(keras.text(), PRESETS[0].1);
    let model = keras.build(input, 10, false).unwrap();
    assert_eq!(model, gpu_cnn::model::Model::keras_mnist());
    assert_eq!(preset.build(input, 10, false).unwrap(), model);
    let err = keras
        .build(Shape::new(3, 32, 32), 10, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("InputLayer takes 1x28x28"), "{err}");
    let err = preset.build(input, 7, false).unwrap_err().to_string();
    assert!(
        err.contains("--model `keras-mnist`: the last layer has 10 units, the data has 7"),
        "{err}"
    );
    let err = ModelSpec::parse("/nonexistent/model.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/model.json"), "{err}");
}

/// Keras Functional files (`make_functional.py`): a chain reads as the same layers as its
/// Sequential twin, a residual block as a graph; several inputs and shared layers are errors
/// naming the layer; and hand-made files with a cycle, an unknown `keras_history`, a layer off
/// the path or no inputs.
#[test]
fn functional_chains_read_and_other_graphs_are_named_errors() {
    let shape = Shape::new(1, 28, 28);
    let functional =
        spec::ModelSpec::parse(keras_file("functional_mnist").to_str().unwrap()).unwrap();
    let chain = functional.build(shape, 10, false).unwrap();
    // summary prints what Keras printed for it: the model's name, the InputLayer's row.
    let keras_table = std::fs::read_to_string(
        keras_file("functional_mnist").with_file_name("functional_mnist_summary.txt"),
    )
    .unwrap();
    assert_eq!(
        table(&gpu_cnn::summary::summary_of(&chain, Some(&functional))),
        keras_table
    );
    let seq = spec::ModelSpec::parse(keras_file("mnist_tutorial").to_str().unwrap())
        .unwrap()
        .build(shape, 10, false)
        .unwrap();
    assert_eq!(
        chain.describe(),
        format!("randomflip(horizontal) {}", seq.describe())
    );
    assert_eq!(chain.params, seq.params);
    // Add()([a, b]): a (the first conv) first, then b.
    let residual = spec::ModelSpec::parse(keras_file("functional_residual").to_str().unwrap())
        .unwrap()
        .build(shape, 10, false)
        .unwrap();
    assert_eq!(
        residual.describe(),
        "conv2d(8,3,relu,padding=same) as(conv1) conv2d(8,3,padding=same) as(conv2) from(conv1) add(conv2) flatten dense(10)"
    );
    assert_eq!(residual.layers[2].inputs, [1, 2]);
    // A ResNet-style graph: summary prints Keras' Functional table with "Connected to", byte
    // for byte what Keras printed for the file (functional_resnet_summary.txt).
    let file = spec::ModelSpec::parse(keras_file("functional_resnet").to_str().unwrap()).unwrap();
    let resnet = file.build(shape, 10, false).unwrap();
    let keras_table = std::fs::read_to_string(
        keras_file("functional_resnet").with_file_name("functional_resnet_summary.txt"),
    )
    .unwrap();
    assert_eq!(
        table(&gpu_cnn::summary::summary_of(&resnet, Some(&file))),
        keras_table
    );
    assert_eq!(residual.param_count(), 80 + 584 + 6_272 * 10 + 10);
    for (name, want) in [
        (
            "functional_two_inputs",
            "the model has 2 input_layers: gpu-cnn trains models with one input and one output",
        ),
        (
            "functional_shared",
            "layers called more than once (shared) are not supported",
        ),
    ] {
        let e = spec::ModelSpec::parse(keras_file(name).to_str().unwrap())
            .and_then(|s| s.build(shape, 10, false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{name}.json")) && e.contains(want),
            "{name}: {e}"
        );
    }
    // Hand-made graphs, Keras 2's inbound_nodes form ([[[name, node, tensor, kwargs]]]).
    let layer = |name: &str, class: &str, from: &str| {
        let nodes = if from.is_empty() {
            serde_json::json!([])
        } else {
            serde_json::json!([[[from, 0, 0, {}]]])
        };
        let config = match class {
            "Dense" => serde_json::json!({"name": name, "units": 10}),
            "InputLayer" => {
                serde_json::json!({"name": name, "batch_input_shape": [null, 28, 28, 1]})
            }
            _ => serde_json::json!({"name": name}),
        };
        serde_json::json!({"class_name": class, "name": name, "config": config, "inbound_nodes": nodes})
    };
    let model = |layers: Vec<serde_json::Value>,
                 inputs: serde_json::Value,
                 outputs: serde_json::Value| {
        serde_json::json!({"class_name": "Model", "config": {"layers": layers, "input_layers": inputs, "output_layers": outputs}})
    };
    let ok = model(
        vec![
            layer("in", "InputLayer", ""),
            layer("f", "Flatten", "in"),
            layer("d", "Dense", "f"),
        ],
        serde_json::json!([["in", 0, 0]]),
        serde_json::json!([["d", 0, 0]]),
    );
    let dir = common::temp_dir("keras-functional");
    let read = |name: &str, v: &serde_json::Value| {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, v.to_string()).unwrap();
        spec::ModelSpec::parse(path.to_str().unwrap()).and_then(|s| s.build(shape, 10, false))
    };
    assert_eq!(read("ok", &ok).unwrap().describe(), "flatten dense(10)");
    // Layers listed before the layers that feed them read in the graph's order.
    let reversed = model(
        vec![
            layer("d", "Dense", "f"),
            layer("f", "Flatten", "in"),
            layer("in", "InputLayer", ""),
        ],
        serde_json::json!([["in", 0, 0]]),
        serde_json::json!([["d", 0, 0]]),
    );
    assert_eq!(
        read("reversed", &reversed).unwrap().describe(),
        "flatten dense(10)"
    );
    for (name, v, want) in [
        (
            "cycle",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("f", "Flatten", "d"),
                    layer("d", "Dense", "f"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "layer `d` (Dense): its inputs form a cycle",
        ),
        (
            "unknown",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("f", "Flatten", "nowhere"),
                    layer("d", "Dense", "f"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "no layer is named `nowhere`",
        ),
        (
            "dangling",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("f", "Flatten", "in"),
                    layer("x", "Dense", "f"),
                    layer("d", "Dense", "f"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "layer `x` (Dense): is not on the path from `in` to `d`",
        ),
        (
            "unfed",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("f", "Flatten", ""),
                    layer("d", "Dense", "f"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "layer `f` (Flatten): is not fed by the model's input `in`",
        ),
        (
            "noinput",
            model(
                vec![layer("in", "InputLayer", ""), layer("d", "Dense", "in")],
                serde_json::json!(null),
                serde_json::json!([["d", 0, 0]]),
            ),
            "config.input_layers is missing",
        ),
        (
            "twoout",
            model(
                vec![layer("in", "InputLayer", ""), layer("d", "Dense", "in")],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0], ["in", 0, 0]]),
            ),
            "the model has 2 output_layers",
        ),
        (
            "twice",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("d", "Dense", "in"),
                    layer("d", "Dense", "in"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "two layers are named `d`",
        ),
        (
            "notinput",
            model(
                vec![layer("f", "Flatten", ""), layer("d", "Dense", "f")],
                serde_json::json!([["f", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "the model's input `f` is a Flatten, not an InputLayer",
        ),
        (
            "onejoin",
            model(
                vec![
                    layer("in", "InputLayer", ""),
                    layer("f", "Flatten", "in"),
                    layer("a", "Add", "f"),
                    layer("d", "Dense", "a"),
                ],
                serde_json::json!([["in", 0, 0]]),
                serde_json::json!([["d", 0, 0]]),
            ),
            "layer `a` (Add): joins 1 tensor; it needs two or more",
        ),
    ] {
        let e = read(name, &v).unwrap_err().to_string();
        assert!(e.contains(want), "{name}: {want:?} in {e}");
    }
}

/// The text form's graphs: `as(x)` names the tensor so far, `from(x)` goes on from x, `add(x)`
/// and `concatenate(x)` join the tensor so far with x. Each layer reads the tensors it names;
/// `describe` writes a graph back as text that builds the same model; misuse is an error that
/// names the tensor or the layer.
#[test]
fn the_text_form_writes_graphs() {
    let shape = Shape::new(1, 28, 28);
    let text = "conv2d(8,3,relu,padding=same) as(a) conv2d(8,3,padding=same) add(a) relu maxpool(2) as(b) conv2d(4,3,padding=same) concatenate(b) globalavgpool dense(10)";
    let m = spec::build(text, shape, 10, false).unwrap();
    let reads: Vec<Vec<usize>> = m.layers.iter().map(|l| l.inputs.clone()).collect();
    assert_eq!(
        reads,
        [
            vec![0],
            vec![1],
            vec![2, 1],
            vec![3],
            vec![4],
            vec![5],
            vec![6, 5],
            vec![7],
            vec![8]
        ]
    );
    assert_eq!(m.layers[6].output, Shape::new(12, 14, 14));
    assert_eq!(m.layers[2].name, "add1");
    assert_eq!(m.layers[6].name, "concat1");
    // Written back with the layers' own names; it reads back as the same model.
    let back = m.describe();
    assert_eq!(
        back,
        "conv2d(8,3,relu,padding=same) as(conv1) conv2d(8,3,padding=same) add(conv1) relu maxpool(2) as(pool1) conv2d(4,3,padding=same) concatenate(pool1) globalavgpool dense(10)"
    );
    assert_eq!(spec::build(&back, shape, 10, false).unwrap(), m);
    // from(): a branch off an earlier tensor, and a shortcut from the input itself.
    let m = spec::build(
        "as(x) conv2d(1,3,padding=same) as(y) from(x) conv2d(1,5,padding=same) add(y,x) flatten dense(10)",
        shape,
        10,
        false,
    )
    .unwrap();
    assert_eq!(m.layers[2].inputs, [2, 1, 0]);
    let back = m.describe();
    assert_eq!(
        back,
        "as(input) conv2d(1,3,padding=same) as(conv1) from(input) conv2d(1,5,padding=same) add(conv1,input) flatten dense(10)"
    );
    assert_eq!(spec::build(&back, shape, 10, false).unwrap(), m);
    for (text, want) in [
        (
            "conv2d(8,3) add(b) flatten dense(10)",
            "add(b): no tensor is named `b` before it",
        ),
        (
            "conv2d(8,3) from(b) flatten dense(10)",
            "from(b): no tensor is named `b` before it",
        ),
        (
            "as(a) conv2d(8,3) as(a) flatten dense(10)",
            "as(a): `a` names another tensor already",
        ),
        (
            "as(x) conv2d(8,3) add(x) flatten dense(10)",
            "adds tensors of different shapes (8x26x26, 1x28x28)",
        ),
        (
            "as(x) maxpool(2) concatenate(x) flatten dense(10)",
            "concatenates tensors of different heights or widths",
        ),
        (
            "as(x) conv2d(8,3) as(y) from(x) flatten dense(10)",
            "its output is never read",
        ),
        (
            "as(x) flatten dense(10) from(x)",
            "the model ends with from()",
        ),
        (
            "conv2d(8,3) add flatten dense(10)",
            "add takes the names of the tensors it joins",
        ),
        (
            "conv2d(8,3) as(a,b) flatten dense(10)",
            "as takes one tensor name",
        ),
        (
            "conv2d(8,3) as(1a) flatten dense(10)",
            "`1a` is not a tensor name",
        ),
        (
            "conv2d(8,3) add(x=a) flatten dense(10)",
            "add takes tensor names, not options",
        ),
        (
            "as(x) conv2d(8,3) from(x) randomflip flatten dense(10)",
            "randomflip after conv2d",
        ),
    ] {
        let e = spec::build(text, shape, 10, false).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}

/// The ResNet presets are the models of their Keras twins (`make_resnet.py`: the same layers,
/// shapes, reads and tensors in the same order), and summary prints for them what Keras
/// printed: ResNet-20's 274,042 parameters (1,568 of them batch norm's moving statistics).
#[test]
fn the_resnet_presets_equal_their_keras_twins() {
    for (preset, file, input) in [
        (
            "resnet20-cifar10",
            "resnet20_cifar10",
            Shape::new(3, 32, 32),
        ),
        ("resnet-mini", "resnet_mini", Shape::new(1, 28, 28)),
    ] {
        let ours = spec::build(preset, input, 10, false).unwrap();
        let twin = spec::ModelSpec::parse(keras_file(file).to_str().unwrap()).unwrap();
        assert_eq!(twin.build(input, 10, false).unwrap(), ours, "{preset}");
        let keras_table =
            std::fs::read_to_string(keras_file(file).with_file_name(format!("{file}_summary.txt")))
                .unwrap();
        let mut s = gpu_cnn::summary::summary(&ours);
        s.name = file.to_string();
        assert_eq!(table(&s), keras_table, "{preset}");
    }
    let r20 = spec::build("resnet20-cifar10", Shape::new(3, 32, 32), 10, false).unwrap();
    assert_eq!(
        (r20.param_count(), r20.trainable_count()),
        (274_042, 272_474)
    );
    let adds = r20
        .layers
        .iter()
        .filter(|l| l.layer == gpu_cnn::model::Layer::Add)
        .count();
    assert_eq!(adds, 9, "three stages of three blocks");
}
