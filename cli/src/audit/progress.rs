//! Progress of a long audit or export: one line on stderr, rewritten in
//! place, and only when stderr is a terminal (a script's logs or a CI
//! transcript get the summary alone).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Told about each height as it is done.
pub trait Progress {
    /// `tip` heights are to be done.
    fn start(&mut self, tip: u64);
    /// `height` is done; `transactions` so far.
    fn verified(&mut self, height: u64, transactions: u64);
    /// Ends the line; may be called again, and after a failure.
    fn finish(&mut self);
}

/// Reports nothing: for callers such as the demo and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _tip: u64) {}
    fn verified(&mut self, _height: u64, _transactions: u64) {}
    fn finish(&mut self) {}
}

/// A progress line on stderr, redrawn at most ten times a second.
#[derive(Debug)]
pub struct TerminalProgress {
    verb: &'static str,
    tip: u64,
    started: Instant,
    last_drawn: Option<Instant>,
}

impl TerminalProgress {
    /// A terminal line with `verb` ("verifying", "exporting") if stderr is
    /// a terminal, else [`NoProgress`].
    pub fn on_stderr(verb: &'static str) -> Box<dyn Progress> {
        if std::io::stderr().is_terminal() {
            Box::new(TerminalProgress {
                verb,
                tip: 0,
                started: Instant::now(),
                last_drawn: None,
            })
        } else {
            Box::new(NoProgress)
        }
    }

    fn draw(&self, height: u64, transactions: u64) {
        let percent = (height * 100).checked_div(self.tip).unwrap_or(100);
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = if transactions > 0 {
            format!(
                ", {transactions} transactions, {:.0} tx/s",
                transactions as f64 / seconds
            )
        } else {
            String::new()
        };
        // Progress is a courtesy: a closed stderr must not fail the audit.
        let _ = write!(
            std::io::stderr(),
            "\r{} height {height}/{} ({percent}%){rate}   ",
            self.verb,
            self.tip,
        );
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, tip: u64) {
        self.tip = tip;
        self.started = Instant::now();
    }

    fn verified(&mut self, height: u64, transactions: u64) {
        let due = self
            .last_drawn
            .is_none_or(|last| last.elapsed() >= Duration::from_millis(100));
        if due || height == self.tip {
            self.draw(height, transactions);
            self.last_drawn = Some(Instant::now());
        }
    }

    fn finish(&mut self) {
        // Also called after a failure; the line ends once.
        if self.last_drawn.take().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}
