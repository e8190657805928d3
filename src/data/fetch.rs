//! Downloads of known datasets into the cache: each file from the first mirror that serves it
//! whole and with the right SHA-256 (of an IDX file's uncompressed content, of an archive as
//! published), written to a temporary file and renamed into place only then, so the cache holds
//! complete verified files or nothing.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::idx::{gunzip, sha256_hex};
use super::registry::{Format, KnownDataset, KnownFile};
use crate::error::{Error, Result};
use crate::files::write_atomic;

/// Largest file we accept from a mirror (CIFAR-10's archive is 170 MB).
const MAX_DOWNLOAD: u64 = 512 << 20;

/// The mirrors to try: `$GPU_CNN_MIRRORS` (comma-separated base URLs) when set, else the
/// dataset's own list.
pub fn mirrors(known: &KnownDataset, env_mirrors: Option<&str>) -> Vec<String> {
    match env_mirrors {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        None => known.mirrors.iter().map(|s| s.to_string()).collect(),
    }
}

/// `base` joined with `file`, with exactly one `/` between.
pub fn url(base: &str, file: &str) -> String {
    format!("{}/{file}", base.trim_end_matches('/'))
}

/// The SHA-256 a known dataset's checksums are of: an IDX file's uncompressed content (`bytes`
/// may be gzip-compressed), an archive's bytes as they are.
pub fn content_sha256(format: Format, bytes: &[u8], path: &Path) -> Result<String> {
    match format {
        Format::Idx if bytes.starts_with(&[0x1f, 0x8b]) => Ok(sha256_hex(&gunzip(bytes, path)?)),
        Format::Idx | Format::CifarBinary => Ok(sha256_hex(bytes)),
    }
}

/// Whether `path` holds `file` of `known` (its SHA-256 matches).
pub fn verify_file(known: &KnownDataset, path: &Path, file: &KnownFile) -> Result<bool> {
    if path.is_dir() {
        return Err(Error::bad_file(path, "is a folder, expected a file"));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(content_sha256(known.format, &bytes, path)? == file.sha256)
}

/// What `fetch_dataset` did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Already in the cache and verified; not downloaded.
    Cached(PathBuf),
    /// Downloaded from this URL.
    Downloaded { path: PathBuf, url: String },
}

/// Makes `dest` hold the dataset's files, verified, under their served names, downloading those that are
/// missing or fail verification (all of them with `force`). Mirrors are tried in order per file;
/// the error lists every URL tried and what went wrong there.
pub fn fetch_dataset(
    known: &KnownDataset,
    dest: &Path,
    mirrors: &[String],
    force: bool,
) -> Result<Vec<Fetched>> {
    if mirrors.is_empty() {
        return Err(Error::Download(format!(
            "no mirrors to download {} from (GPU_CNN_MIRRORS is empty)",
            known.name
        )));
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let agent = agent();
    let mut out = Vec::new();
    for file in known.files {
        let target = dest.join(known.served_name(file));
        if !force && target.is_file() {
            match verify_file(known, &target, file) {
                Ok(true) => {
                    out.push(Fetched::Cached(target));
                    continue;
                }
                Ok(false) => crate::output::note(format!(
                    "cached {} fails verification (SHA-256 differs); fetching it again",
                    target.display()
                )),
                Err(e) => crate::output::note(format!("cached {e}; fetching it again")),
            }
        }
        out.push(fetch_file(&agent, known, file, &target, mirrors)?);
    }
    Ok(out)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// One file from the first mirror that serves it verified.
fn fetch_file(
    agent: &ureq::Agent,
    known: &KnownDataset,
    file: &KnownFile,
    target: &Path,
    mirrors: &[String],
) -> Result<Fetched> {
    let gz_name = known.served_name(file);
    let what = match known.format {
        Format::Idx => "SHA-256 of the uncompressed file",
        Format::CifarBinary => "SHA-256",
    };
    let mut failures = Vec::new();
    for base in mirrors {
        let url = url(base, &gz_name);
        let result = download(agent, &url).and_then(|bytes| {
            let got =
                content_sha256(known.format, &bytes, Path::new(&url)).map_err(|e| e.to_string())?;
            if got != file.sha256 {
                return Err(format!("{what} is {got}, expected {}", file.sha256));
            }
            Ok(bytes)
        });
        match result {
            Ok(bytes) => {
                write_atomic(target, &bytes)?;
                return Ok(Fetched::Downloaded {
                    path: target.to_path_buf(),
                    url,
                });
            }
            Err(why) => {
                crate::output::note(format!("{url}: {why}; trying the next mirror"));
                failures.push(format!("  {url}: {why}"));
            }
        }
    }
    Err(Error::Download(format!(
        "could not download {gz_name} from any mirror:\n{}",
        failures.join("\n")
    )))
}

/// The whole body of `url`, or why not (HTTP status, connection, timeout, short body).
fn download(agent: &ureq::Agent, url: &str) -> std::result::Result<Vec<u8>, String> {
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let expected: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if expected.is_some_and(|n| n > MAX_DOWNLOAD) {
        return Err(format!(
            "{} bytes is more than any dataset file",
            expected.unwrap_or(0)
        ));
    }
    let bar = progress_bar(url, expected);
    let mut reader = resp.body_mut().with_config().limit(MAX_DOWNLOAD).reader();
    let mut body = Vec::with_capacity(expected.unwrap_or(0) as usize);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(format!("connection failed after {} bytes: {e}", body.len()));
            }
        };
        body.extend_from_slice(&buf[..n]);
        bar.set_position(body.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(n) = expected {
        if body.len() as u64 != n {
            return Err(format!(
                "connection closed after {} of {n} bytes",
                body.len()
            ));
        }
    }
    if !std::io::stderr().is_terminal() {
        eprintln!("downloaded {url} ({} bytes)", body.len());
    }
    Ok(body)
}

/// Bytes, rate and ETA on a terminal; hidden otherwise.
fn progress_bar(url: &str, len: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    bar
}
