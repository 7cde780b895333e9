//! `--forking`: COMMAND is a launcher (`pg_ctl start`, nginx with `daemon
//! on`) that starts a daemon and exits. r4-exec is a child subreaper, so
//! the daemon, orphaned, becomes r4-exec's child even after `setsid`; r4-exec
//! stays while any such child lives, and with it the holder of the files
//! whose paths the daemon was given (`/proc/<holder>/fd/<n>`): they stay
//! valid for every reload (`pg_ctl reload`, `nginx -s reload`) until the
//! last descendant exits.
//!
//! The children are read from `/proc` (each `stat`'s parent pid): a
//! subreaper has no other list of the orphans it adopted. Every descendant
//! of COMMAND is a child of r4-exec or has a living parent that is one, so
//! "no child left but the holder" means none is left at all.

use nix::libc;

use super::child::{self, Ended};

/// r4-exec's children (zombies included) other than `except` (the holder).
pub(crate) fn children(except: Option<i32>) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| Some(pid) != except && parent_of(pid) == Some(own))
        .collect()
}

/// The parent pid in `/proc/<pid>/stat` (the field after the state, which
/// follows the last `)`: a name may hold spaces and parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_parent(&stat)
}

fn parse_parent(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `signo` to every child but `except`.
pub(crate) fn send_all(except: Option<i32>, signo: i32) {
    for pid in children(except) {
        let _ = child::send(pid, signo);
    }
}

/// Collects every exited child but `except` (whose end the holder's own
/// check must see); returns how the last one collected ended.
pub(crate) fn reap(except: Option<i32>) -> Option<Ended> {
    collect(&children(except))
}

/// Collects those of `pids` that exited; how the last one ended.
fn collect(pids: &[i32]) -> Option<Ended> {
    let mut last = None;
    for &pid in pids {
        let mut status = 0;
        // SAFETY: waitpid(2) on one pid writes the status into a local.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            last = Some(Ended::from_status(status));
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis() {
        assert_eq!(parse_parent("42 (postgres) S 7 42 42 0"), Some(7));
        assert_eq!(parse_parent("42 (a) b) (c) R 1 2 3"), Some(1));
        assert_eq!(parse_parent("42 (x"), None);
    }

    #[test]
    fn a_child_is_found_and_collected() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = sleeper.id() as i32;
        assert!(children(None).contains(&pid));
        assert!(!children(Some(pid)).contains(&pid));
        sleeper.kill().unwrap();
        // The zombie is still a child until collected.
        std::thread::sleep(std::time::Duration::from_millis(100));
        // (Other tests' children must stay theirs: only this one is collected.)
        let ended = collect(&[pid]).expect("collected");
        assert_eq!(ended.signal, Some(libc::SIGKILL));
        assert!(!children(None).contains(&pid));
        assert!(sleeper.try_wait().is_err(), "already collected");
    }
}
