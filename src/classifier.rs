//! The library's way to use a trained model: load a `model.safetensors` that `gpu-cnn train`
//! wrote, prepare pictures as its training images were, and get each class's probability.
//!
//! ```
//! # fn main() -> gpu_cnn::Result<()> {
//! use gpu_cnn::Classifier;
//!
//! // The CPU reference needs no GPU; without `on_cpu` the GPU (or a software adapter) runs it.
//! let c = Classifier::load("tests/fixtures/mnist_seed.safetensors")?.on_cpu();
//! let seven = c.prepare("assets/digits/7-0.png")?;
//! let top = c.predict(&[seven])?;
//! assert_eq!(c.classes()[top[0].class], "7");
//! assert!(top[0].probability > 0.9);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use crate::checkpoint::{load_saved, SavedModel};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::AdapterOptions;
use crate::infer::{logits, softmax};
use crate::model::Shape;

/// A saved model, ready to classify.
pub struct Classifier {
    saved: SavedModel,
    cpu: bool,
    adapter: AdapterOptions,
    batch: usize,
}

/// One image's answer: the most probable class, and every class's probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub class: usize,
    pub probability: f64,
    pub probabilities: Vec<f64>,
}

impl Classifier {
    /// Reads a model file written by `gpu-cnn train` (weights, input shape, layers and class
    /// names in its metadata); errors name the file and what is wrong.
    pub fn load(path: impl AsRef<Path>) -> Result<Classifier> {
        Ok(Classifier {
            saved: load_saved(path.as_ref())?,
            cpu: false,
            adapter: AdapterOptions::default(),
            batch: 256,
        })
    }

    /// Computes on the CPU reference instead of a GPU adapter (slower; the same answers to
    /// rounding).
    pub fn on_cpu(mut self) -> Classifier {
        self.cpu = true;
        self
    }

    /// The adapter to ask for (as `--backend` and `--adapter` choose it).
    pub fn with_adapter(mut self, adapter: AdapterOptions) -> Classifier {
        self.adapter = adapter;
        self
    }

    /// The class names, in the order of `Answer::probabilities`.
    pub fn classes(&self) -> &[String] {
        &self.saved.classes
    }

    /// The input each image must have: channels x height x width.
    pub fn input(&self) -> Shape {
        self.saved.model.input
    }

    /// A picture (PNG, JPEG, BMP, ...) as the model's training images were made: for a model
    /// trained on MNIST or Fashion-MNIST the digit treatment `gpu-cnn predict` gives (grey,
    /// inverted on a light background, cropped, scaled to 20x20, centred by mass in 28x28);
    /// for one trained on an image folder, converted and resized as that folder was.
    pub fn prepare(&self, picture: impl AsRef<Path>) -> Result<Vec<u8>> {
        crate::predict::prepare(&self.saved, picture.as_ref())
    }

    /// Classifies images given as bytes in the model's input layout (channels, then rows, then
    /// columns; 0 to 255, scaled as in training), one answer per image.
    pub fn predict(&self, images: &[Vec<u8>]) -> Result<Vec<Answer>> {
        let input = self.input();
        let px = input.c * input.h * input.w;
        if images.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((i, im)) = images.iter().enumerate().find(|(_, im)| im.len() != px) {
            return Err(Error::Usage(format!(
                "image {i} has {} values; the model takes {input} = {px}",
                im.len()
            )));
        }
        let d = Dataset {
            images: images.concat(),
            labels: vec![0; images.len()],
            channels: input.c,
            rows: input.h,
            cols: input.w,
        };
        let (logits, _) = logits(
            &self.saved.model,
            &self.saved.weights,
            &d,
            self.batch,
            self.cpu,
            &self.adapter,
        )?;
        let k = self.saved.classes.len();
        Ok(logits
            .chunks_exact(k)
            .map(|row| {
                let p = softmax(row);
                let class = (0..k)
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a)))
                    .unwrap_or(0);
                Answer {
                    class,
                    probability: p[class],
                    probabilities: p,
                }
            })
            .collect())
    }
}
