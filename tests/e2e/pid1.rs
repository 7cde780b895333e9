//! r4-exec as PID 1 (a container's entrypoint) with no flag: it stays
//! COMMAND's init instead of handing PID 1 to a program never written to be
//! one — COMMAND is its child, signals are forwarded, orphans reaped, and
//! r4-exec exits with COMMAND's status (128+N for a signal: a PID 1 cannot
//! die of one). `--no-init` keeps plain `execve`. Run in a PID namespace
//! (`unshare --pid --fork`); CI runs as root, where that always works.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// The host pid of unshare's child (r4-exec, PID 1 inside).
fn namespace_init(unshare: &Child) -> u32 {
    let path = format!("/proc/{0}/task/{0}/children", unshare.id());
    let mut pid = None;
    wait_for("unshare to start a child", Duration::from_secs(10), || {
        pid = read(Path::new(&path))
            .split_whitespace()
            .next()
            .map(|p| p.parse().unwrap());
        pid.is_some()
    });
    pid.unwrap()
}

#[test]
fn as_pid_1_r4_exec_is_commands_init_and_reaps_orphans() {
    let w = World::new();
    // Orphaned `sleep`s are reparented to PID 1 and must not stay zombies.
    let script = format!(
        r#"{ZOMBIES}echo "pid1=$(cat /proc/1/comm) me=$$ parent=$PPID zombies=$z secret=$DB_PASSWORD"
exit 7"#
    );
    let out = in_namespace(&w, &["--", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("pid1=r4-exec me="),
        "r4-exec stays PID 1: {text}"
    );
    assert!(
        text.trim_end()
            .ends_with(&format!("parent=1 zombies=0 secret={DB_PASSWORD}")),
        "{text}"
    );
}

#[test]
fn as_pid_1_a_stop_ends_a_command_that_has_no_handler() {
    let w = World::new();
    let mut unshare = in_namespace(&w, &["--", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare (util-linux)");
    let init = namespace_init(&unshare);
    // Wait until COMMAND runs (r4-exec has a child).
    let children = format!("/proc/{init}/task/{init}/children");
    wait_for("COMMAND to start", DEADLINE, || {
        !read(Path::new(&children)).trim().is_empty()
    });
    let stopped = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = unshare.wait().unwrap();
    // `sleep` as PID 1 would ignore SIGTERM (no handler) until SIGKILL.
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
}

#[test]
fn no_init_makes_command_pid_1() {
    let w = World::new();
    let out = in_namespace(&w, &["--no-init", "--", "sh", "-c", "echo pid=$$"])
        .output()
        .expect("unshare (util-linux)");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "pid=1");
}
