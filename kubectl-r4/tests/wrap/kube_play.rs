//! The wrapped output in a real pod: `podman kube play` of a wrapped Pod
//! and a wrapped Deployment whose image (a static test program, pushed to
//! a loopback docker-registry) sets only ENTRYPOINT and CMD. The init
//! container (the image of packaging/Dockerfile.prebuilt, the static
//! r4-exec of packaging/build-static.sh) copies r4-exec into the pod's
//! volume; the app, started by it with the image's own command, sees its
//! secrets from the in-process devserver (compared by length and hash,
//! never printed); `podman pod stop` delivers TERM to the app through
//! r4-exec (status 143) and `podman kube down` removes the pod.
//!
//! On our machines `podman kube play` needs catatonit, a containers.conf
//! (runc, low ulimits) given by CONTAINERS_CONF, and host network (the
//! devserver listens on loopback). podman 4.3's `kube down` removes pods
//! without a graceful stop, so the TERM is delivered by `podman pod stop`
//! first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use r4_devserver::{Options, Seed, ServerGuard};

use crate::util::*;

const API_KEY: &str = "rk_kube00000000000.kube-secret-value-4321";
const DB_PASSWORD: &str = "kube horse battery staple";
const TLS_KEY: &str = "-----BEGIN TEST KEY-----\nkube test key\n-----END TEST KEY-----\n";

fn seed() -> String {
    format!(
        r#"
[org]
name = "Kube Org"
[tenant]
name = "Kube Tenant"
[[agents]]
name = "agent"
api_key = "{API_KEY}"
[[vaults]]
name = "Production Secrets"
shared_with = ["agent"]
  [[vaults.items]]
  name = "Production DB"
    [[vaults.items.fields]]
    name = "Password"
    type = "PASSWORD"
    value = "{DB_PASSWORD}"
[[vaults]]
name = "Edge"
shared_with = ["agent"]
  [[vaults.items]]
  name = "TLS"
    [[vaults.items.fields]]
    name = "private key"
    type = "SECRET"
    value = """{TLS_KEY}"""
"#
    )
}

/// FNV-1a 64, as app.c computes it.
fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(1099511628211);
    }
    format!("{h:016x}")
}

/// The static r4-exec that ships, built (or found up to date) by
/// packaging/build-static.sh, as tests/e2e/util.rs `static_binary` does.
fn static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(root.join("packaging/build-static.sh"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_TARGET_DIR" {
            cmd.env_remove(name.as_ref());
        }
    }
    let out = cmd
        .env_remove("RUSTFLAGS")
        .env("AWS_LC_SYS_SMALL", "1")
        .output()
        .expect("packaging/build-static.sh");
    assert!(
        out.status.success(),
        "packaging/build-static.sh: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    root.join(target)
        .join("x86_64-unknown-linux-gnu/release/r4-exec")
}

/// A played kube file: `podman kube down` and `podman pod rm -f` of its
/// pods when dropped, even after a failure.
struct Played {
    file: PathBuf,
    conf: PathBuf,
    prefix: String,
}

impl Played {
    fn play(file: &Path, conf: &Path, prefix: &str) -> Played {
        let played = Played {
            file: file.to_owned(),
            conf: conf.to_owned(),
            prefix: prefix.to_owned(),
        };
        ok(
            podman()
                .env("CONTAINERS_CONF", conf)
                .args(["kube", "play", "--tls-verify=false"])
                .arg(file),
            "podman kube play",
        );
        played
    }

    fn pods(&self) -> Vec<String> {
        let out = podman()
            .env("CONTAINERS_CONF", &self.conf)
            .args(["pod", "ps", "--format", "{{.Name}}"])
            .output()
            .unwrap();
        stdout(&out)
            .lines()
            .filter(|n| n.starts_with(&self.prefix))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        let _ = podman()
            .env("CONTAINERS_CONF", &self.conf)
            .args(["kube", "down"])
            .arg(&self.file)
            .output();
        for pod in self.pods() {
            let _ = podman().args(["pod", "rm", "-f", &pod]).output();
        }
    }
}

fn wait_for_file(path: &Path, what: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Setup {
    dir: tempfile::TempDir,
    reg: Registry,
    server: ServerGuard,
    r4_image: String,
    conf: PathBuf,
    shim_size: u64,
    _images: Images,
}

fn setup() -> Setup {
    let dir = tempdir();
    let shim = static_binary();
    let shim_size = std::fs::metadata(&shim).unwrap().len();
    let mut images = Images::default();
    // The r4-exec image, exactly as packaging/Dockerfile.prebuilt says.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let base = dir.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::copy(&shim, base.join("r4-exec")).unwrap();
    let r4_image = local_tag("r4-exec");
    images.add(&r4_image);
    ok(
        podman()
            .args(["build", "-q", "-t", &r4_image, "-f"])
            .arg(root.join("packaging/Dockerfile.prebuilt"))
            .arg(&base),
        "podman build r4-exec",
    );
    // The application: only ENTRYPOINT and CMD say what it runs.
    let app = dir.path().join("app");
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&app)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wrap/app.c"))
        .output()
        .unwrap();
    assert!(cc.status.success(), "cc -static app.c: {}", stderr(&cc));
    let reg = Registry::start("", None);
    let app_tag = local_tag("app");
    images.build(
        dir.path(),
        &app_tag,
        "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\nCMD [\"report\", \"DB_PASSWORD\", \"file:TLS_KEY_FILE\"]\n",
        &[("app", &app)],
        &[],
    );
    reg.push(&app_tag, "app:v1", false, None);
    let server = ServerGuard::start(Options::new(Seed::from_toml(&seed()).expect("seed")));
    // The agent's key, made and registered by r4-exec itself.
    let key = dir.path().join("agent.pem");
    for args in [
        vec!["keygen", "--out", key.to_str().unwrap(), "--bits", "2048"],
        vec!["register"],
    ] {
        ok(
            Command::new(&shim)
                .args(&args)
                .env_clear()
                .env("R4_BASE_URL", server.base_url())
                .env("R4_API_KEY", API_KEY)
                .env("R4_PRIVATE_KEY_FILE", &key),
            &format!("r4-exec {}", args[0]),
        );
    }
    let conf = write(
        dir.path(),
        "containers.conf",
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n[engine]\nruntime = \"runc\"\n",
    );
    Setup {
        dir,
        reg,
        server,
        r4_image,
        conf,
        shim_size,
        _images: images,
    }
}

/// The pod template (indented by `indent`) of a test workload whose
/// status directory is `status`.
fn template(s: &Setup, status: &Path, indent: &str) -> String {
    let text = format!(
        r#"metadata:
  labels: {{app: kr4}}
  annotations:
    r4.dev/inject: "true"
    # podman 4.3 removes a "once" init container racily ("cannot remove
    # container ... as it is running"): keep it instead.
    io.podman.annotations.init.container.type: always
spec:
  hostNetwork: true
  containers:
  - name: app
    image: {image}
    env:
    - {{name: R4_BASE_URL, value: "{url}"}}
    - {{name: R4_API_KEY, value: "{API_KEY}"}}
    - {{name: R4_PRIVATE_KEY_FILE, value: /run/secrets/r4/agent.pem}}
    - {{name: DB_PASSWORD, value: "r4://Production Secrets/Production DB/Password"}}
    - {{name: TLS_KEY_FILE, value: "r4+file://Edge/TLS/private key"}}
    volumeMounts:
    - {{name: agent, mountPath: /run/secrets/r4/agent.pem, readOnly: true}}
    - {{name: status, mountPath: /status}}
  volumes:
  - name: agent
    hostPath: {{path: {key}, type: File}}
  - name: status
    hostPath: {{path: {status}, type: Directory}}
"#,
        image = s.reg.image("app:v1"),
        url = s.server.base_url(),
        key = s.dir.path().join("agent.pem").display(),
        status = status.display(),
    );
    text.lines().map(|l| format!("{indent}{l}\n")).collect()
}

/// Wraps `yaml`, plays it, checks what the app saw, stops it, takes it
/// down.
fn play_and_check(s: &Setup, what: &str, yaml: &str, status: &Path, prefix: &str) {
    let wrapped = wrap_ok(
        yaml,
        &["--insecure-registry", &s.reg.host, "--image", &s.r4_image],
    );
    assert_eq!(
        first_command(&wrapped),
        [
            "/r4/r4-exec",
            "--",
            "/app",
            "report",
            "DB_PASSWORD",
            "file:TLS_KEY_FILE"
        ],
        "{what}: {wrapped}"
    );
    let pinned = first_image(&wrapped);
    assert_eq!(
        pinned,
        format!(
            "{}@{}",
            s.reg.image("app"),
            served_digest(&s.reg, "app", "v1")
        )
    );
    let mut pulled = Images::default();
    pulled.add(&pinned);
    let file = write(s.dir.path(), &format!("{prefix}.yaml"), &wrapped);
    let played = Played::play(&file, &s.conf, prefix);

    let report = wait_for_file(&status.join("report"), &format!("{what}: the app's report"));
    let expect = [
        "argv0=/app".to_owned(),
        format!(
            "DB_PASSWORD len={} fnv={}",
            DB_PASSWORD.len(),
            fnv(DB_PASSWORD.as_bytes())
        ),
        format!(
            "file:TLS_KEY_FILE len={} fnv={}",
            TLS_KEY.len(),
            fnv(TLS_KEY.as_bytes())
        ),
        format!("shim mode=555 size={}", s.shim_size),
    ];
    for line in &expect {
        assert!(
            report.lines().any(|l| l == line),
            "{what}: {line:?} not in the report:\n{report}"
        );
    }
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("mount /r4 ") && l.ends_with(" ro")),
        "{what}: /r4 is mounted read-only in the app:\n{report}"
    );
    assert!(!report.contains(DB_PASSWORD) && !report.contains("kube test key"));

    let pods = played.pods();
    assert_eq!(pods.len(), 1, "{what}: {pods:?}");
    let containers = ok(
        podman().args([
            "ps",
            "-a",
            "--filter",
            &format!("pod={}", pods[0]),
            "--format",
            "{{.Names}}",
        ]),
        "podman ps",
    );
    let app = containers
        .lines()
        .find(|n| n.ends_with("-app"))
        .unwrap_or_else(|| panic!("{what}: no app container in {containers}"))
        .to_owned();
    ok(
        podman().args(["pod", "stop", "-t", "10", &pods[0]]),
        "podman pod stop",
    );
    assert_eq!(
        wait_for_file(&status.join("term"), &format!("{what}: the app's TERM")),
        "TERM\n"
    );
    let code = ok(
        podman().args(["inspect", "--format", "{{.State.ExitCode}}", &app]),
        "podman inspect",
    );
    assert_eq!(
        code.trim(),
        "143",
        "{what}: the app died of TERM, through r4-exec"
    );
    ok(
        podman()
            .env("CONTAINERS_CONF", &s.conf)
            .args(["kube", "down"])
            .arg(&file),
        "podman kube down",
    );
    assert!(
        played.pods().is_empty(),
        "{what}: kube down removed the pod"
    );
}

#[test]
fn podman_kube_play_of_a_wrapped_pod_and_deployment() {
    let test = "podman_kube_play_of_a_wrapped_pod_and_deployment";
    if !require_registry_tools(test)
        || !require(
            on_path("catatonit"),
            test,
            "catatonit (podman kube play's infra container)",
        )
        || !require(
            on_path("cc"),
            test,
            "a C compiler with a static libc (build-essential)",
        )
    {
        return;
    }
    let _lock = podman_lock();
    let s = setup();
    let id = std::process::id();

    let status = s.dir.path().join("status-pod");
    std::fs::create_dir_all(&status).unwrap();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\n{}",
        template(&s, &status, "")
            .replace("metadata:\n", &format!("metadata:\n  name: kr4-pod-{id}\n"))
    );
    play_and_check(&s, "Pod", &pod, &status, &format!("kr4-pod-{id}"));

    let status = s.dir.path().join("status-deployment");
    std::fs::create_dir_all(&status).unwrap();
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kr4-dep-{id}\n  annotations: {{io.podman.annotations.init.container.type: always}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: kr4}}\n  template:\n{}",
        template(&s, &status, "    ")
    );
    play_and_check(
        &s,
        "Deployment",
        &deployment,
        &status,
        &format!("kr4-dep-{id}"),
    );
}
