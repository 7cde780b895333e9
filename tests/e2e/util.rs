//! Shared harness of the end-to-end tests: an in-process r4-devserver on a
//! loopback port 0 with a small known world, an agent key registered in it,
//! and a `Command` for the real `r4-exec` binary with a scrubbed environment.
//! The server stops when the `World` is dropped: nothing outlives the test.
//!
//! Every helper more than one area uses lives here, once: other servers
//! ([`server_with`], [`tls_world`], [`Logged`]), runs that must fail before
//! COMMAND ([`fails`], [`Marker`]), waiting ([`wait_for`], [`Running`]),
//! prerequisites ([`require`], [`namespaces_allowed`], [`static_binary`]) and
//! the library's client ([`client`], [`rt`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use r4_devserver::{field_id, item_id, vault_id, Fault, Options, Seed, ServerGuard};
use r4_exec::client::{Client, ClientOptions};
use r4_exec::contract::crypto::PrivateKey;
use r4_exec::contract::Secret;

/// The agent's API key in the test seed.
pub const API_KEY: &str = "rk_test0000000000.test-secret-value-1234";
/// Values in the test seed, so tests can check exactly what arrived.
pub const DB_PASSWORD: &str = "correct horse battery staple";
pub const DB_USER: &str = "admin";
pub const STRIPE: &str = "sk_live_0123456789abcdef";
pub const LEGACY: &str = "legacy-s3cret-value";
pub const PLAIN: &str = "eu-west-3";
pub const TLS_KEY: &str = "-----BEGIN TEST KEY-----\nnot a real key\n-----END TEST KEY-----\n";

/// One RSA key for all tests (generation is the slow part).
pub fn agent_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(2048).expect("keygen"))
}

/// The test world; the agent's key is pre-registered when `registered`.
pub fn seed_text(registered: bool) -> String {
    let public_key = if registered {
        format!("public_key = \"\"\"{}\"\"\"", agent_key().public().to_pem())
    } else {
        String::new()
    };
    format!(
        r#"
[org]
name = "Test Org"
[tenant]
name = "Test Tenant"

[[agents]]
name = "agent"
api_key = "{API_KEY}"
{public_key}

[[agents]]
name = "other"
api_key = "rk_other000000000.other-secret"

[[projects]]
name = "App"

[[vaults]]
name = "Production Secrets"
project = "App"
shared_with = ["agent"]
  [[vaults.items]]
  name = "Production DB"
    [[vaults.items.fields]]
    name = "Username"
    type = "TEXT"
    value = "{DB_USER}"
    secret = false
    [[vaults.items.fields]]
    name = "Password"
    type = "PASSWORD"
    value = "{DB_PASSWORD}"
  [[vaults.items]]
  name = "Stripe"
  type = "API_KEY"
    [[vaults.items.fields]]
    name = "secret key"
    type = "SECRET"
    value = "{STRIPE}"

[[vaults]]
name = "Edge"
shared_with = ["agent"]
  [[vaults.items]]
  name = "TLS"
    [[vaults.items.fields]]
    name = "private key"
    type = "SECRET"
    value = """{TLS_KEY}"""

[[vaults]]
name = "Old"
model = "legacy"
shared_with = ["agent"]
  [[vaults.items]]
  name = "Legacy DB"
    [[vaults.items.fields]]
    name = "Password"
    type = "PASSWORD"
    value = "{LEGACY}"
    [[vaults.items.fields]]
    name = "Host"
    value = "db.internal"
    secret = false

[[vaults]]
name = "Plain"
model = "unencrypted"
shared_with = ["agent"]
  [[vaults.items]]
  name = "Settings"
    [[vaults.items.fields]]
    name = "Region"
    value = "{PLAIN}"
    secret = false

[[vaults]]
name = "Not Shared"
  [[vaults.items]]
  name = "Hidden"
    [[vaults.items.fields]]
    name = "x"
    value = "y"
"#
    )
}

/// A running devserver and a directory holding the agent key and r4.toml.
pub struct World {
    pub server: ServerGuard,
    pub dir: tempfile::TempDir,
}

/// The default configuration: two env secrets and one file.
pub const CONFIG: &str = r#"
[env]
DB_PASSWORD = "r4://Production Secrets/Production DB/Password"
STRIPE_KEY = { ref = "r4://Production Secrets/Stripe/secret key" }
[files]
TLS_KEY_FILE = "r4://Edge/TLS/private key"
"#;

impl World {
    /// A world with the key registered and no faults.
    pub fn new() -> World {
        World::with(true, &[])
    }

    /// A world with the given faults active from the start.
    pub fn faulty(faults: &[&str]) -> World {
        World::with(true, faults)
    }

    /// Full control.
    pub fn with(registered: bool, faults: &[&str]) -> World {
        World::from_seed(&seed_text(registered), faults)
    }

    /// A world seeded with `seed` (devserver seed TOML), r4.toml = [`CONFIG`].
    pub fn from_seed(seed: &str, faults: &[&str]) -> World {
        let server = server_with(seed, |opts| {
            opts.faults = faults
                .iter()
                .map(|f| f.parse::<Fault>().expect("fault name"))
                .collect();
        });
        let dir = tempfile::tempdir().expect("tempdir");
        write_private(
            &dir.path().join("agent.pem"),
            agent_key().to_pkcs8_pem().as_bytes(),
        );
        std::fs::write(dir.path().join("r4.toml"), CONFIG).expect("config");
        World { server, dir }
    }

    /// Path of a file in the world's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A COMMAND that leaves a mark in the world's directory if it runs.
    pub fn marker(&self) -> Marker {
        Marker::new(self.dir.path())
    }

    /// Replaces r4.toml.
    pub fn config(&self, text: &str) -> &World {
        std::fs::write(self.path("r4.toml"), text).expect("config");
        self
    }

    /// `r4-exec` with only PATH, the base URL, the API key, the key path and
    /// the config in its environment.
    pub fn r4exec(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_command())
    }

    /// The same environment for a `std::process::Command` running r4-exec.
    pub fn std_command(&self) -> std::process::Command {
        self.command(&bin())
    }

    /// `sh -c script` with the same environment.
    pub fn shell(&self, script: &str) -> std::process::Command {
        let mut cmd = self.command(Path::new("sh"));
        cmd.args(["-c", script]);
        cmd
    }

    /// `program` with the environment of [`World::std_command`]: PATH, the
    /// base URL, the API key, the key path and the config.
    pub fn command(&self, program: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("R4_BASE_URL", self.server.base_url())
            .env("R4_API_KEY", API_KEY)
            .env("R4_PRIVATE_KEY_FILE", self.path("agent.pem"))
            .env("R4_CONFIG", self.path("r4.toml"))
            .current_dir(self.dir.path());
        cmd
    }
}

/// Every value of the test seed long enough to be recognised, and the API
/// key: what no listing, message or stored file may hold.
pub const ALL_VALUES: &[&str] = &[
    DB_PASSWORD,
    DB_USER,
    STRIPE,
    LEGACY,
    PLAIN,
    TLS_KEY,
    "not a real key",
    "db.internal",
    API_KEY,
];

/// `r4-exec ARGS -- sh -c SCRIPT` in `w`.
pub fn run_sh(w: &World, args: &[&str], script: &str) -> Output {
    w.r4exec()
        .args(args)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap()
}

/// [`run_sh`], which must succeed; its stdout.
pub fn run_ok(w: &World, args: &[&str], script: &str) -> String {
    let out = run_sh(w, args, script);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `unshare -p -f --mount-proc r4-exec ARGS` in `w`: r4-exec as PID 1 of a
/// new PID namespace (a container's entrypoint), stdin on /dev/null.
pub fn in_namespace(w: &World, args: &[&str]) -> Command {
    let mut cmd = w.command(Path::new("unshare"));
    cmd.args(["-p", "-f", "--mount-proc"])
        .arg(bin())
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// A COMMAND's first lines, as PID 1's child: orphans four `sleep`s (each
/// reparented to PID 1, a zombie once it exits unless PID 1 reaps it),
/// waits for them to exit and counts the zombies in `$z`.
pub const ZOMBIES: &str = r#"for i in 1 2 3 4; do sh -c 'sleep 0.1 &'; done
sleep 0.6
z=0
for s in /proc/[0-9]*/stat; do
  [ "$(awk '{print $3}' "$s" 2>/dev/null)" = Z ] && z=$((z+1))
done
"#;

/// A devserver with the world `seed` (devserver seed TOML), configured by
/// `set` (latency, TLS, a request log, faults) before it starts.
pub fn server_with(seed: &str, set: impl FnOnce(&mut Options)) -> ServerGuard {
    let mut opts = Options::new(Seed::from_toml(seed).expect("test seed"));
    set(&mut opts);
    ServerGuard::start(opts)
}

/// A world, and a TLS devserver of the same seed whose CA is in the world's
/// `ca.pem`.
pub fn tls_world() -> (World, ServerGuard) {
    let world = World::new();
    let server = server_with(&seed_text(true), |opts| opts.tls = true);
    assert!(server.base_url().starts_with("https://"));
    std::fs::write(world.path("ca.pem"), server.ca_pem().unwrap()).unwrap();
    (world, server)
}

/// `r4-exec OPTIONS -- sh -c 'printf %s "$DB_PASSWORD"'` in `world`, against
/// `base_url`.
pub fn print_password(world: &World, base_url: &str, options: &[&str]) -> Command {
    let mut cmd = world.std_command();
    cmd.env("R4_BASE_URL", base_url).args(options).args([
        "--",
        "sh",
        "-c",
        "printf %s \"$DB_PASSWORD\"",
    ]);
    cmd
}

/// A world and a second devserver of the seed that logs every request
/// (`requests.jsonl` in the world's directory).
pub struct Logged {
    pub server: ServerGuard,
    pub log: PathBuf,
    pub world: World,
}

impl Logged {
    /// The logging server of `seed`, configured further by `set` (latency,
    /// TLS).
    pub fn start(seed: &str, set: impl FnOnce(&mut Options)) -> Logged {
        let world = World::new();
        let log = world.path("requests.jsonl");
        let server = server_with(seed, |opts| {
            opts.request_log = Some(log.clone());
            set(opts);
        });
        Logged { server, log, world }
    }

    /// The requests logged so far, in start order. A line the server is
    /// still writing (no newline yet) is not one of them.
    pub fn requests(&self) -> Vec<Req> {
        let text = read(&self.log);
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let mut reqs: Vec<Req> = whole
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Req {
                    start: v["start"].as_f64().unwrap(),
                    end: v["end"].as_f64().unwrap(),
                    path: v["path"].as_str().unwrap().to_string(),
                    conn: v["conn"].to_string(),
                }
            })
            .collect();
        reqs.sort_by(|a, b| a.start.total_cmp(&b.start));
        reqs
    }
}

/// One request of a [`Logged`] server: start and end (Unix ms), path, and
/// the connection it came on.
pub struct Req {
    pub start: f64,
    pub end: f64,
    pub path: String,
    pub conn: String,
}

/// Sequential depth: a request that starts after some request of the current
/// round has finished depends on it and opens a new round.
pub fn rounds(reqs: &[Req]) -> usize {
    let mut rounds = 0;
    let mut first_end = f64::NEG_INFINITY;
    for r in reqs {
        if rounds == 0 || r.start >= first_end {
            rounds += 1;
            first_end = r.end;
        } else {
            first_end = first_end.min(r.end);
        }
    }
    rounds
}

/// Sets field `field` of item `item` of vault `vault` (names of the seed) to
/// `value` on `w`'s server.
pub fn set_field(w: &World, vault: &str, item: &str, field: &str, value: &str) {
    w.server
        .admin()
        .set_field_value(
            &vault_id(vault),
            &item_id(vault, item),
            &field_id(vault, item, field),
            value,
        )
        .unwrap();
}

/// Sets what `DB_PASSWORD` of [`CONFIG`] resolves to.
pub fn set_db_password(w: &World, value: &str) {
    set_field(w, "Production Secrets", "Production DB", "Password", value);
}

/// Writes the server's log key to `log.pem` and an r4.toml, [`CONFIG`]
/// plus `[trust]`, that pins it (tree-head and inclusion-proof checks need
/// it: an unpinned client cannot detect those faults).
pub fn pin_log(w: &World) {
    std::fs::write(w.path("log.pem"), w.server.admin().log_public_key()).unwrap();
    w.config(&format!(
        "{CONFIG}\n[trust]\nlog_public_key_file = \"{}\"\n",
        w.path("log.pem").display()
    ));
}

/// A fresh 2048-bit agent key, written (mode 0600) to `new.pem` in `w`.
pub fn new_key(w: &World) -> (PathBuf, PrivateKey) {
    let key = PrivateKey::generate(2048).unwrap();
    let path = w.path("new.pem");
    write_private(&path, key.to_pkcs8_pem().as_bytes());
    (path, key)
}

/// Options of a library client of `w`'s server with the agent's API key.
pub fn client_options(w: &World) -> ClientOptions {
    ClientOptions::new(
        w.server.base_url(),
        Secret::new(API_KEY.as_bytes().to_vec()),
    )
}

/// A library client of `w`'s server, with the default options.
pub fn client(w: &World) -> Client {
    Client::new(client_options(w)).unwrap()
}

/// A current-thread runtime for the tests that call the library's async
/// functions.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Path of the built binary.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("r4-exec")
}

/// Writes a file with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create");
    f.write_all(bytes).expect("write");
}

/// The COMMAND of a run that must fail before COMMAND starts: `touch
/// <dir>/ran`, and the check that it never ran.
pub struct Marker(PathBuf);

impl Marker {
    /// The marker `ran` in `dir`.
    pub fn new(dir: &Path) -> Marker {
        Marker(dir.join("ran"))
    }

    /// The file COMMAND would create.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// COMMAND and its argument, for after r4-exec's `--`.
    pub fn command(&self) -> [&OsStr; 2] {
        [OsStr::new("touch"), self.0.as_os_str()]
    }

    /// Asserts that COMMAND did not run.
    pub fn assert_not_ran(&self) {
        assert!(!self.0.exists(), "COMMAND ran although r4-exec failed");
    }
}

/// Something [`fails`] can run: r4-exec as an `assert_cmd::Command` or a
/// `std::process::Command`, or the `Output` of a run already made.
pub trait Run {
    /// Runs it to completion.
    fn run(self) -> Output;
}

impl Run for &mut assert_cmd::Command {
    fn run(self) -> Output {
        self.output().expect("run r4-exec")
    }
}

impl Run for &mut Command {
    fn run(self) -> Output {
        self.output().expect("run r4-exec")
    }
}

impl Run for Output {
    fn run(self) -> Output {
        self
    }
}

/// Runs `cmd` and asserts that r4-exec failed: exit code `code`, nothing on
/// stdout, and a stderr holding `r4-exec: ` and every one of `fragments`.
/// Returns that stderr. (Whether COMMAND ran is [`Marker::assert_not_ran`].)
pub fn fails(cmd: impl Run, code: i32, fragments: &[&str]) -> String {
    let out = cmd.run();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(stdout(&out), "", "stdout of a failed run; stderr: {err}");
    for fragment in std::iter::once(&"r4-exec: ").chain(fragments) {
        assert!(err.contains(fragment), "expected {fragment:?} in:\n{err}");
    }
    err
}

/// Asserts that `text` (what r4-exec printed for `what`) holds no value of
/// [`CONFIG`]'s secrets and not the API key.
pub fn assert_no_value(what: &str, text: &str) {
    for value in [DB_PASSWORD, STRIPE, "not a real key", API_KEY] {
        assert!(!text.contains(value), "{what}: a value leaked: {text}");
    }
}

/// Checks an `ls -l /proc/self/fd/` listing made by COMMAND: beyond stdio,
/// exactly one descriptor, the `TLS_KEY_FILE` memfd of [`CONFIG`], and the
/// directory `ls` opened to list them; nothing else leaked.
pub fn assert_only_the_tls_key_memfd(listing: &str) {
    assert_only_stdio_and(listing, 1);
}

/// [`assert_only_the_tls_key_memfd`] with `memfds` copies of that memfd
/// (0 in supervisor mode, where the holder keeps it, not COMMAND).
pub fn assert_only_stdio_and(listing: &str, expected: usize) {
    let mut memfds = 0;
    for line in listing.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = line.split_once(" -> ").unwrap();
        let fd: u32 = left.rsplit(' ').next().unwrap().parse().unwrap();
        if fd <= 2 {
            continue;
        }
        if target.starts_with("/memfd:TLS_KEY_FILE") {
            memfds += 1;
        } else {
            assert!(
                target.starts_with("/proc/") && target.ends_with("/fd"),
                "leaked fd {fd} -> {target}"
            );
        }
    }
    assert_eq!(memfds, expected, "{listing}");
}

/// Whether a prerequisite of `test` that this machine may lack (a tool,
/// a kernel permission, root) is present. CI (`CI` set; `.ci/run` sets it)
/// installs every prerequisite, so there a missing one fails the test.
/// Elsewhere the test is skipped and says so on the process's real stderr,
/// which `cargo test` shows even for a passing test (libtest captures only
/// `print!`/`eprint!`): a skipped check never passes silently.
pub fn require(available: bool, test: &str, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what}; CI must provide it (see .ci/run)"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} (README: Prerequisites; with CI=1 this is a failure)"
    );
    false
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) takes no argument and cannot fail.
    unsafe { nix::libc::geteuid() == 0 }
}

/// Whether this process may create mount and PID namespaces with /proc
/// mounted in them (`unshare -p -f --mount-proc`): as root, usually.
pub fn namespaces_allowed() -> bool {
    Command::new("unshare")
        .args(["-p", "-f", "--mount-proc", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// [`require`] of [`namespaces_allowed`].
pub fn require_namespaces(test: &str) -> bool {
    require(
        namespaces_allowed(),
        test,
        "mount and PID namespaces (unshare -p -f --mount-proc failed: run as root)",
    )
}

/// Compiles the C program `src` with `cc -static -O2` into `out`; the
/// error is cc's (or why it could not start).
pub fn cc_static(src: &Path, out: &Path) -> Result<(), String> {
    let cc = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if cc.status.success() {
        Ok(())
    } else {
        Err(stderr(&cc))
    }
}

/// The static r4-exec that ships, built (or found up to date) by
/// `packaging/build-static.sh` as `.ci/run` runs it, once per test run.
///
/// cargo passes `.cargo/config.toml`'s `AWS_LC_SYS_SMALL=0` (and its own
/// `CARGO_*` variables) into the tests' environment: left there, the
/// script would build the 7.4 MB fast variant, without its budget check,
/// and rebuild on every alternation with `.ci/run`.
pub fn static_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
            "packaging/build-static.sh failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        root.join(target)
            .join("x86_64-unknown-linux-gnu/release/r4-exec")
    })
}

/// Whether `program` is an executable file in `PATH`.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Stdout of an assert, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of an assert, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How long a test waits for something that takes milliseconds on an idle
/// machine (COMMAND to start, r4-exec to exit) before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` every 20 ms until it holds; panics naming `what` once
/// `timeout` has passed.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The text of `path`, or "" while it does not exist.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// r4-exec running in the background, its stderr in a file; killed (with
/// its COMMAND, which notices its parent is gone) when dropped, so nothing
/// outlives a failed test.
pub struct Running {
    child: Child,
    stderr: PathBuf,
}

impl Running {
    /// Spawns `cmd` with stdin and stdout on /dev/null and stderr into the
    /// file `stderr`.
    pub fn spawn(cmd: &mut Command, stderr: PathBuf) -> Running {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start r4-exec");
        Running { child, stderr }
    }

    /// `r4-exec ARGS -- sh -c SCRIPT sh FILE` in `w`.
    pub fn start(w: &World, args: &[&str], script: &str, file: &Path) -> Running {
        let mut cmd = w.std_command();
        cmd.args(args)
            .args(["--", "sh", "-c", script, "sh"])
            .arg(file);
        Running::spawn(&mut cmd, w.path("r4-exec.stderr"))
    }

    /// r4-exec's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The same, for `kill`.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `sig` to r4-exec.
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// What r4-exec wrote on stderr so far.
    pub fn stderr(&self) -> String {
        read(&self.stderr)
    }

    /// r4-exec's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Whether r4-exec has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }

    /// Waits (at most [`DEADLINE`]) for r4-exec to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let mut status = None;
        wait_for("r4-exec to exit", DEADLINE, || {
            status = self.exited();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
