//! "Nothing written to disk, ever": the full flow under `strace -f` shows no
//! file created, renamed, linked, removed or opened for writing by r4-exec
//! before it execs COMMAND; file secrets go to `memfd_create`.

use crate::util::*;

const WRITE_FLAGS: [&str; 5] = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
const FORBIDDEN: [&str; 14] = [
    "creat(",
    "mkdir(",
    "mkdirat(",
    "rename(",
    "renameat(",
    "renameat2(",
    "link(",
    "linkat(",
    "symlink(",
    "symlinkat(",
    "unlink(",
    "unlinkat(",
    "truncate(",
    "mknodat(",
];

#[test]
fn the_full_flow_writes_nothing_to_disk_before_exec() {
    if !require(
        on_path("strace"),
        "the_full_flow_writes_nothing_to_disk_before_exec",
        "strace (apt-get install strace)",
    ) {
        return;
    }
    let w = World::new();
    let trace = w.path("strace.out");
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-s", "128", "-o"])
        .arg(&trace)
        .args(["-e", "trace=%file,%desc,memfd_create"])
        .arg(bin())
        .args(["--", "true"])
        .envs(
            w.std_command()
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k, v))),
        )
        .env_remove("PATH")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(w.dir.path())
        .output()
        .expect("strace");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let execs: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("execve(") && !lines[i].contains("= -1"))
        .collect();
    assert!(execs.len() >= 2, "r4-exec did not exec COMMAND:\n{text}");
    let before_child = &lines[..execs[1]];
    assert!(lines[execs[1]].contains("true"), "{}", lines[execs[1]]);
    for line in before_child {
        let call = line
            .split_once(' ')
            .map_or(*line, |(_, rest)| rest.trim_start());
        if call.starts_with("open") {
            for flag in WRITE_FLAGS {
                assert!(!call.contains(flag), "opened for writing: {line}");
            }
        }
        for f in FORBIDDEN {
            assert!(!call.starts_with(f), "filesystem change: {line}");
        }
    }
    let memfds = before_child
        .iter()
        .filter(|l| l.contains("memfd_create(\"TLS_KEY_FILE\"") && l.contains("MFD_ALLOW_SEALING"))
        .count();
    assert_eq!(memfds, 1, "{text}");
    assert!(
        before_child.iter().any(|l| l.contains("F_ADD_SEALS")),
        "memfd not sealed:\n{text}"
    );
}
