//! Datasets: what they are in memory (`Dataset`), where they come from, and how they are read.
//!
//! - `registry`: the datasets known by name (shapes, classes, checksums, mirrors).
//! - `idx`: IDX files, gzip or raw, parsed strictly.
//! - `cifar`: CIFAR-10's binary `.tar.gz` (or its extracted `.bin` files).
//! - `fetch`: verified downloads into the cache.
//! - `folder`: your own images, `DIR/train/<class>/*`.
//!
//! For a known dataset the first of these holding a complete, verified copy wins:
//! `--data-dir`, `$GPU_CNN_DATA/<name>/`, the user cache (`$XDG_CACHE_HOME/gpu-cnn/<name>/`, else
//! `~/.cache/gpu-cnn/<name>/`), `/usr/share/datasets/<name>/`, the project's `assets/<name>/`,
//! then a download into the cache (unless offline).

pub mod cifar;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod registry;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use registry::{Format, KnownDataset};

/// A labelled image set: `images` is n * channels * rows * cols bytes, one channel-major
/// (C, H, W) image after another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub channels: usize,
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
    /// Bytes per image: channels * rows * cols.
    pub fn pixels(&self) -> usize {
        self.channels * self.rows * self.cols
    }
    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.pixels()..(i + 1) * self.pixels()]
    }
    /// No records, the same image shape.
    pub fn empty_like(&self) -> Dataset {
        Dataset {
            images: Vec::new(),
            labels: Vec::new(),
            ..*self
        }
    }
    /// The first `n` records (all of them when n >= len).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.pixels());
    }
}

/// What `--dataset` names.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST handwritten digits (ships with gpu-cnn)
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST clothing pictures
    FashionMnist,
    /// CIFAR-10: 32x32 colour photos of 10 classes (binary version, downloaded on first use)
    Cifar10,
    /// Your own images: `--data-dir DIR` holding `DIR/train/<class>/*` (and `DIR/test/<class>/*`)
    Folder,
}

impl DatasetName {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Folder => "folder",
        }
    }
    /// The dataset called `name` (as `as_str` spells it).
    pub fn parse(name: &str) -> Option<DatasetName> {
        <DatasetName as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .find(|d| d.as_str() == name)
    }
    /// The registry entry of a dataset known by name (`None` for a folder).
    pub fn known(self) -> Option<&'static KnownDataset> {
        registry::known(self.as_str())
    }
}

/// The process environment the data lookup depends on, gathered in one place so that tests can
/// state it instead of changing the process's own.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `$GPU_CNN_DATA`: a folder holding `<name>/` folders.
    pub data_root: Option<PathBuf>,
    /// `$XDG_CACHE_HOME`, else `$HOME/.cache`: the cache is `<this>/gpu-cnn/<name>/`.
    pub cache_root: Option<PathBuf>,
    /// Debian's dataset folder, `/usr/share/datasets` (`$GPU_CNN_SYSTEM_DATA` replaces it).
    pub system_root: Option<PathBuf>,
    /// The project's `assets/` folder (`$GPU_CNN_ASSETS` replaces it).
    pub assets_root: Option<PathBuf>,
    /// `$GPU_CNN_OFFLINE=1` (or `--offline`): never download.
    pub offline: bool,
    /// `$GPU_CNN_MIRRORS`: comma-separated base URLs replacing the built-in mirrors.
    pub mirrors: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            data_root: var("GPU_CNN_DATA").map(PathBuf::from),
            cache_root: var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache"))),
            system_root: Some(
                var("GPU_CNN_SYSTEM_DATA")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/usr/share/datasets")),
            ),
            assets_root: var("GPU_CNN_ASSETS")
                .map(PathBuf::from)
                .or_else(assets_root),
            offline: std::env::var("GPU_CNN_OFFLINE").is_ok_and(|v| v == "1"),
            mirrors: std::env::var("GPU_CNN_MIRRORS").ok(),
        }
    }

    /// The cache folder of `name`.
    pub fn cache_dir(&self, name: &str) -> Option<PathBuf> {
        self.cache_root
            .as_ref()
            .map(|r| r.join("gpu-cnn").join(name))
    }
}

/// The project's `assets/` folder: the checkout the binary was built from, else `assets/` beside
/// the executable.
pub fn assets_root() -> Option<PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    if built.is_dir() {
        return Some(built);
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join("assets");
    beside.is_dir().then_some(beside)
}

/// One place a known dataset may be, in lookup order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// How the place was named: `--data-dir`, `$GPU_CNN_DATA`, `cache`, `system`, `assets`.
    pub kind: &'static str,
    pub dir: PathBuf,
}

/// The places to look for `name`, in order (the download target is the cache entry).
pub fn locations(name: &str, data_dir: Option<&Path>, env: &Env) -> Vec<Location> {
    let mut out = Vec::new();
    let mut add = |kind, dir: Option<PathBuf>| {
        if let Some(dir) = dir {
            out.push(Location { kind, dir });
        }
    };
    add("--data-dir", data_dir.map(Path::to_path_buf));
    add(
        "$GPU_CNN_DATA",
        env.data_root.as_ref().map(|r| r.join(name)),
    );
    add("cache", env.cache_dir(name));
    add("system", env.system_root.as_ref().map(|r| r.join(name)));
    add("assets", env.assets_root.as_ref().map(|r| r.join(name)));
    out
}

/// Training and test sets with where they came from.
#[derive(Clone, Debug)]
pub struct Data {
    /// `mnist`, `fashion-mnist` or `folder`.
    pub name: String,
    /// The folder actually read.
    pub dir: PathBuf,
    /// How that folder was found (`Location::kind`, or `download`).
    pub found: String,
    /// The files are the published ones (SHA-256 checked); false for your own files.
    pub verified: bool,
    pub train: Dataset,
    pub test: Dataset,
    pub classes: Vec<String>,
}

impl Data {
    /// One line for the start of a run: which data, from where.
    pub fn describe(&self) -> String {
        let how = if self.verified {
            "verified"
        } else if self.name == "folder" {
            "image folder"
        } else {
            "not the published files"
        };
        format!(
            "Data: {} from {} ({}, {how})",
            self.name,
            self.dir.display(),
            self.found
        )
    }
}

/// One copy of a known dataset in `dir`, labels below `classes`: both sets and, for each file
/// with a checksum, (path, SHA-256) in the order of `known.files` (or, for CIFAR-10's extracted
/// batches, of `known.extracted`).
pub fn read_copy(
    known: &KnownDataset,
    dir: &Path,
    classes: usize,
) -> Result<(Dataset, Dataset, Vec<(PathBuf, String)>)> {
    match known.format {
        Format::Idx => idx::load_dir(dir, classes),
        Format::CifarBinary => {
            let c = cifar::load_dir(dir, classes)?;
            Ok((c.train, c.test, c.sha256))
        }
    }
}

/// A known dataset at `dir`: loaded if complete and verified, else why not.
pub fn probe(known: &KnownDataset, dir: &Path) -> std::result::Result<(Dataset, Dataset), String> {
    if !dir.is_dir() {
        return Err("absent".into());
    }
    let (train, test, hashes) =
        read_copy(known, dir, known.classes.len()).map_err(|e| match e {
            Error::Dataset(m) if m.starts_with("missing") => format!("incomplete: {m}"),
            e => e.to_string(),
        })?;
    let expected = if hashes.len() == known.files.len() {
        known.files
    } else {
        known.extracted
    };
    if hashes.len() != expected.len() {
        return Err(format!(
            "incomplete: {} of {} files",
            hashes.len(),
            expected.len()
        ));
    }
    for ((path, got), want) in hashes.iter().zip(expected) {
        if *got != want.sha256 {
            return Err(format!(
                "checksum mismatch: {} has SHA-256 {got}, expected {} (a damaged or different file: delete it, or run `gpu-cnn datasets fetch --force {}`)",
                path.display(),
                want.sha256,
                known.name
            ));
        }
    }
    Ok((train, test))
}

/// How to get a known dataset by hand: the lines ending the "not found" error.
fn how_to_get(known: &KnownDataset, env: &Env) -> String {
    let (pattern, what) = match known.format {
        Format::Idx => (
            "<file>.gz".to_string(),
            format!(
                "the four files ({})",
                known
                    .files
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Format::CifarBinary => (
            cifar::ARCHIVE.to_string(),
            format!("{} (170 MB)", cifar::ARCHIVE),
        ),
    };
    let urls: Vec<String> = fetch::mirrors(known, env.mirrors.as_deref())
        .iter()
        .map(|m| format!("  {}", fetch::url(m, &pattern)))
        .collect();
    let mut s = format!(
        "to get it: run `gpu-cnn datasets fetch {}` (online), or download {what} from\n{}\ninto a folder and pass --data-dir DIR",
        known.name,
        urls.join("\n")
    );
    if known.name == "fashion-mnist" {
        s.push_str(", or install Debian's dataset-fashion-mnist package");
    }
    s
}

/// Finds, verifies and loads a known dataset: the first verified location wins, else a
/// download into the cache, else one error listing every place looked at.
pub fn load_known(known: &KnownDataset, data_dir: Option<&Path>, env: &Env) -> Result<Data> {
    let data = |dir: PathBuf, found: &str, verified, (train, test): (Dataset, Dataset)| Data {
        name: known.name.into(),
        dir,
        found: found.into(),
        verified,
        train,
        test,
        classes: known.classes.iter().map(|c| c.to_string()).collect(),
    };
    if let Some(dir) = data_dir {
        return load_data_dir(known, dir)
            .map(|(v, sets)| data(dir.to_path_buf(), "--data-dir", v, sets));
    }
    let mut tried = Vec::new();
    for loc in locations(known.name, None, env) {
        match probe(known, &loc.dir) {
            Ok(sets) => return Ok(data(loc.dir, loc.kind, true, sets)),
            Err(why) => tried.push(format!("  {} ({}): {why}", loc.dir.display(), loc.kind)),
        }
    }
    let download = match env.cache_dir(known.name) {
        None => Err("no cache folder (set XDG_CACHE_HOME or HOME)".to_string()),
        Some(_) if env.offline => Err("offline (--offline or GPU_CNN_OFFLINE=1)".to_string()),
        Some(dir) => {
            crate::output::note(format!(
                "{} not found on this machine; downloading it into {}",
                known.name,
                dir.display()
            ));
            let mirrors = fetch::mirrors(known, env.mirrors.as_deref());
            fetch::fetch_dataset(known, &dir, &mirrors, false)
                .map_err(|e| e.to_string())
                .and_then(|_| probe(known, &dir))
                .map(|sets| (dir, sets))
        }
    };
    match download {
        Ok((dir, sets)) => Ok(data(dir, "download", true, sets)),
        Err(why) => {
            tried.push(format!("  download: {why}"));
            Err(Error::Dataset(format!(
                "{} not found; looked in:\n{}\n{}",
                known.name,
                tried.join("\n"),
                how_to_get(known, env)
            )))
        }
    }
}

/// `--data-dir` for a known dataset: loaded as given. Files that are another known dataset are
/// an error; files that are not the published ones get a note. Returns (verified, sets).
fn load_data_dir(known: &KnownDataset, dir: &Path) -> Result<(bool, (Dataset, Dataset))> {
    // IDX labels are checked below, once the files are known not to be another dataset's.
    let lenient = match known.format {
        Format::Idx => known.classes.len().max(256),
        Format::CifarBinary => known.classes.len(),
    };
    let (train, test, hashes) = read_copy(known, dir, lenient)?;
    let sums: Vec<String> = hashes.iter().map(|(_, h)| h.clone()).collect();
    let verified = known.matches(&sums);
    match registry::identify(&sums) {
        _ if verified => {}
        Some(k) => {
            return Err(Error::Usage(format!(
                "--data-dir {} holds {}, not {} (pass --dataset {} or another folder)",
                dir.display(),
                k.name,
                known.name,
                k.name
            )))
        }
        None => {
            crate::output::note(format!("{} does not hold the published {} files (their SHA-256 differs); training on them as given",
                dir.display(),
                known.name
            ));
        }
    };
    let classes = known.classes.len();
    if known.format != Format::Idx {
        return Ok((verified, (train, test)));
    }
    for (what, d, path) in [
        ("training", &train, &hashes[1].0),
        ("test", &test, &hashes[3].0),
    ] {
        if let Some(i) = d.labels.iter().position(|&l| l as usize >= classes) {
            return Err(Error::bad_file(
                path,
                format!(
                    "{what} label of record {i} is {}, outside 0..{classes} ({} has {classes} classes)",
                    d.labels[i], known.name
                ),
            ));
        }
    }
    Ok((verified, (train, test)))
}

/// Everything `train` needs to find its data.
#[derive(Clone, Debug, Default)]
pub struct DataOptions {
    pub dataset: DatasetName,
    pub data_dir: Option<PathBuf>,
    pub offline: bool,
    pub folder: folder::FolderOptions,
}

/// Loads the training and test sets as `opts` say.
pub fn load(opts: &DataOptions) -> Result<Data> {
    let mut env = Env::from_process();
    env.offline |= opts.offline;
    match opts.dataset.known() {
        Some(known) => load_known(known, opts.data_dir.as_deref(), &env),
        None => {
            let Some(dir) = &opts.data_dir else {
                return Err(Error::Usage(
                    "--dataset folder needs --data-dir DIR (holding DIR/train/<class>/*)".into(),
                ));
            };
            let (train, test, classes) = folder::load(dir, &opts.folder)?;
            Ok(Data {
                name: "folder".into(),
                dir: dir.clone(),
                found: "--data-dir".into(),
                verified: false,
                train,
                test,
                classes,
            })
        }
    }
}
