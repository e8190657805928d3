//! `gpu-cnn datasets`: where each known dataset is found (and whether it verifies), and
//! `gpu-cnn datasets fetch NAME...`: download into the cache and verify.

use serde::Serialize;

use crate::data::{self, fetch, registry, Env};
use crate::error::{Error, Result};

/// One known dataset and the first place that holds a verified copy.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetStatus {
    pub name: String,
    pub classes: usize,
    /// Channels x rows x cols.
    pub shape: String,
    pub train: usize,
    pub test: usize,
    /// The folder holding a verified copy, if any.
    pub found: Option<String>,
    /// How that folder was found (`$GPU_CNN_DATA`, `cache`, `system`, `assets`).
    pub place: Option<String>,
    /// Places that hold a copy that failed: (folder, why).
    pub problems: Vec<(String, String)>,
}

/// The status of every known dataset (reads and verifies each copy found).
pub fn status(env: &Env) -> Vec<DatasetStatus> {
    registry::KNOWN
        .iter()
        .map(|k| {
            let (c, h, w) = k.shape;
            let mut s = DatasetStatus {
                name: k.name.into(),
                classes: k.classes.len(),
                shape: format!("{c}x{h}x{w}"),
                train: k.train,
                test: k.test,
                found: None,
                place: None,
                problems: Vec::new(),
            };
            for loc in data::locations(k.name, None, env) {
                match data::probe(k, &loc.dir) {
                    Ok(_) => {
                        s.found = Some(loc.dir.display().to_string());
                        s.place = Some(loc.kind.into());
                        break;
                    }
                    Err(why) if why != "absent" => {
                        s.problems.push((loc.dir.display().to_string(), why))
                    }
                    Err(_) => {}
                }
            }
            s
        })
        .collect()
}

/// Prints `status` as a table.
pub fn print_status(all: &[DatasetStatus]) {
    println!(
        "{:<14} {:>7} {:>8} {:>7} {:>6}  where",
        "dataset", "classes", "shape", "train", "test"
    );
    for s in all {
        let place = match (&s.found, &s.place) {
            (Some(dir), Some(p)) => format!("{dir} ({p}, verified)"),
            _ => "not found (gpu-cnn datasets fetch downloads it)".into(),
        };
        println!(
            "{:<14} {:>7} {:>8} {:>7} {:>6}  {place}",
            s.name, s.classes, s.shape, s.train, s.test
        );
        for (dir, why) in &s.problems {
            println!("{:<14} {dir}: {why}", "");
        }
    }
}

/// Downloads each named dataset into the cache, verified; `force` replaces cached files.
/// Prints where the files went.
pub fn fetch_all(names: &[String], force: bool, env: &Env) -> Result<()> {
    let known: Vec<&registry::KnownDataset> = names
        .iter()
        .map(|n| {
            registry::known(n).ok_or_else(|| {
                let all: Vec<&str> = registry::KNOWN.iter().map(|k| k.name).collect();
                Error::Usage(format!("unknown dataset `{n}` (known: {})", all.join(", ")))
            })
        })
        .collect::<Result<_>>()?;
    if env.offline {
        return Err(Error::Usage(
            "datasets fetch downloads, but GPU_CNN_OFFLINE=1 forbids it".into(),
        ));
    }
    for k in known {
        let dir = env
            .cache_dir(k.name)
            .ok_or_else(|| Error::Download("no cache folder: set XDG_CACHE_HOME or HOME".into()))?;
        let mirrors = fetch::mirrors(k, env.mirrors.as_deref());
        let done = fetch::fetch_dataset(k, &dir, &mirrors, force)?;
        let fresh = done
            .iter()
            .filter(|f| matches!(f, fetch::Fetched::Downloaded { .. }))
            .count();
        println!(
            "{}: {} verified in {} ({fresh} downloaded, {} already cached)",
            k.name,
            done.len(),
            dir.display(),
            done.len() - fresh
        );
    }
    Ok(())
}
