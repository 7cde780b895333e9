//! The harness of kubectl-r4's tests: the binary, prerequisites, podman
//! images that are removed when dropped, and a real registry (Debian's
//! `docker-registry`, distribution v2) on a loopback port, stopped when
//! dropped. Nothing outlives the test that made it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `kubectl-r4 wrap ARGS` with `input` on stdin, in a clean environment
/// (no auth file of this machine is read).
pub fn wrap(input: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-r4"))
        .arg("wrap")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl-r4");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("kubectl-r4")
}

/// [`wrap`], which must succeed: its stdout.
pub fn wrap_ok(input: &str, args: &[&str]) -> String {
    let out = wrap(input, args);
    assert!(
        out.status.success(),
        "kubectl-r4 wrap {args:?}: {}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out),
        "",
        "a successful run prints nothing on stderr"
    );
    stdout(&out)
}

/// [`wrap`], which must fail: exit 1, nothing on stdout, one line on
/// stderr holding every fragment; that line.
pub fn wrap_fails(input: &str, args: &[&str], fragments: &[&str]) -> String {
    let out = wrap(input, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(stdout(&out), "", "stdout of a failed run; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("kubectl-r4: "), "{err}");
    for f in fragments {
        assert!(err.contains(f), "expected {f:?} in {err}");
    }
    err
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a prerequisite of `test` is here. Under CI (`CI` set, as
/// `.ci/run` does) a missing one fails the test; elsewhere the test says
/// `SKIPPED` on the real stderr and passes.
pub fn require(available: bool, test: &str, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what}; CI must provide it (see .ci/run)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} (README: Prerequisites; with CI=1 this is a failure)"
    );
    false
}

/// Whether `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Whether this process runs as root (rootful podman).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// [`require`] of podman (rootful, runc) and `docker-registry`.
pub fn require_registry_tools(test: &str) -> bool {
    require(
        on_path("docker-registry"),
        test,
        "docker-registry (apt-get install docker-registry)",
    ) && require(
        on_path("podman") && on_path("runc"),
        test,
        "podman and runc",
    ) && require(is_root(), test, "root (rootful podman)")
}

/// `podman --runtime runc …`.
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc"]);
    cmd
}

/// Runs `cmd`, which must succeed; its stdout.
pub fn ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Names podman knows (images, manifest lists), removed when dropped.
#[derive(Default)]
pub struct Images(pub Vec<String>);

impl Images {
    /// Builds `tag` from `containerfile` (its text) with `files` beside it,
    /// for `platform`, and remembers it.
    pub fn build(
        &mut self,
        dir: &Path,
        tag: &str,
        containerfile: &str,
        files: &[(&str, &Path)],
        extra: &[&str],
    ) {
        let ctx = dir.join(format!("ctx-{}", self.0.len()));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Containerfile"), containerfile).unwrap();
        for (name, src) in files {
            std::fs::copy(src, ctx.join(name)).unwrap();
        }
        self.0.push(tag.to_owned());
        ok(
            podman()
                .args(["build", "-q", "-t", tag])
                .args(extra)
                .arg("-f")
                .arg(ctx.join("Containerfile"))
                .arg(&ctx),
            &format!("podman build {tag}"),
        );
    }

    /// Remembers a name made some other way.
    pub fn add(&mut self, name: &str) {
        self.0.push(name.to_owned());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for name in self.0.iter().rev() {
            let _ = podman().args(["manifest", "rm", name]).output();
            let _ = podman().args(["rmi", "-f", name]).output();
        }
    }
}

/// A free loopback port (bound and released: the registry takes it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry serve` on 127.0.0.1, its storage in a tempdir;
/// killed when dropped.
pub struct Registry {
    child: Child,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// A registry with `auth` (YAML under `auth:`, or "" for anonymous)
    /// and, if `tls` holds a certificate and key file, TLS.
    pub fn start(auth: &str, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let tls = tls.map_or(String::new(), |(cert, key)| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        });
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n{tls}{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry");
        let mut registry = Registry { child, host, dir };
        registry.wait_listening();
        registry
    }

    fn wait_listening(&mut self) {
        let start = Instant::now();
        while TcpStream::connect(&self.host).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `HOST:PORT/NAME`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// Pushes a local image (or, with `all`, a manifest list and its
    /// images) to `HOST:PORT/name`, with `creds` (`user:password`) if given.
    pub fn push(&self, local: &str, name: &str, all: bool, creds: Option<&str>) {
        let mut cmd = podman();
        if all {
            cmd.args(["manifest", "push", "--all"]);
        } else {
            cmd.arg("push");
        }
        cmd.args(["-q", "--tls-verify=false"]);
        if let Some(creds) = creds {
            cmd.args(["--creds", creds]);
        }
        cmd.arg(local).arg(format!("docker://{}", self.image(name)));
        ok(&mut cmd, &format!("podman push {local} -> {name}"));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A small file to COPY into test images.
pub fn payload(dir: &Path) -> PathBuf {
    let p = dir.join("payload.txt");
    std::fs::write(&p, "kubectl-r4 test image\n").unwrap();
    p
}

/// A file holding `text`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A Pod that opts in, running `image` with the given extra container
/// lines (`args`, `command`), as YAML.
pub fn pod(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n    r4.dev/inject: \"true\"\nspec:\n  containers:\n  - name: app\n    image: {image}\n{extra}"
    )
}

/// The first `command` list of `yaml` (the wrapped container's), as
/// written by kubectl-r4's emitter (`- word` lines under `command:`).
pub fn first_command(yaml: &str) -> Vec<String> {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "command:");
    lines.next();
    lines
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| {
            let w = l.trim_start().trim_start_matches("- ");
            serde_json::from_str::<String>(w).unwrap_or_else(|_| w.to_owned())
        })
        .collect()
}

/// The `image:` of the first container of `yaml`.
pub fn first_image(yaml: &str) -> String {
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("image:"))
        .expect("an image line");
    let v = line.trim_start().trim_start_matches("image:").trim();
    serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_owned())
}

/// One podman user at a time in this test binary: podman does not like
/// concurrent runs sharing its storage.
pub fn podman_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A local image name unique to this run.
pub fn local_tag(name: &str) -> String {
    format!("localhost/kubectl-r4-test-{name}:{}", std::process::id())
}

/// A plain HTTP/1.1 GET on a loopback registry: status, headers (names in
/// lower case) and body. For checking what kubectl-r4 pinned.
pub fn http_get(host: &str, path: &str, accept: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Read;
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

/// The media types of manifests and indexes.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The digest the registry serves `name:tag` under.
pub fn served_digest(registry: &Registry, name: &str, tag: &str) -> String {
    let (status, headers, _) = http_get(
        &registry.host,
        &format!("/v2/{name}/manifests/{tag}"),
        ACCEPT,
    );
    assert_eq!(status, 200);
    headers
        .into_iter()
        .find(|(k, _)| k == "docker-content-digest")
        .map(|(_, v)| v)
        .expect("Docker-Content-Digest")
}
