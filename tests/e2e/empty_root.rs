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

/// Where build-static.sh puts it, under the target directory.
const STATIC_BIN: &str = "x86_64-unknown-linux-gnu/release/r4-exec";
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

/// Runs `packaging/build-static.sh` as `.ci/run` does and returns the
/// binary. cargo passes `.cargo/config.toml`'s `AWS_LC_SYS_SMALL=0` (and
/// its own `CARGO_*` variables) into this test's environment: left there,
/// the script would build the 7.4 MB fast variant, without its budget
/// check, and rebuild on every alternation with `.ci/run`.
fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("packaging/build-static.sh"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_TARGET_DIR" {
            cmd.env_remove(name.as_ref());
        }
    }
    let out = cmd.env("AWS_LC_SYS_SMALL", "1").output().unwrap();
    assert!(
        out.status.success(),
        "packaging/build-static.sh failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    root.join(target).join(STATIC_BIN)
}

fn namespaces_allowed() -> bool {
    Command::new("unshare")
        .args(["-m", "-p", "-f", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A static C program that proves what it arrived with, or why it could
/// not be built.
fn build_child(dir: &Path, out: &Path) -> Result<(), String> {
    let src = dir.join("child.c");
    std::fs::write(&src, CHILD_C).unwrap();
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(&src)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if cc.status.success() {
        Ok(())
    } else {
        Err(stderr(&cc))
    }
}

fn build_root(w: &World, bin: &Path) -> PathBuf {
    let root = w.path("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy(bin, root.join("r4-exec")).unwrap();
    std::fs::copy(w.path("child"), root.join("child")).unwrap();
    std::fs::copy(w.path("agent.pem"), root.join("agent.pem")).unwrap();
    std::fs::write(root.join("r4.toml"), CONFIG).unwrap();
    root
}

fn run_in_root(w: &World, root: &Path, base_url: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["-m", "-p", "-f"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("chroot")
        .arg(root)
        .args(["/r4-exec", "-c", "/r4.toml", "--", "/child"])
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
    if !require(
        namespaces_allowed(),
        TEST,
        "mount and PID namespaces (unshare -m -p failed: run as root)",
    ) {
        return;
    }
    let w = World::new();
    let child = build_child(w.dir.path(), &w.path("child"));
    if !require(
        child.is_ok(),
        TEST,
        &format!(
            "cc -static (a C compiler and a static libc: build-essential): {}",
            child.err().unwrap_or_default().trim()
        ),
    ) {
        return;
    }
    let bin = static_binary();
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(
        size <= BUDGET,
        "{}: {size} bytes, over the budget of {BUDGET}",
        bin.display()
    );
    let root = build_root(&w, &bin);
    let file = Command::new("file")
        .arg(root.join("r4-exec"))
        .output()
        .unwrap();
    assert!(
        stdout(&file).contains("statically linked"),
        "{}",
        stdout(&file)
    );

    let by_ip = w.server.base_url().to_string();
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    for url in [by_ip, by_name] {
        let out = run_in_root(&w, &root, &url);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("{}|{}|clean", DB_PASSWORD.len(), &TLS_KEY[..24]),
            "{url}"
        );
    }
}
