//! The fallback copy (issue #14, `docs/fallback.md`) through the real
//! binary against the devserver: stored after a verified start (0600,
//! atomic, no plaintext, no key, no DEK), used only when R4 cannot be
//! reached (stopped, 503), refused when too old, tampered with, after a
//! verification failure or an authoritative 401/403/404, never moved
//! backwards; in supervisor mode the first live poll takes over.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::util::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use r4_devserver::{vault_id, Fault, FaultKind};
use r4_exec::contract::crypto::digest;
use r4_exec::contract::Signed;
use serde_json::{Map, Value};

/// Where the tests keep the copy: a directory r4-exec creates.
fn copy_path(w: &World) -> PathBuf {
    w.path("cache/app.json")
}

/// r4.toml = [`CONFIG`] plus `[fallback]`.
fn configure(w: &World, max_age: &str) {
    w.config(&format!(
        "{CONFIG}\n[fallback]\npath = \"{}\"\nmax_age = \"{max_age}\"\n",
        copy_path(w).display()
    ));
}

/// Runs r4-exec on `cmd` with `--timeout 10`; COMMAND writes
/// `$DB_PASSWORD` to `out`.
fn run_with(cmd: assert_cmd::Command, dir: &Path) -> (Output, Option<String>) {
    run_within(cmd, dir, "10")
}

/// [`run_with`] with `--timeout timeout`.
fn run_within(mut cmd: assert_cmd::Command, dir: &Path, timeout: &str) -> (Output, Option<String>) {
    let out_file = dir.join("out");
    let _ = std::fs::remove_file(&out_file);
    let out = cmd
        .args([
            "--timeout",
            timeout,
            "--",
            "sh",
            "-c",
            "printf %s \"$DB_PASSWORD\" > \"$1\"",
            "sh",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&out_file).ok())
}

fn run(w: &World) -> (Output, Option<String>) {
    run_with(w.r4exec(), w.dir.path())
}

/// A run that must succeed from R4 itself.
fn live_run(w: &World) -> Output {
    let (out, got) = run(w);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
    assert!(!stderr(&out).contains("fallback copy"), "{}", stderr(&out));
    out
}

/// A run that must fail with `code`, COMMAND not started, no value shown,
/// and the copy not used.
fn refused(w: &World, code: i32, message: &str) -> String {
    let (out, got) = run(w);
    let err = fails(out, code, &[message]);
    assert_eq!(got, None, "COMMAND ran: {err}");
    assert!(!err.contains("started from the fallback copy"), "{err}");
    assert_no_value("a refused run", &err);
    err
}

fn outage(w: &World) {
    w.server
        .admin()
        .set_faults(vec![Fault::new(FaultKind::Unavailable)]);
}

/// The stamp line and the body of the stored copy.
fn read_copy(w: &World) -> (Map<String, Value>, String) {
    read_copy_from(&std::fs::read_to_string(copy_path(w)).unwrap())
}

/// Writes a copy with `body`, stamped with the agent key as r4-exec would
/// (what someone holding the key, or a bug, could produce): only the
/// contract's own checks stand between it and COMMAND.
fn write_restamped(w: &World, mut stamp: Map<String, Value>, body: &str) {
    stamp.insert("bodyDigest".into(), digest(body.as_bytes()).into());
    stamp.remove("signature");
    let signed = Signed::sign(&stamp, agent_key());
    let text = format!("{}\n{body}", serde_json::to_string(&signed).unwrap());
    std::fs::write(copy_path(w), text).unwrap();
}

/// Flips one character of the first `"signature"` value in `text` after
/// `from`.
fn flip_signature(text: &str, from: usize) -> String {
    let at = from + text[from..].find("\"signature\":\"").unwrap() + 13 + 10;
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn stored_after_a_verified_start_private_and_atomic() {
    let w = World::new();
    configure(&w, "24h");
    let out = live_run(&w);
    let meta = std::fs::metadata(copy_path(&w)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(w.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["app.json"], "no temporary file is left");
    let (stamp, body) = read_copy(&w);
    assert_eq!(stamp["kind"], "r4-exec.fallback-stamp.v1");
    assert_eq!(stamp["baseUrl"], w.server.base_url());
    assert_eq!(stamp["signerKeyId"], agent_key().fingerprint());
    let versions = stamp["versions"].as_object().unwrap();
    let used = [vault_id("Production Secrets"), vault_id("Edge")];
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(used.iter().all(|v| versions.contains_key(v)));
    // The contents of the vaults in use only (not of the legacy or
    // unencrypted ones), and the list of every visible vault (names, ids).
    let parsed: Value = serde_json::from_str(&body).unwrap();
    let kept: Vec<&str> = parsed["sync"]["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vault"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, used);
    assert_eq!(parsed["listed"]["vaults"].as_array().unwrap().len(), 4);
    assert!(
        !stderr(&out).contains("warning: fallback"),
        "{}",
        stderr(&out)
    );
}

/// Every form a value could take on disk: raw, hex, base64 (standard and
/// URL-safe, at every alignment for values long enough to tell apart).
fn forms(value: &[u8]) -> Vec<String> {
    let mut out = vec![
        String::from_utf8_lossy(value).into_owned(),
        hex::encode(value),
        STANDARD.encode(value),
        STANDARD_NO_PAD.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ];
    if value.len() >= 12 {
        for shift in 1..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(value);
            for encoded in [
                STANDARD_NO_PAD.encode(&shifted),
                URL_SAFE_NO_PAD.encode(&shifted),
            ] {
                // Characters that depend on the value's bytes only.
                out.push(encoded[shift * 4 / 3 + 1..encoded.len() - 1].to_string());
            }
        }
    }
    out
}

#[test]
fn the_copy_holds_no_value_no_api_key_and_no_dek() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    let text = std::fs::read_to_string(copy_path(&w)).unwrap();
    let (_, body) = read_copy(&w);
    let (api_key_id, api_secret) = API_KEY.split_once('.').unwrap();
    let private_der = pem_rfc7468::decode_vec(agent_key().to_pkcs8_pem().as_bytes())
        .unwrap()
        .1;
    let mut needles: Vec<Vec<u8>> = ALL_VALUES
        .iter()
        .chain([&api_secret])
        .map(|v| v.as_bytes().to_vec())
        .collect();
    needles.push(private_der);
    // The DEK of every vault in the copy, unwrapped as r4-exec would.
    let parsed: Value = serde_json::from_str(&body).unwrap();
    let vaults = parsed["sync"]["vaults"].as_array().unwrap();
    assert_eq!(vaults.len(), 2);
    for v in vaults {
        let wrapped = v["wrappedKey"]["wrappedDek"].as_str().unwrap();
        needles.push(agent_key().unwrap_dek(wrapped).unwrap().expose().to_vec());
    }
    for needle in &needles {
        for form in forms(needle) {
            assert!(!text.contains(&form), "found {form:?} in the copy");
        }
    }
    // The API key's id is not secret, but it is not needed either.
    assert!(!text.contains(api_key_id));
}

#[test]
fn used_when_the_server_is_stopped_with_a_warning() {
    // Configured by environment only (no [fallback] in r4.toml).
    let w = World::new();
    let path = copy_path(&w);
    let with_env = |mut cmd: assert_cmd::Command| {
        cmd.env("R4_FALLBACK_FILE", &path)
            .env("R4_FALLBACK_MAX_AGE", "1h");
        cmd
    };
    let (out, got) = run_with(with_env(w.r4exec()), w.dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
    let cmd = with_env(w.r4exec());
    let World { server, dir } = w;
    drop(server);
    let (out, got) = run_with(cmd, dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD), "{err}");
    let warning =
        "r4-exec: warning: R4 cannot be reached (GET /vault/sync: cannot reach the server";
    assert!(err.contains(warning), "{err}");
    assert!(
        err.contains(&format!(
            "started from the fallback copy {}, stored ",
            path.display()
        )) && err.contains("ago (max_age 1h)"),
        "{err}"
    );
    assert_eq!(err.matches("started from the fallback copy").count(), 1);
    assert!(!err.contains(DB_PASSWORD));
}

/// Only `[fallback] prefer` makes a start from the copy ask R4 again in
/// the background: a supervisor (`--reap`, no `--watch`) that started from
/// the copy in an outage asks nothing more, and ends with COMMAND.
#[test]
fn a_supervisor_started_from_the_copy_in_an_outage_asks_nothing_more() {
    let w = World::new();
    configure(&w, "1h");
    live_run(&w);
    outage(&w);
    let mut cmd = w.r4exec();
    cmd.args(["-v", "--reap"]);
    let (out, got) = run_with(cmd, w.dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD), "{err}");
    assert!(err.contains("started from the fallback copy"), "{err}");
    assert!(!err.contains("asking R4 in the background"), "{err}");
}

#[test]
fn used_on_503_and_not_replaced_by_itself() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    let before = std::fs::read(copy_path(&w)).unwrap();
    outage(&w);
    let (out, got) = run(&w);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
    assert!(
        err.contains("R4 cannot be reached (GET /vault/sync: 503"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(copy_path(&w)).unwrap(),
        before,
        "a copy is not re-stored"
    );
}

/// 429 after the retries counts as an outage (docs/fallback.md says why):
/// it says nothing about this key's rights.
#[test]
fn used_on_429_after_the_retries() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    w.server
        .admin()
        .set_faults(vec![Fault::new(FaultKind::RateLimit)]);
    let (out, got) = run(&w);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
    assert!(
        err.contains("R4 cannot be reached (GET /vault/sync: 429 rate_limit_exceeded"),
        "{err}"
    );
}

/// A server that never answers: the live attempt gives up early enough
/// (`--timeout` minus a reserve) for the copy to be read within
/// `--timeout`.
#[test]
fn used_when_the_server_hangs() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    w.server
        .admin()
        .set_faults(vec![Fault::new(FaultKind::Hang)]);
    let start = Instant::now();
    let (out, got) = run_within(w.r4exec(), w.dir.path(), "4");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
    let gave_up = "R4 cannot be reached (GET /vault/sync: no complete answer within 2s)";
    assert!(err.contains(gave_up), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

/// A reference the copy cannot resolve (r4.toml changed during the
/// outage) fails as "not found", not as tampering.
#[test]
fn a_reference_missing_from_the_copy_is_not_found() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    outage(&w);
    w.config(&format!(
        "[env]\nDB_PASSWORD = \"r4://Elsewhere/X/Y\"\n[fallback]\npath = \"{}\"\n",
        copy_path(&w).display()
    ));
    let err = refused(
        &w,
        66,
        "DB_PASSWORD (r4://Elsewhere/X/Y): no vault \"Elsewhere\"",
    );
    assert!(err.contains("GET /vault/sync: 503"), "{err}");
    assert!(
        err.contains("does not verify or resolve (above), so it is not used"),
        "{err}"
    );
}

/// A vault that is listed but was not in use when the copy was stored
/// (its contents are not kept) is "not found" from the copy.
#[test]
fn a_vault_not_kept_in_the_copy_is_not_found() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    outage(&w);
    w.config(&format!(
        "[r4]\nallow_unencrypted = true\n[env]\nDB_PASSWORD = \"r4://Plain/Settings/Region\"\n[fallback]\npath = \"{}\"\n",
        copy_path(&w).display()
    ));
    let plain = vault_id("Plain");
    let err = refused(
        &w,
        66,
        &format!("vault {plain} is listed but its contents are not in the answer"),
    );
    assert!(!err.contains(PLAIN), "{err}");
}

#[test]
fn check_uses_r4_only() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    outage(&w);
    let out = w
        .r4exec()
        .args(["--timeout", "10", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(!stderr(&out).contains("fallback"), "{}", stderr(&out));
}

#[test]
fn refused_when_older_than_max_age() {
    let w = World::new();
    configure(&w, "1s");
    live_run(&w);
    std::thread::sleep(Duration::from_millis(1500));
    outage(&w);
    let err = refused(&w, 69, "fallback copy refused: ");
    assert!(err.contains("older than max_age 1s"), "{err}");
    assert!(err.contains("GET /vault/sync: 503"), "{err}");
}

#[test]
fn refused_after_a_verification_failure_even_with_a_copy() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    for (fault, code, message) in [
        ("bad-signature-summary", 65, "signature does not verify"),
        ("tamper-ciphertext", 65, "envelope failed authentication"),
        ("invalid-json", 65, "malformed response"),
    ] {
        w.server
            .admin()
            .set_faults(vec![fault.parse::<Fault>().unwrap()]);
        let err = refused(&w, code, message);
        assert!(!err.contains("fallback"), "{fault}: {err}");
    }
}

#[test]
fn refused_on_401_403_and_404() {
    let limited = "rk_limited0000000.limited-secret";
    let seed = format!(
        "{}\n[[agents]]\nname = \"limited\"\napi_key = \"{limited}\"\npermissions = [\"machine.vault.read\"]\n",
        seed_text(true)
    );
    let w = World::from_seed(&seed, &[]);
    configure(&w, "24h");
    live_run(&w);
    for (key, code, message) in [
        ("rk_wrong00000000.wrong", 77, "401 unauthorized"),
        (limited, 77, "403 api_key_permission_denied"),
    ] {
        let (out, got) = run_with(
            {
                let mut cmd = w.r4exec();
                cmd.env("R4_API_KEY", key);
                cmd
            },
            w.dir.path(),
        );
        let err = fails(out, code, &[message]);
        assert_eq!(got, None, "COMMAND ran: {err}");
        assert!(!err.contains("fallback"), "{err}");
    }
    w.config(&format!(
        "{CONFIG}\n[project]\nid = \"0000000000000000000000ff\"\n[fallback]\npath = \"{}\"\n",
        copy_path(&w).display()
    ));
    let err = refused(&w, 66, "404");
    assert!(!err.contains("fallback"), "{err}");
}

#[test]
fn refused_when_tampered_with() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    let original = std::fs::read_to_string(copy_path(&w)).unwrap();
    let body_start = original.find('\n').unwrap() + 1;
    outage(&w);

    // A flipped byte in a checkpoint signature: the stamp no longer covers
    // the answer.
    std::fs::write(copy_path(&w), flip_signature(&original, body_start)).unwrap();
    refused(&w, 65, "the answer was modified after it was stored");

    // A stamp made to look younger: its signature fails.
    let (stamp, body) = read_copy_from(&original);
    let ms = stamp["storedAtMs"].as_u64().unwrap();
    let younger = original.replacen(
        &format!("\"storedAtMs\":{ms}"),
        &format!("\"storedAtMs\":{}", ms + 1),
        1,
    );
    std::fs::write(copy_path(&w), younger).unwrap();
    refused(&w, 65, "the stamp's signature does not verify");

    // The same flipped signature under a valid stamp: the contract's own
    // verification refuses it, as it would a live answer.
    write_restamped(&w, stamp.clone(), &flip_signature(&body, 0));
    let err = refused(&w, 65, "verification failed: signature does not verify");
    assert!(
        err.contains("the stored answer does not verify or resolve"),
        "{err}"
    );

    // Restored, it is used again.
    std::fs::write(copy_path(&w), &original).unwrap();
    let (out, got) = run(&w);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some(DB_PASSWORD));
}

/// The stamp line and the body of a copy's text.
fn read_copy_from(text: &str) -> (Map<String, Value>, String) {
    let (stamp, body) = text.split_once('\n').unwrap();
    (serde_json::from_str(stamp).unwrap(), body.to_string())
}

#[test]
fn a_copy_stamped_in_the_future_is_refused() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    let (mut stamp, body) = read_copy(&w);
    let ms = stamp["storedAtMs"].as_u64().unwrap();
    stamp.insert("storedAtMs".into(), (ms + 3_600_000).into());
    write_restamped(&w, stamp, &body);
    outage(&w);
    refused(&w, 69, "in the future (the clock moved back)");
}

/// The attack: a server replays an older answer (validly signed, so it
/// passes every check of a fresh process); it must not replace the newer
/// copy that the next outage would start from.
#[test]
fn an_older_answer_does_not_replace_a_newer_copy() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    let first = std::fs::read(copy_path(&w)).unwrap();
    set_db_password(&w, "newer password");
    let (out, got) = run(&w);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some("newer password"));
    let newer = std::fs::read(copy_path(&w)).unwrap();
    assert_ne!(newer, first, "a newer answer replaces the copy");
    // From now on the server rolls summaries back after the first one.
    w.server
        .admin()
        .set_faults(vec![Fault::new(FaultKind::Rollback)]);
    let (out, _) = run(&w);
    assert!(out.status.success(), "{}", stderr(&out));
    let newer = std::fs::read(copy_path(&w)).unwrap();
    let (out, _) = run(&w);
    let err = stderr(&out);
    assert!(
        err.contains("warning: fallback copy not replaced: vault ")
            && err.contains("in this answer but at ")
            && err.contains("(the copy only moves forward)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(copy_path(&w)).unwrap(),
        newer,
        "the newer copy stays"
    );
    outage(&w);
    let (out, got) = run(&w);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some("newer password"));
}

#[test]
fn a_legacy_vault_in_use_is_not_stored() {
    let w = World::new();
    w.config(&format!(
        "[r4]\nallow_legacy = true\n[env]\nDB_PASSWORD = \"r4://Old/Legacy DB/Password\"\n[fallback]\npath = \"{}\"\n",
        copy_path(&w).display()
    ));
    let (out, got) = run(&w);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(LEGACY));
    assert!(
        err.contains("warning: fallback copy not stored: vault ")
            && err.contains("is a legacy vault"),
        "{err}"
    );
    assert!(!copy_path(&w).exists());
}

#[test]
fn max_age_without_a_path_or_malformed_is_a_usage_error() {
    let w = World::new();
    let out = w
        .r4exec()
        .env("R4_FALLBACK_MAX_AGE", "1h")
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("R4_FALLBACK_MAX_AGE is set but no fallback path is"));
    configure(&w, "one day");
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("[fallback] max_age: \"one day\" is not a duration"));
}

/// How long the supervisor tests wait for a start, a poll or a copy.
const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_supervisor_starts_from_the_copy_and_returns_to_live_answers() {
    let w = World::new();
    configure(&w, "24h");
    live_run(&w);
    outage(&w);
    let starts = w.path("starts");
    let script = r#"echo "start $DB_PASSWORD" >> "$1"
trap 'exit 0' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let sup = Running::start(
        &w,
        &[
            "--timeout",
            "10",
            "--watch",
            "--watch-interval",
            "0.3",
            "--grace",
            "5",
        ],
        script,
        &starts,
    );
    let lines = || read(&starts);
    let err = || sup.stderr();
    wait_for("a start from the copy", TIMEOUT, || {
        lines().lines().count() == 1
    });
    assert_eq!(lines(), format!("start {DB_PASSWORD}\n"));
    assert!(
        err().contains("started from the fallback copy"),
        "{}",
        err()
    );
    // Polls fail during the outage; COMMAND keeps running.
    wait_for("a failed poll", TIMEOUT, || {
        err().contains("refresh failed, COMMAND keeps running")
    });
    // R4 is back, with a changed value: the live answer takes over.
    set_db_password(&w, "after the outage");
    w.server.admin().set_faults(vec![]);
    wait_for("a restart with the live value", TIMEOUT, || {
        lines().lines().count() == 2
    });
    assert_eq!(
        lines().lines().nth(1),
        Some("start after the outage"),
        "{}",
        err()
    );
    assert!(
        err().contains("refresh: R4 answered again; live answers replace the fallback copy"),
        "{}",
        err()
    );
    assert_eq!(err().matches("started from the fallback copy").count(), 1);
    // And the copy moved forward with it.
    outage(&w);
    drop(sup);
    let (out, got) = run(&w);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some("after the outage"));
}

/// With `--watch`, polls R4 answers with "nothing changed" keep the copy
/// young (re-stamped once a tenth of `max_age` has passed), without a
/// restart: a restart during a later outage finds a recent copy.
#[test]
fn unchanged_polls_keep_the_copy_young() {
    let w = World::new();
    configure(&w, "10s");
    let starts = w.path("starts");
    let script = r#"echo "start" >> "$1"
trap 'exit 0' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let sup = Running::start(
        &w,
        &["-v", "--watch", "--watch-interval", "0.3"],
        script,
        &starts,
    );
    let stored_at = || {
        std::fs::read_to_string(copy_path(&w))
            .ok()
            .and_then(|t| read_copy_from(&t).0["storedAtMs"].as_u64())
    };
    wait_for("the first copy", TIMEOUT, || stored_at().is_some());
    let first = stored_at().unwrap();
    wait_for("a re-stamped copy", TIMEOUT, || {
        stored_at().unwrap() >= first + 1000
    });
    let err = sup.stderr();
    assert!(
        err.contains("refresh: no change since the last one"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&starts).unwrap(),
        "start\n",
        "{err}"
    );
}

/// `[fallback] prefer`: a valid copy starts COMMAND without asking R4 (a
/// value changed in R4 since is not seen, which shows R4 was not asked); a
/// copy that is refused (tampered with, too old) makes it ask R4 as usual.
#[test]
fn prefer_starts_from_a_valid_copy_without_asking_r4() {
    let w = World::new();
    configure(&w, "1h");
    live_run(&w);
    let original = std::fs::read_to_string(copy_path(&w)).unwrap();
    set_db_password(&w, "changed-in-r4-since");
    let mut cmd = w.r4exec();
    cmd.env("R4_FALLBACK_PREFER", "1");
    let (out, got) = run_with(cmd, w.dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some(DB_PASSWORD), "{err}");
    assert!(
        err.contains("started from the fallback copy")
            && err.contains("R4 was not asked ([fallback] prefer)"),
        "{err}"
    );
    // In r4.toml too; a tampered copy is not used: R4 is asked.
    w.config(&format!(
        "{CONFIG}\n[fallback]\npath = \"{}\"\nmax_age = \"1h\"\nprefer = true\n",
        copy_path(&w).display()
    ));
    let body_start = original.find('\n').unwrap() + 1;
    std::fs::write(copy_path(&w), flip_signature(&original, body_start)).unwrap();
    let mut cmd = w.r4exec();
    cmd.arg("-v");
    let (out, got) = run_with(cmd, w.dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(got.as_deref(), Some("changed-in-r4-since"), "{err}");
    assert!(
        err.contains("[fallback] prefer: the copy is not used: "),
        "{err}"
    );
    assert!(!err.contains("started from the fallback copy"), "{err}");
    for bad in ["maybe", ""] {
        let mut cmd = w.r4exec();
        cmd.env("R4_FALLBACK_PREFER", bad);
        let (out, _) = run_with(cmd, w.dir.path());
        if bad.is_empty() {
            assert!(out.status.success(), "an empty variable is unset");
        } else {
            fails(
                out,
                64,
                &["R4_FALLBACK_PREFER must be 1, true, yes, 0, false or no"],
            );
        }
    }
    w.config(&format!("{CONFIG}\n[fallback]\nprefer = true\n"));
    let (out, _) = run(&w);
    fails(
        out,
        64,
        &["[fallback] prefer is set but no fallback path is"],
    );
}

/// In supervisor mode a start from the preferred copy is followed by one
/// request to R4 in the background, which refreshes the copy: COMMAND keeps
/// what it started with, and the next start sees what R4 has now.
#[test]
fn prefer_refreshes_the_copy_in_the_background_in_supervisor_mode() {
    let w = World::new();
    configure(&w, "1h");
    live_run(&w);
    let stored = std::fs::read_to_string(copy_path(&w)).unwrap();
    set_db_password(&w, "changed-in-r4-since");
    let out_file = w.path("out");
    let copy = copy_path(&w);
    let script = r#"printf %s "$DB_PASSWORD" > "$1"
i=0; while [ "$(cat "$2")" = "$3" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"#;
    let out = w
        .r4exec()
        .env("R4_FALLBACK_PREFER", "true")
        .args(["--reap", "--", "sh", "-c", script, "sh"])
        .arg(&out_file)
        .arg(&copy)
        .arg(&stored)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        read(&out_file),
        DB_PASSWORD,
        "COMMAND started from the copy"
    );
    assert!(
        err.contains("[fallback] prefer: R4 answered and the copy is refreshed"),
        "{err}"
    );
    let mut cmd = w.r4exec();
    cmd.env("R4_FALLBACK_PREFER", "1");
    let (out, got) = run_with(cmd, w.dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(got.as_deref(), Some("changed-in-r4-since"));
}
