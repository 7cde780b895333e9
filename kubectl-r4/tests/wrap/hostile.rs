//! Registries that misbehave, played by a scripted HTTP server of the
//! test's own on loopback (a real registry never does these things): a
//! blob that is not what its digest says, a redirect to another host (the
//! credentials must not follow), an error text with terminal escapes.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;

use crate::util::*;

/// One answer: status line, extra headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);
/// The requests a [`Fake`] saw: path and Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server answering each request with `answer(host, path, authorization)`, recording every
/// request's path and Authorization header. Stops when dropped.
struct Fake {
    host: String,
    seen: Seen,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn start(answer: impl Fn(&str, &str, Option<&str>) -> Answer + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2, host2) = (seen.clone(), stop.clone(), host.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let _ = serve(stream, &host2, &answer, &seen2);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Fake {
            host,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    host: &str,
    answer: &dyn Fn(&str, &str, Option<&str>) -> Answer,
    seen: &Mutex<Vec<(String, Option<String>)>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut auth = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_owned());
            }
        }
    }
    let (status, headers, body) = answer(host, &path, auth.as_deref());
    seen.lock().unwrap().push((path.clone(), auth));
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )?;
    for (k, v) in headers {
        write!(stream, "{k}: {v}\r\n")?;
    }
    stream.write_all(b"\r\n")?;
    stream.write_all(&body)
}

fn digest(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

const CONFIG: &[u8] = br#"{"os":"linux","architecture":"amd64","config":{"Entrypoint":["/real"]}}"#;

fn manifest(config_digest: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":1}},"layers":[]}}"#
    )
    .into_bytes()
}

fn json() -> Vec<(String, String)> {
    vec![(
        "Content-Type".into(),
        "application/vnd.oci.image.manifest.v1+json".into(),
    )]
}

#[test]
fn a_blob_that_is_not_its_digest_is_refused() {
    let wanted = digest(CONFIG);
    let fake = Fake::start(move |_, path, _| {
        if path.contains("/manifests/") {
            (200, json(), manifest(&wanted))
        } else {
            (
                200,
                vec![],
                br#"{"config":{"Entrypoint":["/evil"]}}"#.to_vec(),
            )
        }
    });
    let pod = pod("p", &format!("{}/app:v1", fake.host), "");
    wrap_fails(
        &pod,
        &["--insecure-registry", &fake.host],
        &[
            "served a config blob whose digest is sha256:",
            &format!("not {}", digest(CONFIG)),
        ],
    );
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    // The registry wants Basic auth and redirects blob requests to a
    // second server ("storage") on another port: another host.
    let storage = Fake::start(|_, _, _| (200, vec![], CONFIG.to_vec()));
    let storage_host = storage.host.clone();
    let wanted = digest(CONFIG);
    let registry = Fake::start(move |_, path, auth| {
        if auth.is_none() {
            (
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())],
                vec![],
            )
        } else if path.contains("/manifests/") {
            (200, json(), manifest(&wanted))
        } else {
            (
                307,
                vec![(
                    "Location".into(),
                    format!("http://{storage_host}/blob?sig=1"),
                )],
                vec![],
            )
        }
    });
    let dir = tempdir();
    let b64 = base64::engine::general_purpose::STANDARD.encode("u:redirect-secret");
    let auth = write(
        dir.path(),
        "auth.json",
        &format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{b64}\"}}}}}}",
            registry.host
        ),
    );
    let pod = pod("p", &format!("{}/app:v1", registry.host), "");
    let args = [
        "--insecure-registry",
        registry.host.as_str(),
        "--insecure-registry",
        storage.host.as_str(),
        "--authfile",
        auth.to_str().unwrap(),
    ];
    let out = wrap_ok(&pod, &args);
    assert_eq!(first_command(&out), ["/r4/r4-exec", "--", "/real"]);
    let at_registry = registry.seen();
    assert!(at_registry
        .iter()
        .any(|(_, a)| a.as_deref() == Some(&*format!("Basic {b64}"))));
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1, "{at_storage:?}");
    assert_eq!(
        at_storage[0],
        ("/blob?sig=1".to_owned(), None),
        "no Authorization at the other host"
    );

    // A redirect to plain http of a host that is not --insecure-registry.
    let err = wrap_fails(
        &pod,
        &args[..2]
            .iter()
            .chain(&args[4..])
            .copied()
            .collect::<Vec<_>>(),
        &["redirected to plain http"],
    );
    assert!(
        !err.contains("redirect-secret") && !err.contains(&b64),
        "{err}"
    );
}

#[test]
fn a_registry_error_text_is_escaped_and_one_line() {
    let fake = Fake::start(|_, _, _| {
        (
            500,
            vec![("Content-Type".into(), "application/json".into())],
            br#"{"errors":[{"code":"BOOM","message":"\u001b[31mred\nsecond line"}]}"#.to_vec(),
        )
    });
    let pod = pod("p", &format!("{}/app:v1", fake.host), "");
    let err = wrap_fails(
        &pod,
        &["--insecure-registry", &fake.host],
        &[&format!("registry {} answered 500 Internal Server Error for manifests/v1 (BOOM: \\u{{1b}}[31mred\\nsecond line)", fake.host)],
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
