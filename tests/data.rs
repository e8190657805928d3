//! IDX parsing and dataset loading: good files (raw and gzip) and every kind of bad file gives an
//! error naming the file, never a panic.

mod common;
use common::*;

use std::path::Path;

use gpu_cnn::data::{self, parse_idx, read_idx, Dataset};

fn parse(bytes: &[u8]) -> Result<data::Idx, String> {
    parse_idx(bytes, Path::new("mem.idx")).map_err(|e| e.to_string())
}

#[test]
fn parses_images_and_labels() {
    let idx = parse(&idx_bytes(
        &[2, 2, 3],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    ))
    .unwrap();
    assert_eq!(idx.dims, vec![2, 2, 3]);
    assert_eq!(idx.data, (1..=12).collect::<Vec<u8>>());
    assert_eq!(
        parse(&idx_bytes(&[3], &[7, 8, 9])).unwrap().data,
        vec![7, 8, 9]
    );
}

#[test]
fn rejects_bad_files_with_the_reason() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated in the 4-byte IDX header"),
        ("bad magic", b"PK\x03\x04rest".to_vec(), "not an IDX file"),
        (
            "float type",
            vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
            "element type 0x0d is not supported",
        ),
        ("no dims", vec![0, 0, 8, 0], "0 dimensions"),
        (
            "short dims",
            vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0],
            "truncated in the IDX dimensions",
        ),
        (
            "short data",
            idx_bytes(&[2, 2, 2], &[1, 2, 3]),
            "truncated: header [2, 2, 2] declares 8 bytes of data, file has 3",
        ),
        ("trailing", idx_bytes(&[2], &[1, 2, 3]), "trailing data"),
        ("huge", idx_bytes(&[65536, 65536, 2], &[]), "larger than"),
    ];
    for (what, bytes, want) in cases {
        let err = parse(&bytes).expect_err(what);
        assert!(
            err.contains("mem.idx") && err.contains(want),
            "{what}: {err}"
        );
    }
}

#[test]
fn reads_gzip_and_raw_files() {
    let dir = temp_dir("idx-files");
    let raw = idx_bytes(&[4], &[1, 2, 3, 4]);
    std::fs::write(dir.join("a"), &raw).unwrap();
    std::fs::write(dir.join("b.gz"), gzip(&raw)).unwrap();
    assert_eq!(read_idx(&dir.join("a")).unwrap().data, vec![1, 2, 3, 4]);
    assert_eq!(read_idx(&dir.join("b.gz")).unwrap().data, vec![1, 2, 3, 4]);
    // A corrupt gzip stream is an error naming the file.
    let mut bad = gzip(&raw);
    let n = bad.len();
    bad.truncate(n - 12);
    std::fs::write(dir.join("c.gz"), &bad).unwrap();
    let err = read_idx(&dir.join("c.gz")).unwrap_err().to_string();
    assert!(err.contains("c.gz"), "{err}");
    let err = read_idx(&dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

fn tiny(n: usize, label: u8) -> Dataset {
    Dataset {
        images: vec![9; n * 4],
        labels: vec![label; n],
        rows: 2,
        cols: 2,
    }
}

#[test]
fn loads_a_dataset_folder_and_checks_consistency() {
    let dir = temp_dir("folder");
    write_dataset(&dir, &tiny(5, 3), &tiny(2, 1));
    let (train, test) = data::load(&dir, 10).unwrap();
    assert_eq!(
        (train.len(), test.len(), train.rows, train.cols),
        (5, 2, 2, 2)
    );
    // Labels beyond the model's classes.
    let err = data::load(&dir, 3).unwrap_err().to_string();
    assert!(
        err.contains("label 0 is 3") && err.contains("3 classes"),
        "{err}"
    );
    // Image and label counts that disagree.
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[3], &[0, 0, 0]),
    )
    .unwrap();
    let err = data::load(&dir, 10).unwrap_err().to_string();
    assert!(
        err.contains("2 images") && err.contains("3 labels"),
        "{err}"
    );
    // A missing file names both names it looked for.
    std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let err = data::load(&dir, 10).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains(".gz"),
        "{err}"
    );
    let err = data::load(&dir.join("nope"), 10).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn resolves_the_data_folder() {
    assert_eq!(
        data::resolve_dir("mnist", Some(Path::new("/x"))),
        Path::new("/x")
    );
    // Without --data-dir: $GPU_CNN_DATA/<dataset>, else /usr/share/datasets/<dataset>.
    let got = data::resolve_dir("fashion-mnist", None);
    match std::env::var_os("GPU_CNN_DATA") {
        Some(root) => assert_eq!(got, Path::new(&root).join("fashion-mnist")),
        None => assert_eq!(got, Path::new("/usr/share/datasets/fashion-mnist")),
    }
}

#[test]
fn real_mnist_matches_its_published_facts() {
    let dir = mnist_dir();
    let (train, test) = data::load(&dir, 10).unwrap();
    assert_eq!(
        (train.len(), test.len(), train.rows, train.cols),
        (60000, 10000, 28, 28)
    );
    assert_eq!(&train.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&test.labels[..5], &[7, 2, 1, 0, 4]);
    let mut counts = [0usize; 10];
    for &l in &test.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}
