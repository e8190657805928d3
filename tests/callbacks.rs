//! The epoch-end decisions (`gpu_cnn::callbacks`) on hand-made histories, by Keras' rules:
//! EarlyStopping's `wait` counts the epochs since the last strict improvement (min_delta 0) and
//! stops when it reaches the patience; "best" is the lowest val_loss or the highest
//! val_accuracy; a NaN never improves.

use gpu_cnn::callbacks::{Monitor, Watch};
use gpu_cnn::history::EpochRecord;

fn history(values: &[(f64, f64)]) -> Vec<EpochRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, &(val_loss, val_accuracy))| EpochRecord {
            epoch: i + 1,
            loss: 1.0,
            accuracy: 0.5,
            val_loss,
            val_accuracy,
            seconds: 1.0,
            learning_rate: Some(1e-3),
        })
        .collect()
}

#[test]
fn the_best_epoch_and_the_wait_follow_keras() {
    // val_loss: 0.5 best at 1, 0.4 at 2, equal (no improvement) at 3, worse at 4, 0.3 at 5.
    let h = history(&[
        (0.5, 0.8),
        (0.4, 0.85),
        (0.4, 0.9),
        (0.45, 0.9),
        (0.3, 0.88),
    ]);
    let mut w = Watch::new(Monitor::ValLoss);
    let improved: Vec<bool> = h.iter().map(|e| w.update(e)).collect();
    assert_eq!(improved, [true, true, false, false, true]);
    assert_eq!((w.best, w.wait), (Some((5, 0.3)), 0));
    // Patience 2 stops after epoch 4 (two epochs without a lower loss), not before.
    let stops: Vec<bool> = (1..=5)
        .map(|n| Watch::replay(Monitor::ValLoss, &h[..n]).stops(Some(2)))
        .collect();
    assert_eq!(stops, [false, false, false, true, false]);
    assert!(!Watch::replay(Monitor::ValLoss, &h[..4]).stops(None));
    // val_accuracy: higher is better; the equal 0.9 at 4 is no improvement.
    let mut a = Watch::new(Monitor::ValAccuracy);
    let improved: Vec<bool> = h.iter().map(|e| a.update(e)).collect();
    assert_eq!(improved, [true, true, true, false, false]);
    assert_eq!((a.best, a.wait), (Some((3, 0.9)), 2));
    assert!(a.stops(Some(2)) && !a.stops(Some(3)));
}

#[test]
fn a_nan_never_improves() {
    let h = history(&[(f64::NAN, 0.1), (0.7, 0.2), (f64::NAN, 0.3)]);
    let mut w = Watch::new(Monitor::ValLoss);
    let improved: Vec<bool> = h.iter().map(|e| w.update(e)).collect();
    assert_eq!(improved, [false, true, false]);
    assert_eq!((w.best, w.wait), (Some((2, 0.7)), 1));
    assert_eq!(Monitor::ValAccuracy.name(), "val_accuracy");
}

/// ReduceLROnPlateau's rules: an improvement must beat the best by more than 1e-4; after
/// PATIENCE epochs without one the rate is multiplied by FACTOR and the count starts again.
#[test]
fn plateaus_reduce_the_rate_as_keras_does() {
    use gpu_cnn::callbacks::{Plateau, PlateauWatch};
    let p = Plateau::parse("0.5:2").unwrap();
    assert_eq!(
        (p.factor, p.patience, p.to_string()),
        (0.5, 2, "0.5:2".to_string())
    );
    // 1.0, then 0.99995 (within min_delta: no improvement), 0.98 (one), then three stalls.
    let h = history(&[
        (1.0, 0.1),
        (0.99995, 0.1),
        (0.98, 0.1),
        (0.99, 0.1),
        (0.985, 0.1),
        (0.99, 0.1),
        (0.5, 0.1),
    ]);
    let mut w = PlateauWatch::new(p, Monitor::ValLoss, 1e-3);
    let reduced: Vec<Option<f64>> = h.iter().map(|e| w.update(e)).collect();
    assert_eq!(reduced, [None, None, None, None, Some(5e-4), None, None]);
    assert_eq!(w.lr, 5e-4);
    // Replayed from the history, the same state (what a resume starts from).
    assert_eq!(PlateauWatch::replay(p, Monitor::ValLoss, 1e-3, &h), w);
    // Two stalls right after the start reduce at epoch 3 (1.0 is the first best).
    let h2 = history(&[(1.0, 0.1), (1.0, 0.1), (1.2, 0.1)]);
    let w2 = PlateauWatch::replay(p, Monitor::ValLoss, 1e-3, &h2);
    assert_eq!((w2.lr, w2.wait), (5e-4, 0));
    for (bad, says) in [
        ("0.5", "expected FACTOR:PATIENCE"),
        ("1:3", "FACTOR must be between 0 and 1"),
        ("0:3", "FACTOR must be between 0 and 1"),
        ("nan:3", "FACTOR must be between 0 and 1"),
        (
            "0.1:0",
            "PATIENCE must be a whole number of epochs, at least 1",
        ),
        ("0.1:x", "PATIENCE must be"),
    ] {
        let e = Plateau::parse(bad).unwrap_err().to_string();
        assert!(
            e.contains(says) && e.contains("--reduce-lr-on-plateau"),
            "{bad}: {e}"
        );
    }
}
