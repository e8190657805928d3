//! IDX datasets (MNIST, Fashion-MNIST): reading gzip-compressed or raw files with errors that name
//! the file, and finding the files (`--data-dir`, `$GPU_CNN_DATA/<dataset>`, `/usr/share/datasets/<dataset>`).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Largest payload an IDX file may declare (guards against corrupt headers and gzip bombs).
const MAX_IDX_BYTES: usize = 1 << 31;

/// A labelled image set: `images` is n * rows * cols bytes, one row-major image after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }
    /// The first `n` records (all of them when n >= len).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.pixels());
    }
}

/// An IDX file's dimensions and its u8 payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses an IDX stream of unsigned bytes (type 0x08). `path` only names the source in errors.
pub fn parse_idx(mut r: impl Read, path: &Path) -> Result<Idx> {
    let bad = |msg: String| Error::bad_file(path, msg);
    let mut magic = [0u8; 4];
    read_exact(&mut r, &mut magic, path, "the 4-byte IDX header")?;
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
    let mut dims = Vec::with_capacity(ndims);
    let mut total: usize = 1;
    for i in 0..ndims {
        let mut d = [0u8; 4];
        read_exact(&mut r, &mut d, path, "the IDX dimensions")?;
        let d = u32::from_be_bytes(d) as usize;
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
    let mut data = Vec::new();
    r.by_ref()
        .take(total as u64)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() < total {
        return Err(bad(format!(
            "truncated: header {dims:?} declares {total} bytes of data, file has {}",
            data.len()
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| Error::io(path, e))? != 0 {
        return Err(bad(format!(
            "trailing data after the {total} bytes that header {dims:?} declares"
        )));
    }
    Ok(Idx { dims, data })
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::bad_file(path, format!("truncated in {what}")),
        _ => Error::io(path, e),
    })
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::new(f);
    let mut head = [0u8; 2];
    let n = r.read(&mut head).map_err(|e| Error::io(path, e))?;
    let chained = std::io::Cursor::new(head[..n].to_vec()).chain(r);
    if n == 2 && head == [0x1f, 0x8b] {
        parse_idx(flate2::read::GzDecoder::new(chained), path)
    } else {
        parse_idx(chained, path)
    }
}

/// `dir/name`, else `dir/name.gz`.
pub fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::Dataset(format!(
        "missing {} (or {})",
        raw.display(),
        gz.display()
    )))
}

/// Reads one split (`train` or `t10k`) from `dir` and checks images and labels agree.
pub fn load_split(dir: &Path, prefix: &str) -> Result<Dataset> {
    let ipath = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lpath = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&ipath)?;
    let labels = read_idx(&lpath)?;
    if images.dims.len() != 3 {
        return Err(Error::bad_file(
            &ipath,
            format!(
                "expected 3 dimensions (n, rows, cols), found {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(Error::bad_file(
            &lpath,
            format!("expected 1 dimension (n), found {:?}", labels.dims),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::Dataset(format!(
            "{} holds {} images but {} holds {} labels",
            ipath.display(),
            images.dims[0],
            lpath.display(),
            labels.dims[0]
        )));
    }
    if images.dims[0] == 0 || images.dims[1] == 0 || images.dims[2] == 0 {
        return Err(Error::bad_file(
            &ipath,
            format!("empty image set {:?}", images.dims),
        ));
    }
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
        rows: images.dims[1],
        cols: images.dims[2],
    })
}

/// Where a dataset's files are: `data_dir` if given, else `$GPU_CNN_DATA/<dataset>`, else
/// `/usr/share/datasets/<dataset>`.
pub fn resolve_dir(dataset: &str, data_dir: Option<&Path>) -> PathBuf {
    if let Some(d) = data_dir {
        return d.to_path_buf();
    }
    if let Some(root) = std::env::var_os("GPU_CNN_DATA") {
        return PathBuf::from(root).join(dataset);
    }
    PathBuf::from("/usr/share/datasets").join(dataset)
}

/// Loads the training and test splits and checks labels against the number of classes.
pub fn load(dir: &Path, classes: usize) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(Error::Dataset(format!(
            "data directory {} does not exist (pass --data-dir DIR, or set GPU_CNN_DATA to a folder holding <dataset>/)",
            dir.display()
        )));
    }
    let train = load_split(dir, "train")?;
    let test = load_split(dir, "t10k")?;
    if (train.rows, train.cols) != (test.rows, test.cols) {
        return Err(Error::Dataset(format!(
            "train images are {}x{} but test images are {}x{}",
            train.rows, train.cols, test.rows, test.cols
        )));
    }
    for (split, d) in [("train", &train), ("t10k", &test)] {
        if let Some(i) = d.labels.iter().position(|&l| l as usize >= classes) {
            return Err(Error::Dataset(format!(
                "{split} label {i} is {}, but the model has {classes} classes",
                d.labels[i]
            )));
        }
    }
    Ok((train, test))
}
