//! The real `r4-exec` binary against an in-process r4-devserver: what reaches
//! the child, what does not, and every exit code of the table.

use crate::util::*;

#[test]
fn env_and_memfd_secrets_reach_the_child() {
    let w = World::new();
    let out = run_ok(
        &w,
        &[],
        r#"printf '%s|%s|' "$DB_PASSWORD" "$STRIPE_KEY"; cat "$TLS_KEY_FILE"; cat "$TLS_KEY_FILE"; printf '|%s|%s' "$TLS_KEY_FILE" "$$""#,
    );
    let (rest, pid) = out.rsplit_once('|').unwrap();
    let (values, path) = rest.rsplit_once('|').unwrap();
    assert_eq!(values, format!("{DB_PASSWORD}|{STRIPE}|{TLS_KEY}{TLS_KEY}"));
    // COMMAND keeps r4-exec's pid and the descriptor: the path is its own.
    assert!(path.starts_with(&format!("/proc/{pid}/fd/")), "{path}");
}

#[test]
fn the_file_is_a_sealed_memfd_not_a_path_on_disk() {
    let w = World::new();
    let out = run_ok(
        &w,
        &[],
        r#"readlink "/proc/$$/fd/${TLS_KEY_FILE##*/}"; grep -c . "$TLS_KEY_FILE""#,
    );
    assert!(out.starts_with("/memfd:TLS_KEY_FILE"), "{out}");
}

#[test]
fn secrets_are_not_in_the_command_line() {
    let w = World::new();
    let out = run_ok(
        &w,
        &[],
        "tr '\\0' ' ' </proc/self/cmdline; tr '\\0' ' ' </proc/$PPID/cmdline 2>/dev/null",
    );
    assert!(!out.contains(DB_PASSWORD) && !out.contains(STRIPE), "{out}");
}

#[test]
fn the_command_keeps_r4_execs_pid() {
    let w = World::new();
    let child = w
        .std_command()
        .args(["--", "sh", "-c", "echo $$"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), pid.to_string());
}

#[test]
fn own_credentials_do_not_reach_the_child() {
    let w = World::new();
    let env = run_ok(&w, &[], "env");
    for absent in [
        "R4_API_KEY",
        "R4_PRIVATE_KEY_FILE",
        "R4_CONFIG",
        "R4_BASE_URL",
        API_KEY,
    ] {
        assert!(!env.contains(absent), "{absent} leaked: {env}");
    }
    assert!(env.contains("DB_PASSWORD="));
    let out = w
        .r4exec()
        .args(["--keep-r4-env", "--", "env"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains(&format!("R4_API_KEY={API_KEY}")));
}

#[test]
fn the_child_has_only_stdio_and_the_memfds() {
    // `ls` itself is the child: its descriptors are what it inherited plus
    // the directory it opens to list them.
    let w = World::new();
    let out = w
        .r4exec()
        .args(["--", "ls", "-l", "/proc/self/fd/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_only_the_tls_key_memfd(&stdout(&out));
}

#[test]
fn signal_mask_and_dispositions_are_clean_in_the_child() {
    let w = World::new();
    let script = format!(
        "trap '' USR1 HUP TERM; exec '{}' -- cat /proc/self/status",
        bin().display()
    );
    // Without r4-exec the trap is inherited: the check below is meaningful.
    let plain = w
        .shell("trap '' USR1 HUP TERM; exec cat /proc/self/status")
        .output()
        .unwrap();
    assert!(!stdout(&plain).contains("SigIgn:\t0000000000000000"));
    let out = w.shell(&script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    for line in ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"] {
        assert!(status.contains(line), "{line} missing in:\n{status}");
    }
}

#[test]
fn secret_overrides_inherited_variable_unless_no_override() {
    let w = World::new();
    let out = w
        .r4exec()
        .env("DB_PASSWORD", "inherited")
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), DB_PASSWORD);
    let out = w
        .r4exec()
        .env("DB_PASSWORD", "inherited")
        .args([
            "--no-override",
            "--",
            "sh",
            "-c",
            "printf %s \"$DB_PASSWORD\"",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "inherited");
}

#[test]
fn exit_status_is_the_commands_own() {
    let w = World::new();
    w.r4exec()
        .args(["--", "sh", "-c", "exit 42"])
        .assert()
        .code(42);
}

#[test]
fn command_not_found_is_127_and_not_executable_is_126() {
    let w = World::new();
    w.r4exec()
        .args(["--", "no-such-command-r4"])
        .assert()
        .code(127)
        .stderr(predicates::str::contains("no-such-command-r4"));
    let script = w.path("script");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    w.r4exec().arg("--").arg(&script).assert().code(126);
}

#[test]
fn no_command_is_a_usage_error() {
    let w = World::new();
    w.r4exec()
        .assert()
        .code(64)
        .stderr(predicates::str::contains("no command"));
}

#[test]
fn unknown_reference_lists_candidates_and_exits_66() {
    let w = World::new();
    w.config("[env]\nX = \"r4://Production Secrets/Production DB/Pasword\"\n");
    let marker = w.marker();
    let err = fails(
        w.r4exec().arg("--").args(marker.command()),
        66,
        &["X (r4://Production Secrets/Production DB/Pasword): no field \"Pasword\""],
    );
    assert!(
        err.contains("\"Password\" (") && err.contains("\"Username\" ("),
        "{err}"
    );
    marker.assert_not_ran();
}

#[test]
fn names_match_case_insensitively_when_unique() {
    let w = World::new();
    w.config("[env]\nX = \"r4://production secrets/PRODUCTION DB/password\"\n");
    assert_eq!(run_ok(&w, &[], "printf %s \"$X\""), DB_PASSWORD);
}

#[test]
fn a_vault_not_shared_is_not_found() {
    let w = World::new();
    w.config("[env]\nX = \"r4://Not Shared/Hidden/x\"\n");
    w.r4exec().args(["--", "true"]).assert().code(66);
}

#[test]
fn a_bad_api_key_is_an_auth_error() {
    let w = World::new();
    w.r4exec()
        .env("R4_API_KEY", "rk_nope.nope")
        .args(["--", "true"])
        .assert()
        .code(77)
        .stderr(predicates::str::contains("401"));
}

#[test]
fn an_unreachable_server_is_a_network_error() {
    let w = World::new();
    w.r4exec()
        .env("R4_BASE_URL", "http://127.0.0.1:9/api/v1/machine")
        .args(["--timeout", "5", "--", "true"])
        .assert()
        .code(69);
}

#[test]
fn a_verification_fault_means_the_child_never_runs() {
    let w = World::faulty(&["tamper-ciphertext"]);
    let marker = w.marker();
    fails(
        w.r4exec().arg("--").args(marker.command()),
        65,
        &["COMMAND was not started"],
    );
    marker.assert_not_ran();
}

#[test]
fn check_prints_names_and_sources_but_no_value() {
    let w = World::new();
    for args in [
        &["check"][..],
        &["check", "--json"][..],
        &["-v", "check"][..],
    ] {
        let out = w.r4exec().args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for name in ["DB_PASSWORD", "STRIPE_KEY", "TLS_KEY_FILE"] {
            assert!(all.contains(name), "{args:?}: {all}");
        }
        assert_no_value(&format!("{args:?}"), &all);
        assert!(all.contains("sha256:"), "signer missing: {all}");
    }
}

#[test]
fn verbose_exec_prints_no_value() {
    let w = World::new();
    let out = w.r4exec().args(["-vv", "--", "true"]).output().unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("DB_PASSWORD"), "{err}");
    assert_no_value("-vv", &err);
}

#[test]
fn keygen_register_whoami() {
    let w = World::with(false, &[]);
    let key = w.path("new.pem");
    let out = w
        .r4exec()
        .args(["keygen", "--bits", "2048", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let fingerprint = stdout(&out).trim().to_string();
    assert!(fingerprint.starts_with("sha256:"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    w.r4exec()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .code(64);

    let register = || {
        w.r4exec()
            .env("R4_PRIVATE_KEY_FILE", &key)
            .arg("register")
            .output()
            .unwrap()
    };
    let first = register();
    assert_eq!(
        stdout(&first).trim(),
        format!("registered {fingerprint}"),
        "{}",
        stderr(&first)
    );
    let again = register();
    assert_eq!(stdout(&again).trim(), format!("unchanged {fingerprint}"));

    let who = w.r4exec().arg("whoami").output().unwrap();
    assert!(
        stdout(&who).contains("agent") && stdout(&who).contains(&fingerprint),
        "{}",
        stdout(&who)
    );
    let json = w.r4exec().args(["whoami", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["runtimeKey"]["fingerprint"], fingerprint.as_str());

    // With the new key registered, the secrets decrypt with it.
    let out = w
        .r4exec()
        .env("R4_PRIVATE_KEY_FILE", &key)
        .args(["--", "sh", "-c", "printf %s \"$DB_PASSWORD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
}

#[test]
fn project_mode_derives_names_and_explicit_entries_win() {
    let w = World::new();
    w.config(
        "[env]\nPRODUCTION_DB_PASSWORD = \"r4://Edge/TLS/private key\"\n[project]\nname = \"App\"\nexclude = [\"STRIPE_*\"]\n",
    );
    let out = run_ok(&w, &[], "env | grep -E '^(PRODUCTION|STRIPE)' | sort");
    assert!(
        out.contains(&format!("PRODUCTION_DB_USERNAME={DB_USER}")),
        "{out}"
    );
    assert!(
        out.contains("PRODUCTION_DB_PASSWORD=-----BEGIN TEST KEY-----"),
        "{out}"
    );
    assert!(!out.contains("STRIPE"), "{out}");
}

#[test]
fn an_unpinned_run_warns_once() {
    let w = World::new();
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert_eq!(
        stderr(&out)
            .matches("no signer or log key is pinned")
            .count(),
        1
    );
}

#[test]
fn legacy_vaults_need_opt_in_and_warn() {
    let w = World::new();
    let refs = "[env]\nL = \"r4://Old/Legacy DB/Password\"\nH = \"r4://Old/Legacy DB/Host\"\n";
    w.config(refs);
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("L (r4://Old/Legacy DB/Password): legacy vault"),
        "{}",
        stderr(&out)
    );
    w.config(&format!("[r4]\nallow_legacy = true\n{refs}"));
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "printf '%s|%s' \"$L\" \"$H\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{LEGACY}|db.internal"));
    assert_eq!(
        stderr(&out).matches("legacy vault is in use").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
fn unencrypted_vaults_need_opt_in() {
    let w = World::new();
    let refs = "[env]\nREGION = \"r4://Plain/Settings/Region\"\n";
    w.config(refs);
    w.r4exec()
        .args(["--", "true"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("unencrypted vault"));
    w.config(&format!("[r4]\nallow_unencrypted = true\n{refs}"));
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "printf %s \"$REGION\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), PLAIN, "{}", stderr(&out));
}

#[test]
fn project_from_the_env_endpoint_decrypts_locally_and_warns() {
    let w = World::new();
    w.config("[project]\nname = \"App\"\nsource = \"env-endpoint\"\n");
    let out = w
        .r4exec()
        .args([
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$PRODUCTION_DB_PASSWORD\" \"$STRIPE_SECRET_KEY\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{DB_PASSWORD}|{STRIPE}"));
    assert!(
        stderr(&out).contains("names are mapped to values by the server"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn colliding_project_names_are_errors_unless_mapped_explicitly() {
    let w = World::new();
    let vault = r4_devserver::vault_id("Production Secrets");
    let item =
        r4_devserver::ItemSeed::new("Production-DB", &[("Password", "PASSWORD", "other", true)]);
    w.server.admin().add_item(&vault, item).unwrap();
    for source in ["verified", "env-endpoint"] {
        w.config(&format!(
            "[project]\nname = \"App\"\nsource = \"{source}\"\n"
        ));
        let out = w.r4exec().args(["--", "true"]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{source}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("PRODUCTION_DB_PASSWORD"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("map it explicitly"),
            "{}",
            stderr(&out)
        );
        w.config(&format!(
            "[env]\nPRODUCTION_DB_PASSWORD = \"r4://Production Secrets/Production DB/Password\"\n[project]\nname = \"App\"\nsource = \"{source}\"\n"
        ));
        let out = w
            .r4exec()
            .args(["--", "sh", "-c", "printf %s \"$PRODUCTION_DB_PASSWORD\""])
            .output()
            .unwrap();
        assert_eq!(stdout(&out), DB_PASSWORD, "{source}: {}", stderr(&out));
    }
}

/// `r4-exec install DIR`, as kubectl-r4's init container runs it: the copy is
/// the same binary, 0555, and runs; no configuration or credential is read
/// (the environment is empty).
#[test]
fn install_copies_the_binary_itself_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["install", dir.path().to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = dir.path().join("r4-exec");
    assert!(stderr(&out).contains("installed"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(bin()).unwrap());
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let version = std::process::Command::new(&copy)
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        stdout(&version).starts_with("r4-exec "),
        "{}",
        stdout(&version)
    );
    fails(
        std::process::Command::new(bin())
            .args(["install", "/nonexistent/r4"])
            .env_clear(),
        70,
        &["/nonexistent/r4/r4-exec"],
    );
}
