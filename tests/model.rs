//! The seed model's shapes and parameter count, Keras' glorot-uniform init, and checkpoints.

mod common;
use common::*;

use gpu_cnn::model::{Layer, Model, Shape, PARAM_ALIGN};

#[test]
fn seed_model_has_the_keras_shapes_and_225034_parameters() {
    let m = Model::keras_mnist();
    let outs: Vec<Shape> = m.layers.iter().map(|l| l.output).collect();
    assert_eq!(
        outs,
        vec![
            Shape::new(32, 26, 26),
            Shape::new(32, 13, 13),
            Shape::new(64, 11, 11),
            Shape::new(64, 5, 5),
            Shape::new(128, 1, 1),
            Shape::new(10, 1, 1)
        ]
    );
    assert_eq!(m.param_count(), 225_034);
    let names: Vec<(&str, Vec<usize>)> = m
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.shape.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("conv1.weight", vec![32, 1, 3, 3]),
            ("conv1.bias", vec![32]),
            ("conv2.weight", vec![64, 32, 3, 3]),
            ("conv2.bias", vec![64]),
            ("fc1.weight", vec![128, 1600]),
            ("fc1.bias", vec![128]),
            ("fc2.weight", vec![10, 128]),
            ("fc2.bias", vec![10]),
        ]
    );
    for p in &m.params {
        assert_eq!(
            p.offset % PARAM_ALIGN,
            0,
            "{} is not 256-byte aligned",
            p.name
        );
    }
    assert_eq!(m.classes, 10);
}

#[test]
fn invalid_architectures_are_errors() {
    let too_big = Model::new(
        Shape::new(1, 4, 4),
        &[
            Layer::Conv2d {
                out_channels: 2,
                kernel: 5,
                relu: true,
            },
            Layer::Dense {
                out: 2,
                relu: false,
            },
        ],
    );
    assert!(too_big
        .unwrap_err()
        .to_string()
        .contains("does not fit input 1x4x4"));
    let no_logits = Model::new(Shape::new(1, 4, 4), &[Layer::Dense { out: 2, relu: true }]);
    assert!(no_logits.unwrap_err().to_string().contains("last layer"));
}

#[test]
fn glorot_uniform_init_is_seeded_and_bounded() {
    let m = Model::keras_mnist();
    let a = m.init_glorot(1);
    assert_eq!(a, m.init_glorot(1), "same seed, same weights");
    assert_ne!(a, m.init_glorot(2), "another seed, other weights");
    for p in &m.params {
        let v = &a[p.offset..p.offset + p.len];
        if p.shape.len() == 1 {
            assert!(v.iter().all(|&x| x == 0.0), "{} must start at zero", p.name);
            continue;
        }
        let rf: usize = p.shape[2..].iter().product();
        let limit = (6.0 / ((p.shape[0] + p.shape[1]) * rf) as f64).sqrt();
        let max = v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()));
        assert!(
            max <= limit && max > 0.9 * limit,
            "{}: max |w| {max} vs limit {limit}",
            p.name
        );
        // Uniform(-l, l) has variance l^2 / 3.
        let var = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / v.len() as f64;
        let want = limit * limit / 3.0;
        assert!(
            (var - want).abs() < 0.25 * want,
            "{}: variance {var} vs {want}",
            p.name
        );
    }
    // Padding between tensors stays zero.
    let used: usize = m.params.iter().map(|p| p.len).sum();
    assert_eq!(
        a.iter().filter(|&&x| x != 0.0).count(),
        used - 32 - 64 - 128 - 10
    );
}

#[test]
fn checkpoints_round_trip_and_reject_mismatches() {
    let dir = temp_dir("ckpt");
    let m = Model::keras_mnist();
    let w = m.init_glorot(9);
    let path = dir.join("model.safetensors");
    m.save_safetensors(&w, &path, &[]).unwrap();
    assert_eq!(m.load_safetensors(&path).unwrap(), w);
    assert!(
        !dir.join("model.partial").exists(),
        "no temporary file left behind"
    );

    // Another architecture: shapes differ.
    let other = Model::new(
        Shape::new(1, 28, 28),
        &[
            Layer::Conv2d {
                out_channels: 16,
                kernel: 3,
                relu: true,
            },
            Layer::Dense {
                out: 10,
                relu: false,
            },
        ],
    )
    .unwrap();
    other
        .save_safetensors(&other.init_glorot(1), &dir.join("other.safetensors"), &[])
        .unwrap();
    let err = m
        .load_safetensors(&dir.join("other.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv1.weight") && err.contains("[16, 1, 3, 3]"),
        "{err}"
    );
    // A model with more tensors than the file holds.
    let err = m.load_safetensors(&dir.join("other.safetensors"));
    assert!(err.is_err());
    // Not a safetensors file at all.
    std::fs::write(dir.join("junk.safetensors"), b"hello").unwrap();
    let err = m
        .load_safetensors(&dir.join("junk.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );
    let err = m
        .load_safetensors(&dir.join("absent.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.safetensors"), "{err}");
}
