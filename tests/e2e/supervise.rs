//! Supervisor mode with real processes: signals reach COMMAND and its exit
//! status comes back, zombies are reaped (as PID 1 and as a subreaper), a
//! change in R4 restarts COMMAND or, with `--reload-signal`, swaps in its
//! new file and signals it, and a failed refresh leaves it alone.
//!
//! Every COMMAND here loops `while kill -0 $PPID` so it never outlives a
//! failed test, and every wait polls for a condition under a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use r4_devserver::{Fault, FaultKind};

fn lines_starting(path: &Path, prefix: &str) -> Vec<String> {
    read(path)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Traps HUP, USR1 and INT (writes the name), TERM (writes it, exits 3).
const TRAPPER: &str = r#"f="$1"
for s in HUP USR1 INT; do trap "echo $s >> '$f'" "$s"; done
trap "echo TERM >> '$f'; exit 3" TERM
echo "ready $$" >> "$f"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;

#[test]
fn signals_reach_the_command_and_its_exit_code_comes_back() {
    let w = World::new();
    let f = w.path("signals");
    let mut r = Running::start(&w, &["--watch", "--watch-interval", "60"], TRAPPER, &f);
    wait_for("COMMAND to be ready", DEADLINE, || {
        read(&f).contains("ready")
    });
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGINT, "INT"),
    ] {
        r.signal(sig);
        wait_for(name, DEADLINE, || read(&f).lines().any(|l| l == name));
        assert!(r.is_running(), "{name} must not end r4-exec");
    }
    r.signal(Signal::SIGTERM);
    let status = r.wait();
    assert_eq!(status.code(), Some(3), "stderr: {}", r.stderr());
    let got: Vec<String> = read(&f).lines().skip(1).map(str::to_owned).collect();
    assert_eq!(got, ["HUP", "USR1", "INT", "TERM"]);
}

#[test]
fn the_command_is_a_child_in_its_own_group_with_clean_signals() {
    // The child is r4-exec's child, leads its own process group, and starts
    // with no blocked or ignored signal although r4-exec blocks them all.
    let w = World::new();
    let out = w
        .r4exec()
        .args([
            "--reap",
            "--",
            "sh",
            "-c",
            "echo $$ $PPID $(awk '{print $5}' /proc/$$/stat); exec grep -E '^Sig(Blk|Ign)' /proc/self/status",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut first = text.lines().next().unwrap().split_whitespace();
    let (pid, ppid, pgid) = (first.next(), first.next(), first.next());
    assert_ne!(pid, ppid);
    assert_eq!(pid, pgid, "COMMAND leads its own group: {text}");
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
}

#[test]
fn the_command_inherits_only_stdio() {
    // r4-exec holds a signalfd, an epoll instance, sockets, the masking
    // pipes and its end of the holder's socket: none of them may reach
    // COMMAND. Nor do the memfds: the holder keeps them.
    let w = World::new();
    let out = w
        .std_command()
        .args(["--watch", "--mask", "--reload-signal", "HUP", "--"])
        .args(["ls", "-l", "/proc/self/fd/"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_only_stdio_and(&stdout(&out), 0);
}

#[test]
fn exit_codes_and_death_by_signal_are_propagated() {
    use std::os::unix::process::ExitStatusExt;
    let w = World::new();
    for (script, code, signal) in [
        ("exit 42", Some(42), None),
        ("exit 0", Some(0), None),
        ("exit 130", Some(130), None),
        ("kill -KILL $$", None, Some(9)),
        ("kill -TERM $$", None, Some(15)),
        ("kill -USR2 $$", None, Some(12)),
    ] {
        // Outside PID 1, a COMMAND killed by signal N makes r4-exec die of N
        // too: its parent sees WIFSIGNALED, exactly as in exec mode.
        for mode in [&["--reap"][..], &[][..]] {
            let out = w
                .r4exec()
                .args(mode)
                .args(["--", "sh", "-c", script])
                .output()
                .unwrap();
            assert_eq!(
                (out.status.code(), out.status.signal()),
                (code, signal),
                "{mode:?} {script}: {}",
                stderr(&out)
            );
        }
    }
    // Exec errors keep exec mode's codes.
    let out = w
        .r4exec()
        .args(["--reap", "--", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
}

#[test]
fn signal_group_reaches_the_whole_process_group() {
    let w = World::new();
    let f = w.path("group");
    let script = r#"f="$1"
sh -c 'trap "echo grandchild-TERM >> \"$1\"; exit 0" TERM; echo grandchild-ready >> "$1"; while :; do sleep 0.05; done' sh "$f" &
trap "echo TERM >> '$f'; wait; exit 5" TERM
echo "ready $$" >> "$f"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let mut r = Running::start(&w, &["--signal-group"], script, &f);
    wait_for("both ready", DEADLINE, || {
        let t = read(&f);
        t.contains("ready ") && t.contains("grandchild-ready")
    });
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(5), "{}", r.stderr());
    let t = read(&f);
    assert!(t.contains("grandchild-TERM") && t.contains("\nTERM"), "{t}");
}

#[test]
fn a_signal_before_the_command_starts_ends_r4_exec_without_starting_it() {
    // A server that never answers keeps r4-exec resolving.
    let w = World::faulty(&["hang"]);
    let f = w.path("never");
    let mut r = Running::start(&w, &["--watch"], "echo started > \"$1\"", &f);
    std::thread::sleep(Duration::from_millis(300));
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(128 + 15));
    assert!(r.stderr().contains("not starting it"), "{}", r.stderr());
    assert!(!f.exists());
}

#[test]
fn zombies_are_reaped_when_r4_exec_is_pid_1() {
    if !require_namespaces("zombies_are_reaped_when_r4_exec_is_pid_1") {
        return;
    }
    let w = World::new();
    // Each inner sh exits at once; its `sleep` is orphaned, reparented to
    // PID 1 (r4-exec), and would stay a zombie after exiting unless reaped.
    let script = format!(
        r#"{ZOMBIES}echo "pid1=$(cat /proc/1/comm) parent=$PPID zombies=$z"
exit 7"#
    );
    let out = in_namespace(&w, &["--signal-group", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // COMMAND is r4-exec's child, r4-exec is PID 1, and no zombie is left.
    assert_eq!(stdout(&out).trim(), "pid1=r4-exec parent=1 zombies=0");
}

#[test]
fn reap_makes_r4_exec_a_subreaper_and_stops_the_rest_of_the_group() {
    let w = World::new();
    let p = w.path("orphan.pid");
    // An orphan reparented to r4-exec and reaped; then COMMAND exits leaving
    // a background process that ignores SIGTERM in its group.
    let script = r#"p="$1"
sh -c 'sleep 0.3 & echo $! > "$1"' sh "$p"
o=$(cat "$p")
echo "orphan-ppid=$(awk '/^PPid:/{print $2}' /proc/$o/status) r4=$PPID"
sleep 0.6
if [ -e /proc/$o ]; then echo "orphan=$(awk '/^State:/{print $2}' /proc/$o/status)"; else echo orphan=gone; fi
sh -c 'trap "" TERM; echo $$ > "$1.left"; while :; do sleep 0.05; done' sh "$p" &
while [ ! -s "$p.left" ]; do sleep 0.01; done
exit 0"#;
    let start = Instant::now();
    let out = w
        .r4exec()
        .args(["--reap", "--grace", "0.5", "--", "sh", "-c", script, "sh"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    let (ppid, r4) = first.split_once(' ').unwrap();
    assert_eq!(
        ppid.trim_start_matches("orphan-ppid="),
        r4.trim_start_matches("r4="),
        "{text}"
    );
    assert_eq!(lines.next(), Some("orphan=gone"), "{text}");
    let leftover: i32 = read(&w.path("orphan.pid.left")).trim().parse().unwrap();
    assert!(
        !Path::new(&format!("/proc/{leftover}")).exists(),
        "the process left in the group was killed"
    );
    assert!(stderr(&out).contains("sending SIGKILL"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// Records each start with the env secret and the file's content.
const RECORDER: &str = r#"f="$1"
n=0
cat "$TLS_KEY_FILE" > "$f.$$.0"
echo "start $$ $DB_PASSWORD" >> "$f"
trap 'n=$((n+1)); cat "$TLS_KEY_FILE" > "$f.$$.$n"; echo "reload $$ $n" >> "$f"' HUP
trap 'exit 0' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;

fn set_tls_key(w: &World, value: &str) {
    set_field(w, "Edge", "TLS", "private key", value);
}

fn pid_of(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap()
}

#[test]
fn a_changed_value_restarts_the_command_with_the_new_environment() {
    let w = World::new();
    let f = w.path("starts");
    let mut r = Running::start(
        &w,
        &["--watch", "--watch-interval", "0.2", "--grace", "5"],
        RECORDER,
        &f,
    );
    wait_for("first start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    let first = lines_starting(&f, "start").remove(0);
    assert!(first.ends_with(DB_PASSWORD), "{first}");
    // Polls with nothing changed do not restart.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(lines_starting(&f, "start").len(), 1, "{}", r.stderr());

    set_db_password(&w, "a brand new password");
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    let second = lines_starting(&f, "start").remove(1);
    assert!(second.ends_with("a brand new password"), "{second}");
    assert_ne!(pid_of(&first), pid_of(&second));
    assert!(
        r.stderr()
            .contains("DB_PASSWORD changed; restarting COMMAND (SIGTERM"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("a brand new password"));
    assert!(r.is_running());

    // A changed file without --reload-signal restarts too, with the new file.
    set_tls_key(&w, "new key, restarted");
    wait_for("the second restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 3
    });
    let third = lines_starting(&f, "start").remove(2);
    assert_eq!(
        read(&PathBuf::from(format!(
            "{}.{}.0",
            f.display(),
            pid_of(&third)
        ))),
        "new key, restarted"
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(0), "{}", r.stderr());
}

#[test]
fn a_command_ignoring_the_stop_signal_is_killed_after_the_grace_period() {
    let w = World::new();
    let f = w.path("stubborn");
    let script = r#"f="$1"
trap '' TERM
echo "start $$ $DB_PASSWORD" >> "$f"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let r = Running::start(
        &w,
        &["--watch", "--watch-interval", "0.2", "--grace", "0.3"],
        script,
        &f,
    );
    wait_for("first start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    set_db_password(&w, "another one");
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    assert!(r.stderr().contains("sending SIGKILL"), "{}", r.stderr());
    r.signal(Signal::SIGKILL);
}

#[test]
fn reload_signal_swaps_in_the_new_file_without_a_restart() {
    let w = World::new();
    let f = w.path("reloads");
    let mut r = Running::start(
        &w,
        &[
            "--watch",
            "--watch-interval",
            "0.2",
            "--reload-signal",
            "HUP",
        ],
        RECORDER,
        &f,
    );
    wait_for("first start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    let start = lines_starting(&f, "start").remove(0);
    let pid = pid_of(&start).to_owned();
    let content = |n: u32| read(&PathBuf::from(format!("{}.{pid}.{n}", f.display())));
    assert_eq!(content(0), TLS_KEY);

    set_tls_key(
        &w,
        "-----BEGIN TEST KEY-----\nrotated\n-----END TEST KEY-----\n",
    );
    wait_for("the reload", DEADLINE, || {
        lines_starting(&f, "reload").len() == 1
    });
    assert_eq!(lines_starting(&f, "reload")[0], format!("reload {pid} 1"));
    assert_eq!(
        content(1),
        "-----BEGIN TEST KEY-----\nrotated\n-----END TEST KEY-----\n"
    );
    assert_eq!(lines_starting(&f, "start").len(), 1, "no restart");
    assert!(
        r.stderr()
            .contains("TLS_KEY_FILE changed; swapped in the new file(s) and sent SIGHUP"),
        "{}",
        r.stderr()
    );

    // Shorter content: a whole new file, nothing of the old one left.
    set_tls_key(&w, "short");
    wait_for("the second reload", DEADLINE, || {
        lines_starting(&f, "reload").len() == 2
    });
    assert_eq!(content(2), "short");

    // An env secret cannot change in a running process: that restarts.
    set_db_password(&w, "env changes restart");
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    assert!(lines_starting(&f, "start")[1].ends_with("env changes restart"));
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(0), "{}", r.stderr());
}

#[test]
fn a_failed_refresh_leaves_the_command_running() {
    let w = World::new();
    let f = w.path("failing");
    let mut r = Running::start(&w, &["--watch", "--watch-interval", "0.2"], RECORDER, &f);
    wait_for("first start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    let admin = w.server.admin();
    for fault in [
        FaultKind::BadSignatureSummary,
        FaultKind::Unavailable,
        FaultKind::Rollback,
    ] {
        admin.set_faults(vec![Fault::new(fault)]);
        set_db_password(&w, &format!("not while {}", fault.name()));
        let before = r.stderr().matches("refresh failed").count();
        wait_for("a failed refresh", DEADLINE, || {
            r.stderr().matches("refresh failed").count() >= before + 2
        });
        assert_eq!(
            lines_starting(&f, "start").len(),
            1,
            "{}: {}",
            fault.name(),
            r.stderr()
        );
        assert!(r.is_running());
    }
    let err = r.stderr();
    for line in err.lines().filter(|l| l.contains("refresh failed")) {
        assert!(
            line.starts_with("r4-exec: refresh failed, COMMAND keeps running unchanged: "),
            "{line}"
        );
        assert!(!line.contains("not while"), "no value in messages: {line}");
    }
    assert!(err.contains("signature"), "{err}");
    assert!(err.contains("503") || err.contains("unavailable"), "{err}");
    assert!(err.contains("rollback"), "{err}");

    // Once the server behaves, the pending change is applied.
    admin.set_faults(Vec::new());
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    assert!(lines_starting(&f, "start")[1].ends_with("not while rollback"));
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(0));
}

#[test]
fn supervisor_flags_are_checked() {
    let w = World::new();
    for (args, want) in [
        (&["--watch-interval", "1"][..], "--watch"),
        (&["--reload-signal", "HUP"][..], "--watch"),
        (&["--watch", "--watch-interval", "0"][..], "more than 0"),
        (
            &["--watch", "--reload-signal", "KILL"][..],
            "cannot be handled",
        ),
        (&["--watch", "--stop-signal", "NOPE"][..], "not a signal"),
        (&["--reap", "--grace=-1"][..], "seconds"),
        (&["--on-change", "exit"][..], "--watch"),
        (&["--watch-splay", "1"][..], "--watch"),
        (&["--watch", "--on-change", "later"][..], "not a policy"),
        (
            &["--watch", "--on-change", "exit:300"][..],
            "not an exit code",
        ),
        (
            &["--watch", "--on-change", "signal:STOP"][..],
            "cannot be handled",
        ),
        (
            &["--watch", "--on-change", "exit", "--reload-signal", "HUP"][..],
            "cannot be used with",
        ),
    ] {
        let out = w.r4exec().args(args).args(["--", "true"]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

/// `cksum` of `value` ("CRC SIZE"), as the reader in COMMAND prints it.
fn cksum(value: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("cksum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    stdout(&child.wait_with_output().unwrap()).trim().to_owned()
}

/// Reads the file by its path in a loop, one `cksum` line per read, and
/// keeps one descriptor opened before the first refresh: on the first HUP
/// it copies what that descriptor reads.
const READER: &str = r#"f="$1"
exec 9<"$TLS_KEY_FILE"
trap '[ -e "$f.held" ] || cat <&9 > "$f.held"' HUP
echo "start $$ $TLS_KEY_FILE" >> "$f.log"
while kill -0 "$PPID" 2>/dev/null; do
  cksum < "$TLS_KEY_FILE" >> "$f" 2>&1 || echo "read failed" >> "$f"
done"#;

#[test]
fn a_reader_during_reloads_sees_the_old_or_the_new_value_never_a_mix() {
    let w = World::new();
    let a = format!("A{}\n", "0123456789abcdef".repeat(6 * 1024));
    let b = format!("B{}\n", "fedcba9876543210".repeat(3 * 1024 + 7));
    set_tls_key(&w, &a);
    let f = w.path("reads");
    let mut r = Running::start(
        &w,
        &[
            "--watch",
            "--watch-interval",
            "0.1",
            "--reload-signal",
            "HUP",
        ],
        READER,
        &f,
    );
    wait_for("the first reads", DEADLINE, || read(&f).lines().count() > 5);
    const REFRESHES: usize = 12;
    for i in 0..REFRESHES {
        set_tls_key(&w, if i % 2 == 0 { &b } else { &a });
        wait_for("the swap", DEADLINE, || {
            r.stderr().matches("swapped in the new file(s)").count() == i + 1
        });
        // Let the reader read each value for a while.
        let before = read(&f).lines().count();
        wait_for("reads of this value", DEADLINE, || {
            read(&f).lines().count() > before + 5
        });
    }
    let (ca, cb) = (cksum(&a), cksum(&b));
    let reads = read(&f);
    let mut seen = std::collections::HashMap::new();
    for line in reads.lines() {
        assert!(
            line == ca || line == cb,
            "a read saw neither value: {line:?} (expected {ca:?} or {cb:?})"
        );
        *seen.entry(line).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both values were read: {seen:?}");
    // One COMMAND all along, one path; the descriptor opened before the
    // first refresh still reads the first value.
    assert_eq!(lines_starting(&w.path("reads.log"), "start").len(), 1);
    assert_eq!(read(&w.path("reads.held")), a);
    assert!(r.is_running());
    r.signal(Signal::SIGTERM);
    r.wait();
}

#[test]
fn the_path_outlives_a_restart_of_the_command() {
    let w = World::new();
    let f = w.path("restarts");
    // The first COMMAND leaves a reader behind that outlives it, in a
    // session of its own (a restart ends COMMAND's process group, so a
    // descendant that stays in it does not outlive COMMAND); every COMMAND
    // records its path.
    let script = r#"f="$1"
echo "start $$ $TLS_KEY_FILE" >> "$f"
if [ ! -e "$f.bg" ]; then
  r4=$PPID f="$f" setsid sh -c 'while kill -0 "$r4" 2>/dev/null; do
     cat "$TLS_KEY_FILE" > "$f.tmp" 2>/dev/null || echo "read failed" > "$f.tmp"
     mv "$f.tmp" "$f.bg"; sleep 0.05
   done' &
fi
trap 'exit 0' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let mut r = Running::start(&w, &["--watch", "--watch-interval", "0.2"], script, &f);
    wait_for("the first start and the reader", DEADLINE, || {
        read(&w.path("restarts.bg")) == TLS_KEY
    });
    set_tls_key(&w, "after the restart");
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    wait_for("the orphaned reader to see the new value", DEADLINE, || {
        read(&w.path("restarts.bg")) == "after the restart"
    });
    let starts = lines_starting(&f, "start");
    let path = |line: &str| line.split_whitespace().nth(2).unwrap().to_owned();
    assert_ne!(pid_of(&starts[0]), pid_of(&starts[1]));
    assert_eq!(path(&starts[0]), path(&starts[1]), "the same path");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(0), "{}", r.stderr());
}

#[test]
fn if_the_holder_dies_the_command_is_stopped_and_r4_exec_exits_70() {
    let w = World::new();
    let f = w.path("holder");
    let script = r#"f="$1"
trap 'echo TERM >> "$f"; exit 0' TERM
echo "start $$ $TLS_KEY_FILE" >> "$f"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let mut r = Running::start(&w, &["--watch", "--watch-interval", "60"], script, &f);
    wait_for("the start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    let start = lines_starting(&f, "start").remove(0);
    let path = start.split_whitespace().nth(2).unwrap();
    let holder: i32 = path.split('/').nth(2).unwrap().parse().unwrap();
    assert_ne!(holder, r.pid().as_raw(), "the holder is not r4-exec");
    let comm = read(Path::new(&format!("/proc/{holder}/comm")));
    assert_eq!(comm.trim(), "r4-exec-holder");
    kill(Pid::from_raw(holder), Signal::SIGKILL).unwrap();
    assert_eq!(r.wait().code(), Some(70), "{}", r.stderr());
    assert!(read(&f).contains("TERM"), "COMMAND got the stop signal");
    assert!(
        r.stderr().contains("holder of COMMAND's file secrets")
            && r.stderr().contains("stopping COMMAND"),
        "{}",
        r.stderr()
    );
}

/// A world and r4-exec `--watch --watch-interval 0.2 --on-change POLICY`
/// around [`TRAPPER`], which records in the returned file; once it runs.
fn on_change(policy: &str) -> (World, PathBuf, Running) {
    let w = World::new();
    let f = w.path("signals");
    let args = ["--watch", "--watch-interval", "0.2", "--on-change", policy];
    let r = Running::start(&w, &args, TRAPPER, &f);
    wait_for("COMMAND to start", DEADLINE, || {
        lines_starting(&f, "ready").len() == 1
    });
    (w, f, r)
}

#[test]
fn on_change_exit_stops_the_command_and_exits_with_the_code() {
    for (policy, code) in [("exit", 75), ("exit:0", 0)] {
        let (w, f, mut r) = on_change(policy);
        std::thread::sleep(Duration::from_millis(500));
        assert!(r.is_running(), "no change, no exit: {}", r.stderr());
        set_db_password(&w, "rolled by the orchestrator");
        assert_eq!(r.wait().code(), Some(code), "{policy}: {}", r.stderr());
        assert_eq!(read(&f).lines().last(), Some("TERM"), "{}", read(&f));
        assert_eq!(lines_starting(&f, "ready").len(), 1, "never restarted");
        let err = r.stderr();
        assert!(
            err.contains(&format!(
                "DB_PASSWORD changed; stopping COMMAND (SIGTERM, SIGKILL after 10s) and exiting {code}"
            )),
            "{err}"
        );
        assert!(!err.contains("rolled by"), "{err}");
    }
}

#[test]
fn on_change_exit_also_covers_a_changed_file() {
    let (w, f, mut r) = on_change("exit:9");
    set_tls_key(&w, "a file change exits too");
    assert_eq!(r.wait().code(), Some(9), "{}", r.stderr());
    assert_eq!(read(&f).lines().last(), Some("TERM"), "{}", read(&f));
    assert!(
        r.stderr().contains("TLS_KEY_FILE changed"),
        "{}",
        r.stderr()
    );
}

#[test]
fn on_change_signal_swaps_the_file_and_sends_that_signal() {
    let (w, f, mut r) = on_change("signal:USR1");
    set_tls_key(&w, "reloaded by USR1");
    wait_for("USR1", DEADLINE, || lines_starting(&f, "USR1").len() == 1);
    assert_eq!(lines_starting(&f, "ready").len(), 1, "no restart");
    assert!(
        r.stderr()
            .contains("TLS_KEY_FILE changed; swapped in the new file(s) and sent SIGUSR1"),
        "{}",
        r.stderr()
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(3), "{}", r.stderr());
}

#[test]
fn on_change_restart_restarts_like_the_default() {
    let w = World::new();
    let f = w.path("starts");
    let args = [
        "--watch",
        "--watch-interval",
        "0.2",
        "--on-change",
        "restart",
    ];
    let mut r = Running::start(&w, &args, RECORDER, &f);
    wait_for("first start", DEADLINE, || {
        lines_starting(&f, "start").len() == 1
    });
    // Even a file change restarts: only signal:SIG swaps files in.
    set_tls_key(&w, "restart, not reload");
    wait_for("the restart", DEADLINE, || {
        lines_starting(&f, "start").len() == 2
    });
    assert!(lines_starting(&f, "reload").is_empty());
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait().code(), Some(0), "{}", r.stderr());
}

/// 20 supervisors started together with `--watch-splay 4`: their first
/// polls (the first `/vault/sync?cursor=` of each connection) spread over
/// the window instead of arriving together one interval after the start.
#[test]
fn splay_spreads_the_first_polls_of_a_fleet_over_the_window() {
    let l = Logged::start(&seed_text(true), |_| {});
    let w = &l.world;
    let (interval, window) = (0.5, 4.0);
    let fleet: Vec<Running> = (0..20)
        .map(|i| {
            let mut cmd = w.std_command();
            cmd.env("R4_BASE_URL", l.server.base_url())
                .args(["--watch", "--watch-interval", "0.5", "--watch-splay", "4"])
                .args([
                    "--",
                    "sh",
                    "-c",
                    "while kill -0 $PPID 2>/dev/null; do sleep 0.1; done",
                ]);
            Running::spawn(&mut cmd, w.path(&format!("r4-exec.{i}.stderr")))
        })
        .collect();
    let first_polls = || -> Vec<f64> {
        let mut by_conn: std::collections::BTreeMap<String, Vec<Req>> = Default::default();
        for req in l.requests() {
            by_conn.entry(req.conn.clone()).or_default().push(req);
        }
        by_conn
            .values()
            .filter_map(|reqs| {
                let start = reqs.first()?.start;
                let poll = reqs.iter().find(|r| r.path.contains("cursor="))?;
                Some((poll.start - start) / 1000.0)
            })
            .collect()
    };
    wait_for("every first poll", Duration::from_secs(30), || {
        first_polls().len() >= 20
    });
    let delays = first_polls();
    let (min, max) = delays
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
    assert!(
        min >= interval * 0.9,
        "a poll before the interval: {delays:?}"
    );
    assert!(
        max <= interval * 1.1 + window + 2.0,
        "a poll after the window: {delays:?}"
    );
    // Without the splay every first poll falls within 0.1 s of the others;
    // 20 uniform draws over 4 s all within 1 s: p < 1e-10.
    assert!(max - min > window / 4.0, "not spread: {delays:?}");
    // Dropping each Running kills it and its COMMAND.
    drop(fleet);
}

/// `--forking`: the launcher exits 0 and its detached daemon (`setsid`)
/// keeps r4-exec, and the daemon's file path, alive; r4-exec exits with the
/// daemon's status. A stop signal reaches the detached daemon; one that
/// ignores it gets SIGKILL after `--grace`. A launcher that fails is the
/// status at once, as with `--reap`.
#[test]
fn forking_stays_for_the_daemon_a_launcher_leaves() {
    use std::os::unix::process::ExitStatusExt;
    let w = World::new();
    let f = w.path("daemon");
    // The daemon reads its file after the launcher is gone, then exits 7.
    let script = r#"setsid sh -c 'sleep 0.3; wc -c < "$TLS_KEY_FILE" > "$1"; exit 7' sh "$1" &
exit 0"#;
    let out = w
        .r4exec()
        .args(["-v", "--forking", "--", "sh", "-c", script, "sh"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(read(&f).trim(), TLS_KEY.len().to_string());
    assert!(
        stderr(&out).contains("left 1 process(es) running (--forking)"),
        "{}",
        stderr(&out)
    );

    let stubborn = r#"setsid sh -c 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.05; done' sh "$1" &
exit 0"#;
    let g = w.path("stubborn");
    let mut cmd = w.std_command();
    cmd.args([
        "--forking",
        "--grace",
        "0.3",
        "--",
        "sh",
        "-c",
        stubborn,
        "sh",
    ])
    .arg(&g);
    let mut r = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
    wait_for("the daemon to start", DEADLINE, || !read(&g).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        r.is_running(),
        "r4-exec stays for the daemon: {}",
        r.stderr()
    );
    r.signal(Signal::SIGTERM);
    let status = r.wait();
    assert_eq!(status.signal(), Some(libc_sigkill()), "{}", r.stderr());
    assert!(
        r.stderr().contains("daemons did not stop within"),
        "{}",
        r.stderr()
    );
    let daemon = read(&g).trim().to_owned();
    assert!(
        !Path::new(&format!("/proc/{daemon}")).exists(),
        "the daemon was killed"
    );

    let out = w
        .r4exec()
        .args(["--forking", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

fn libc_sigkill() -> i32 {
    Signal::SIGKILL as i32
}
