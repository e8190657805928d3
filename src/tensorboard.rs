//! TensorBoard scalars: each run writes `tensorboard/events.out.tfevents.*` in its folder, one
//! file per process (a resumed run writes a new file with the epochs it trains, so nothing is
//! logged twice), so that `tensorboard --logdir runs` shows every run. The format is
//! TensorFlow's: TFRecord framing (length, masked CRC-32C of the length, the record, masked
//! CRC-32C of the record) around `Event` protocol buffers, a first one naming the file version,
//! then one per scalar (`Summary.Value.simple_value`, as PyTorch's `SummaryWriter.add_scalar`
//! writes them). Encoded by hand: four fields of two messages do not need a protobuf crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::history::EpochRecord;

/// The folder of a run's event files.
pub const DIR: &str = "tensorboard";

/// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's masked CRC: rotated right by 15 bits, plus a constant.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the data, the data's masked CRC.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// An `Event` (proto3: wall_time and step left out at 0): wall_time (1, double), step (2,
/// int64), file_version (3, string) or summary (5) with one value: tag (1) and simple_value
/// (2, float, in a oneof: always written).
pub fn event(wall_time: f64, step: i64, body: EventBody) -> Vec<u8> {
    let mut out = Vec::new();
    if wall_time != 0.0 {
        varint(1 << 3 | 1, &mut out);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        varint(2 << 3, &mut out);
        varint(step as u64, &mut out);
    }
    match body {
        EventBody::FileVersion(v) => bytes_field(3, v.as_bytes(), &mut out),
        EventBody::Scalar(tag, value) => {
            let mut v = Vec::new();
            bytes_field(1, tag.as_bytes(), &mut v);
            // In the `value` oneof: written even when 0.
            varint(2 << 3 | 5, &mut v);
            v.extend_from_slice(&value.to_le_bytes());
            let mut summary = Vec::new();
            bytes_field(1, &v, &mut summary);
            bytes_field(5, &summary, &mut out);
        }
    }
    out
}

pub enum EventBody<'a> {
    FileVersion(&'a str),
    Scalar(&'a str, f32),
}

/// The scalars of one epoch, as `tensorboard` plots them: step = the epoch (from 1).
pub fn epoch_events(wall_time: f64, epoch: usize, e: &EpochRecord) -> Vec<u8> {
    let mut out = Vec::new();
    let mut scalars = vec![
        ("loss", e.loss),
        ("accuracy", e.accuracy),
        ("val_loss", e.val_loss),
        ("val_accuracy", e.val_accuracy),
    ];
    if let Some(lr) = e.learning_rate {
        scalars.push(("learning_rate", lr));
    }
    for (tag, v) in scalars {
        let ev = event(wall_time, epoch as i64, EventBody::Scalar(tag, v as f32));
        out.extend_from_slice(&record(&ev));
    }
    out
}

/// This process's event file in a run folder: created with its version record on the first
/// epoch, appended to after each.
pub struct EventFile {
    path: PathBuf,
    started: bool,
}

impl EventFile {
    /// `run_dir/tensorboard/events.out.tfevents.<seconds>.gpu-cnn.<pid>` (not created yet).
    pub fn new(run_dir: &Path) -> EventFile {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("events.out.tfevents.{secs}.gpu-cnn.{}", std::process::id());
        EventFile {
            path: run_dir.join(DIR).join(name),
            started: false,
        }
    }

    /// Appends epoch `epoch`'s scalars (flushed: a killed run keeps the epochs logged).
    pub fn log_epoch(&mut self, epoch: usize, e: &EpochRecord) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut data = Vec::new();
        if !self.started {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            data = record(&event(now, 0, EventBody::FileVersion("brain.Event:2")));
        }
        data.extend_from_slice(&epoch_events(now, epoch, e));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        f.write_all(&data)
            .and_then(|_| f.flush())
            .map_err(|e| Error::io(&self.path, e))?;
        self.started = true;
        Ok(())
    }
}
