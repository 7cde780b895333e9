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
        .find(|l| l.contains("nginx"))
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
