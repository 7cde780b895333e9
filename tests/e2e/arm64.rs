//! The arm64 r4-exec under qemu-user: the static aarch64 binary of
//! `packaging/build-static-arm64.sh` (Debian's cross toolchain in a sid
//! chroot) run by `qemu-aarch64-static`, named explicitly, so no binfmt_misc
//! registration is needed. COMMAND is a program of the host, which r4-exec's
//! execve(2) starts natively.
//!
//! - the empty root of `empty_root.rs`, the same checks, with the emulator
//!   copied into the root to run /r4-exec (exec mode: r4-exec is not PID 1);
//! - the same as PID 1 (supervising COMMAND, the `[files]` holder), where
//!   r4-exec's re-execution of itself needs a binfmt_misc entry: one of a
//!   user namespace of the test's own;
//! - an end-to-end run against the devserver: env secrets and `[files]` /
//!   `r4+file://` secrets arrive (compared by SHA-256, never printed);
//! - the multi-arch image index of `packaging/build-image.sh`.
//!
//! These tests do not build the arm64 binary (a cold build makes a Debian
//! chroot): `.ci/run` runs the script before `cargo test`. Without the binary
//! or qemu-user the tests say SKIPPED, and fail under CI.
//!
//! Under qemu-user, r4-exec's `/proc/self/stat` is qemu's, whose field 51
//! (where the environment block starts) reads 0: r4-exec notes that it
//! cannot wipe its credentials from /proc/PID/environ, and goes on. The
//! kernel's copy there is the one qemu started with anyway.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::empty_root::{check_in_an_empty_root, world_with_child, Start};
use crate::util::*;

const TARGET: &str = "aarch64-unknown-linux-gnu";

/// Where `packaging/build-static-arm64.sh` leaves the binary.
fn arm64_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    root.join(target).join(TARGET).join("release/r4-exec")
}

/// `qemu-aarch64-static` (Debian's qemu-user-static) from PATH.
fn qemu() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("qemu-aarch64-static"))
        .find(|p| p.is_file())
}

/// The arm64 binary, or `None` (SKIPPED, or a failure under CI) when it
/// has not been built.
fn arm64_built(test: &str) -> Option<PathBuf> {
    let bin = arm64_binary();
    require(
        bin.is_file(),
        test,
        &format!(
            "the arm64 static binary {} (packaging/build-static-arm64.sh)",
            bin.display()
        ),
    )
    .then_some(bin)
}

/// The arm64 binary and the emulator, or `None` (SKIPPED, or a failure
/// under CI) when one is missing.
fn arm64_and_qemu(test: &str) -> Option<(PathBuf, PathBuf)> {
    let bin = arm64_built(test)?;
    let qemu = qemu();
    require(
        qemu.is_some(),
        test,
        "qemu-aarch64-static (qemu-user-static) in PATH",
    )
    .then_some((bin, qemu?))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn the_arm64_binary_runs_in_an_empty_root_under_qemu() {
    const TEST: &str = "the_arm64_binary_runs_in_an_empty_root_under_qemu";
    let Some((bin, qemu)) = arm64_and_qemu(TEST) else {
        return;
    };
    if !require_namespaces(TEST) {
        return;
    }
    let Some(w) = world_with_child(TEST) else {
        return;
    };
    check_in_an_empty_root(&w, &bin, Start::Emulated(&qemu), "ARM aarch64");
}

/// Whether this kernel gives a user namespace a binfmt_misc of its own
/// (Linux 6.7+).
fn private_binfmt_misc() -> bool {
    Command::new("unshare")
        .args(["--user", "--map-root-user", "-m", "sh", "-c"])
        .arg("mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// As PID 1, the path a container's entrypoint takes: COMMAND supervised,
/// the `[files]` memfds in the holder, which r4-exec starts by re-executing
/// itself. Under qemu-user that execve(2) needs the kernel to run an
/// aarch64 file: a binfmt_misc entry, here one of a user namespace of the
/// test's own, so the host's registrations (none, on our machines) are
/// neither needed nor touched.
#[test]
fn the_arm64_binary_is_pid_1_of_an_empty_root_with_binfmt_misc() {
    const TEST: &str = "the_arm64_binary_is_pid_1_of_an_empty_root_with_binfmt_misc";
    let Some((bin, qemu)) = arm64_and_qemu(TEST) else {
        return;
    };
    if !require_namespaces(TEST)
        || !require(
            private_binfmt_misc(),
            TEST,
            "a binfmt_misc of a user namespace's own (Linux 6.7+)",
        )
    {
        return;
    }
    let Some(w) = world_with_child(TEST) else {
        return;
    };
    check_in_an_empty_root(&w, &bin, Start::Binfmt(&qemu), "ARM aarch64");
}

/// What COMMAND prints: the SHA-256 of each secret, the path kind of each
/// file secret, and whether r4-exec's credentials reached it.
const HASHES: &str = r#"h() { sha256sum | cut -d' ' -f1; }
printf '%s' "$DB_PASSWORD" | h
printf '%s' "$STRIPE_KEY" | h
printf '%s' "$DB_USER" | h
h < "$TLS_KEY_FILE"
h < "$STRIPE_FILE"
for f in "$TLS_KEY_FILE" "$STRIPE_FILE"; do
  case "$f" in /proc/*/fd/*) echo memfd;; *) echo "not a memfd path";; esac
done
[ -z "${R4_API_KEY+x}${R4_PRIVATE_KEY_FILE+x}" ] && echo clean || echo leaked
"#;

#[test]
fn the_arm64_binary_resolves_from_the_devserver_under_qemu() {
    const TEST: &str = "the_arm64_binary_resolves_from_the_devserver_under_qemu";
    let Some((bin, qemu)) = arm64_and_qemu(TEST) else {
        return;
    };
    let w = World::new();
    // r4.toml: DB_PASSWORD and STRIPE_KEY by env, TLS_KEY_FILE in [files];
    // from the environment: an r4:// and an r4+file:// reference.
    let out = w
        .command(&qemu)
        .arg(&bin)
        .env("DB_USER", "r4://Production Secrets/Production DB/Username")
        .env(
            "STRIPE_FILE",
            "r4+file://Production Secrets/Stripe/secret key",
        )
        .args(["--", "sh", "-c", HASHES])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let expected: Vec<String> = [DB_PASSWORD, STRIPE, DB_USER, TLS_KEY, STRIPE]
        .iter()
        .map(|v| sha256(v.as_bytes()))
        .chain(["memfd", "memfd", "clean"].map(String::from))
        .collect();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), expected);
    assert_no_value("stderr", &stderr(&out));

    // The same binary's own view of itself: an aarch64 r4-exec.
    let version = Command::new(&qemu).arg(&bin).arg("--version").output();
    let version = version.unwrap();
    assert!(version.status.success(), "{}", stderr(&version));
    assert!(
        stdout(&version).starts_with("r4-exec "),
        "{}",
        stdout(&version)
    );
}

/// `podman --runtime runc …` (as in container.rs).
fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc"]);
    cmd
}

/// The stdout of a podman command that must succeed.
fn podman_ok(args: &[&str]) -> String {
    let out = podman().args(args).output().unwrap();
    assert!(out.status.success(), "podman {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The name given to `packaging/build-image.sh`: its index and its two
/// images are removed when dropped.
struct Index(String);

impl Index {
    fn tag(&self) -> String {
        format!("{}:{}", self.0, env!("CARGO_PKG_VERSION"))
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let tag = self.tag();
        let _ = podman().args(["manifest", "rm", &tag]).output();
        for arch in ["amd64", "arm64"] {
            let _ = podman()
                .args(["rmi", "-f", &format!("{tag}-{arch}")])
                .output();
        }
    }
}

/// A container made (never started) from an image, removed when dropped.
struct Created(String);

impl Drop for Created {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn the_image_index_holds_both_architectures() {
    const TEST: &str = "the_image_index_holds_both_architectures";
    let Some(arm64) = arm64_built(TEST) else {
        return;
    };
    let engine = Command::new("podman").arg("--version").output();
    if !require(
        engine.is_ok_and(|o| o.status.success()),
        TEST,
        "podman (a container engine)",
    ) {
        return;
    }
    let amd64 = static_binary().to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let index = Index(format!(
        "localhost/r4-exec-index-test-{}",
        std::process::id()
    ));
    let out = Command::new(root.join("packaging/build-image.sh"))
        .env("R4_IMAGE", &index.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image.sh: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim(), index.tag());

    let list: serde_json::Value =
        serde_json::from_str(&podman_ok(&["manifest", "inspect", &index.tag()])).unwrap();
    let mut platforms: Vec<(String, String)> = list["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            let platform = &m["platform"];
            (
                format!("{}/{}", platform["os"], platform["architecture"]).replace('"', ""),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    platforms.sort();
    let names: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);

    // Each entry's /r4-exec is that architecture's binary. By digest: this
    // podman's `create --platform` of a local index picks the host's entry.
    for ((platform, digest), bin) in platforms.iter().zip([&amd64, &arm64]) {
        let image = format!("{}@{digest}", index.0);
        let described = podman_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            &image,
        ]);
        assert_eq!(described.trim(), platform);
        let created = Created(podman_ok(&["create", &image]).trim().to_owned());
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("r4-exec");
        podman_ok(&[
            "cp",
            &format!("{}:/r4-exec", created.0),
            copy.to_str().unwrap(),
        ]);
        let copied = std::fs::read(&copy).unwrap();
        assert_eq!(
            sha256(&copied),
            sha256(&std::fs::read(bin).unwrap()),
            "{platform}: /r4-exec is not {}",
            bin.display()
        );
    }
}
