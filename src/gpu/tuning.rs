//! How the tunable passes tile their work on this adapter: the choices, the defaults by device
//! type, the measured choices cached per adapter, driver and shape, and the tuner that times
//! the candidates.
//!
//! A tiling changes which invocation computes which outputs and how many workgroups a dispatch
//! launches, never which terms one output sums or in which order: every candidate gives the
//! same bits (`tests/tuning.rs` trains under several and compares).
//!
//! The tuned pass is the conv's backward (weight gradient, then input gradient), the largest
//! share of a step. Its knobs are WGSL `override` constants of `conv2d_backward.wgsl`
//! (`WG`, `CO_GROUPS`, `CI_GROUPS`), plus whether the weight and input tiles share one dispatch.

use crate::error::{Error, Result};
use crate::layers::Conv2dParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Blocks of 8 per invocation of the subgroup kernels that take them, by device type, untuned:
/// rows or outputs in the dense backward (`RB`) and the dense chain (rows per workgroup),
/// output channels in the pooled conv forward for any c_in (`CB`). On CPU adapters 4, so that
/// each value loaded serves 32 (loads, done lane by lane, are what costs there: fc1's backward
/// at batch 32 went from 2.55 to 1.64 ms on lavapipe); on GPUs 1 (8 x 8 register tiles, more
/// workgroups).
pub fn tile_blocks(device: wgpu::DeviceType) -> u32 {
    match device {
        wgpu::DeviceType::Cpu => 4,
        _ => 1,
    }
}

/// Invocations per workgroup (`WG`) of the passes whose grids are few invocations wide: the dense
/// passes and a first conv's weight gradient from the pool's winners. By device type: 64 on
/// GPUs; 8 on CPU adapters, where a workgroup's invocations past the last input or column still
/// run and 8 leave fewest idle (fc1's backward at batch 32 on lavapipe, 1,600 inputs: 1.47 ms
/// at 64, 1.25 ms at 8, best of six alternating runs).
pub fn narrow_workgroup(device: wgpu::DeviceType) -> u32 {
    match device {
        wgpu::DeviceType::Cpu => 8,
        _ => 64,
    }
}

/// The tiling of one conv's backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvBackwardTiling {
    /// Invocations per workgroup (`WG`).
    pub wg: u32,
    /// Output channels per invocation of the weight tile, in groups (`CO_GROUPS`) of 16 in the
    /// subgroup kernel, of 8 in the portable one (convs whose c_in is not a multiple of 4, or
    /// adapters without subgroups).
    pub co_groups: u32,
    /// Input channels per invocation of the input tile, in groups of 16 (`CI_GROUPS`; subgroup
    /// kernels only, 1 otherwise).
    pub ci_groups: u32,
    /// Weight and input tiles in one dispatch (interleaved) rather than two.
    pub joined: bool,
}

impl ConvBackwardTiling {
    /// The tiling a device of this type gets untuned: on CPU adapters (lavapipe, SwiftShader,
    /// WARP) small workgroups, whose invocations all have work, and the wider weight tile that
    /// loads each input row once for 32 channels (16 in the portable kernel: conv1's weight
    /// gradient at batch 32 on lavapipe took 1.73 ms with 8, 1.3 ms with 16 and more with
    /// 32), in two dispatches; on GPUs 64-invocation
    /// workgroups, the narrow tiles (fewer registers) and one dispatch for both (more
    /// workgroups in flight).
    pub fn default_for(device: wgpu::DeviceType) -> Self {
        match device {
            wgpu::DeviceType::Cpu => ConvBackwardTiling {
                wg: 8,
                co_groups: 2,
                ci_groups: 1,
                joined: false,
            },
            _ => ConvBackwardTiling {
                wg: 64,
                co_groups: 1,
                ci_groups: 1,
                joined: true,
            },
        }
    }

    /// The candidates the tuner times on a device of this type (each is a pipeline to compile:
    /// a few seconds each on a CPU adapter, so few there).
    pub fn candidates(device: wgpu::DeviceType, subgroups: bool) -> Vec<Self> {
        let t = |wg, co_groups, ci_groups, joined| ConvBackwardTiling {
            wg,
            co_groups,
            ci_groups,
            joined,
        };
        let mut all = Vec::new();
        if device == wgpu::DeviceType::Cpu {
            if subgroups {
                for (co, ci) in [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)] {
                    all.push(t(8, co, ci, false));
                }
            } else {
                for co in [1, 2, 4] {
                    all.push(t(8, co, 1, false));
                }
            }
            all.push(t(8, 1, 1, true));
            all.push(t(64, 1, 1, true));
        } else {
            for wg in [32, 64, 128] {
                for joined in [true, false] {
                    all.push(t(wg, 1, 1, joined));
                    all.push(t(wg, 2, 1, joined));
                }
            }
        }
        all
    }

    /// This tiling with the knobs a shape does not use set to their neutral values: the input
    /// tile's knobs and the joined dispatch when there is no input gradient, the input channel
    /// groups without subgroup kernels. Candidates that differ only there are the same program.
    pub fn fitted(self, input: bool, subgroups: bool) -> Self {
        ConvBackwardTiling {
            co_groups: self.co_groups,
            ci_groups: if input && subgroups {
                self.ci_groups
            } else {
                1
            },
            joined: input && self.joined,
            ..self
        }
    }

    /// Checks a tiling read from a file or a flag.
    pub fn check(&self, subgroups: bool) -> Result<()> {
        let ok = [8, 16, 32, 64, 128, 256].contains(&self.wg)
            && (1..=4).contains(&self.co_groups)
            && (1..=2).contains(&self.ci_groups)
            && (subgroups || self.ci_groups == 1);
        if ok {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "invalid conv backward tiling {self}: wg one of 8, 16, 32, 64, 128, 256; co_groups 1 to 4; ci_groups 1 or 2 (1 without subgroup kernels)"
            )))
        }
    }

    /// The pipeline constants of the weight tile (also those of the joined dispatch);
    /// `tile_cols`, the portable tile's columns, comes from the layer
    /// (`Conv2dParams::weight_tile_cols`).
    pub fn weight_overrides(&self, channel_last: bool, tile_cols: usize) -> super::Overrides {
        match channel_last {
            true => vec![
                ("WG", self.wg),
                ("CO_GROUPS", self.co_groups),
                ("CI_GROUPS", self.ci_groups),
            ],
            false => vec![
                ("WG", self.wg),
                ("CO_GROUPS", self.co_groups),
                ("TILE_COLS", tile_cols as u32),
            ],
        }
    }

    /// The pipeline constants of the input tile.
    pub fn input_overrides(&self, subgroups: bool) -> super::Overrides {
        match subgroups {
            true => vec![("WG", self.wg), ("CI_GROUPS", self.ci_groups)],
            false => vec![("WG", self.wg)],
        }
    }
}

impl std::fmt::Display for ConvBackwardTiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wg {} co_groups {} ci_groups {} {}",
            self.wg,
            self.co_groups,
            self.ci_groups,
            if self.joined { "joined" } else { "split" }
        )
    }
}

/// Where a tiling came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The device type's default (untuned, or `--no-tune`).
    Default,
    /// Measured on this adapter (now or earlier, from the cache).
    Tuned,
}

impl Source {
    /// How `bench` and `tune` print it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Tuned => "tuned",
        }
    }
}

/// The key of one tuned shape: the conv's backward at one batch size, with or without the
/// input gradient.
pub fn shape_key(p: &Conv2dParams, input: bool) -> String {
    format!(
        "conv2d_backward b{} c{} {}x{} -> c{} {}x{} k{}x{}{}{}",
        p.batch,
        p.c_in,
        p.h_in,
        p.w_in,
        p.c_out,
        p.h_out,
        p.w_out,
        p.kh,
        p.kw,
        if p.channel_last != 0 {
            " channel-last"
        } else {
            ""
        },
        if input { "" } else { " weight-only" }
    )
}

/// One tuned choice as the cache keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub tiling: ConvBackwardTiling,
    /// Median milliseconds of the chosen and of the default tiling, when tuned.
    pub ms: f64,
    pub default_ms: f64,
}

/// The cache file: adapter key -> shape key -> choice.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TuningCache {
    pub version: u32,
    pub adapters: BTreeMap<String, BTreeMap<String, Choice>>,
}

/// The cache's format; a file of another version is read as empty (its shapes tune again).
/// 2: `co_groups` also tiles the portable weight kernel (convs whose c_in is not a multiple of
/// 4), where version 1 ignored it.
const CACHE_VERSION: u32 = 2;

impl TuningCache {
    /// `$XDG_CACHE_HOME/gpu-cnn/tuning.json`, else `~/.cache/gpu-cnn/tuning.json`;
    /// `GPU_CNN_TUNING` names another file. None when no home is known.
    pub fn path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("GPU_CNN_TUNING") {
            return Some(PathBuf::from(p));
        }
        let base = match std::env::var_os("XDG_CACHE_HOME") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
        };
        Some(base.join("gpu-cnn").join("tuning.json"))
    }

    /// Reads the cache; a missing file is an empty cache, an unreadable or foreign one an error
    /// naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let cache: TuningCache = serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            msg: format!("not a gpu-cnn tuning cache ({e}); delete it to tune again"),
        })?;
        if cache.version != CACHE_VERSION {
            return Ok(Self::default());
        }
        Ok(cache)
    }

    /// Writes the cache (a temporary file renamed over the old one, so a crash leaves either).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut out = self.clone();
        out.version = CACHE_VERSION;
        let text = serde_json::to_string_pretty(&out)
            .map_err(|e| Error::Gpu(format!("writing the tuning cache: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    pub fn get(&self, adapter: &str, shape: &str) -> Option<&Choice> {
        self.adapters.get(adapter)?.get(shape)
    }

    pub fn insert(&mut self, adapter: &str, shape: String, choice: Choice) {
        self.adapters
            .entry(adapter.to_string())
            .or_default()
            .insert(shape, choice);
    }
}
