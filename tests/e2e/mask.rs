//! `--mask` end to end: the real binary, a real COMMAND printing its
//! secrets (raw, base64, percent-encoded, split across two writes) on stdout
//! and stderr, and what comes out of r4-exec.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;
use base64::Engine;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const MARKER: &str = "[r4:masked]";

fn assert_no_secret(text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in [DB_PASSWORD, STRIPE, TLS_KEY] {
        assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
        assert!(
            !text.contains(&b64.encode(secret)),
            "base64 of {secret:?} leaked:\n{text}"
        );
    }
    assert!(!text.contains("correct horse"), "{text}");
}

#[test]
fn secrets_and_their_encodings_are_masked_on_stdout_and_stderr() {
    let w = World::new();
    let script = r#"printf 'db=%s\n' "$DB_PASSWORD"
printf '%s' "$STRIPE_KEY" | base64
echo 'url=postgres://admin:correct%20horse%20battery%20staple@db'
printf 'err=%s\n' "$STRIPE_KEY" >&2
cat "$TLS_KEY_FILE"
printf 'split=%s' "${DB_PASSWORD%battery staple}"
sleep 0.2
printf '%s|\n' 'battery staple'
echo done"#;
    let out = w
        .std_command()
        .args(["--mask", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text,
        format!(
            "db={MARKER}\n{MARKER}\nurl=postgres://admin:{MARKER}@db\n{MARKER}\n\n\nsplit={MARKER}|\ndone\n"
        )
    );
    assert!(
        stderr(&out).contains(&format!("err={MARKER}\n")),
        "{}",
        stderr(&out)
    );
    assert_no_secret(&text);
    assert_no_secret(&stderr(&out));
}

#[test]
fn masked_output_is_streamed_while_the_command_runs() {
    let w = World::new();
    let mut child = w
        .std_command()
        .args([
            "--mask",
            "--",
            "sh",
            "-c",
            r#"echo first; printf 'pw=%s\n' "$DB_PASSWORD"; while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => got.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("output not streamed; got {got:?}");
            }
        }
    }
    assert_eq!(got, ["first".to_string(), format!("pw={MARKER}")]);
    assert!(child.try_wait().unwrap().is_none(), "still running");
    kill(pid, Signal::SIGTERM).unwrap();
    // The TERM reaches COMMAND, which dies of it; r4-exec dies of it too
    // (outside PID 1), as exec mode would.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(15));
}

#[test]
fn values_under_four_bytes_are_not_masked() {
    let w = World::new();
    set_field(&w, "Production Secrets", "Stripe", "secret key", "abc");
    let out = w
        .std_command()
        .args([
            "--mask",
            "--",
            "sh",
            "-c",
            r#"printf '%s %s\n' "$STRIPE_KEY" "$DB_PASSWORD""#,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("abc {MARKER}\n"));
}

#[test]
fn new_values_are_masked_after_a_restart() {
    let w = World::new();
    let log = w.path("stdout");
    let mut child = w
        .std_command()
        .args([
            "--watch",
            "--watch-interval",
            "0.2",
            "--mask",
            "--",
            "sh",
            "-c",
            r#"trap 'exit 0' TERM; printf 'pw=%s\n' "$DB_PASSWORD"; while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_lines = |n: usize| {
        wait_for("COMMAND's output", DEADLINE, || {
            read(&log).lines().count() >= n
        })
    };
    wait_lines(1);
    set_db_password(&w, "rotated password value");
    wait_lines(2);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let text = read(&log);
    assert_eq!(text, format!("pw={MARKER}\npw={MARKER}\n"));
    assert!(!text.contains("rotated"));
}

#[test]
fn mask_refuses_a_terminal() {
    if !require(
        on_path("script"),
        "mask_refuses_a_terminal",
        "`script` (util-linux) to run r4-exec on a terminal",
    ) {
        return;
    }
    let w = World::new();
    let line = format!("'{}' --mask -- echo should-not-run", bin().display());
    let out = w
        .command(Path::new("script"))
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(
        text.contains("--mask needs stdout and stderr to be pipes or files"),
        "{text}"
    );
    assert!(!text.contains("should-not-run"), "{text}");
}
