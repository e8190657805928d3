//! What a command says besides its results: notes on stderr (silenced by `--quiet`), and Ctrl-C
//! (the first asks the run to stop after the work in flight; the second exits at once).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Silences `note` (for `--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `note: <msg>` on stderr, unless quiet.
pub fn note(msg: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("note: {msg}");
    }
}

/// Installs the Ctrl-C handler: the first press sets `interrupted()`, the second exits with
/// status 130 at once, touching no file. Only the first call installs it.
pub fn catch_interrupts() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let installed = ctrlc::set_handler(|| {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("\ninterrupted twice: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the work in flight (Ctrl-C again to exit at once)");
    });
    if let Err(e) = installed {
        note(format!("Ctrl-C will end the run without saving ({e})"));
    }
}

/// Ctrl-C was pressed once.
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}
