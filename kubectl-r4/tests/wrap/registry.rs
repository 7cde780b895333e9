//! Entrypoints from real registries: Debian's docker-registry (distribution
//! v2) on a loopback port, FROM scratch images built and pushed by podman.
//! Anonymous, Basic auth (htpasswd, bcrypt) with an auth file, Bearer
//! tokens from a token server of the test's own, TLS with --registry-ca;
//! a multi-platform index; pinning by the digest the registry serves.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine;

use crate::util::*;

/// Builds a FROM scratch image with `entry` (ENTRYPOINT/CMD lines) and
/// pushes it as `name:v1`.
fn push_image(
    images: &mut Images,
    dir: &Path,
    reg: &Registry,
    name: &str,
    entry: &str,
    creds: Option<&str>,
) {
    let tag = local_tag(name);
    let file = payload(dir);
    images.build(
        dir,
        &tag,
        &format!("FROM scratch\nCOPY payload.txt /payload.txt\n{entry}"),
        &[("payload.txt", &file)],
        &[],
    );
    reg.push(&tag, &format!("{name}:v1"), false, creds);
}

#[test]
fn entrypoint_and_cmd_from_the_registry_pinned_by_digest() {
    if !require_registry_tools("entrypoint_and_cmd_from_the_registry_pinned_by_digest") {
        return;
    }
    let _lock = podman_lock();
    let dir = tempdir();
    let reg = Registry::start("", None);
    let mut images = Images::default();
    push_image(
        &mut images,
        dir.path(),
        &reg,
        "one",
        "ENTRYPOINT [\"/app\", \"--flag\"]\nCMD [\"serve\", \"a b\"]\n",
        None,
    );
    let image = reg.image("one:v1");
    let host = reg.host.clone();
    let insecure = ["--insecure-registry", host.as_str()];
    let digest = served_digest(&reg, "one", "v1");

    // No command, no args: Entrypoint + Cmd.
    let out = wrap_ok(&pod("p", &image, ""), &insecure);
    assert_eq!(
        first_command(&out),
        ["/r4/r4-exec", "--", "/app", "--flag", "serve", "a b"]
    );
    assert_eq!(first_image(&out), format!("{}@{digest}", reg.image("one")));
    // Args only: Entrypoint + args.
    let out_args = wrap_ok(&pod("p", &image, "    args: [x]\n"), &insecure);
    assert_eq!(
        first_command(&out_args),
        ["/r4/r4-exec", "--", "/app", "--flag", "x"]
    );
    // The pinned image is looked up by its digest, checked, and kept.
    let again = wrap_ok(&pod("p", &first_image(&out), ""), &insecure);
    assert_eq!(first_image(&again), first_image(&out));
    assert_eq!(first_command(&again), first_command(&out));
    // A tag the registry does not have, and plain http without the flag.
    wrap_fails(
        &pod("p", &reg.image("one:nope"), ""),
        &insecure,
        &[
            "document 1 (Pod p), container app: image ",
            &format!(
                "registry {} answered 404 Not Found for manifests/nope (MANIFEST_UNKNOWN",
                reg.host
            ),
        ],
    );
    wrap_fails(
        &pod("p", &image, ""),
        &[],
        &[&format!("cannot reach registry {}", reg.host)],
    );

    // Second pass with the registry gone: byte-identical, so it was never
    // asked.
    drop(reg);
    assert_eq!(wrap_ok(&out, &insecure), out);
    assert_eq!(wrap_ok(&out_args, &insecure), out_args);
    wrap_fails(&pod("p", &image, ""), &insecure, &["cannot reach registry"]);
}

#[test]
fn a_multi_platform_index_is_chosen_from_never_guessed() {
    if !require_registry_tools("a_multi_platform_index_is_chosen_from_never_guessed") {
        return;
    }
    let _lock = podman_lock();
    let dir = tempdir();
    let reg = Registry::start("", None);
    let mut images = Images::default();
    let list = local_tag("multi-list");
    let file = payload(dir.path());
    for arch in ["amd64", "arm64"] {
        let tag = local_tag(&format!("multi-{arch}"));
        images.build(
            dir.path(),
            &tag,
            &format!("FROM scratch\nCOPY payload.txt /payload.txt\nENTRYPOINT [\"/app\"]\nCMD [\"{arch}\"]\n"),
            &[("payload.txt", &file)],
            &["--platform", &format!("linux/{arch}"), "--manifest", &list],
        );
    }
    images.add(&list);
    reg.push(&list, "multi:v1", true, None);
    let index = served_digest(&reg, "multi", "v1");
    let (_, headers, body) = http_get(&reg.host, "/v2/multi/manifests/v1", ACCEPT);
    assert!(
        String::from_utf8_lossy(&body).contains("\"manifests\""),
        "an index"
    );
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.contains("index")));

    let image = reg.image("multi:v1");
    let pod = pod("p", &image, "");
    let host = reg.host.as_str();
    let out = wrap_ok(&pod, &["--insecure-registry", host]);
    assert_eq!(
        first_command(&out),
        ["/r4/r4-exec", "--", "/app", "amd64"],
        "linux/amd64 by default"
    );
    assert_eq!(
        first_image(&out),
        format!("{}@{index}", reg.image("multi")),
        "the index digest"
    );
    let out = wrap_ok(
        &pod,
        &["--insecure-registry", host, "--platform", "linux/arm64"],
    );
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/app", "arm64"]);
    assert_eq!(first_image(&out), format!("{}@{index}", reg.image("multi")));
    wrap_fails(
        &pod,
        &["--insecure-registry", host, "--platform", "linux/amd64,linux/arm64"],
        &["the command differs between platforms: linux/amd64 runs [\"/app\",\"amd64\"], linux/arm64 runs [\"/app\",\"arm64\"]"],
    );
    // With args only the (equal) Entrypoint counts: both platforms agree.
    let with_args = format!("{pod}    args: [x]\n");
    let out = wrap_ok(
        &with_args,
        &[
            "--insecure-registry",
            host,
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
        ],
    );
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/app", "x"]);
    wrap_fails(
        &pod,
        &["--insecure-registry", host, "--platform", "linux/s390x"],
        &["its index has no linux/s390x image (it has: linux/amd64, linux/arm64)"],
    );
}

/// An auth file with `user:password` for `host`.
fn auth_file(dir: &Path, host: &str, creds: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(creds);
    write(
        dir,
        "auth.json",
        &format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{b64}\"}}}}}}"),
    )
    .display()
    .to_string()
}

#[test]
fn basic_auth_with_an_auth_file() {
    if !require_registry_tools("basic_auth_with_an_auth_file")
        || !require(
            on_path("htpasswd"),
            "basic_auth_with_an_auth_file",
            "htpasswd (apt-get install apache2-utils)",
        )
    {
        return;
    }
    let _lock = podman_lock();
    let dir = tempdir();
    let htpasswd = dir.path().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args(["puller", "pull-pass-9f3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let reg = Registry::start(
        &format!(
            "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            htpasswd.display()
        ),
        None,
    );
    let mut images = Images::default();
    push_image(
        &mut images,
        dir.path(),
        &reg,
        "private",
        "CMD [\"/srv\"]\n",
        Some("puller:pull-pass-9f3"),
    );
    let pod = pod("p", &reg.image("private:v1"), "");
    let host = reg.host.as_str();

    let err = wrap_fails(
        &pod,
        &["--insecure-registry", host],
        &["asks for a password (Basic auth); credentials tried: none (no entry for"],
    );
    assert!(err.contains(host), "{err}");
    let wrong = auth_file(dir.path(), host, "puller:wrong-pass-77");
    let err = wrap_fails(
        &pod,
        &["--insecure-registry", host, "--authfile", &wrong],
        &[
            "answered 401 Unauthorized",
            &format!("credentials tried: the entry \"{host}\" of {wrong}"),
        ],
    );
    assert!(
        !err.contains("wrong-pass-77") && !err.contains("puller:"),
        "a credential in: {err}"
    );
    let good = auth_file(dir.path(), host, "puller:pull-pass-9f3");
    let out = wrap_ok(&pod, &["--insecure-registry", host, "--authfile", &good]);
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/srv"]);
    assert!(!out.contains("pull-pass-9f3"));
    // REGISTRY_AUTH_FILE is read when --authfile is not given.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-r4"))
        .args(["wrap", "--insecure-registry", host])
        .env_clear()
        .env("REGISTRY_AUTH_FILE", &good)
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pod.as_bytes())
        .unwrap();
    let env_out = child.wait_with_output().unwrap();
    assert!(env_out.status.success(), "{}", stderr(&env_out));
    assert_eq!(stdout(&env_out), out);
}

/// A token server: answers `GET /token?service=…&scope=…` with a JWT
/// signed by `key` (whose certificate the registry trusts), when the
/// request carries `expect` as Basic credentials. Stops when dropped.
struct TokenServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(key: rcgen::KeyPair, cert_der: Vec<u8>, expect: String) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let signer = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
        )
        .unwrap();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let _ = serve_token(stream, &signer, &cert_der, &expect);
            }
        });
        TokenServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_token(
    mut stream: std::net::TcpStream,
    signer: &aws_lc_rs::signature::EcdsaKeyPair,
    cert_der: &[u8],
    expect: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(expect)
    );
    if authorization.as_deref() != Some(want.as_str()) {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let query = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split_once('?')
        .map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(percent_decode)
            .unwrap_or_default()
    };
    // repository:NAME:ACTIONS, the actions asked for granted.
    let scope = param("scope");
    let mut parts = scope.splitn(3, ':').skip(1);
    let repository = parts.next().unwrap_or("").to_owned();
    let actions: Vec<&str> = parts.next().unwrap_or("").split(',').collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)],
    });
    let claims = serde_json::json!({
        "iss": "test-issuer",
        "sub": "puller",
        "aud": param("service"),
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("t{now}"),
        "access": [{"type": "repository", "name": repository, "actions": actions}],
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let sig = signer.sign(&rng, input.as_bytes()).unwrap();
    let body =
        serde_json::json!({"token": format!("{input}.{}", b64url(sig.as_ref()))}).to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn bearer_token_auth_from_the_realm() {
    if !require_registry_tools("bearer_token_auth_from_the_realm") {
        return;
    }
    let _lock = podman_lock();
    let dir = tempdir();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["token-signer".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let bundle = write(dir.path(), "signer.pem", &cert.pem());
    let creds = "puller:token-pass-51d";
    let tokens = TokenServer::start(key, cert.der().to_vec(), creds.to_owned());
    let realm_host = format!("127.0.0.1:{}", tokens.port);
    let reg = Registry::start(
        &format!(
            "auth:\n  token:\n    realm: http://{realm_host}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            bundle.display()
        ),
        None,
    );
    let mut images = Images::default();
    // podman logs in through the same token server.
    push_image(
        &mut images,
        dir.path(),
        &reg,
        "team/app",
        "ENTRYPOINT [\"/bin/app\"]\n",
        Some(creds),
    );
    let pod = pod("p", &reg.image("team/app:v1"), "");
    let host = reg.host.as_str();
    let good = auth_file(dir.path(), host, creds);

    // The realm is plain http: refused unless its host is insecure too.
    wrap_fails(
        &pod,
        &["--insecure-registry", host, "--authfile", &good],
        &[&format!(
            "token realm http://{realm_host}/token is plain http"
        )],
    );
    let insecure = [
        "--insecure-registry",
        host,
        "--insecure-registry",
        realm_host.as_str(),
    ];
    let err = wrap_fails(
        &pod,
        &insecure,
        &[&format!("the token server http://{realm_host}/token of registry {host} answered 401 Unauthorized; credentials tried: none")],
    );
    assert!(!err.contains("token-pass"), "{err}");
    let out = wrap_ok(&pod, &[&insecure[..], &["--authfile", &good]].concat());
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/bin/app"]);
    assert!(first_image(&out).starts_with(&format!("{}@sha256:", reg.image("team/app"))));
}

#[test]
fn tls_registry_with_registry_ca() {
    if !require_registry_tools("tls_registry_with_registry_ca") {
        return;
    }
    let _lock = podman_lock();
    let dir = tempdir();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let cert_file = write(dir.path(), "server.pem", &cert.pem());
    let key_file = write(dir.path(), "server.key", &key.serialize_pem());
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let reg = Registry::start("", Some((&cert_file, &key_file)));
    let mut images = Images::default();
    push_image(
        &mut images,
        dir.path(),
        &reg,
        "tls",
        "CMD [\"/tls-app\"]\n",
        None,
    );
    let pod = pod("p", &reg.image("tls:v1"), "");
    wrap_fails(&pod, &[], &[&format!("cannot reach registry {}", reg.host)]);
    let out = wrap_ok(&pod, &["--registry-ca", &ca_file.display().to_string()]);
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/tls-app"]);
}
