//! The progress bar on an interactive stderr: accounts finished of those selected so
//! far, how many succeeded, failed and are running a command, the rate and, once the
//! listing is complete, an ETA. While the accounts still stream in, the total is only
//! what has been selected so far, and the bar says so (`12/40+`, "total still
//! growing") instead of guessing an ETA from it.
//!
//! Two rules keep the bar from ever cutting a child's line:
//! - the writer thread, the only writer of child lines, prints every record that reaches
//!   the terminal inside [`Progress::suspend`]: the bar is cleared, the lines written and
//!   flushed, and the bar drawn again below them;
//! - account tasks only bump atomic counters and never touch the bar, whose lock the
//!   writer holds while it writes: a terminal that blocks cannot stall the async
//!   runtime. A small thread copies the counts into the bar ten times a second.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// Columns the bar leaves free at the right edge. A full-width line would let the `^C`
/// the terminal echoes on Ctrl-C (or any key typed) wrap to a new line; the bar would
/// then be cleared one line too low, and left behind above the summary.
const MARGIN: u16 = 4;
/// Redraws a second at most, as indicatif's own stderr target.
const REFRESH_HZ: u8 = 20;

/// How often the counts are copied into the bar (which redraws at most 20 times a second).
const TICK: Duration = Duration::from_millis(100);

/// Before the first account is selected: no bar, which would look full at 0/0.
const WAITING: &str = "{elapsed:>4} listing accounts - {msg}";
/// While the listing streams: no ETA, since the total is not known yet. ASCII only, so
/// that any terminal and locale shows it.
const LISTING: &str = "{elapsed:>4} [{wide_bar}] {pos}/{len}+ accounts - {msg} - {rate} - total still growing";
/// Once every account is selected: the total is final, and an ETA means something.
const LISTED: &str = "{elapsed:>4} [{wide_bar}] {pos}/{len} accounts - {msg} - {rate} - ETA {eta}";

/// A cheap handle on the bar, or on nothing when no bar is shown (stderr is not a
/// terminal, `--quiet`, `--output json`); then every method does nothing.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Shared>>);

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Progress").field(&self.is_shown()).finish()
    }
}

struct Shared {
    bar: ProgressBar,
    counts: Counts,
    /// Nothing is drawn before the first account starts: a confirmation prompt may be
    /// waiting on the terminal until then.
    begun: AtomicBool,
    ended: AtomicBool,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Counts {
    selected: AtomicUsize,
    finished: AtomicUsize,
    failed: AtomicUsize,
    running: AtomicUsize,
    throttled: AtomicUsize,
    listed: AtomicBool,
    halted: AtomicBool,
}

impl Counts {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            selected: self.selected.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            listed: self.listed.load(Ordering::Relaxed),
            halted: self.halted.load(Ordering::Relaxed),
        }
    }
}

/// The counts at one moment, as the bar shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    selected: usize,
    finished: usize,
    failed: usize,
    running: usize,
    /// Portal calls answered with a 429 so far: the reader sees why the run slowed.
    throttled: usize,
    /// The listing is complete: `selected` is the total.
    listed: bool,
    /// No more accounts start: the reader sees why the bar will not fill.
    halted: bool,
}

impl Snapshot {
    /// `12 done, 1 failed, 16 running`: done are the finished accounts that did not fail;
    /// `, 3 throttled` once the portal has throttled, `, halted` once the run is.
    fn message(self) -> String {
        let mut message = format!(
            "{} done, {} failed, {} running",
            self.finished.saturating_sub(self.failed),
            self.failed,
            self.running
        );
        if self.throttled > 0 {
            let _ = write!(message, ", {} throttled", self.throttled);
        }
        if self.halted {
            message.push_str(", halted");
        }
        message
    }
}

/// Which look the bar has: before the first account, while the listing streams, after.
fn template(now: Snapshot) -> &'static str {
    match now {
        Snapshot { listed: true, .. } => LISTED,
        Snapshot { selected: 0, .. } => WAITING,
        _ => LISTING,
    }
}

/// The bar's look for `template`.
fn style(template: &str) -> ProgressStyle {
    // The templates are constants known to parse; the fallback only keeps this total.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = write!(w, "{:.1}/s", state.per_sec());
        })
}

impl Progress {
    /// The bar on stderr when `shown`, else nothing. Whether stderr is a terminal is
    /// the caller's question (asked once, in `config/`).
    pub fn new(shown: bool) -> Self {
        if shown {
            let stderr = Margin(Term::buffered_stderr());
            Self::with_target(ProgressDrawTarget::term_like_with_hz(Box::new(stderr), REFRESH_HZ))
        } else {
            Progress(None)
        }
    }

    /// A bar drawn on `target` (a hidden one in unit tests), with its ticker thread.
    fn with_target(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style(WAITING));
        let shared = Arc::new(Shared {
            bar,
            counts: Counts::default(),
            begun: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            ticker: Mutex::new(None),
        });
        let weak = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new().name("fanout-progress".to_owned()).spawn(move || tick(&weak));
        match spawned {
            Ok(ticker) => {
                if let Ok(mut slot) = shared.ticker.lock() {
                    *slot = Some(ticker);
                }
                Progress(Some(shared))
            }
            // A bar that is never updated would mislead: show none.
            Err(_) => Progress(None),
        }
    }

    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    /// The first account starts (or is passed over): the bar may be drawn from now on.
    pub fn begin(&self) {
        if let Some(shared) = &self.0 {
            shared.begun.store(true, Ordering::Relaxed);
        }
    }

    /// One more account selected: the total grows.
    pub fn on_selected(&self) {
        self.count(|c| &c.selected);
    }

    /// Every account is selected: the total is final, and an ETA is shown.
    pub fn on_listing_complete(&self) {
        if let Some(shared) = &self.0 {
            shared.counts.listed.store(true, Ordering::Relaxed);
        }
    }

    /// An account's command starts; it counts as running until the guard is dropped.
    pub fn on_started(&self) -> Running {
        self.count(|c| &c.running);
        Running(self.0.clone())
    }

    /// An account ended, one way or another.
    pub fn on_finished(&self, failed: bool) {
        if failed {
            self.count(|c| &c.failed);
        }
        self.count(|c| &c.finished);
    }

    /// The portal throttled a call.
    pub fn on_throttled(&self) {
        self.count(|c| &c.throttled);
    }

    /// The run stopped starting accounts.
    pub fn on_halted(&self) {
        if let Some(shared) = &self.0 {
            shared.counts.halted.store(true, Ordering::Relaxed);
        }
    }

    fn count(&self, counter: impl FnOnce(&Counts) -> &AtomicUsize) {
        if let Some(shared) = &self.0 {
            counter(&shared.counts).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The clock stops until the returned guard is dropped: time spent at the
    /// confirmation prompt is not the run's, and would make the elapsed time and the
    /// rate (so the ETA) wrong.
    pub fn pause(&self) -> Paused {
        Paused(self.0.as_ref().map(|shared| (shared.bar.clone(), shared.bar.elapsed())))
    }

    /// Runs `write` with the bar cleared, and draws the bar again after it: whatever
    /// `write` prints to the terminal (and flushes) lands above the bar, whole.
    pub fn suspend<R>(&self, write: impl FnOnce() -> R) -> R {
        match &self.0 {
            // Before the bar begins there is nothing to clear, and nothing to draw after.
            Some(shared) if shared.begun.load(Ordering::Relaxed) => shared.bar.suspend(write),
            _ => write(),
        }
    }

    /// Stops the ticker and clears the bar, before the summary or an error is printed.
    /// Safe to call more than once.
    pub fn finish(&self) {
        let Some(shared) = &self.0 else { return };
        shared.ended.store(true, Ordering::Relaxed);
        let ticker = shared.ticker.lock().ok().and_then(|mut slot| slot.take());
        if let Some(ticker) = ticker {
            ticker.thread().unpark();
            let _ = ticker.join();
        }
        shared.bar.finish_and_clear();
    }
}

/// The bar and its elapsed time when [`Progress::pause`] was called; dropping it sets
/// the bar's clock back to that time.
#[must_use = "the clock starts again when this is dropped"]
pub struct Paused(Option<(ProgressBar, Duration)>);

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some((bar, elapsed)) = self.0.take() {
            let bar = bar.with_elapsed(elapsed);
            bar.reset_eta();
        }
    }
}

/// A running command, for the `running` count.
#[must_use = "the command counts as running until this is dropped"]
pub struct Running(Option<Arc<Shared>>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = &self.0 {
            shared.counts.running.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Stderr as indicatif's own target draws on it, [`MARGIN`] columns narrower.
#[derive(Debug)]
struct Margin(Term);

impl TermLike for Margin {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(MARGIN).max(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The ticker: copies the counts into the bar until the bar is finished or dropped.
fn tick(shared: &Weak<Shared>) {
    let mut shown: Option<Snapshot> = None;
    loop {
        let Some(shared) = shared.upgrade() else { return };
        if shared.ended.load(Ordering::Relaxed) {
            return;
        }
        if !shared.begun.load(Ordering::Relaxed) {
            drop(shared);
            std::thread::park_timeout(TICK);
            continue;
        }
        let now = shared.counts.snapshot();
        show(&shared.bar, shown, now);
        shown = Some(now);
        drop(shared);
        std::thread::park_timeout(TICK);
    }
}

/// Updates what changed since `before`, and ticks so the elapsed time and rate move.
fn show(bar: &ProgressBar, before: Option<Snapshot>, now: Snapshot) {
    if before.is_none_or(|before| template(before) != template(now)) {
        bar.set_style(style(template(now)));
    }
    if before != Some(now) {
        bar.set_length(now.selected as u64);
        bar.set_position(now.finished as u64);
        bar.set_message(Cow::Owned(now.message()));
    }
    bar.tick();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_counts_done_failed_and_running() {
        let now = Snapshot { selected: 40, finished: 13, failed: 1, running: 16, ..Snapshot::default() };
        assert_eq!(now.message(), "12 done, 1 failed, 16 running");
        let slowed = Snapshot { throttled: 3, halted: true, ..now };
        assert_eq!(slowed.message(), "12 done, 1 failed, 16 running, 3 throttled, halted");
    }

    #[test]
    fn counts_follow_the_accounts_and_the_bar_its_counts() {
        let progress = Progress::with_target(ProgressDrawTarget::hidden());
        assert!(progress.is_shown());
        for _ in 0..3 {
            progress.on_selected();
        }
        let running = progress.on_started();
        let second = progress.on_started();
        drop(second);
        progress.on_finished(true);
        let shared = progress.0.clone().unwrap();
        let now = shared.counts.snapshot();
        assert_eq!(now, Snapshot { selected: 3, finished: 1, failed: 1, running: 1, ..Snapshot::default() });
        drop(running);
        progress.on_finished(false);
        progress.on_listing_complete();
        let now = shared.counts.snapshot();
        assert_eq!(
            now,
            Snapshot { selected: 3, finished: 2, failed: 1, running: 0, listed: true, ..Snapshot::default() }
        );
        show(&shared.bar, None, now);
        assert_eq!((shared.bar.length(), shared.bar.position()), (Some(3), 2));
        assert_eq!(shared.bar.message(), "1 done, 1 failed, 0 running");
        progress.finish();
        progress.finish();
        assert!(shared.bar.is_finished());
    }

    #[test]
    fn a_pause_stops_the_clock() {
        let progress = Progress::with_target(ProgressDrawTarget::hidden());
        let shared = progress.0.clone().unwrap();
        let paused = progress.pause();
        std::thread::sleep(Duration::from_millis(300));
        drop(paused);
        assert!(shared.bar.elapsed() < Duration::from_millis(200), "{:?}", shared.bar.elapsed());
        progress.finish();
        drop(Progress::new(false).pause());
    }

    #[test]
    fn no_bar_does_nothing() {
        let progress = Progress::new(false);
        assert!(!progress.is_shown());
        progress.on_selected();
        drop(progress.on_started());
        progress.on_finished(true);
        assert_eq!(progress.suspend(|| 7), 7);
        progress.finish();
    }

    #[test]
    fn the_eta_waits_for_the_whole_listing() {
        let mut now = Snapshot::default();
        assert_eq!(template(now), WAITING);
        now.selected = 3;
        assert_eq!(template(now), LISTING);
        now.listed = true;
        assert_eq!(template(now), LISTED);
        assert!(LISTED.contains("{eta}") && !LISTING.contains("{eta}"));
    }

    #[test]
    fn the_templates_parse() {
        for template in [WAITING, LISTING, LISTED] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
}
