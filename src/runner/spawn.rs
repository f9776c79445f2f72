//! Starting, stopping and reaping the measured child.
//!
//! A child must never outlive oomlab and must never be left behind when
//! oomlab stops it, so it is started as the leader of its own process group
//! with a parent-death signal, joins its memory cgroup before it execs, and
//! is stopped through both its group and its process tree.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

use super::enforce::Enforcement;
use super::limit::{kill_all, ChildCgroup, LimitBy, MemoryLimit};
use super::{ChildSpec, StageSource};
use crate::error::bad_input;
use crate::sampler::ProcessTree;

/// Starts the child with piped stdout/stderr, in `enforcement`'s cgroup if
/// it has one, else in `measure` (a cgroup made only to measure the tree's
/// peak). When joining the cgroup fails in the child under
/// `--limit-by auto` (`limit`), `enforcement` becomes the watchdog, with the
/// reason, and the child is started again outside any cgroup; when joining
/// `measure` fails, the child is started again without it and `measure` is
/// dropped (the peaks then come from the processes' own marks). A recorded
/// command that cannot be started is the user's input error, said in words
/// that tell what to fix.
pub fn spawn(
    spec: &ChildSpec,
    enforcement: &mut Enforcement,
    measure: &mut Option<ChildCgroup>,
    limit: Option<MemoryLimit>,
) -> Result<Child> {
    let spawned = build_command(spec, enforcement.cgroup().or(measure.as_ref())).spawn();
    let spawned = match (spawned, &*enforcement) {
        (Err(e), Enforcement::Cgroup { bytes, .. })
            if limit.map(|l| l.by) == Some(LimitBy::Auto) =>
        {
            // Joining the cgroup failed in the child: fall back to the watchdog.
            *enforcement = Enforcement::Watchdog {
                bytes: *bytes,
                fallback_reason: Some(format!("joining the cgroup failed: {e}")),
            };
            build_command(spec, None).spawn()
        }
        (Err(_), _) if measure.is_some() && enforcement.cgroup().is_none() => {
            // Joining the measuring cgroup failed (or the command cannot
            // run, which the retry says again): measure without it.
            *measure = None;
            build_command(spec, None).spawn()
        }
        (other, _) => other,
    };
    match spawned {
        Ok(child) => Ok(child),
        Err(e) if matches!(spec.stages, StageSource::Output(_)) => {
            Err(bad_input(spawn_error(&spec.program, &e)))
        }
        Err(e) => Err(e).with_context(|| format!("starting {}", spec.program.display())),
    }
}

fn build_command(spec: &ChildSpec, cgroup: Option<&ChildCgroup>) -> Command {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches oomlab alone,
        // which then stops the whole group (see `stop_tree`).
        .process_group(0);
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook makes only async-signal-safe syscalls (prctl, getppid)
    // and builds its error without allocating.
    unsafe {
        command.pre_exec(move || {
            // Dies with oomlab, however oomlab dies (even SIGKILL): a harness
            // must never leave a memory-hungry child behind.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // oomlab died between the fork and the prctl: do not run at all.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    if let Some(cg) = cgroup {
        // SAFETY: the hook only makes async-signal-safe syscalls on buffers
        // prepared before the fork (see `ChildCgroup::join_hook`).
        unsafe {
            command.pre_exec(cg.join_hook());
        }
    }
    command
}

/// Why a command given to `record` could not be started, in words that say
/// what to fix: not found (and where it was looked for), not executable, or
/// the system's own reason.
fn spawn_error(program: &std::path::Path, err: &std::io::Error) -> String {
    let shown = program.display();
    let is_path = program.components().count() > 1 || program.is_absolute();
    match err.kind() {
        std::io::ErrorKind::NotFound if is_path => {
            format!("cannot run `{shown}`: no such file")
        }
        std::io::ErrorKind::NotFound => format!(
            "cannot run `{shown}`: command not found in $PATH (for a file in this directory, give its path: ./{shown})"
        ),
        std::io::ErrorKind::PermissionDenied if program.is_dir() => {
            format!("cannot run `{shown}`: it is a directory, expected an executable file")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot run `{shown}`: permission denied (is it executable? `chmod +x`, or run it through its interpreter)"
        ),
        _ => format!("cannot run `{shown}`: {err}"),
    }
}

/// Kills the child's process group and every process of its tree, twice over
/// (a process forked between a look and the kill is found by the second
/// look). The group catches descendants that left the tree by being
/// orphaned; the tree catches those that left the group (`setsid`).
pub fn stop_tree(pid: i32) {
    for _ in 0..2 {
        let mut pids = ProcessTree::new(pid).live_pids();
        // SAFETY: kill has no memory-safety preconditions; `-pid` is the
        // child's own process group (it was started as its leader).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        pids.push(pid);
        kill_all(&pids);
    }
}

/// True once `pid` (our child) has exited, without reaping it: the runner
/// must keep the zombie until it has read everything, and reap it with
/// [`wait_with_rusage`] for the kernel's peak.
pub fn has_exited(pid: i32) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child to reap.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is valid to read for a waitid result.
    r == 0 && unsafe { info.si_pid() } == pid
}

/// Reaps `pid` with `wait4`, returning its exit status and `ru_maxrss` in bytes:
/// the kernel's peak RSS of the process (since its last VmHWM reset) and of any
/// descendant it reaped, whichever is larger.
pub fn wait_with_rusage(pid: i32) -> std::io::Result<(ExitStatus, Option<u64>)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into `status` and `usage`.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            let max_rss = (usage.ru_maxrss > 0).then(|| usage.ru_maxrss as u64 * 1024);
            return Ok((ExitStatus::from_raw(status), max_rss));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn shell(script: &str) -> ChildSpec {
        ChildSpec {
            label: "sh".into(),
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("OOMLAB_TEST_CODE".into(), "3".into())],
            stages: StageSource::Protocol,
        }
    }

    fn wait_for_exit(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has_exited(pid) {
            assert!(Instant::now() < deadline, "child {pid} did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_child_is_reaped_with_its_exit_code() {
        let mut enforcement = Enforcement::None;
        let child = spawn(
            &shell("exit $OOMLAB_TEST_CODE"),
            &mut enforcement,
            &mut None,
            None,
        )
        .unwrap();
        let pid = child.id() as i32;
        wait_for_exit(pid);
        // Still there to reap: has_exited only looked.
        assert!(has_exited(pid));
        let (status, _) = wait_with_rusage(pid).unwrap();
        // Reaped above, as the runner does.
        drop(child);
        assert_eq!(status.code(), Some(3));
    }

    /// True while `pid` is a live process (not gone, not a zombie).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    }

    #[test]
    fn stopping_kills_the_child_and_what_it_started() {
        use std::io::BufRead;
        let mut enforcement = Enforcement::None;
        let mut child = spawn(
            &shell("sleep 60 & echo $!; wait"),
            &mut enforcement,
            &mut None,
            None,
        )
        .unwrap();
        let pid = child.id() as i32;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        assert!(alive(grandchild));
        stop_tree(pid);
        wait_for_exit(pid);
        let (status, _) = wait_with_rusage(pid).unwrap();
        drop(child);
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(grandchild) {
            assert!(Instant::now() < deadline, "{grandchild} survived the stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn spawn_errors_say_what_to_fix() {
        use std::io::{Error, ErrorKind};
        use std::path::Path;
        let nf = Error::from(ErrorKind::NotFound);
        let m = spawn_error(Path::new("no-such-tool"), &nf);
        assert!(m.contains("`no-such-tool`") && m.contains("$PATH"), "{m}");
        let m = spawn_error(Path::new("./bin/tool"), &nf);
        assert!(m.contains("no such file") && !m.contains("PATH"), "{m}");
        let denied = Error::from(ErrorKind::PermissionDenied);
        let m = spawn_error(Path::new("/"), &denied);
        assert!(m.contains("directory"), "{m}");
        let m = spawn_error(Path::new("/etc/hostname"), &denied);
        assert!(m.contains("executable"), "{m}");
    }
}
