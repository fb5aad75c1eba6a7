//! Progress of long command-line work (seeding, snapshot export and
//! import): a bar on a terminal (`indicatif`), plain lines at most once a
//! second otherwise (CI logs), and a closing line with the time taken.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    label: &'static str,
    unit: &'static str,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Starts counting `total` things (`unit`, e.g. "images").
    pub fn new(label: &'static str, unit: &'static str, total: u64) -> Progress {
        let bar = (std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = ProgressBar::new(total);
            let template =
                format!("{label}: {{bar:40}} {{pos}}/{{len}} {unit} ({{elapsed}}) {{msg}}");
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Progress {
            label,
            unit,
            total,
            done: 0,
            bar,
            started: now,
            last_line: now,
        }
    }

    /// `n` more done; `what` names the latest.
    pub fn advance(&mut self, n: u64, what: &str) {
        self.done += n;
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_string());
                bar.inc(n);
            }
            None if self.last_line.elapsed() >= LINE_EVERY && self.done < self.total => {
                self.last_line = Instant::now();
                eprintln!(
                    "{}: {}/{} {} ({what})",
                    self.label, self.done, self.total, self.unit
                );
            }
            None => {}
        }
    }

    /// Ends the bar and prints `summary` with the time taken.
    pub fn finish(self, summary: &str) -> Duration {
        let elapsed = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {summary} in {:.2?}", self.label, elapsed);
        elapsed
    }
}
