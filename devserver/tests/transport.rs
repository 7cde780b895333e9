//! The transport and test switches: TLS with HTTP/2, cleartext HTTP/2, the
//! request log and connection ids, latency, request faults, the admin HTTP
//! endpoints, loopback-only binding, `ServerGuard`, and the binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use r4_devserver::{Error, Fault, FaultKind as F, Options, Seed, ServerGuard};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http2_and_http1_with_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut opts = Options::new(Seed::demo());
    opts.tls = true;
    opts.ca_out = Some(ca_path.clone());
    let server = r4_devserver::start(opts).await.unwrap();
    assert!(server.base_url().starts_with("https://127.0.0.1:"));
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    assert_eq!(Some(ca.as_str()), server.ca_pem());
    let root = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
    for (http1, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let mut b = client().add_root_certificate(root.clone());
        if http1 {
            b = b.http1_only();
        }
        let resp = b
            .build()
            .unwrap()
            .get(format!("{}/me", server.base_url()))
            .header("X-API-Key", DEMO_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), version);
    }
    // Without the CA the certificate is refused.
    let plain = client()
        .build()
        .unwrap()
        .get(format!("{}/me", server.base_url()))
        .send()
        .await;
    assert!(plain.is_err());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_latency_and_connection_ids() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let mut opts = Options::new(Seed::demo());
    opts.request_log = Some(log.clone());
    opts.latency_ms = 150;
    let server = r4_devserver::start(opts).await.unwrap();
    let api = Api::new(server.base_url(), DEMO_KEY);
    let started = Instant::now();
    api.get("/me").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    // Two pipelined requests on one TCP connection, then another connection.
    let base = server.base_url().to_string();
    tokio::task::spawn_blocking(move || {
        let authority = base.trim_start_matches("http://").split('/').next().unwrap();
        let mut s = std::net::TcpStream::connect(authority).unwrap();
        write!(
            s,
            "GET /api/v1/machine/vault?projectId=x HTTP/1.1\r\nHost: h\r\nX-API-Key: {DEMO_KEY}\r\n\r\n\
             GET /api/v1/machine/me HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out.matches("HTTP/1.1 ").count(), 2, "{out}");
    })
    .await
    .unwrap();
    // Cleartext HTTP/2 (prior knowledge) works too.
    let h2 = client().http2_prior_knowledge().build().unwrap();
    let resp = h2
        .get(format!("{}/me", server.base_url()))
        .header("X-API-Key", DEMO_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    resp.bytes().await.unwrap();
    assert_eq!(server.admin().request_count(), 4);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[0]["path"], "/api/v1/machine/me");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["path"], "/api/v1/machine/vault?projectId=x");
    assert_eq!(lines[1]["status"], 200);
    assert_eq!(lines[2]["status"], 401);
    let (start, end) = (
        lines[0]["start"].as_f64().unwrap(),
        lines[0]["end"].as_f64().unwrap(),
    );
    assert!(end - start >= 150.0, "{start} {end}");
    // Requests on one connection share its id; each connection has its own.
    assert_eq!(lines[1]["conn"], lines[2]["conn"]);
    assert_ne!(lines[0]["conn"], lines[1]["conn"]);
    assert_ne!(lines[2]["conn"], lines[3]["conn"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_faults() {
    let server = demo().await;
    let admin = server.admin();
    let http = client()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", server.base_url());
        async move { http.get(url).header("X-API-Key", DEMO_KEY).send().await }
    };

    admin.set_faults(vec![
        Fault::first(F::RateLimit, 2),
        Fault::first(F::Unavailable, 1),
    ]);
    for _ in 0..2 {
        let resp = get("/me").await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    }
    let resp = get("/me").await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(get("/me").await.unwrap().status(), 200);

    admin.set_faults(vec!["invalid-json:1".parse().unwrap()]);
    let resp = get("/me").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());

    admin.set_faults(vec!["huge-body:1".parse().unwrap()]);
    let resp = get("/me").await.unwrap();
    assert!(resp.headers().get("content-length").is_none());
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), 64 << 20);
    assert!(body.starts_with(b"{\"padding\":\"aaaa"));

    admin.set_faults(vec!["hang:1".parse().unwrap()]);
    let err = get("/me").await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(get("/me").await.unwrap().status(), 200);

    admin.set_faults(vec!["trickle:1".parse().unwrap()]);
    let resp = get("/me").await.unwrap();
    assert_eq!(resp.status(), 200);
    let err = resp.bytes().await.unwrap_err();
    assert!(
        err.is_timeout() || err.is_body() || err.is_decode(),
        "{err}"
    );
    assert_eq!(get("/me").await.unwrap().status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_http_endpoints() {
    let server = demo().await;
    let root = server
        .base_url()
        .trim_end_matches("/api/v1/machine")
        .to_string();
    let http = client().build().unwrap();
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{root}/_admin/{path}")).json(&body);
        async move { req.send().await.unwrap() }
    };
    let api = Api::new(server.base_url(), DEMO_KEY);
    api.register(key(0)).await;

    let resp = post("faults", json!({"faults": ["unavailable:1"]})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(api.get("/me").await.0, 503);
    assert_eq!(
        post("faults", json!({"faults": ["nope"]})).await.status(),
        400
    );
    post("faults", json!({"faults": []})).await;

    let resp = post(
        "field",
        json!({"vaultId": PROD, "itemId": PROD_DB, "fieldId": PROD_DB_PASSWORD, "value": "via-http"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let log_pem: Value = http
        .get(format!("{root}/_admin/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log_pem = log_pem["log"]["publicKey"].as_str().unwrap().to_string();
    let values = read_vault(&api, PROD, key(0), &log_pem).await.unwrap();
    assert!(values.contains(&(PROD_DB_PASSWORD.to_string(), "via-http".to_string())));

    assert_eq!(
        post("unshare", json!({"vaultId": EDGE, "agentId": DEMO_AGENT}))
            .await
            .status(),
        200
    );
    assert_eq!(api.get(&format!("/vault/{EDGE}")).await.0, 404);
    assert_eq!(
        post("share", json!({"vaultId": EDGE, "agentId": DEMO_AGENT}))
            .await
            .status(),
        200
    );
    assert_eq!(api.get(&format!("/vault/{EDGE}")).await.0, 200);
    assert_eq!(
        post(
            "share",
            json!({"vaultId": "000000000000000000000000", "agentId": DEMO_AGENT})
        )
        .await
        .status(),
        404
    );
    let resp = post(
        "items",
        json!({"vaultId": EDGE, "item": {"name": "New", "fields": [{"name": "x", "value": "1"}]}}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let id: Value = resp.json().await.unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    assert_eq!(api.get(&format!("/vault/{EDGE}/items/{id}")).await.0, 200);
    assert_eq!(
        post("archive", json!({"vaultId": EDGE, "itemId": id}))
            .await
            .status(),
        200
    );
    assert_eq!(api.get(&format!("/vault/{EDGE}/items/{id}")).await.0, 404);
    assert_eq!(
        post("revoke", json!({"agentId": DEMO_AGENT}))
            .await
            .status(),
        200
    );
    assert_eq!(api.get(&format!("/vault/{PROD}")).await.0, 404);
    assert_eq!(post("share", json!({"bad": 1})).await.status(), 400);

    let count: Value = http
        .get(format!("{root}/_admin/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        count["count"].as_u64(),
        Some(server.admin().request_count())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let mut opts = Options::new(Seed::demo());
    opts.bind = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        r4_devserver::start(opts).await,
        Err(Error::NotLoopback(_))
    ));
}

/// One HTTP/1.1 request over a plain socket (no async runtime needed).
fn raw_get(base: &str, path: &str) -> std::io::Result<String> {
    let authority = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut s = std::net::TcpStream::connect(authority)?;
    write!(
        s,
        "GET /api/v1/machine{path} HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {DEMO_KEY}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn server_guard_runs_and_stops() {
    let guard = ServerGuard::start(Options::new(Seed::demo()));
    let base = guard.base_url().to_string();
    let answer = raw_get(&base, "/me").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    guard.admin().set_faults(vec![Fault::new(F::Hang)]);
    // A hanging request does not keep the guard from stopping.
    let hanging = std::thread::spawn({
        let base = base.clone();
        move || raw_get(&base, "/me")
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(guard);
    assert!(hanging
        .join()
        .unwrap()
        .map(|s| s.is_empty())
        .unwrap_or(true));
    assert!(raw_get(&base, "/me").is_err());
}

/// The binary, killed on drop whatever happens.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_prints_its_url_first_and_stops_on_sigterm() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_r4-devserver"))
            .args(["--seed", "demo", "--fault", "unavailable:1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/api/v1/machine"),
        "{base}"
    );
    assert!(raw_get(base, "/me").unwrap().starts_with("HTTP/1.1 503"));
    assert!(raw_get(base, "/me").unwrap().starts_with("HTTP/1.1 200"));
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("GET /api/v1/machine/me -> 503"), "{stderr}");
}

#[test]
fn binary_refuses_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_r4-devserver"))
        .args(["--seed", "demo", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    assert!(out.stdout.is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_r4-devserver"))
        .args(["--seed", "demo", "--fault", "no-such-fault"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_r4-devserver"))
        .args(["--seed", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
