// Your copy of solutions/10-registry/src/progress.rs, made by `cargo xtask gen`. Do the exercises marked TODO.
//! What a pull shows while it works: a bar per layer on a terminal (bytes, rate, then
//! unpacked), plain lines when the output is a file or a pipe, nothing with `-q`.
//! Book: section 10.4.
//!
//! The lines are docker's, so a learner recognises them: `ID: Pulling fs layer`,
//! `ID: Download complete`, `ID: Pull complete`, then `Digest:` and `Status:`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

/// How a pull reports.
pub enum Progress {
    /// A bar per layer, on standard error (a terminal).
    Bars(MultiProgress),
    /// A line per step, on standard output or standard error.
    Lines { to_stderr: bool, lock: Mutex<()> },
    /// Nothing (`-q`).
    Quiet,
}

/// One layer's report.
pub enum LayerProgress<'a> {
    Bar(ProgressBar),
    Lines(&'a Progress, String),
    Quiet,
}

impl Progress {
    /// Bars when standard error is a terminal and `quiet` is not asked; else lines, on
    /// standard error if `to_stderr` (a `run` keeps standard output for the container).
    pub fn choose(quiet: bool, to_stderr: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if crate::terminal::is_terminal(2) {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines {
                to_stderr,
                lock: Mutex::new(()),
            }
        }
    }

    /// A line of the pull's own (not a layer's).
    pub fn say(&self, line: &str) {
        match self {
            Progress::Bars(bars) => {
                let _ = bars.println(line);
            }
            Progress::Lines { .. } => self.line(line),
            Progress::Quiet => {}
        }
    }

    fn line(&self, line: &str) {
        if let Progress::Lines { to_stderr, lock } = self {
            let _held = lock.lock().expect("no thread panics holding it");
            let text = format!("{line}\n");
            let _ = match to_stderr {
                true => std::io::stderr().write_all(text.as_bytes()),
                false => std::io::stdout().write_all(text.as_bytes()),
            };
        }
    }

    /// The report of the layer `digest`, `size` bytes to fetch.
    pub fn layer(&self, digest: &Digest, size: u64) -> LayerProgress<'_> {
        let short = digest.hex()[..12].to_string();
        match self {
            Progress::Bars(bars) => {
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("the template is valid")
                .progress_chars("=> ");
                let bar = ProgressBar::new(size)
                    .with_style(style)
                    .with_prefix(short)
                    .with_message("Downloading");
                let bar = bars.add(bar);
                bar.enable_steady_tick(Duration::from_millis(200));
                LayerProgress::Bar(bar)
            }
            Progress::Lines { .. } => {
                self.line(&format!("{short}: Pulling fs layer"));
                LayerProgress::Lines(self, short)
            }
            Progress::Quiet => LayerProgress::Quiet,
        }
    }
}

// ANCHOR: layer_progress
impl LayerProgress<'_> {
    /// `bytes` more arrived.
    pub fn advance(&self, bytes: u64) {
        if let LayerProgress::Bar(bar) = self {
            bar.inc(bytes);
        }
    }

    /// Every byte arrived (and was unpacked as it came).
    pub fn downloaded(&self) {
        match self {
            LayerProgress::Bar(bar) => bar.set_message("Verifying"),
            LayerProgress::Lines(progress, short) => {
                progress.line(&format!("{short}: Download complete"))
            }
            LayerProgress::Quiet => {}
        }
    }

    /// The layer is checked and in the store.
    pub fn done(&self) {
        match self {
            LayerProgress::Bar(bar) => bar.finish_with_message("Pull complete"),
            LayerProgress::Lines(progress, short) => {
                progress.line(&format!("{short}: Pull complete"))
            }
            LayerProgress::Quiet => {}
        }
    }

    /// The layer failed.
    pub fn failed(&self) {
        if let LayerProgress::Bar(bar) = self {
            bar.abandon_with_message("Failed");
        }
    }
}
// ANCHOR_END: layer_progress
