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

/// `--mask` on a terminal (`script` gives r4-exec one): COMMAND gets a
/// pseudo-terminal of its own — stdin, stdout and stderr are terminals, the
/// window size is the real one and follows SIGWINCH, job control works in
/// its session — and what it prints is still masked, split across writes
/// and in base64url too; r4-exec's terminal is put back as it was.
#[test]
fn mask_on_a_terminal_gives_command_a_terminal_and_still_masks() {
    if !require(
        on_path("script") && on_path("stty"),
        "mask_on_a_terminal_…",
        "`script` (util-linux) to run r4-exec on a terminal",
    ) {
        return;
    }
    let w = World::new();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(DB_PASSWORD);
    let (first, second) = DB_PASSWORD.split_at(DB_PASSWORD.len() / 2);
    let inner = format!(
        r#"[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty=yes
echo size=$(stty size)
printf 'pw=%s\n' "$DB_PASSWORD"
printf 'b64url=%s\n' '{url}'
printf 'split=%s' '{first}'; sleep 0.2; printf '%s|\n' '{second}'
set -m; (sleep 0.1) & fg >/dev/null && echo jobs=ok
# (Off again: with job control each command leads the foreground, and
# SIGWINCH would go to the sleep below, not to this shell.)
set +m
trap 'echo winch=$(stty size); exit 0' WINCH
echo ready
i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done"#
    );
    let line = format!(
        "stty rows 33 cols 101; before=$(stty -g); '{}' --mask -- sh -c \"$0\" </dev/tty & r=$!; \
         sleep 1; stty rows 44 cols 120; wait $r; echo status=$?; \
         [ \"$(stty -g)\" = \"$before\" ] && echo restored=yes",
        bin().display()
    );
    let out = w
        .command(Path::new("script"))
        .args([
            "-qec",
            &format!(
                "sh -c '{}' '{}'",
                line.replace('\'', "'\\''"),
                inner.replace('\'', "'\\''")
            ),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out).replace("\r\n", "\n");
    for want in [
        "tty=yes\n",
        "size=33 101\n",
        &format!("pw={MARKER}\n"),
        &format!("b64url={MARKER}\n"),
        &format!("split={MARKER}|\n"),
        "jobs=ok\n",
        "winch=44 120\n",
        "status=0\n",
        "restored=yes\n",
    ] {
        assert!(
            text.contains(want),
            "{want:?} missing in:\n{text}\n{}",
            stderr(&out)
        );
    }
    assert!(!text.contains(&url), "{text}");
    assert_no_secret(&text);
}
