//! Every action that holds a credential or a secret runs hardened (the one
//! start-up path, `src/startup/mod.rs`): while `check`, `trust` and `rotate-key`
//! wait for a slow server, their soft core-file limit is 0, although they
//! were started with core files allowed. Before the start-up path was
//! shared, only exec mode hardened itself: `check` decrypted everything and
//! `rotate-key` held two private keys in a process that could dump core.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use r4_devserver::ServerGuard;

/// The soft core-file limit of `pid`, as `/proc/PID/limits` shows it.
fn soft_core_limit(pid: u32) -> Option<String> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    line.split_whitespace().nth(4).map(str::to_owned)
}

/// Runs r4-exec with `args` against a server answering after 1.5 s, with
/// core files allowed at start; returns the soft core limits seen while it
/// ran (polled until it exits).
fn limits_while_running(world: &World, server: &ServerGuard, args: &[&str]) -> Vec<String> {
    let mut cmd = world.std_command();
    cmd.env("R4_BASE_URL", server.base_url())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    allow_core_files(&mut cmd);
    let mut child = cmd.spawn().expect("r4-exec");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Some(limit) = soft_core_limit(child.id()) {
            if seen.last() != Some(&limit) {
                seen.push(limit);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// Starts the command with an unlimited core-file size.
fn allow_core_files(cmd: &mut Command) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = nix::sys::resource::RLIM_INFINITY;
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_CORE,
                unlimited,
                unlimited,
            )
            .map_err(std::io::Error::from)
        });
    }
}

fn slow_server() -> ServerGuard {
    server_with(&seed_text(true), |opts| opts.latency_ms = 1500)
}

fn assert_hardened(what: &str, seen: &[String]) {
    assert_eq!(
        seen.last().map(String::as_str),
        Some("0"),
        "{what}: soft core limit while waiting for the server: {seen:?}"
    );
}

#[test]
fn check_runs_hardened() {
    let world = World::new();
    let server = slow_server();
    assert_hardened("check", &limits_while_running(&world, &server, &["check"]));
}

#[test]
fn trust_runs_hardened() {
    let world = World::new();
    let server = slow_server();
    assert_hardened("trust", &limits_while_running(&world, &server, &["trust"]));
}

#[test]
fn rotate_key_runs_hardened() {
    let world = World::new();
    let server = slow_server();
    let (path, _) = new_key(&world);
    let path = path.to_string_lossy().into_owned();
    let seen = limits_while_running(&world, &server, &["rotate-key", "--new-key", &path]);
    assert_hardened("rotate-key", &seen);
}

/// The control: the same probe sees an unhardened process as unlimited.
#[test]
fn the_probe_sees_an_unhardened_process() {
    let mut cmd = Command::new("sleep");
    cmd.arg("0.3");
    allow_core_files(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(soft_core_limit(child.id()).as_deref(), Some("unlimited"));
    child.wait().unwrap();
}
