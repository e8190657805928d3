//! Learning-rate schedules as Keras defines them (`keras.optimizers.schedules`), written on the
//! command line as `--lr-schedule SPEC`. The schedule starts from `--lr` and is evaluated, as
//! Keras evaluates it, at the optimizer's step count before the update (0 for the first step);
//! the trainers fold it into the step size they hand the GPU (`Adam::alpha`), so it costs no
//! pass and no readback.
//!
//! The text forms:
//! - `constant`: `--lr` throughout (the default);
//! - `cosine[:DECAY_STEPS[:ALPHA[:WARMUP_STEPS:WARMUP_TARGET]]]`: `CosineDecay(lr,
//!   DECAY_STEPS, ALPHA, warmup_target=WARMUP_TARGET, warmup_steps=WARMUP_STEPS)`: with a warmup,
//!   linear from `--lr` to WARMUP_TARGET, then the cosine from WARMUP_TARGET; DECAY_STEPS
//!   defaults to the run's steps after the warmup, ALPHA (the floor, a fraction of the start) to 0;
//! - `exponential:RATE:STEPS[:staircase]`: `ExponentialDecay(lr, STEPS, RATE, staircase)`,
//!   lr * RATE ^ (step / STEPS), the exponent floored with `staircase`;
//! - `piecewise:B1=V1,B2=V2,...`: `PiecewiseConstantDecay([B1, B2, ...], [lr, V1, V2, ...])`:
//!   `--lr` up to step B1, V1 after it up to B2, and so on (at most 8 boundaries, increasing).

use crate::error::{Error, Result};

/// Most boundaries of a piecewise schedule.
pub const MAX_PIECES: usize = 8;

/// A learning-rate schedule; `lr_at` gives its value at a step from the initial rate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Schedule {
    #[default]
    Constant,
    Cosine {
        /// `None`: the run's steps after the warmup (`resolved`).
        decay_steps: Option<u64>,
        alpha: f64,
        warmup_steps: u64,
        warmup_target: Option<f64>,
    },
    Exponential {
        rate: f64,
        steps: u64,
        staircase: bool,
    },
    Piecewise {
        len: usize,
        boundaries: [u64; MAX_PIECES],
        values: [f64; MAX_PIECES],
    },
}

fn usage(spec: &str, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "--lr-schedule {spec}: {why} (forms: constant; cosine[:DECAY_STEPS[:ALPHA[:WARMUP_STEPS:WARMUP_TARGET]]]; exponential:RATE:STEPS[:staircase]; piecewise:B1=V1,B2=V2,...)"
    ))
}

/// A positive finite number (`what` names it in the error).
fn positive(spec: &str, what: &str, text: &str) -> Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && (v as f32) > 0.0 && (v as f32).is_finite() => Ok(v),
        _ => Err(usage(
            spec,
            format!("{what} must be a positive number, got `{text}`"),
        )),
    }
}

/// A step count of at least `min`.
fn steps(spec: &str, what: &str, text: &str, min: u64) -> Result<u64> {
    match text.trim().parse::<u64>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(usage(
            spec,
            format!("{what} must be a whole number of steps, at least {min}, got `{text}`"),
        )),
    }
}

impl Schedule {
    /// Reads the text form (see the module's documentation).
    pub fn parse(spec: &str) -> Result<Schedule> {
        let text = spec.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((k, r)) => (k.trim(), Some(r)),
            None => (text, None),
        };
        let args: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
        match kind.to_ascii_lowercase().as_str() {
            "constant" if rest.is_none() => Ok(Schedule::Constant),
            "constant" => Err(usage(spec, "constant takes no arguments")),
            "cosine" => {
                if args.len() > 4 || args.len() == 3 {
                    return Err(usage(
                        spec,
                        "cosine takes DECAY_STEPS, then ALPHA, then WARMUP_STEPS and WARMUP_TARGET together",
                    ));
                }
                let decay_steps = match args.first() {
                    Some(a) => Some(steps(spec, "DECAY_STEPS", a, 1)?),
                    None => None,
                };
                let alpha = match args.get(1) {
                    Some(a) => match a.trim().parse::<f64>() {
                        Ok(v) if (0.0..=1.0).contains(&v) => v,
                        _ => {
                            return Err(usage(
                                spec,
                                format!("ALPHA must be from 0 to 1, got `{a}`"),
                            ))
                        }
                    },
                    None => 0.0,
                };
                let (warmup_steps, warmup_target) = match (args.get(2), args.get(3)) {
                    (Some(s), Some(t)) => (
                        steps(spec, "WARMUP_STEPS", s, 1)?,
                        Some(positive(spec, "WARMUP_TARGET", t)?),
                    ),
                    _ => (0, None),
                };
                Ok(Schedule::Cosine {
                    decay_steps,
                    alpha,
                    warmup_steps,
                    warmup_target,
                })
            }
            "exponential" => {
                let staircase = match args.get(2).map(|a| a.trim()) {
                    None => false,
                    Some("staircase") => true,
                    Some(a) => return Err(usage(spec, format!("expected `staircase`, got `{a}`"))),
                };
                if args.len() < 2 || args.len() > 3 {
                    return Err(usage(
                        spec,
                        "exponential takes RATE and STEPS, then optionally `staircase`",
                    ));
                }
                Ok(Schedule::Exponential {
                    rate: positive(spec, "RATE", args[0])?,
                    steps: steps(spec, "STEPS", args[1], 1)?,
                    staircase,
                })
            }
            "piecewise" => {
                let Some(rest) = rest.filter(|r| !r.trim().is_empty()) else {
                    return Err(usage(spec, "piecewise needs at least one BOUNDARY=VALUE"));
                };
                let pieces: Vec<&str> = rest.split(',').collect();
                if pieces.len() > MAX_PIECES {
                    return Err(usage(
                        spec,
                        format!("at most {MAX_PIECES} boundaries, got {}", pieces.len()),
                    ));
                }
                let (mut boundaries, mut values) = ([0u64; MAX_PIECES], [0f64; MAX_PIECES]);
                for (i, piece) in pieces.iter().enumerate() {
                    let Some((b, v)) = piece.split_once('=') else {
                        return Err(usage(spec, format!("`{piece}` is not BOUNDARY=VALUE")));
                    };
                    boundaries[i] = steps(spec, "a BOUNDARY", b, 0)?;
                    values[i] = positive(spec, "a VALUE", v)?;
                    if i > 0 && boundaries[i] <= boundaries[i - 1] {
                        return Err(usage(spec, "the boundaries must increase"));
                    }
                }
                Ok(Schedule::Piecewise {
                    len: pieces.len(),
                    boundaries,
                    values,
                })
            }
            _ => Err(usage(spec, format!("unknown schedule `{kind}`"))),
        }
    }

    /// This schedule with its defaults that depend on the run filled in: a cosine without
    /// DECAY_STEPS decays over the run's `total_steps` after its warmup (at least 1).
    pub fn resolved(self, total_steps: u64) -> Schedule {
        match self {
            Schedule::Cosine {
                decay_steps: None,
                alpha,
                warmup_steps,
                warmup_target,
            } => Schedule::Cosine {
                decay_steps: Some(total_steps.saturating_sub(warmup_steps).max(1)),
                alpha,
                warmup_steps,
                warmup_target,
            },
            s => s,
        }
    }

    /// Whether this schedule, as given on the command line, is `recorded`, a run's resolved
    /// one: the same, or a cosine left to decay over the run whose other settings match.
    pub fn same_as_recorded(&self, recorded: &Schedule) -> bool {
        match (*self, *recorded) {
            (
                Schedule::Cosine {
                    decay_steps: None,
                    alpha,
                    warmup_steps,
                    warmup_target,
                },
                Schedule::Cosine {
                    decay_steps: Some(_),
                    alpha: a,
                    warmup_steps: w,
                    warmup_target: t,
                },
            ) => alpha == a && warmup_steps == w && warmup_target == t,
            (given, recorded) => given == recorded,
        }
    }

    /// The learning rate at `step` (0-based: the updates already applied), from `lr`, by Keras'
    /// formulas.
    pub fn lr_at(&self, lr: f64, step: u64) -> f64 {
        let t = step as f64;
        match *self {
            Schedule::Constant => lr,
            Schedule::Cosine {
                decay_steps,
                alpha,
                warmup_steps,
                warmup_target,
            } => {
                let decay = decay_steps.unwrap_or(1).max(1) as f64;
                let cosine = |t: f64, from: f64| {
                    let done = t.min(decay) / decay;
                    let c = 0.5 * (1.0 + (std::f64::consts::PI * done).cos());
                    from * ((1.0 - alpha) * c + alpha)
                };
                match warmup_target {
                    None => cosine(t, lr),
                    Some(target) => {
                        let w = warmup_steps as f64;
                        let t = t.min(decay + w);
                        if t < w {
                            (target - lr) * (t / w) + lr
                        } else {
                            cosine(t - w, target)
                        }
                    }
                }
            }
            Schedule::Exponential {
                rate,
                steps,
                staircase,
            } => {
                let p = t / steps as f64;
                lr * rate.powf(if staircase { p.floor() } else { p })
            }
            Schedule::Piecewise {
                len,
                boundaries,
                values,
            } => match boundaries[..len].iter().position(|&b| step <= b) {
                Some(0) => lr,
                Some(i) => values[i - 1],
                None => values[len - 1],
            },
        }
    }
}

impl std::fmt::Display for Schedule {
    /// The text form `parse` reads (a resolved cosine with its decay steps).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Cosine {
                decay_steps,
                alpha,
                warmup_steps,
                warmup_target,
            } => {
                f.write_str("cosine")?;
                let Some(d) = decay_steps else { return Ok(()) };
                write!(f, ":{d}")?;
                match warmup_target {
                    Some(t) => write!(f, ":{alpha}:{warmup_steps}:{t}"),
                    None if alpha != 0.0 => write!(f, ":{alpha}"),
                    None => Ok(()),
                }
            }
            Schedule::Exponential {
                rate,
                steps,
                staircase,
            } => {
                write!(f, "exponential:{rate}:{steps}")?;
                if staircase {
                    f.write_str(":staircase")?;
                }
                Ok(())
            }
            Schedule::Piecewise {
                len,
                boundaries,
                values,
            } => {
                f.write_str("piecewise:")?;
                for i in 0..len {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}={}", boundaries[i], values[i])?;
                }
                Ok(())
            }
        }
    }
}
