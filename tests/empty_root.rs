//! The static binary in an empty root, standing in for `FROM scratch`: a
//! directory holding only r4-exec (static), a static COMMAND, r4.toml, the
//! agent key and an empty /proc mount point, entered with `unshare` and
//! `chroot`, resolving from the in-process devserver on loopback both by the
//! name `localhost` and by IP. No /etc, no libc, no CA files, no NSS.
//!
//! The static binary is built by `packaging/build-static.sh` (`.ci/run` runs
//! it first); this test builds it when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const STATIC_BIN: &str = "target/x86_64-unknown-linux-gnu/release/r4-exec";

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

fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join(STATIC_BIN);
    if !bin.exists() {
        let status = Command::new(root.join("packaging/build-static.sh"))
            .status()
            .unwrap();
        assert!(status.success(), "packaging/build-static.sh failed");
    }
    bin
}

fn namespaces_allowed() -> bool {
    Command::new("unshare")
        .args(["-m", "-p", "-f", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn build_root(w: &World) -> PathBuf {
    let root = w.path("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy(static_binary(), root.join("r4-exec")).unwrap();
    let src = w.path("child.c");
    std::fs::write(&src, CHILD_C).unwrap();
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(root.join("child"))
        .arg(&src)
        .status()
        .expect("a C compiler (cc) to build the static test program");
    assert!(cc.success());
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
    if !namespaces_allowed() {
        eprintln!("SKIPPED: this kernel forbids mount/PID namespaces (unshare -m -p failed)");
        return;
    }
    let w = World::new();
    let root = build_root(&w);
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
