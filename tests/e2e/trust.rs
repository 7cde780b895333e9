//! Pinning (contract §5, issue "Trust and the runtime key's life"): `r4-exec
//! trust` produces a [trust] block that makes the run strict; a pin that does
//! not match the server's signers stops the run; a pinned log key makes
//! inclusion proofs mandatory.

use crate::util::*;

fn trust_block(out: &str) -> String {
    let start = out.find("[trust]").expect("a [trust] block");
    out[start..]
        .lines()
        .take_while(|l| !l.starts_with("# log_public_key_file"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn trust_prints_directories_and_a_block_that_pins_the_operator() {
    let w = World::new();
    let out = w.r4exec().arg("trust").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let operator =
        r4_exec::contract::crypto::PublicKey::from_pem(&w.server.admin().operator_public_key())
            .unwrap()
            .fingerprint()
            .to_string();
    assert!(text.contains("vault \"Production Secrets\""), "{text}");
    assert!(text.contains("vault \"Edge\""), "{text}");
    assert!(text.contains(&format!("\"{operator}\",  # USER")), "{text}");
    assert!(text.contains("(this agent)"), "{text}");

    w.config(&format!("{CONFIG}\n{}\n", trust_block(&text)));
    let run = w
        .r4exec()
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&run), DB_PASSWORD, "{}", stderr(&run));
    assert!(!stderr(&run).contains("pinned"), "{}", stderr(&run));
}

#[test]
fn a_pin_the_server_cannot_satisfy_stops_the_run() {
    let w = World::new();
    let stranger = format!("sha256:{}", "ab".repeat(32));
    w.config(&format!("{CONFIG}\n[trust]\nsigners = [\"{stranger}\"]\n"));
    let marker = w.marker();
    fails(
        w.r4exec().arg("--").args(marker.command()),
        65,
        &["is not pinned in [trust] signers"],
    );
    marker.assert_not_ran();
}

#[test]
fn a_malformed_pin_is_a_config_error() {
    let w = World::new();
    w.config(&format!("{CONFIG}\n[trust]\nsigners = [\"sha1:abc\"]\n"));
    w.r4exec()
        .args(["--", "true"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("is not a fingerprint"));
}

#[test]
fn a_pinned_log_key_checks_inclusion() {
    let w = World::new();
    pin_log(&w);
    let out = w.r4exec().arg("trust").output().unwrap();
    assert!(stdout(&out).contains(" included"), "{}", stdout(&out));
    let run = w.r4exec().args(["--", "true"]).output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!stderr(&run).contains("pinned"));

    // The wrong log key: the tree head no longer authenticates.
    let other = r4_exec::contract::crypto::PrivateKey::generate(2048).unwrap();
    std::fs::write(w.path("log.pem"), other.public().to_pem()).unwrap();
    w.r4exec()
        .args(["--", "true"])
        .assert()
        .code(65)
        .stderr(predicates::str::contains("tree head is from another log"));
}

/// `trust` selects vaults and the project exactly as a run does: a project
/// name that matches nothing is an error listing the candidates (it used to
/// be skipped silently, printing a report that looked complete).
#[test]
fn trust_refuses_a_project_or_vault_that_does_not_resolve() {
    let w = World::new();
    w.config(&format!(
        "{CONFIG}\n[project]\nname = \"No Such Project\"\n"
    ));
    let out = w.r4exec().arg("trust").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(
        err.contains("[project]") && err.contains("No Such Project"),
        "{err}"
    );
    assert!(err.contains("App"), "the candidates are listed: {err}");

    w.config("[env]\nX = \"r4://No Such Vault/Item/Field\"\n");
    let out = w.r4exec().arg("trust").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(err.contains("X (r4://No Such Vault/Item/Field)"), "{err}");
}

/// Every fingerprint of the `[trust]` block `r4-exec trust` prints.
fn pins(w: &World) -> Vec<String> {
    let out = w.r4exec().arg("trust").output().unwrap();
    let block = trust_block(&stdout(&out));
    block
        .split('"')
        .filter(|s| s.starts_with("sha256:"))
        .map(str::to_owned)
        .collect()
}

/// Env-only deployments pin too: `R4_TRUST_SIGNERS` and
/// `R4_LOG_PUBLIC_KEY_FILE`, with no r4.toml at all (references in the
/// environment), silence the unpinned warning; a pin the server cannot
/// satisfy stops the run; COMMAND sees neither variable.
#[test]
fn signers_and_the_log_key_can_be_pinned_by_environment() {
    let w = World::new();
    let signers = pins(&w).join(", ");
    assert!(signers.contains(','), "{signers}");
    std::fs::write(w.path("log.pem"), w.server.admin().log_public_key()).unwrap();
    std::fs::remove_file(w.path("r4.toml")).unwrap();
    let script = "printf '%s|%s|%s' \"$DB_PASSWORD\" \"${R4_TRUST_SIGNERS-unset}\" \"${R4_LOG_PUBLIC_KEY_FILE-unset}\"";
    let run = |signers: &str, log: bool| {
        let mut cmd = w.r4exec();
        cmd.env_remove("R4_CONFIG")
            .env(
                "DB_PASSWORD",
                "r4://Production Secrets/Production DB/Password",
            )
            .env("R4_TRUST_SIGNERS", signers);
        if log {
            cmd.env("R4_LOG_PUBLIC_KEY_FILE", w.path("log.pem"));
        }
        cmd.args(["--", "sh", "-c", script]).output().unwrap()
    };
    for log in [false, true] {
        let out = run(&signers, log);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{DB_PASSWORD}|unset|unset"));
        assert!(!stderr(&out).contains("pinned"), "{}", stderr(&out));
    }
    // A signer pin the server cannot satisfy stops the run (with no log
    // key: a signer proven in a pinned log is accepted unpinned, §5).
    let stranger = format!("sha256:{}", "ab".repeat(32));
    let out = run(&stranger, false);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not pinned"), "{}", stderr(&out));
    // The wrong log key: the tree head no longer authenticates.
    let other = r4_exec::contract::crypto::PrivateKey::generate(2048).unwrap();
    std::fs::write(w.path("log.pem"), other.public().to_pem()).unwrap();
    let out = run(&signers, true);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));

    let out = run("sha1:abc", false);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("R4_TRUST_SIGNERS: \"sha1:abc\" is not a fingerprint"),
        "{}",
        stderr(&out)
    );
}

/// The environment wins over `[trust]`, as `R4_BASE_URL` over `base_url`.
#[test]
fn the_environment_pins_over_r4_toml() {
    let w = World::new();
    let signers = pins(&w);
    let stranger = format!("sha256:{}", "ab".repeat(32));
    w.config(&format!("{CONFIG}\n[trust]\nsigners = [\"{stranger}\"]\n"));
    let out = w
        .r4exec()
        .env("R4_TRUST_SIGNERS", signers.join(" "))
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
}
