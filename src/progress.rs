//! The live view of a run on the terminal.
//!
//! A person watching a replay wants to see which stage is running and how much
//! memory it holds right now, then the pipeline's own log lines. On a terminal
//! the current stage is redrawn in place; in a CI log each stage is one line.

use std::io::{IsTerminal, Write};

use crate::units::format_bytes;

/// Draws stage progress and log lines on stderr.
pub struct Progress {
    tty: bool,
    quiet: bool,
    label: String,
    current: Option<(String, f64)>,
    live_drawn: bool,
}

impl Progress {
    /// A display for stderr; `quiet` prints nothing but warnings.
    pub fn new(quiet: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            quiet,
            label: String::new(),
            current: None,
            live_drawn: false,
        }
    }

    /// Names the run whose stages follow (e.g. the strategy).
    pub fn begin(&mut self, label: &str) {
        self.label = label.to_string();
        self.current = None;
        self.line(&format!("▶ {label}"));
    }

    fn clear_live(&mut self) {
        if self.live_drawn {
            eprint!("\r\x1b[2K");
            self.live_drawn = false;
        }
    }

    fn line(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.clear_live();
        eprintln!("{text}");
    }

    /// A stage started at `t_s`.
    pub fn stage_start(&mut self, stage: &str, t_s: f64) {
        self.current = Some((stage.to_string(), t_s));
        if !self.tty {
            let label = self.label.clone();
            self.line(&format!("  [{label}] stage {stage} ..."));
        }
    }

    /// A stage ended with its exact peak.
    pub fn stage_end(&mut self, stage: &str, secs: f64, peak: u64) {
        self.current = None;
        let label = self.label.clone();
        self.line(&format!(
            "  [{label}] ✓ {stage:<24} {secs:>7.2}s   peak {}",
            format_bytes(peak)
        ));
    }

    /// A pipeline log line.
    pub fn log(&mut self, level: &str, message: &str) {
        let label = self.label.clone();
        self.line(&format!("  [{label}] {level} {message}"));
    }

    /// Something the user must see even in quiet mode.
    pub fn warn(&mut self, message: &str) {
        self.clear_live();
        eprintln!("warning: {message}");
    }

    /// Redraws the live line with the latest RSS (terminals only).
    pub fn tick(&mut self, now_s: f64, rss: u64) {
        if self.quiet || !self.tty {
            return;
        }
        let text = match &self.current {
            Some((stage, start)) => format!(
                "  [{}] ▸ {stage:<24} {:>7.1}s   RSS {}",
                self.label,
                now_s - start,
                format_bytes(rss)
            ),
            None => format!("  [{}] …  RSS {}", self.label, format_bytes(rss)),
        };
        eprint!("\r\x1b[2K{text}");
        let _ = std::io::stderr().flush();
        self.live_drawn = true;
    }

    /// Ends the live line.
    pub fn finish(&mut self) {
        self.clear_live();
    }
}
