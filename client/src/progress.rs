//! Progress bars on stderr, drawn only when stderr is a terminal (so that
//! logs and pipes stay clean).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

fn visible() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar counting `len` items, with `what` (e.g. "sealing") before it.
pub fn counter(len: u64, what: &str) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A bar counting `len` messages, with `what` before it and the rate in
/// messages per second.
pub fn messages(len: u64, what: &str) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{bar:40}] {human_pos}/{human_len} messages, {per_sec} messages/s, elapsed {elapsed}, eta {eta} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> ").with_key(
            "per_sec",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                write!(w, "{:.0}", state.per_sec()).ok();
            },
        ));
    }
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A bar over time: its position is elapsed milliseconds of `total`, its
/// message the live counters.
pub fn timer(total: Duration) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(total.as_millis()).unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template("[{elapsed_precise}] [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
