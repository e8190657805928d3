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
            Layer::conv(2, 5, true),
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
    // Augmentation passes no gradient back, so nothing may stand before it.
    let flip = Layer::Augment(gpu_cnn::layers::Augment::Flip {
        horizontal: true,
        vertical: false,
    });
    let late = Model::new(
        Shape::new(1, 4, 4),
        &[
            Layer::Relu,
            flip,
            Layer::Dense {
                out: 2,
                relu: false,
            },
        ],
    );
    assert!(late.unwrap_err().to_string().contains(
        "layer 2 (randomflip(horizontal)): augmentation layers come before every other layer"
    ));
    assert!(Model::new(
        Shape::new(1, 4, 4),
        &[
            flip,
            flip,
            Layer::Dense {
                out: 2,
                relu: false
            }
        ]
    )
    .is_ok());
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
            Layer::conv(16, 3, true),
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

/// Writes a checkpoint of `m`'s tensors with `edit` applied to the (name, dtype, shape, bytes)
/// list first.
fn crafted(
    dir: &std::path::Path,
    name: &str,
    m: &Model,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> std::path::PathBuf {
    let w = m.init_glorot(3);
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = m
        .params
        .iter()
        .map(|p| {
            let bytes = w[p.offset..p.offset + p.len]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (
                p.name.clone(),
                safetensors::Dtype::F32,
                p.shape.clone(),
                bytes,
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    path
}

/// One crafted file per way a checkpoint can be wrong; each message names the file and lists
/// what was expected.
#[test]
fn every_checkpoint_defect_has_its_own_message() {
    let dir = temp_dir("ckpt-defects");
    let m = Model::keras_mnist();
    let good = crafted(&dir, "good.safetensors", &m, |_| {});
    assert!(m.load_safetensors(&good).is_ok());
    let bytes = std::fs::read(&good).unwrap();
    let cases: Vec<(std::path::PathBuf, &str)> =
        vec![
        (
            crafted(&dir, "missing.safetensors", &m, |t| {
                t.retain(|x| x.0 != "fc2.bias");
            }),
            "missing tensor `fc2.bias`; this model needs [conv1.weight [32, 1, 3, 3]",
        ),
        (
            crafted(&dir, "extra.safetensors", &m, |t| {
                t.push(("fc3.weight".into(), safetensors::Dtype::F32, vec![2], vec![0; 8]));
            }),
            "tensors [fc3.weight] are not part of this model, which has [conv1.weight, conv1.bias",
        ),
        (
            crafted(&dir, "dtype.safetensors", &m, |t| {
                let b = t[7].3.clone();
                t[7] = ("fc2.bias".into(), safetensors::Dtype::I32, vec![10], b);
            }),
            "tensor `fc2.bias` has dtype I32, expected F32",
        ),
        (
            crafted(&dir, "shape.safetensors", &m, |t| {
                t[7].2 = vec![2, 5];
            }),
            "tensor `fc2.bias` has shape [2, 5], this model needs [10]",
        ),
        (
            crafted(&dir, "nan.safetensors", &m, |t| {
                t[5].3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
            "tensor `fc1.bias` holds a non-finite value at 2",
        ),
    ];
    for (path, want) in cases {
        let err = m.load_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(want),
            "{}: {err}",
            path.display()
        );
    }
    // Truncated, and a header whose offsets point past the data.
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let liar = header.replacen("\"data_offsets\":[0,", "\"data_offsets\":[4,", 1);
    assert_ne!(liar, header);
    let mut lying = (liar.len() as u64).to_le_bytes().to_vec();
    lying.extend_from_slice(liar.as_bytes());
    lying.extend_from_slice(&bytes[8 + n..]);
    let lie = dir.join("lie.safetensors");
    std::fs::write(&lie, lying).unwrap();
    for path in [cut, lie] {
        let err = m.load_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains("not a safetensors file"),
            "{err}"
        );
    }
}

/// Writes leave no temporary file behind, even when the rename fails, and never touch the
/// target on failure.
#[test]
fn atomic_writes_clean_up_after_failure() {
    use gpu_cnn::files::{ensure_writable_dir, write_atomic};
    let dir = temp_dir("atomic");
    write_atomic(&dir.join("a.json"), b"one").unwrap();
    write_atomic(&dir.join("a.json"), b"two").unwrap();
    assert_eq!(std::fs::read(dir.join("a.json")).unwrap(), b"two");
    // The target is a folder: an error naming it, and no temporary file left.
    std::fs::create_dir(dir.join("model.safetensors")).unwrap();
    let err = write_atomic(&dir.join("model.safetensors"), b"x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("is a folder"),
        "{err}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&*dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.json", "model.safetensors"]);
    // A folder that cannot hold files is found before any work.
    std::fs::write(dir.join("plain"), b"x").unwrap();
    let err = ensure_writable_dir(&dir.join("plain"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a file"), "{err}");
    let err = ensure_writable_dir(&dir.join("plain/sub"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain/sub"), "{err}");
}

/// `path` with its header's metadata entry `key` set to `value` (the tensors untouched).
fn with_metadata(path: &std::path::Path, key: &str, value: &str) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"][key] = serde_json::Value::String(value.into());
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// A model file's recorded layers rebuild the model `evaluate`, `predict` and `--init` use: when
/// they disagree with the tensors, or do not parse, or the input shape is garbage, the error
/// names the file and says what was expected.
#[test]
fn architecture_metadata_that_disagrees_with_the_tensors_is_an_error() {
    use gpu_cnn::checkpoint::load_saved;
    let dir = temp_dir("model-arch");
    let m = gpu_cnn::spec::build(
        "conv2d(4,3,relu,padding=same) batchnorm globalavgpool dense(10)",
        Shape::new(1, 8, 8),
        10,
        false,
    )
    .unwrap();
    let path = dir.join("m.safetensors");
    let classes = (
        "classes",
        serde_json::to_string(&(0..10).map(|i| i.to_string()).collect::<Vec<_>>()).unwrap(),
    );
    m.save_safetensors(&m.init_glorot(1), &path, &[classes])
        .unwrap();
    let saved = load_saved(&path).unwrap();
    assert_eq!(saved.model, m);
    for (key, value, want) in [
        (
            "architecture",
            "conv2d(8,3,relu,padding=same) batchnorm globalavgpool dense(10)",
            "do not match its recorded layers `conv2d(8,3,relu,padding=same) batchnorm globalavgpool dense(10)`: tensor `conv1.weight` has shape [4, 1, 3, 3], this model needs [8, 1, 3, 3]",
        ),
        (
            "architecture",
            "conv2d(4,3,relu,padding=same) globalavgpool dense(10)",
            "tensors [bn1.bias, bn1.running_mean, bn1.running_var, bn1.weight] are not part of this model",
        ),
        ("architecture", "conv2d(4,3,relu) maxpol(2) dense(10)", "do not rebuild"),
        ("input", "8x8", "metadata `input` is `8x8`, expected CxHxW"),
    ] {
        let p = dir.join("edited.safetensors");
        std::fs::copy(&path, &p).unwrap();
        with_metadata(&p, key, value);
        let err = load_saved(&p).err().expect("an error").to_string();
        assert!(err.contains("edited.safetensors") && err.contains(want), "{value}: {err}");
    }
}
