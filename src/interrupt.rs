//! Ctrl-C and SIGTERM while oomlab measures: stop the child, keep what was measured.
//!
//! Killed by its default signal action, the harness would leave its child
//! running (a replay child can hold gigabytes) and lose every figure of the
//! run. The runner installs a [`Guard`] for exactly as long as a measured
//! child runs: the first SIGINT or SIGTERM then only records the signal; the
//! runner's wait loop polls [`received`] (at least every 100 ms), kills the
//! child's process group and tree, no other child starts, and the command
//! writes the partial report, marked interrupted, and exits 130 (SIGINT) or
//! 143 (SIGTERM), as a shell reports a process killed by that signal.
//!
//! Outside a child's run (loading, writing reports, drawing) the default
//! action applies: there is no child to leave behind, the samples are on disk
//! and every report file is written atomically, and a phase that does not
//! poll the flag can never swallow a signal. A second signal during a run
//! means "now": the default action ends oomlab at once, and the kernel kills
//! the direct child with it (`PR_SET_PDEATHSIG`, set by the runner).

use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal received while a guard was installed (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The signals that interrupt a measurement.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

extern "C" fn on_signal(signo: libc::c_int) {
    if RECEIVED
        .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // The user insists: the default action, now. Only async-signal-safe
        // calls (sigaction, raise) on stack memory.
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid disposition.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signo, &default, std::ptr::null_mut());
            libc::raise(signo);
        }
    }
}

/// While alive, SIGINT and SIGTERM are recorded instead of killing oomlab;
/// dropping it restores the previous handling (the recorded signal stays).
pub struct Guard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Guard {
    /// Installs the handler for SIGINT and SIGTERM.
    pub fn install() -> Self {
        let mut previous = Vec::new();
        for signo in SIGNALS {
            // SAFETY: zeroed sigaction structs are valid; the handler only
            // touches an atomic and async-signal-safe calls; SA_RESTART keeps
            // the readers' blocking reads going.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signo, &action, &mut old) == 0 {
                    previous.push((signo, old));
                }
            }
        }
        Self { previous }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (signo, old) in &self.previous {
            // SAFETY: restores a disposition the kernel gave us.
            unsafe { libc::sigaction(*signo, old, std::ptr::null_mut()) };
        }
    }
}

/// The interrupting signal, once one was received.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signo => Some(signo),
    }
}

/// `SIGINT`, `SIGTERM`, or `signal N`, for messages and reports.
pub fn signal_name(signo: i32) -> String {
    match signo {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler_of(signo: libc::c_int) -> usize {
        // SAFETY: querying (null new action) only writes into `old`.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signo, std::ptr::null(), &mut old);
            old.sa_sigaction
        }
    }

    /// Outside a child's run the previous handling is back, so no phase that
    /// does not poll the flag can swallow a signal.
    #[test]
    fn the_guard_restores_the_previous_handling() {
        let before = SIGNALS.map(handler_of);
        {
            let _guard = Guard::install();
            for signo in SIGNALS {
                assert_eq!(
                    handler_of(signo),
                    on_signal as extern "C" fn(libc::c_int) as usize
                );
            }
        }
        assert_eq!(SIGNALS.map(handler_of), before);
        assert_eq!(received(), None);
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
    }
}
