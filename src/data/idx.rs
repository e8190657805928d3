//! IDX files (MNIST, Fashion-MNIST): gzip-compressed or raw, read whole, parsed strictly. Every
//! defect is an error naming the file; nothing is allocated from a header before the file's
//! length has confirmed it.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Dataset;
use crate::error::{Error, Result};

/// Largest payload an IDX file may declare or decompress to (guards against corrupt headers and
/// gzip bombs); MNIST's largest file is 47 MB.
pub const MAX_IDX_BYTES: usize = 1 << 31;

/// An IDX file's dimensions and its u8 payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses the bytes of an uncompressed IDX file of unsigned bytes (type 0x08). `path` only names
/// the source in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    let bad = |msg: String| Error::bad_file(path, msg);
    if bytes.is_empty() {
        return Err(bad("empty file (expected an IDX header)".into()));
    }
    let Some(magic) = bytes.get(..4) else {
        return Err(bad("truncated in the 4-byte IDX header".into()));
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "not an IDX file (header {:02x} {:02x} {:02x} {:02x}, expected 00 00 08 <ndims>)",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    if magic[2] != 0x08 {
        return Err(bad(format!(
            "IDX element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            magic[2]
        )));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(bad("IDX file declares 0 dimensions".into()));
    }
    let Some(dim_bytes) = bytes.get(4..4 + 4 * ndims) else {
        return Err(bad(format!(
            "truncated in the IDX dimensions ({ndims} declared)"
        )));
    };
    let mut dims = Vec::with_capacity(ndims);
    let mut total: usize = 1;
    for (i, d) in dim_bytes.chunks_exact(4).enumerate() {
        let d = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
        total = total
            .checked_mul(d)
            .filter(|&t| t <= MAX_IDX_BYTES)
            .ok_or_else(|| {
                bad(format!(
                    "IDX dimension {i} ({d}) makes the payload larger than {MAX_IDX_BYTES} bytes"
                ))
            })?;
        dims.push(d);
    }
    let payload = &bytes[4 + 4 * ndims..];
    if payload.len() < total {
        return Err(bad(format!(
            "truncated: header {dims:?} declares {total} bytes of data, file has {}",
            payload.len()
        )));
    }
    if payload.len() > total {
        return Err(bad(format!(
            "{} bytes of trailing data after the {total} bytes that header {dims:?} declares",
            payload.len() - total
        )));
    }
    Ok(Idx {
        dims,
        data: payload.to_vec(),
    })
}

/// The uncompressed bytes of `path`: the whole file, gunzipped when it starts with gzip's magic.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::bad_file(path, "is a folder, expected a file"));
    }
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.len() >= 2 && raw[..2] == [0x1f, 0x8b] {
        gunzip(&raw, path)
    } else {
        Ok(raw)
    }
}

/// Decompresses a whole gzip stream (concatenated members too), at most `MAX_IDX_BYTES`.
pub fn gunzip(gz: &[u8], path: &Path) -> Result<Vec<u8>> {
    // The trailer's ISIZE is the uncompressed length mod 2^32: a capacity hint, never trusted.
    let hint = gz
        .len()
        .checked_sub(4)
        .map(|i| u32::from_le_bytes([gz[i], gz[i + 1], gz[i + 2], gz[i + 3]]) as usize)
        .unwrap_or(0)
        .min(MAX_IDX_BYTES)
        .min(gz.len().saturating_mul(1100));
    let mut out = Vec::with_capacity(hint);
    flate2::read::MultiGzDecoder::new(gz)
        .take(MAX_IDX_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::bad_file(path, format!("corrupt gzip stream: {e}")))?;
    if out.len() > MAX_IDX_BYTES {
        return Err(Error::bad_file(
            path,
            format!("decompresses to more than {MAX_IDX_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// Reads and parses an IDX file, gzip-compressed or raw.
pub fn read_idx(path: &Path) -> Result<Idx> {
    parse_idx(&read_bytes(path)?, path)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `dir/name`, else `dir/name.gz`.
pub fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_dir() {
            return Err(Error::bad_file(&candidate, "is a folder, expected a file"));
        }
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(Error::Dataset(format!(
        "missing {} (or {}.gz)",
        dir.join(name).display(),
        name
    )))
}

/// One IDX file as read: its path, parsed content and the SHA-256 of its uncompressed bytes.
pub struct IdxFile {
    pub path: PathBuf,
    pub idx: Idx,
    pub sha256: String,
}

/// Finds, reads, parses and hashes `dir/name[.gz]`.
pub fn read_named(dir: &Path, name: &str) -> Result<IdxFile> {
    let path = find_file(dir, name)?;
    let bytes = read_bytes(&path)?;
    let idx = parse_idx(&bytes, &path)?;
    Ok(IdxFile {
        sha256: sha256_hex(&bytes),
        path,
        idx,
    })
}

/// The standard file names of a split (`train` or `t10k`): images, then labels.
pub fn split_files(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}-images-idx3-ubyte"),
        format!("{prefix}-labels-idx1-ubyte"),
    ]
}

/// A split from its images and labels files: dimensions agree, labels below `classes`.
pub fn to_dataset(images: IdxFile, labels: IdxFile, classes: usize) -> Result<Dataset> {
    let (ipath, lpath) = (&images.path, &labels.path);
    let [n, rows, cols] = images.idx.dims[..] else {
        return Err(Error::bad_file(
            ipath,
            format!(
                "expected 3 dimensions (n, rows, cols), found {:?}",
                images.idx.dims
            ),
        ));
    };
    let [n_labels] = labels.idx.dims[..] else {
        return Err(Error::bad_file(
            lpath,
            format!("expected 1 dimension (n), found {:?}", labels.idx.dims),
        ));
    };
    if n != n_labels {
        return Err(Error::Dataset(format!(
            "{} holds {n} images but {} holds {n_labels} labels",
            ipath.display(),
            lpath.display(),
        )));
    }
    if n == 0 || rows == 0 || cols == 0 {
        return Err(Error::bad_file(
            ipath,
            format!("empty image set {:?}", images.idx.dims),
        ));
    }
    if let Some(i) = labels.idx.data.iter().position(|&l| l as usize >= classes) {
        return Err(Error::bad_file(
            lpath,
            format!(
                "label of record {i} is {}, outside 0..{classes} ({classes} classes)",
                labels.idx.data[i]
            ),
        ));
    }
    Ok(Dataset {
        images: images.idx.data,
        labels: labels.idx.data,
        channels: 1,
        rows,
        cols,
    })
}

/// Reads the training and test splits of an IDX folder (standard names, `.gz` or raw) and checks
/// them against each other and against `classes`. Also returns each file's path and SHA-256
/// (training images, training labels, test images, test labels).
pub fn load_dir(dir: &Path, classes: usize) -> Result<(Dataset, Dataset, Vec<(PathBuf, String)>)> {
    if !dir.is_dir() {
        return Err(Error::Dataset(format!(
            "data folder {} does not exist",
            dir.display()
        )));
    }
    let mut hashes = Vec::new();
    let mut split = |prefix: &str| -> Result<Dataset> {
        let [inames, lnames] = split_files(prefix);
        let images = read_named(dir, &inames)?;
        let labels = read_named(dir, &lnames)?;
        hashes.push((images.path.clone(), images.sha256.clone()));
        hashes.push((labels.path.clone(), labels.sha256.clone()));
        to_dataset(images, labels, classes)
    };
    let train = split("train")?;
    let test = split("t10k")?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(Error::Dataset(format!(
            "{}: training images are {}x{} but test images are {}x{}",
            dir.display(),
            train.rows,
            train.cols,
            test.rows,
            test.cols
        )));
    }
    Ok((train, test, hashes))
}
