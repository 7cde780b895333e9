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

/// The empty root: `bin` as /r4-exec, the child, r4.toml, the agent key, a
/// /proc mount point and, for a binary of another architecture, `emulator`
/// (a static qemu-user) as /emulator, which runs /r4-exec.
fn build_root(w: &World, bin: &Path, emulator: Option<&Path>) -> PathBuf {
    let root = w.path("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy(bin, root.join("r4-exec")).unwrap();
    if let Some(emulator) = emulator {
        std::fs::copy(emulator, root.join("emulator")).unwrap();
    }
    std::fs::copy(w.path("child"), root.join("child")).unwrap();
    std::fs::copy(w.path("agent.pem"), root.join("agent.pem")).unwrap();
    std::fs::write(root.join("r4.toml"), CONFIG).unwrap();
    root
}

/// r4-exec in the root: PID 1 of a PID namespace of its own (a container's
/// entrypoint, supervising COMMAND), or, `emulated`, run by /emulator in
/// this PID namespace (see [`check_in_an_empty_root`]).
fn run_in_root(w: &World, root: &Path, base_url: &str, emulated: bool) -> std::process::Output {
    let mut cmd = Command::new("unshare");
    cmd.args(if emulated {
        ["-m", "-f"].as_slice()
    } else {
        &["-m", "-p", "-f"]
    })
    .arg(format!("--mount-proc={}", root.join("proc").display()))
    .arg("chroot")
    .arg(root);
    if emulated {
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
    check_in_an_empty_root(&w, static_binary(), None, "statically linked");
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
/// root holding nothing else it resolves from `w`'s devserver by IP and by
/// the name `localhost` and hands COMMAND the env and the file secret, and
/// not its credentials. `emulator`, a static qemu-user, runs a binary of
/// another architecture; COMMAND is the host's either way.
///
/// The emulated r4-exec is not PID 1, and so execs COMMAND (exec mode): as
/// PID 1 it would supervise COMMAND and keep the `[files]` memfds in a
/// holder, its own binary re-executed (`/proc/self/exe`, which qemu-user
/// translates to /r4-exec), and without a binfmt_misc entry for aarch64 the
/// kernel cannot execute an aarch64 file (ENOEXEC): the holder would not
/// start. On arm64 hardware, or with binfmt_misc, that path is the amd64 one.
pub fn check_in_an_empty_root(w: &World, bin: &Path, emulator: Option<&Path>, kind: &str) {
    let size = std::fs::metadata(bin).unwrap().len();
    assert!(
        size <= BUDGET,
        "{}: {size} bytes, over the budget of {BUDGET}",
        bin.display()
    );
    let root = build_root(w, bin, emulator);
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
        let out = run_in_root(w, &root, &url, emulator.is_some());
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("{}|{}|clean", DB_PASSWORD.len(), &TLS_KEY[..24]),
            "{url}"
        );
    }
}
