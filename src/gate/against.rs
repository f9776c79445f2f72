//! `gate --against REV`: the base revision checked out in a temporary git
//! worktree, so that base and head run in the same job, on the same machine,
//! minutes apart. For runners too noisy (or too varied) for a committed
//! baseline: the comparison never leaves the job.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::error::bad_input;

/// A temporary worktree at the base revision; removed when dropped, so an
/// error or a failed run on either side never leaves it behind.
#[derive(Debug)]
pub struct BaseWorktree {
    /// The worktree's root.
    pub root: PathBuf,
    /// Where the current directory's counterpart is in it (same path below
    /// the repository root), for resolving relative arguments.
    pub cwd: PathBuf,
    /// The revision as given (named in the verdict).
    pub rev: String,
    /// The commit it named when checked out (a branch may move meanwhile).
    pub commit: String,
    /// The repository the worktree belongs to (where `git worktree remove` runs).
    repo: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| bad_input(format!("--against: cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(bad_input(format!(
            "--against: `git {}` failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl BaseWorktree {
    /// Checks `rev` out (detached) in a fresh temporary directory. Refuses
    /// (exit 2) outside a git repository or for a revision git does not know.
    pub fn checkout(rev: &str) -> Result<BaseWorktree> {
        let here = std::env::current_dir()?;
        let repo = PathBuf::from(git(&here, &["rev-parse", "--show-toplevel"])?);
        let prefix = git(&here, &["rev-parse", "--show-prefix"])?;
        let commit = git(
            &here,
            &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        )?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let root =
            std::env::temp_dir().join(format!("oomlab-gate-base-{}-{stamp}", std::process::id()));
        let root_text = root.display().to_string();
        git(
            &repo,
            &[
                "worktree", "add", "--detach", "--quiet", &root_text, &commit,
            ],
        )?;
        Ok(BaseWorktree {
            cwd: root.join(prefix),
            root,
            rev: rev.to_string(),
            commit,
            repo,
        })
    }

    /// The head's argv with every relative path that exists in the base
    /// worktree (whole arguments, or the value of `--flag=value`) pointed
    /// into it; placeholders, flags and program names stay as they are.
    pub fn resolve_argv(&self, template: &[OsString]) -> Vec<OsString> {
        resolve_argv(template, &self.cwd)
    }
}

/// See [`BaseWorktree::resolve_argv`].
pub fn resolve_argv(template: &[OsString], base_cwd: &Path) -> Vec<OsString> {
    let resolve = |text: &str| -> Option<String> {
        if text.is_empty() || text.contains('{') || Path::new(text).is_absolute() {
            return None;
        }
        let there = base_cwd.join(text);
        there.exists().then(|| there.display().to_string())
    };
    template
        .iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else {
                return arg.clone();
            };
            if let Some(p) = (!text.starts_with('-')).then(|| resolve(text)).flatten() {
                return OsString::from(p);
            }
            if let Some((flag, value)) = text.split_once('=') {
                if flag.starts_with('-') {
                    if let Some(p) = resolve(value) {
                        return OsString::from(format!("{flag}={p}"));
                    }
                }
            }
            arg.clone()
        })
        .collect()
}

impl Drop for BaseWorktree {
    fn drop(&mut self) {
        let root = self.root.display().to_string();
        if git(&self.repo, &["worktree", "remove", "--force", &root]).is_err() {
            let _ = std::fs::remove_dir_all(&self.root);
            let _ = git(&self.repo, &["worktree", "prune"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_existing_relative_paths_move() {
        let dir = std::env::temp_dir().join(format!("oomlab-against-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/p.py"), "").unwrap();
        let t: Vec<OsString> = [
            "python3",
            "src/p.py",
            "--data={data_dir}",
            "--x=src/p.py",
            "-v",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let got = resolve_argv(&t, &dir);
        let p = dir.join("src/p.py").display().to_string();
        assert_eq!(got[0], "python3");
        assert_eq!(got[1], OsString::from(&p));
        assert_eq!(got[2], "--data={data_dir}");
        assert_eq!(got[3], OsString::from(format!("--x={p}")));
        assert_eq!(got[4], "-v");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
