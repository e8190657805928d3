//! Learning-rate schedules against Keras' own (`tests/fixtures/keras/schedules.json`, written by
//! `make_schedules.py` beside it), their text forms, and hostile `--lr-schedule` values.

use gpu_cnn::layers::Optimizer;
use gpu_cnn::schedule::Schedule;

#[test]
fn schedules_match_keras() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keras/schedules.json"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let lr = j["lr"].as_f64().unwrap();
    let steps: Vec<u64> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    let cases = j["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let spec = case["spec"].as_str().unwrap();
        let s = Schedule::parse(spec).unwrap();
        // Written in full, so resolving changes nothing; the text form reads back the same.
        assert_eq!(s.resolved(1), s, "{spec}");
        assert_eq!(Schedule::parse(&s.to_string()).unwrap(), s, "{spec}");
        for (step, want) in steps.iter().zip(case["lr"].as_array().unwrap()) {
            let want = want.as_f64().unwrap();
            let got = s.lr_at(lr, *step);
            // Keras computes in float32.
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-10,
                "{spec} at step {step}: {got} against Keras' {want}"
            );
        }
    }
}

/// Adam's step size takes the schedule's value after the updates before it (Keras evaluates a
/// schedule at `optimizer.iterations`, 0 for the first update).
#[test]
fn adam_reads_the_schedule_before_each_update() {
    let halving = Schedule::parse("exponential:0.5:1:staircase").unwrap();
    let adam = Optimizer {
        schedule: halving,
        ..Optimizer::default()
    };
    let plain = Optimizer::default();
    for t in 1..6u64 {
        let scale = 0.5f64.powi(t as i32 - 1);
        let want = (plain.alpha(t) as f64 * scale) as f32;
        assert!((adam.alpha(t) - want).abs() <= 1e-6 * want, "t {t}");
    }
    assert_eq!(Optimizer::default().schedule, Schedule::Constant);
}

#[test]
fn a_cosine_decays_over_the_run_unless_told() {
    let s = Schedule::parse("cosine").unwrap();
    assert_eq!(s.to_string(), "cosine");
    let r = s.resolved(1875 * 10);
    assert_eq!(r.to_string(), "cosine:18750");
    assert!(s.same_as_recorded(&r));
    assert!(!Schedule::parse("cosine:100").unwrap().same_as_recorded(&r));
    assert!(!Schedule::Constant.same_as_recorded(&r));
    // Half way, half the rate; at the end, the floor.
    assert!((r.lr_at(1e-3, 9375) - 5e-4).abs() < 1e-12);
    assert_eq!(r.lr_at(1e-3, 18750), 0.0);
    // With a warmup, the decay takes the steps after it.
    let w = Schedule::parse("cosine:10:0:5:0.01").unwrap();
    assert_eq!(w.lr_at(1e-3, 0), 1e-3);
    assert!((w.lr_at(1e-3, 5) - 0.01).abs() < 1e-12);
    assert_eq!(w.lr_at(1e-3, 15), 0.0);
}

#[test]
fn bad_schedules_are_refused_with_the_forms() {
    for (bad, says) in [
        ("", "unknown schedule"),
        ("linear", "unknown schedule `linear`"),
        ("constant:1", "constant takes no arguments"),
        (
            "cosine:0",
            "DECAY_STEPS must be a whole number of steps, at least 1",
        ),
        ("cosine:-5", "DECAY_STEPS"),
        ("cosine:100:1.5", "ALPHA must be from 0 to 1"),
        ("cosine:100:nan", "ALPHA must be from 0 to 1"),
        ("cosine:100:0:10", "WARMUP_STEPS and WARMUP_TARGET together"),
        (
            "cosine:100:0:0:0.01",
            "WARMUP_STEPS must be a whole number of steps, at least 1",
        ),
        (
            "cosine:100:0:10:0",
            "WARMUP_TARGET must be a positive number",
        ),
        ("cosine:1:2:3:4:5", "cosine takes"),
        ("exponential", "exponential takes RATE and STEPS"),
        ("exponential:0.9", "exponential takes RATE and STEPS"),
        ("exponential:0:10", "RATE must be a positive number"),
        ("exponential:inf:10", "RATE must be a positive number"),
        ("exponential:1e-50:10", "RATE must be a positive number"),
        (
            "exponential:0.9:0",
            "STEPS must be a whole number of steps, at least 1",
        ),
        ("exponential:0.9:10:stairs", "expected `staircase`"),
        ("exponential:0.9:10:staircase:1", "exponential takes"),
        ("piecewise", "at least one BOUNDARY=VALUE"),
        ("piecewise:", "at least one BOUNDARY=VALUE"),
        ("piecewise:100", "is not BOUNDARY=VALUE"),
        ("piecewise:100=0", "a VALUE must be a positive number"),
        ("piecewise:x=0.1", "a BOUNDARY must be a whole number"),
        ("piecewise:100=0.1,50=0.01", "the boundaries must increase"),
        ("piecewise:100=0.1,100=0.01", "the boundaries must increase"),
        (
            "piecewise:1=1,2=1,3=1,4=1,5=1,6=1,7=1,8=1,9=1",
            "at most 8 boundaries, got 9",
        ),
    ] {
        let e = Schedule::parse(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
        assert!(
            e.contains("--lr-schedule") && e.contains("piecewise:B1=V1"),
            "{bad}: {e}"
        );
    }
    for good in [
        "constant",
        "COSINE",
        " cosine:5 ",
        "exponential:2:3",
        "piecewise:0=1",
    ] {
        assert!(Schedule::parse(good).is_ok(), "{good}");
    }
}
