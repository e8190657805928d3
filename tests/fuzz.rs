//! Bounded fuzzing of every parser of user files and values: arbitrary and mutated bytes give an
//! error or a value, never a panic. Seeded, a few thousand cases each, well under a second.

mod common;
use common::*;

use std::path::Path;

use gpu_cnn::data::{folder, idx};
use gpu_cnn::model::Model;
use gpu_cnn::rng::Rng;

/// `base` with a few random byte edits: flips, truncation, insertion, duplication.
fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.below(256) as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.below(256) as u8);
            }
            _ => {
                let n = rng.below(16);
                let tail: Vec<u8> = v.iter().rev().take(n).copied().collect();
                v.extend(tail);
            }
        }
    }
    v
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| rng.below(256) as u8)
        .collect()
}

#[test]
fn idx_parser_never_panics() {
    let mut rng = Rng::new(1);
    let good = idx_bytes(&[3, 4, 5], &(0..60).collect::<Vec<u8>>());
    let gz = gzip(&good);
    let path = Path::new("fuzz.idx");
    for i in 0..4000 {
        let bytes = match i % 3 {
            0 => mutate(&good, &mut rng),
            1 => random_bytes(&mut rng, 64),
            _ => {
                // Mutated gzip, decompressed then parsed, as a file would be.
                match idx::gunzip(&mutate(&gz, &mut rng), path) {
                    Ok(b) => b,
                    Err(_) => continue,
                }
            }
        };
        if let Ok(parsed) = idx::parse_idx(&bytes, path) {
            let total: usize = parsed.dims.iter().product();
            assert_eq!(parsed.data.len(), total, "case {i}");
        }
    }
}

#[test]
fn checkpoint_loader_never_panics() {
    let dir = temp_dir("fuzz-ckpt");
    let m = Model::keras_mnist();
    let path = dir.join("model.safetensors");
    m.save_safetensors(&m.init_glorot(1), &path, &[]).unwrap();
    let good = std::fs::read(&path).unwrap();
    // Mutations aimed at the header, where the structure is.
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut rng = Rng::new(2);
    let fuzzed = dir.join("fuzzed.safetensors");
    for i in 0..1500 {
        let bytes = if i % 4 == 3 {
            random_bytes(&mut rng, 200)
        } else {
            let head = mutate(&good[..8 + n], &mut rng);
            let mut b = head;
            b.extend_from_slice(&good[8 + n..]);
            b
        };
        std::fs::write(&fuzzed, &bytes).unwrap();
        if let Ok(w) = m.load_safetensors(&fuzzed) {
            assert_eq!(w.len(), m.flat_len, "case {i}");
        }
    }
}

#[test]
fn image_decoder_and_size_parser_never_panic() {
    let dir = temp_dir("fuzz-images");
    image_folder(&dir);
    let png = std::fs::read(dir.join("train/circle/0.png")).unwrap();
    let jpg = std::fs::read(dir.join("train/circle/1.jpg")).unwrap();
    let mut rng = Rng::new(3);
    let f = dir.join("fuzzed");
    for i in 0..300 {
        let base = if i % 2 == 0 { &png } else { &jpg };
        std::fs::write(&f, mutate(base, &mut rng)).unwrap();
        if let Ok(px) = folder::decode_image(&f, folder::Color::Rgb, (9, 7)) {
            assert_eq!(px.len(), 3 * 9 * 7, "case {i}");
        }
    }
    for _ in 0..2000 {
        let s: String = (0..rng.below(12))
            .map(|_| b"0123456789xX -+."[rng.below(16)] as char)
            .collect();
        if let Ok((h, w)) = folder::parse_size(&s) {
            assert!((1..=4096).contains(&h) && (1..=4096).contains(&w), "{s}");
        }
    }
}

#[test]
fn model_text_parser_never_panics() {
    let mut rng = Rng::new(4);
    let words = b"conv2d maxpool avgpool globalavgpool dense flatten relu dropout batchnorm momentum epsilon rate ( ) , = 3 32 0 -1 0.5 1.0 nan inf -0 stride padding same valid activation softmax x 1e9 99999999999999999999 randomflip randomzoom .. fill_mode fill_value value_range as from add concatenate a b";
    let every = "conv2d(8,3,relu) batchnorm(momentum=0.9) maxpool(2) avgpool(2,stride=1) relu dropout(0.25) globalavgpool dense(16) dropout(0.5) dense(10)";
    let augment = "randomflip(vertical) randomtranslation(0.1,-0.2..0.3,fill_mode=constant,fill_value=0.5) randomrotation(0.25,fill_mode=wrap) randomzoom(-0.3..-0.1,0.2) randomcontrast(0.2..0.4,value_range=0..1) conv2d(4,3) flatten dense(10)";
    let graph = "conv2d(4,3,relu,padding=same) as(a) conv2d(4,3,padding=same) add(a) relu as(b) from(a) conv2d(2,1) concatenate(b,a) globalavgpool dense(10)";
    for i in 0..6000 {
        let base = match i % 6 {
            0 => every.as_bytes(),
            3 => augment.as_bytes(),
            5 => graph.as_bytes(),
            _ => gpu_cnn::spec::PRESETS[0].1.as_bytes(),
        };
        let bytes = if i % 2 == 0 {
            mutate(base, &mut rng)
        } else {
            (0..rng.below(60))
                .map(|_| words[rng.below(words.len())])
                .collect()
        };
        let text = String::from_utf8_lossy(&bytes);
        let shape = gpu_cnn::model::Shape::new(1, 28, 28);
        if let Ok(m) = gpu_cnn::spec::build(&text, shape, 10, false) {
            assert_eq!(m.classes, 10, "{text}");
            // What reads writes back as text that reads into the same layers.
            let again = gpu_cnn::spec::build(&m.describe(), shape, 10, false)
                .unwrap_or_else(|e| panic!("{text} -> {}: {e}", m.describe()));
            assert_eq!(again.layers, m.layers, "{text} -> {}", m.describe());
        }
    }
}

#[test]
fn keras_json_reader_never_panics() {
    let mut rng = Rng::new(5);
    for name in [
        "mnist_tutorial",
        "every_layer",
        "augment_model",
        "functional_mnist",
        "functional_residual",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/keras/{name}.json"));
        let good = std::fs::read(&path).unwrap();
        for _ in 0..2000 {
            let text = String::from_utf8_lossy(&mutate(&good, &mut rng)).into_owned();
            if let Ok((specs, _)) = gpu_cnn::spec::parse_keras_json(&text, &path) {
                // Whatever reads must also build or give an error.
                let _ = gpu_cnn::spec::build(
                    &gpu_cnn::spec::to_text(&specs),
                    gpu_cnn::model::Shape::new(1, 28, 28),
                    10,
                    false,
                );
            }
        }
    }
}

#[test]
fn cifar_archive_reader_never_panics() {
    use gpu_cnn::data::cifar;
    let mut rng = Rng::new(6);
    let mut members = Vec::new();
    for (b, name) in cifar::TRAIN_MEMBERS.iter().enumerate() {
        members.push((name.to_string(), vec![b as u8; 2 * cifar::RECORD]));
    }
    members.push((cifar::TEST_MEMBER.to_string(), vec![3; cifar::RECORD]));
    let good = cifar_archive(&members);
    let tar = {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&good[..]), &mut raw).unwrap();
        raw
    };
    let path = Path::new("fuzz.tar.gz");
    assert_eq!(
        cifar::parse_archive(&good, path, 10).unwrap().train.len(),
        10
    );
    for i in 0..600 {
        let bytes = match i % 3 {
            // Mutations of the compressed file hit the gzip layer, of the tar the members.
            0 => mutate(&good, &mut rng),
            1 => gzip(&mutate(&tar, &mut rng)),
            _ => random_bytes(&mut rng, 600),
        };
        if let Ok(c) = cifar::parse_archive(&bytes, path, 10) {
            assert_eq!(c.train.images.len(), c.train.len() * 3072, "case {i}");
            assert!(c.train.labels.iter().all(|&l| l < 10), "case {i}");
        }
    }
}
