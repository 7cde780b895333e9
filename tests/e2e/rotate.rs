//! `r4-exec rotate-key` against the devserver (contract §7): a successful
//! rotation after which the old key is refused and the new one decrypts
//! everything; running it again; and each error the server can answer.

use crate::util::*;

#[test]
fn rotation_moves_every_vault_to_the_new_key_and_revokes_the_old() {
    let w = World::new();
    let (path, key) = new_key(&w);
    let out = w
        .r4exec()
        .args(["rotate-key", "--new-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("rotated {}", key.fingerprint())
    );

    // The old key no longer opens anything; the failure points at rotation.
    w.r4exec()
        .args(["--", "true"])
        .assert()
        .code(77)
        .stderr(predicates::str::contains("wrapped key is for runtime key"));
    // The new key decrypts every vault (both encrypted vaults are re-wrapped).
    let run = w
        .r4exec()
        .env("R4_PRIVATE_KEY_FILE", &path)
        .args([
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$DB_PASSWORD\" \"$(cat \"$TLS_KEY_FILE\")\"",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&run),
        format!("{DB_PASSWORD}|{}", TLS_KEY.trim_end()),
        "{}",
        stderr(&run)
    );

    // Running it again reports that it is done, without error.
    let again = w
        .r4exec()
        .args(["rotate-key", "--new-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("already rotated"));

    // The revoked key cannot come back.
    let back = w
        .r4exec()
        .env("R4_PRIVATE_KEY_FILE", w.path("agent.pem"))
        .arg("register")
        .output()
        .unwrap();
    assert_eq!(back.status.code(), Some(77), "{}", stderr(&back));
    assert!(stderr(&back).contains("key_revoked"), "{}", stderr(&back));
}

#[test]
fn registering_a_different_key_needs_a_rotation_proof() {
    let w = World::new();
    let (path, _) = new_key(&w);
    let out = w
        .r4exec()
        .env("R4_PRIVATE_KEY_FILE", &path)
        .arg("register")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("rotation_proof_required") && err.contains("rotate-key"),
        "{err}"
    );
}

#[test]
fn an_incomplete_rewrap_is_refused_and_the_old_key_keeps_working() {
    let w = World::new();
    let (_, new) = new_key(&w);
    let c = client(&w);
    let rt = rt();
    let mut req = rt
        .block_on(r4_exec::commands::rotate_key::build_request(
            &c,
            agent_key(),
            &new,
            &Default::default(),
        ))
        .unwrap();
    req.rotation.as_mut().unwrap().rewrapped_vault_keys.pop();
    let err = rt.block_on(c.register(&req)).unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("rewrap_incomplete"))
    );
    w.r4exec().args(["--", "true"]).assert().success();
}

#[test]
fn a_bad_proof_is_an_invalid_request() {
    let w = World::new();
    let (_, new) = new_key(&w);
    let c = client(&w);
    let rt = rt();
    let mut req = rt
        .block_on(r4_exec::commands::rotate_key::build_request(
            &c,
            agent_key(),
            &new,
            &Default::default(),
        ))
        .unwrap();
    // Signed by the new key instead of the previous one.
    let rotation = req.rotation.as_mut().unwrap();
    let stmt = r4_exec::contract::rotation::statement(
        agent_key().fingerprint(),
        new.fingerprint(),
        &rotation.issued_at,
    );
    rotation.proof = r4_exec::contract::rotation::sign_proof(&new, &stmt);
    let err = rt.block_on(c.register(&req)).unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("invalid_request"))
    );
    w.r4exec().args(["--", "true"]).assert().success();
}

#[test]
fn an_interrupted_rotation_leaves_a_working_key() {
    // The server fails every request: nothing changes, the old key still works.
    let w = World::new();
    let (path, _) = new_key(&w);
    w.server
        .admin()
        .set_faults(vec!["unavailable".parse().unwrap()]);
    let out = w
        .r4exec()
        .args(["--timeout", "5", "rotate-key", "--new-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    w.server.admin().set_faults(vec![]);
    w.r4exec().args(["--", "true"]).assert().success();
    let out = w
        .r4exec()
        .args(["rotate-key", "--new-key"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
