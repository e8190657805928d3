//! CIFAR-10's binary version: `cifar-10-binary.tar.gz`, holding `cifar-10-batches-bin/` with five
//! training batches (`data_batch_1.bin` … `data_batch_5.bin`), `test_batch.bin` and the class
//! names (`batches.meta.txt`). A batch is a run of records of 1 label byte and 3,072 image bytes
//! (1,024 red, then green, then blue, row-major 32×32): already the channel-major layout of
//! `Dataset`.
//!
//! The archive is read straight from its `.tar.gz` (the `tar` and `flate2` crates); a folder that
//! holds the extracted `.bin` files (as `cifar-10-batches-bin/` or directly) is read too, and
//! verifies against the published batches' checksums.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::idx::sha256_hex;
use super::Dataset;
use crate::error::{Error, Result};

/// The archive's standard file name.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The folder inside the archive.
pub const FOLDER: &str = "cifar-10-batches-bin";
pub const SIDE: usize = 32;
pub const CHANNELS: usize = 3;
/// Bytes of one record: the label, then the image.
pub const RECORD: usize = 1 + CHANNELS * SIDE * SIDE;
/// Largest member read: a published batch is 10,000 records (30,730,000 bytes).
const MAX_MEMBER: u64 = 64 << 20;
/// Largest archive read (the published one is 170,052,171 bytes).
const MAX_ARCHIVE: u64 = 1 << 30;

/// The members a complete copy holds, training batches first.
pub const TRAIN_MEMBERS: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_MEMBER: &str = "test_batch.bin";
pub const META_MEMBER: &str = "batches.meta.txt";

/// What was read: both sets, the class names of `batches.meta.txt` (when present), and the
/// SHA-256 of what was read with its path: the archive, or each extracted batch (training
/// batches, then the test batch).
#[derive(Debug)]
pub struct Cifar {
    pub train: Dataset,
    pub test: Dataset,
    pub classes: Option<Vec<String>>,
    pub sha256: Vec<(PathBuf, String)>,
    pub path: PathBuf,
}

/// Reads CIFAR-10 from `dir`: `dir/cifar-10-binary.tar.gz`, else the extracted `.bin` files in
/// `dir/cifar-10-batches-bin/` or `dir` itself. Labels must be below `classes`.
pub fn load_dir(dir: &Path, classes: usize) -> Result<Cifar> {
    let archive = dir.join(ARCHIVE);
    if archive.is_file() {
        return read_archive(&archive, classes);
    }
    for folder in [dir.join(FOLDER), dir.to_path_buf()] {
        if folder.join(TEST_MEMBER).is_file() || folder.join(TRAIN_MEMBERS[0]).is_file() {
            return read_extracted(&folder, classes);
        }
    }
    Err(Error::Dataset(format!(
        "missing {ARCHIVE} (or the extracted {FOLDER}/*.bin files) in {}",
        dir.display()
    )))
}

/// Reads the `.tar.gz` archive at `path`.
pub fn read_archive(path: &Path, classes: usize) -> Result<Cifar> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len == 0 {
        return Err(Error::bad_file(path, "is empty, not a CIFAR-10 archive"));
    }
    if len > MAX_ARCHIVE {
        return Err(Error::bad_file(
            path,
            format!("is {len} bytes, more than any CIFAR-10 archive ({MAX_ARCHIVE})"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_archive(&bytes, path, classes)
}

/// Both sets from the bytes of a `.tar.gz` archive (`path` names it in errors).
pub fn parse_archive(bytes: &[u8], path: &Path, classes: usize) -> Result<Cifar> {
    let members = read_members(bytes, path)?;
    let mut cifar = assemble(members, path, classes)?;
    cifar.sha256 = vec![(path.to_path_buf(), sha256_hex(bytes))];
    Ok(cifar)
}

/// The members of a CIFAR-10 `.tar.gz` that matter, by file name.
pub fn read_members(bytes: &[u8], path: &Path) -> Result<HashMap<String, Vec<u8>>> {
    let bad = |what: String| Error::bad_file(path, what);
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let mut members = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("corrupt or truncated archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let wanted =
            name == TEST_MEMBER || name == META_MEMBER || TRAIN_MEMBERS.contains(&name.as_str());
        if !wanted {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_MEMBER {
            return Err(bad(format!(
                "member {name} is {size} bytes, more than a CIFAR-10 batch ({MAX_MEMBER})"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(MAX_MEMBER + 1)
            .read_to_end(&mut data)
            .map_err(|e| {
                bad(format!(
                    "corrupt or truncated archive in member {name}: {e}"
                ))
            })?;
        if data.len() as u64 != size {
            return Err(bad(format!(
                "member {name} is cut short: {} of {size} bytes",
                data.len()
            )));
        }
        if members.insert(name.clone(), data).is_some() {
            return Err(bad(format!("holds member {name} twice")));
        }
    }
    Ok(members)
}

fn read_extracted(folder: &Path, classes: usize) -> Result<Cifar> {
    let mut members = HashMap::new();
    let mut sha256 = Vec::new();
    for name in TRAIN_MEMBERS.iter().chain([&TEST_MEMBER, &META_MEMBER]) {
        let p = folder.join(name);
        if p.is_file() {
            let len = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
            if len > MAX_MEMBER {
                return Err(Error::bad_file(
                    &p,
                    format!("is {len} bytes, more than a CIFAR-10 batch ({MAX_MEMBER})"),
                ));
            }
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            if *name != META_MEMBER {
                sha256.push((p.clone(), sha256_hex(&bytes)));
            }
            members.insert(name.to_string(), bytes);
        }
    }
    let mut cifar = assemble(members, folder, classes)?;
    cifar.sha256 = sha256;
    Ok(cifar)
}

/// Both sets from the members by name; every batch must be present and whole.
fn assemble(mut members: HashMap<String, Vec<u8>>, path: &Path, classes: usize) -> Result<Cifar> {
    let missing: Vec<&str> = TRAIN_MEMBERS
        .iter()
        .chain([&TEST_MEMBER])
        .filter(|m| !members.contains_key(**m))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(Error::bad_file(
            path,
            format!(
                "is not a complete CIFAR-10 binary copy: missing {} (expected {FOLDER}/ with {}, {TEST_MEMBER} and {META_MEMBER})",
                missing.join(", "),
                TRAIN_MEMBERS.join(", ")
            ),
        ));
    }
    let mut train = empty();
    for name in TRAIN_MEMBERS {
        let data = members.remove(name).unwrap_or_default();
        append_batch(&mut train, &data, name, path, classes)?;
    }
    let mut test = empty();
    let data = members.remove(TEST_MEMBER).unwrap_or_default();
    append_batch(&mut test, &data, TEST_MEMBER, path, classes)?;
    let classes = members.remove(META_MEMBER).map(|m| {
        String::from_utf8_lossy(&m)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    });
    Ok(Cifar {
        train,
        test,
        classes,
        sha256: Vec::new(),
        path: path.to_path_buf(),
    })
}

fn empty() -> Dataset {
    Dataset {
        images: Vec::new(),
        labels: Vec::new(),
        channels: CHANNELS,
        rows: SIDE,
        cols: SIDE,
    }
}

/// Appends the records of one batch to `d`.
fn append_batch(
    d: &mut Dataset,
    data: &[u8],
    name: &str,
    path: &Path,
    classes: usize,
) -> Result<()> {
    if data.is_empty() || data.len() % RECORD != 0 {
        return Err(Error::bad_file(
            path,
            format!(
                "member {name} is {} bytes, not a whole number of {RECORD}-byte records (1 label byte, 3,072 pixel bytes)",
                data.len()
            ),
        ));
    }
    d.images.reserve(data.len() / RECORD * (RECORD - 1));
    for (i, rec) in data.chunks_exact(RECORD).enumerate() {
        if rec[0] as usize >= classes {
            return Err(Error::bad_file(
                path,
                format!(
                    "member {name}: label of record {i} is {}, outside 0..{classes}",
                    rec[0]
                ),
            ));
        }
        d.labels.push(rec[0]);
        d.images.extend_from_slice(&rec[1..]);
    }
    Ok(())
}
