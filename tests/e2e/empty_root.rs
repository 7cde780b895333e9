//! The static binary in an empty root, standing in for `FROM scratch`: a
//! directory holding only r4-exec (static), a static COMMAND, r4.toml, the
//! agent key and an empty /proc mount point, entered with `unshare` and
//! `chroot`, resolving from the in-process devserver on loopback both by the
//! name `localhost` and by IP. No /etc, no libc, no CA files, no NSS.
//!
//! The binary is the one that ships: `packaging/build-static.sh` builds it
//! (size-tuned AWS-LC, 6 MiB budget) and this test runs the script every
//! time, leaving it to cargo to rebuild only what changed: after `.ci/run`'s
//! own build, or a previous run, it is a no-op of a few seconds; from
//! nothing, a release build of several minutes.
//!
//! Needs root (mount and PID namespaces, chroot) and `cc` with a static libc
//! (`libc6-dev`); without them the test says SKIPPED, and fails under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// The size budget of the static binary (build-static.sh checks it too).
const BUDGET: u64 = 6 * 1024 * 1024;

/// A static C program that proves what it received: the env secret's length
/// and the first bytes of the memfd-delivered file, read by its path.
const CHILD_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    const char *v = getenv("DB_PASSWORD");
    const char *p = getenv("TLS_KEY_FILE");
    char buf[64] = {0};
    if (!v || !p) { puts("missing"); return 3; }
    int fd = open(p, O_RDONLY);
    if (fd < 0) { perror(p); return 4; }
    if (read(fd, buf, 24) < 0) return 5;
    printf("%zu|%s|%s\n", strlen(v), buf, getenv("R4_API_KEY") ? "leaked" : "clean");
    return 0;
}
"#;

/// A static C program that proves what it arrived with, or why it could
/// not be built.
fn build_child(dir: &Path, out: &Path) -> Result<(), String> {
    let src = dir.join("child.c");
    std::fs::write(&src, CHILD_C).unwrap();
    cc_static(&src, out)
}

/// How /r4-exec starts in the empty root.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    /// Natively, as PID 1 of a PID namespace of its own: a container's
    /// entrypoint, which supervises COMMAND and keeps the `[files]` memfds
    /// in a holder process (its own binary re-executed, `/proc/self/exe`).
    Native,
    /// Run by the static qemu-user `0`, copied into the root as /emulator,
    /// in this PID namespace: not PID 1, so r4-exec execs COMMAND (exec
    /// mode). As PID 1 its holder would not start: qemu-user turns the
    /// execve(2) of /proc/self/exe into one of /r4-exec, an aarch64 file
    /// the kernel cannot execute without a binfmt_misc entry (ENOEXEC).
    Emulated(&'a Path),
    /// As PID 1, natively as far as it knows: the kernel hands /r4-exec (and
    /// the holder's re-execution) to the emulator `0` through a binfmt_misc
    /// entry of a user namespace of the test's own, no one else's
    /// (binfmt_misc instances per user namespace: Linux 6.7+).
    Binfmt(&'a Path),
}

/// The binfmt_misc entry of [`Start::Binfmt`]: aarch64 ELF executables (the
/// magic and mask qemu-user-static registers), run by the root's /emulator
/// (opened now: `F`), their argv[0] preserved (`P`; the holder is known by
/// it).
fn binfmt_entry(root: &Path) -> String {
    format!(
        ":r4-test-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00\
         :\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff\
         :{}:PF",
        root.join("emulator").display()
    )
}

/// The empty root: `bin` as /r4-exec, the child, r4.toml, the agent key, a
/// /proc mount point and, to run a binary of another architecture, the
/// emulator as /emulator.
fn build_root(w: &World, bin: &Path, start: Start) -> PathBuf {
    let root = w.path("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy(bin, root.join("r4-exec")).unwrap();
    if let Start::Emulated(emulator) | Start::Binfmt(emulator) = start {
        std::fs::copy(emulator, root.join("emulator")).unwrap();
    }
    std::fs::copy(w.path("child"), root.join("child")).unwrap();
    std::fs::copy(w.path("agent.pem"), root.join("agent.pem")).unwrap();
    std::fs::write(root.join("r4.toml"), CONFIG).unwrap();
    root
}

/// r4-exec in the root, started as `start` says.
fn run_in_root(w: &World, root: &Path, base_url: &str, start: Start) -> std::process::Output {
    let mut cmd = Command::new("unshare");
    match start {
        Start::Native => cmd.args(["-m", "-p", "-f"]),
        Start::Emulated(_) => cmd.args(["-m", "-f"]),
        Start::Binfmt(_) => cmd.args(["--user", "--map-root-user", "-m", "-p", "-f"]),
    };
    cmd.arg(format!("--mount-proc={}", root.join("proc").display()));
    if let Start::Binfmt(_) = start {
        // The user namespace's own binfmt_misc, mounted on its new /proc.
        cmd.args([
            "sh",
            "-ec",
            r#"m="$1/proc/sys/fs/binfmt_misc"; mount -t binfmt_misc binfmt_misc "$m"
               printf '%s\n' "$2" > "$m/register"; shift 2; exec chroot "$@""#,
            "sh",
        ])
        .arg(root)
        .arg(binfmt_entry(root));
    } else {
        cmd.arg("chroot");
    }
    cmd.arg(root);
    if let Start::Emulated(_) = start {
        cmd.arg("/emulator");
    }
    cmd.args(["/r4-exec", "-c", "/r4.toml", "--", "/child"])
        .env_clear()
        // For unshare to find chroot; inside the root there is nothing to find.
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("R4_BASE_URL", base_url)
        .env("R4_API_KEY", API_KEY)
        .env("R4_PRIVATE_KEY_FILE", "/agent.pem")
        .current_dir(w.dir.path())
        .output()
        .unwrap()
}

#[test]
fn the_static_binary_runs_in_an_empty_root() {
    const TEST: &str = "the_static_binary_runs_in_an_empty_root";
    if !require_namespaces(TEST) {
        return;
    }
    let Some(w) = world_with_child(TEST) else {
        return;
    };
    check_in_an_empty_root(&w, static_binary(), Start::Native, "statically linked");
}

/// A world holding the static child, or `None` (SKIPPED, or a failure under
/// CI) where no static C toolchain is installed.
pub fn world_with_child(test: &str) -> Option<World> {
    let w = World::new();
    let child = build_child(w.dir.path(), &w.path("child"));
    require(
        child.is_ok(),
        test,
        &format!(
            "cc -static (a C compiler and a static libc: build-essential): {}",
            child.err().unwrap_or_default().trim()
        ),
    )
    .then_some(w)
}

/// The checks of the empty root for the static binary `bin`: within the
/// budget, `file` says it is statically linked (and holds `kind`), and in a
/// root holding nothing else, started as `start` says, it resolves from
/// `w`'s devserver by IP and by the name `localhost` and hands COMMAND the
/// env and the file secret, and not its credentials. COMMAND is the host's,
/// also for an emulated r4-exec.
pub fn check_in_an_empty_root(w: &World, bin: &Path, start: Start, kind: &str) {
    let size = std::fs::metadata(bin).unwrap().len();
    assert!(
        size <= BUDGET,
        "{}: {size} bytes, over the budget of {BUDGET}",
        bin.display()
    );
    let root = build_root(w, bin, start);
    let file = Command::new("file")
        .arg(root.join("r4-exec"))
        .output()
        .unwrap();
    let described = stdout(&file);
    assert!(described.contains("statically linked"), "{described}");
    assert!(described.contains(kind), "{described}");

    let by_ip = w.server.base_url().to_string();
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    for url in [by_ip, by_name] {
        let out = run_in_root(w, &root, &url, start);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("{}|{}|clean", DB_PASSWORD.len(), &TLS_KEY[..24]),
            "{url}"
        );
    }
}
