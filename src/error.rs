//! Exit codes and the error type that carries them.
//!
//! Every way oomlab can end is a documented exit code (see README, "Exit codes"),
//! so scripts and CI jobs can tell a regression from a typo from a crash.

use std::fmt;

/// The documented exit codes. Scripts depend on these numbers: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything ran and every strategy completed.
    Ok = 0,
    /// A gate found a regression, or a capacity check does not fit.
    Failed = 1,
    /// Bad input: a scenario, size, flag, baseline or report that cannot be used.
    BadInput = 2,
    /// Preflight refused to start a child that would not fit in this machine.
    Refused = 3,
    /// No setting fits the given memory budget.
    NoFit = 4,
    /// A strategy was killed for crossing its memory limit (the report is complete).
    OomKilled = 5,
    /// A strategy crashed or exited non-zero (the report says how).
    ChildFailed = 6,
    /// A bug or an I/O failure in oomlab itself.
    Internal = 70,
    /// Stopped by SIGINT (Ctrl-C): the child was killed, the partial report
    /// written (128 + 2, as a shell reports a process killed by SIGINT).
    Interrupted = 130,
    /// Stopped by SIGTERM: as [`Exit::Interrupted`] (128 + 15).
    Terminated = 143,
}

impl Exit {
    /// The exit code of a run stopped by `signal` (SIGTERM: 143, else 130).
    pub fn for_signal(signal: i32) -> Exit {
        if signal == libc::SIGTERM {
            Exit::Terminated
        } else {
            Exit::Interrupted
        }
    }
}

/// An error that knows which exit code it ends the program with.
///
/// Wrapped inside `anyhow::Error`; `main` looks for it in the chain, and anything
/// without one is an internal error.
#[derive(Debug)]
pub struct ExitError {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for ExitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// Builds a bad-input error (exit 2) with a message that names what was wrong.
pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ExitError {
        exit: Exit::BadInput,
        message: message.into(),
    })
}

/// Builds an error with an explicit exit code.
pub fn exit_with(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ExitError {
        exit,
        message: message.into(),
    })
}

/// Finds the exit code an error chain asks for (internal when none does).
pub fn exit_code_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitError>())
        .map(|e| e.exit)
        .unwrap_or(Exit::Internal)
}
