//! Real servers reading delivered files: nginx takes its whole configuration
//! as a `[files]` template that names the paths of the certificate and key
//! it serves (`{{ path:NAME }}`), exactly as `--help` prints the example,
//! and reloads a changed certificate on SIGHUP. `.ci/run` installs nginx;
//! without it (and not under `CI`) the test is skipped.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::util::*;

/// A self-signed certificate for `localhost` and its key, as PEM.
pub fn localhost_cert() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (made.cert.pem(), made.key_pair.serialize_pem())
}

/// The test world plus a vault `Web` with item `TLS`: `certificate`, `key`.
pub fn web_world(cert: &str, key: &str) -> World {
    let seed = format!(
        "{}\n[[vaults]]\nname = \"Web\"\nshared_with = [\"agent\"]\n  [[vaults.items]]\n  name = \"TLS\"\n    [[vaults.items.fields]]\n    name = \"certificate\"\n    type = \"SECRET\"\n    value = \"\"\"{cert}\"\"\"\n    [[vaults.items.fields]]\n    name = \"key\"\n    type = \"SECRET\"\n    value = \"\"\"{key}\"\"\"\n",
        seed_text(true)
    );
    World::from_seed(&seed, &[])
}

/// Kills the process whose pid is the first line of a pid file when
/// dropped: a server started under r4-exec (nginx, a PostgreSQL daemon)
/// does not notice r4-exec's death when a failed test kills it, and must
/// not outlive the test.
pub struct KillByPidFile(pub std::path::PathBuf);

impl Drop for KillByPidFile {
    fn drop(&mut self) {
        let pid = read(&self.0)
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|&p| p > 1) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx.conf as a template: in the foreground, everything it writes in
/// `dir`, TLS on `port` with the delivered certificate and key.
fn nginx_template(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr notice;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name localhost;\n    \
         ssl_certificate {{{{ path:TLS_CERT }}}};\n    ssl_certificate_key {{{{ path:TLS_KEY }}}};\n    \
         location / {{ return 200 \"served over tls\\n\"; }}\n  }}\n}}\n"
    )
}

/// The `[files]` of the nginx example.
const NGINX_CONFIG: &str = r#"
[files]
TLS_CERT = "r4://Web/TLS/certificate"
TLS_KEY = "r4://Web/TLS/key"
NGINX_CONF = { template_file = "nginx.conf.tmpl" }
"#;

/// curl to `https://localhost:port/`, trusting only `ca` (a PEM file):
/// succeeds only if nginx serves that very certificate.
fn curl_trusting(ca: &Path, port: u16) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .ok()?;
    out.status.success().then(|| stdout(&out))
}

/// The nginx line of `--help`'s examples, as words (its `'…'` is one).
fn help_example() -> Vec<String> {
    let help = Command::new(bin()).arg("--help").output().unwrap();
    let line = stdout(&help)
        .lines()
        .find(|l| l.trim_start().starts_with("r4-exec ") && l.contains("nginx"))
        .expect("an nginx example in --help")
        .trim()
        .to_owned();
    let mut words = Vec::new();
    let mut rest = line.as_str();
    while let Some(c) = rest.chars().next() {
        if c == ' ' {
            rest = &rest[1..];
        } else if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("closing quote");
            words.push(quoted[..end].to_owned());
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    words
}

#[test]
fn nginx_serves_a_delivered_certificate_named_by_its_templated_conf_and_reloads_it() {
    let have = on_path("nginx") && on_path("curl");
    if !require(have, "nginx_serves_…", "nginx and curl are not installed") {
        return;
    }
    let (cert, key) = localhost_cert();
    let w = web_world(&cert, &key);
    let port = free_port();
    std::fs::write(
        w.path("nginx.conf.tmpl"),
        nginx_template(w.dir.path(), port),
    )
    .unwrap();
    w.config(NGINX_CONFIG);
    let _nginx = KillByPidFile(w.path("nginx.pid"));
    std::fs::write(w.path("first.pem"), &cert).unwrap();
    let words = help_example();
    assert_eq!(words[0], "r4-exec", "{words:?}");
    let mut cmd = w.std_command();
    // As printed, plus a short poll interval for the test.
    cmd.args(["--watch-interval", "0.3"]).args(&words[1..]);
    let mut running = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
    wait_for("nginx to serve the delivered certificate", DEADLINE, || {
        assert!(running.is_running(), "{}", running.stderr());
        curl_trusting(&w.path("first.pem"), port).is_some()
    });
    assert_eq!(
        curl_trusting(&w.path("first.pem"), port).as_deref(),
        Some("served over tls\n")
    );
    // A new certificate in R4: swapped in under the same paths, then HUP;
    // nginx's reload reads the new files.
    let (cert2, key2) = localhost_cert();
    std::fs::write(w.path("second.pem"), &cert2).unwrap();
    set_field(&w, "Web", "TLS", "key", &key2);
    set_field(&w, "Web", "TLS", "certificate", &cert2);
    wait_for("nginx to serve the new certificate", DEADLINE, || {
        assert!(running.is_running(), "{}", running.stderr());
        curl_trusting(&w.path("second.pem"), port).is_some()
    });
    // Old workers finish what they were serving, then only the new
    // certificate is served.
    wait_for(
        "nginx to stop serving the old certificate",
        DEADLINE,
        || curl_trusting(&w.path("first.pem"), port).is_none(),
    );
    running.signal(Signal::SIGTERM);
    let status = running.wait();
    assert_eq!(status.code(), Some(0), "{}", running.stderr());
    let err = running.stderr();
    assert!(
        err.contains("swapped in the new file(s) and sent SIGHUP"),
        "{err}"
    );
    assert_no_value("r4-exec's stderr", &err);
    for secret in [&key, &key2] {
        assert!(!err.contains(secret.trim()), "a key in stderr");
    }
}

/// A path placeholder must name another file secret of the run: a typo, an
/// `[env]` variable or the template's own name stop the start, naming both.
#[test]
fn a_path_placeholder_of_no_file_secret_stops_the_start() {
    let w = World::new();
    let marker = w.marker();
    for (conf, file) in [
        (
            "CONF = { template = \"k {{ path:TLS_KYE_FILE }}\" }",
            "TLS_KYE_FILE",
        ),
        (
            "CONF = { template = \"k {{ path:DB_PASSWORD }}\" }",
            "DB_PASSWORD",
        ),
        ("CONF = { template = \"k {{ path:CONF }}\" }", "CONF"),
    ] {
        w.config(&format!("{CONFIG}{conf}\n"));
        let err = fails(
            w.r4exec().arg("--").args(marker.command()),
            64,
            &[&format!("the template of CONF has {{{{ path:{file} }}}}")],
        );
        assert_no_value("the error", &err);
        marker.assert_not_ran();
    }
}

/// PostgreSQL's server programs (`postgres`, `initdb`, `pg_ctl`), from
/// Debian's `postgresql` package, and its `postgres` user.
pub struct Postgres {
    bin: std::path::PathBuf,
    /// A directory `postgres` may enter, holding `data` (its cluster).
    pub base: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// A fresh cluster (`initdb -A trust`, as `postgres`), or `None` when
    /// PostgreSQL or root is missing (after [`require`]).
    pub fn new(test: &str) -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(Result::ok)
                    .map(|d| d.path().join("bin"))
                    .find(|b| b.join("postgres").exists())
            });
        let have = bin.is_some() && is_root() && on_path("psql") && on_path("setpriv");
        if !require(
            have,
            test,
            "PostgreSQL (postgresql, psql), setpriv and root",
        ) {
            return None;
        }
        let base = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pg = Postgres {
            bin: bin.unwrap(),
            base,
            port: free_port(),
        };
        std::fs::create_dir(pg.data()).unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(pg.data(), Some(uid), Some(gid)).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(pg.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(pg.data())
            .env_clear()
            .env("LANG", "C")
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", stderr(&out));
        Some(pg)
    }

    /// The cluster's directory (its `postmaster.pid` names a running
    /// server, killed when this is dropped).
    pub fn data(&self) -> std::path::PathBuf {
        self.base.path().join("data")
    }

    /// A server program.
    pub fn program(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// `postgres` in the foreground with TLS from `$TLS_CERT`/`$TLS_KEY`,
    /// as a shell line (the paths come from the environment).
    pub fn server_line(&self) -> String {
        format!(
            "exec {} -D {} -k {} -p {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=\"$TLS_CERT\" -c ssl_key_file=\"$TLS_KEY\"",
            self.program("postgres"),
            self.data().display(),
            self.data().display(),
            self.port
        )
    }

    /// psql over TLS, verifying the server against `ca`: whether the
    /// session is encrypted (`t`), or `None` if it cannot connect.
    pub fn tls_session(&self, ca: &Path) -> Option<String> {
        let out = Command::new("psql")
            .arg(format!(
                "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={} connect_timeout=5",
                self.port,
                ca.display()
            ))
            .args(["-XAtc", "select ssl from pg_stat_ssl where pid = pg_backend_pid()"])
            .output()
            .ok()?;
        out.status.success().then(|| stdout(&out).trim().to_owned())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop(KillByPidFile(self.data().join("postmaster.pid")));
    }
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let uid = stdout(&out).trim().parse().unwrap();
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .unwrap();
    (uid, stdout(&out).trim().parse().unwrap())
}

/// The real uid of process `pid`.
fn uid_of(pid: u32) -> u32 {
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const PG_FILES: &str = r#"
[files]
TLS_CERT = "r4://Web/TLS/certificate"
TLS_KEY = "r4://Web/TLS/key"
"#;

/// `--user postgres`: r4-exec resolves as root, hands the files to
/// `postgres` and becomes it; PostgreSQL accepts the key (owned by it,
/// 0400) and serves TLS with it. Then the `gosu` pattern: COMMAND starts as
/// root and drops privileges itself (`setpriv`), the key's `owner` set.
#[test]
fn postgres_runs_as_postgres_with_files_it_may_open() {
    let Some(pg) = Postgres::new("postgres_runs_as_postgres_…") else {
        return;
    };
    let (cert, key) = localhost_cert();
    let w = web_world(&cert, &key);
    std::fs::write(w.path("ca.pem"), &cert).unwrap();
    let (uid, _) = postgres_ids();
    let cases: [(&str, String, Vec<&str>); 2] = [
        ("--user", PG_FILES.to_owned(), vec!["--user", "postgres"]),
        (
            "owner",
            PG_FILES
                .replace(
                    "TLS_KEY = \"r4://Web/TLS/key\"",
                    "TLS_KEY = { ref = \"r4://Web/TLS/key\", owner = \"postgres\" }",
                )
                .replace(
                    "TLS_CERT = \"r4://Web/TLS/certificate\"",
                    "TLS_CERT = { ref = \"r4://Web/TLS/certificate\", owner = \"postgres:postgres\" }",
                ),
            vec![],
        ),
    ];
    for (case, config, args) in cases {
        w.config(&config);
        let line = if args.is_empty() {
            format!(
                "exec setpriv --reuid=postgres --regid=postgres --init-groups sh -c '{}'",
                pg.server_line().replace('\'', "")
            )
        } else {
            pg.server_line()
        };
        let mut cmd = w.std_command();
        cmd.args(&args).args(["--", "sh", "-c", &line]);
        let mut running = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
        wait_for(
            &format!("{case}: a TLS session with PostgreSQL"),
            DEADLINE,
            || {
                assert!(running.is_running(), "{case}: {}", running.stderr());
                pg.tls_session(&w.path("ca.pem")).is_some()
            },
        );
        assert_eq!(
            pg.tls_session(&w.path("ca.pem")).as_deref(),
            Some("t"),
            "{case}"
        );
        // Exec mode: the server is r4-exec's process, now postgres's.
        assert_eq!(uid_of(running.id()), uid, "{case}");
        running.signal(Signal::SIGTERM);
        assert_eq!(
            running.wait().code(),
            Some(0),
            "{case}: {}",
            running.stderr()
        );
    }
}

/// In supervisor mode the holder of the files runs as the user too: its
/// `/proc/<pid>/fd` is the user's to open (a root holder's is not).
#[test]
fn the_holder_of_files_runs_as_the_user_too() {
    if !require(is_root(), "the_holder_of_files_…", "root") || postgres_user().is_none() {
        return;
    }
    let (cert, key) = localhost_cert();
    let w = web_world(&cert, &key);
    w.config(PG_FILES);
    let out = run_ok(
        &w,
        &["--reap", "--user", "postgres"],
        r#"id -u; wc -c < "$TLS_KEY"; echo "$TLS_KEY""#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].parse::<u32>().unwrap(), postgres_ids().0, "{out}");
    assert_eq!(lines[1].trim(), key.len().to_string(), "{out}");
    assert!(lines[2].starts_with("/proc/"), "{out}");
}

/// Whether the `postgres` user exists (Debian's postgresql creates it).
fn postgres_user() -> Option<()> {
    let have = Command::new("id")
        .arg("postgres")
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        have,
        "--user tests",
        "a postgres user (apt-get install postgresql)",
    )
    .then_some(())
}

/// A user that does not resolve, or an owner on a variable, stops the
/// start before anything is fetched.
#[test]
fn a_user_that_does_not_resolve_stops_the_start() {
    let w = World::new();
    let marker = w.marker();
    let err = fails(
        w.r4exec()
            .args(["--user", "no-such-user-here", "--"])
            .args(marker.command()),
        64,
        &["user \"no-such-user-here\": no such user in /etc/passwd"],
    );
    assert_no_value("the error", &err);
    fails(
        w.r4exec()
            .args(["--user", "4242", "--"])
            .args(marker.command()),
        64,
        &["a numeric user with no /etc/passwd entry needs its group: UID:GID"],
    );
    w.config(&format!("{CONFIG}[r4]\nuser = \"no-such-user-here\"\n"));
    fails(
        w.r4exec().arg("--").args(marker.command()),
        64,
        &["user \"no-such-user-here\""],
    );
    w.config("[env]\nX = { ref = \"r4://Edge/TLS/private key\", owner = \"root\" }\n");
    fails(
        w.r4exec().arg("--").args(marker.command()),
        64,
        &["[env] X", "owner is for [files] entries"],
    );
    marker.assert_not_ran();
}

/// `pg_ctl start` forks the server and exits. In exec mode the file paths
/// name pg_ctl's pid and die with it: the server started (it read them
/// while pg_ctl lived) but every reload fails. With `--forking` r4-exec
/// stays the daemon's reaper and the holder keeps the paths: `pg_ctl
/// reload` re-reads them; `pg_ctl stop` ends the server and r4-exec exits 0.
#[test]
fn pg_ctl_start_and_reload_keep_their_file_paths_with_forking() {
    let Some(pg) = Postgres::new("pg_ctl_start_and_reload_…") else {
        return;
    };
    let (cert, key) = localhost_cert();
    let w = web_world(&cert, &key);
    std::fs::write(w.path("ca.pem"), &cert).unwrap();
    w.config(PG_FILES);
    let log = pg.data().join("server.log");
    let pg_ctl = |action: &str| {
        let out = Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(pg.program("pg_ctl"))
            .args(["-D"])
            .arg(pg.data())
            .args(["-w", action])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl {action}: {}", stderr(&out));
    };
    let start = format!(
        "exec {} -D {} -l {} -w -o \"-k {} -p {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$TLS_CERT -c ssl_key_file=$TLS_KEY\" start",
        pg.program("pg_ctl"),
        pg.data().display(),
        log.display(),
        pg.data().display(),
        pg.port
    );
    let reloaded = |log: &str| {
        log.matches("received SIGHUP, reloading configuration files")
            .count()
    };
    let not_loaded = "could not load server certificate file";

    // Exec mode: the start works, the first reload cannot open the paths.
    let out = w
        .r4exec()
        .args(["--user", "postgres", "--", "sh", "-c", &start])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.tls_session(&w.path("ca.pem")).as_deref(), Some("t"));
    pg_ctl("reload");
    wait_for("the reload to be logged", DEADLINE, || {
        reloaded(&read(&log)) == 1
    });
    wait_for("the reload to fail", DEADLINE, || {
        read(&log).contains(not_loaded)
    });
    pg_ctl("stop");
    let before = read(&log).matches(not_loaded).count();

    // --forking: r4-exec stays, and so do the paths.
    let mut cmd = w.std_command();
    cmd.args(["--forking", "--user", "postgres", "--", "sh", "-c", &start]);
    let mut running = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
    wait_for("the server to accept TLS", DEADLINE, || {
        assert!(running.is_running(), "{}", running.stderr());
        pg.tls_session(&w.path("ca.pem")).is_some()
    });
    pg_ctl("reload");
    wait_for("the second reload to be logged", DEADLINE, || {
        reloaded(&read(&log)) == 2
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        read(&log).matches(not_loaded).count(),
        before,
        "{}",
        read(&log)
    );
    assert_eq!(pg.tls_session(&w.path("ca.pem")).as_deref(), Some("t"));
    assert!(running.is_running(), "r4-exec stays while the server runs");
    pg_ctl("stop");
    let status = running.wait();
    assert_eq!(status.code(), Some(0), "{}", running.stderr());
    assert!(!running.stderr().contains(key.trim()), "no key in stderr");
}

/// nginx with `daemon on`: the master forks, detaches (`setsid`) and the
/// launcher exits 0. With `--forking` the configuration's paths keep
/// opening: `nginx -s reload` (which reads the configuration itself) and
/// the master's reload both work; SIGTERM to r4-exec reaches the detached
/// master, and r4-exec exits with its status once it is gone.
#[test]
fn nginx_daemon_on_reloads_with_forking() {
    let have = on_path("nginx") && on_path("curl");
    if !require(
        have,
        "nginx_daemon_on_…",
        "nginx and curl are not installed",
    ) {
        return;
    }
    let (cert, key) = localhost_cert();
    let w = web_world(&cert, &key);
    let port = free_port();
    let conf = nginx_template(w.dir.path(), port).replace("daemon off;", "daemon on;");
    std::fs::write(w.path("nginx.conf.tmpl"), conf).unwrap();
    w.config(NGINX_CONFIG);
    let _nginx = KillByPidFile(w.path("nginx.pid"));
    std::fs::write(w.path("ca.pem"), &cert).unwrap();
    let script = format!(
        "echo \"$NGINX_CONF\" > {}; exec nginx -c \"$NGINX_CONF\"",
        w.path("conf.path").display()
    );
    let mut cmd = w.std_command();
    cmd.args(["--forking", "--", "sh", "-c", &script]);
    let mut running = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
    wait_for("nginx to serve the delivered certificate", DEADLINE, || {
        assert!(running.is_running(), "{}", running.stderr());
        curl_trusting(&w.path("ca.pem"), port).is_some()
    });
    let path = read(&w.path("conf.path")).trim().to_owned();
    let out = Command::new("nginx")
        .args(["-c", &path, "-s", "reload"])
        .output()
        .unwrap();
    assert!(out.status.success(), "nginx -s reload: {}", stderr(&out));
    wait_for("the reload", DEADLINE, || {
        running.stderr().contains("reconfiguring")
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let err = running.stderr();
    assert!(!err.contains("[emerg]"), "{err}");
    assert_eq!(
        curl_trusting(&w.path("ca.pem"), port).as_deref(),
        Some("served over tls\n")
    );
    running.signal(Signal::SIGTERM);
    assert_eq!(running.wait().code(), Some(0), "{}", running.stderr());
    assert!(
        curl_trusting(&w.path("ca.pem"), port).is_none(),
        "nginx is gone"
    );
}
