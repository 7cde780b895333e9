//! r4-exec in supervisor mode under a real outer supervisor: honcho (a
//! Procfile runner) and supervisord (with `stopasgroup`). Under `--watch`
//! COMMAND leads a process group of its own, so the outer supervisor's
//! group signal reaches r4-exec only; r4-exec must still end COMMAND's whole
//! group, as exec mode does, and leave no descendant behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// COMMAND: a shell that starts a long `sleep` (its child, in its group),
/// writes the child's pid to FILE and waits.
const PARENT_AND_CHILD: &str = "sleep 600 & echo $! > child.pid; wait";

/// Whether `pid` is gone (or a zombie nobody reaped: dead all the same).
fn gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty()
        || stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
}

fn child_pid(w: &World) -> i32 {
    wait_for("COMMAND's child", DEADLINE, || {
        read(&w.path("child.pid")).trim().parse::<i32>().is_ok()
    });
    read(&w.path("child.pid")).trim().parse().unwrap()
}

/// Waits for `cond` at most `limit`; false when it did not happen.
fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// The world's environment for a program that is not r4-exec.
fn with_world_env(w: &World, program: &str) -> Command {
    w.command(Path::new(program))
}

#[test]
fn honcho_stops_a_watched_command_and_its_children() {
    if !require(
        on_path("honcho"),
        "honcho_stops_…",
        "honcho (pip install honcho)",
    ) {
        return;
    }
    let w = World::new();
    let procfile = format!(
        "web: {} --watch --grace 2 -- sh -c '{PARENT_AND_CHILD}'\n",
        bin().display()
    );
    std::fs::write(w.path("Procfile"), procfile).unwrap();
    let mut honcho = with_world_env(&w, "honcho")
        .args(["start", "-f", "Procfile"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = child_pid(&w);
    kill(Pid::from_raw(honcho.id() as i32), Signal::SIGTERM).unwrap();
    let ended = within(Duration::from_secs(15), || {
        honcho.try_wait().unwrap().is_some()
    });
    let child_gone = within(Duration::from_secs(5), || gone(child));
    if !ended {
        let _ = honcho.kill();
    }
    let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    assert!(ended, "honcho did not finish within 15 s");
    assert!(child_gone, "COMMAND's child {child} survived honcho's stop");
}

#[test]
fn supervisord_stopasgroup_stops_a_watched_command_and_its_children() {
    if !require(
        on_path("supervisord") && on_path("supervisorctl"),
        "supervisord_stopasgroup_…",
        "supervisord (Debian: supervisor)",
    ) {
        return;
    }
    let w = World::new();
    let sock = w.path("supervisor.sock");
    let conf = format!(
        "[unix_http_server]\nfile={sock}\n\
         [supervisord]\nnodaemon=true\nlogfile={log}\npidfile={pid}\n\
         [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
         [supervisorctl]\nserverurl=unix://{sock}\n\
         [program:app]\ncommand={bin} --watch --grace 2 -- sh -c \"{script}\"\n\
         directory={dir}\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=10\nautorestart=false\n\
         environment=R4_BASE_URL=\"{url}\",R4_API_KEY=\"{key}\",R4_PRIVATE_KEY_FILE=\"{pem}\",R4_CONFIG=\"{config}\"\n",
        sock = sock.display(),
        log = w.path("supervisord.log").display(),
        pid = w.path("supervisord.pid").display(),
        bin = bin().display(),
        script = PARENT_AND_CHILD,
        dir = w.dir.path().display(),
        url = w.server.base_url(),
        key = API_KEY,
        pem = w.path("agent.pem").display(),
        config = w.path("r4.toml").display(),
    );
    let conf_path = w.path("supervisord.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut supervisord = Command::new("supervisord")
        .args(["-n", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = child_pid(&w);
    let stop = Command::new("supervisorctl")
        .arg("-c")
        .arg(&conf_path)
        .args(["stop", "app"])
        .output()
        .unwrap();
    let child_gone = within(Duration::from_secs(5), || gone(child));
    let _ = kill(Pid::from_raw(supervisord.id() as i32), Signal::SIGTERM);
    let _ = supervisord.wait();
    let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    assert!(stop.status.success(), "{}", stdout(&stop));
    assert!(
        child_gone,
        "COMMAND's child {child} survived `supervisorctl stop`"
    );
}
