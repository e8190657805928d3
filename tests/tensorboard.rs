//! TensorBoard's event files: `src/tensorboard.rs` against bytes TensorBoard's own writer framed
//! (`tests/fixtures/tensorboard/events.bin`, written by `make_events.py` beside it), and a run's
//! file read back (every record's checksums, the scalars equal to the history).

use gpu_cnn::history::EpochRecord;
use gpu_cnn::tensorboard::{crc32c, epoch_events, event, masked_crc32c, record, EventBody};

fn epoch(
    loss: f64,
    accuracy: f64,
    val_loss: f64,
    val_accuracy: f64,
    lr: Option<f64>,
) -> EpochRecord {
    EpochRecord {
        epoch: 0,
        loss,
        accuracy,
        val_loss,
        val_accuracy,
        seconds: 1.0,
        learning_rate: lr,
    }
}

#[test]
fn crc32c_has_its_check_value() {
    // The CRC-32C catalogue's check: the ASCII digits 1 to 9.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    assert_ne!(masked_crc32c(b"a"), crc32c(b"a"));
}

#[test]
fn events_are_byte_for_byte_what_tensorboard_writes() {
    let want = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tensorboard/events.bin"
    ))
    .unwrap();
    let mut got = record(&event(
        1764500000.25,
        0,
        EventBody::FileVersion("brain.Event:2"),
    ));
    got.extend(epoch_events(
        1764500001.5,
        1,
        &epoch(2.5, 0.75, 1.25, 0.8125, Some(0.001)),
    ));
    got.extend(epoch_events(
        1764500002.75,
        2,
        &epoch(0.3066112913804023, 0.0, 0.2372, 0.9325, None),
    ));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the bytes differ from TensorBoard's");
}

/// Reads TFRecords back, checking both checksums of each; returns the records.
pub fn read_records(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = &b[..8];
        let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_le_bytes(b[8..12].try_into().unwrap()),
            masked_crc32c(len)
        );
        let data = &b[12..12 + n];
        assert_eq!(
            u32::from_le_bytes(b[12 + n..16 + n].try_into().unwrap()),
            masked_crc32c(data)
        );
        out.push(data.to_vec());
        b = &b[16 + n..];
    }
    out
}

#[test]
fn a_record_reads_back_with_its_checksums() {
    let ev = event(12.5, 3, EventBody::Scalar("loss", 0.5));
    let r = read_records(&record(&ev));
    assert_eq!(r, vec![ev.clone()]);
    // A flipped bit fails the data checksum.
    let mut bad = record(&ev);
    bad[14] ^= 1;
    let data = &bad[12..bad.len() - 4];
    assert_ne!(
        u32::from_le_bytes(bad[bad.len() - 4..].try_into().unwrap()),
        masked_crc32c(data)
    );
}
