//! Live progress on a terminal: pending / running / done / failed, and retries as they happen.

use bulkhead::exec::{Event, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// An indicatif bar fed by run events.
pub struct Progress {
    bar: ProgressBar,
    total: usize,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    /// A bar for a run of `total` tasks.
    pub fn new(total: usize) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress {
            bar,
            total,
            running: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    fn refresh(&self) {
        let running = self.running.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let pending = self.total.saturating_sub(running + done + failed);
        self.bar.set_position((done + failed) as u64);
        self.bar.set_message(format!(
            "pending {pending}, running {running}, done {done}, failed {failed}"
        ));
    }

    /// Clears the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Progress {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::AttemptStarted { attempt: 1, .. } => {
                self.running.fetch_add(1, Ordering::Relaxed);
            }
            Event::AttemptStarted { .. } => {}
            Event::AttemptFinished { failure: None, .. } => {
                self.running.fetch_sub(1, Ordering::Relaxed);
                self.done.fetch_add(1, Ordering::Relaxed);
            }
            Event::AttemptFinished {
                task,
                attempt,
                failure: Some(f),
                retry_in: Some(d),
                ..
            } => {
                self.bar.println(bulkhead::text::printable(&format!(
                    "retry: `{task}` attempt {attempt} failed ({f}); next attempt in {d:.1?}"
                )));
            }
            Event::AttemptFinished {
                task,
                attempt,
                failure: Some(f),
                retry_in: None,
                ..
            } => {
                self.running.fetch_sub(1, Ordering::Relaxed);
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.bar.println(bulkhead::text::printable(&format!(
                    "failed: `{task}` attempt {attempt}: {f}"
                )));
            }
            Event::Skipped { task, because } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.bar.println(bulkhead::text::printable(&format!(
                    "skipped: `{task}` ({because})"
                )));
            }
            Event::Committing | Event::Committed { .. } => return,
        }
        self.refresh();
    }
}
