//! References from the environment and from `--env-file`, with no r4.toml,
//! and the one precedence rule between r4.toml, env files and the inherited
//! environment (`src/startup/sources.rs`), through the real binary.

use std::process::Command;

use crate::util::*;

const DB: &str = "r4://Production Secrets/Production DB/Password";
const STRIPE_REF: &str = "r4://Production Secrets/Stripe/secret key";

/// r4-exec with credentials by environment and no r4.toml anywhere: the
/// working directory is an empty one and R4_CONFIG is unset.
fn bare(w: &World) -> Command {
    let empty = w.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = w.std_command();
    cmd.env_remove("R4_CONFIG").current_dir(empty);
    cmd
}

fn run(cmd: &mut Command, script: &str) -> std::process::Output {
    cmd.args(["--", "sh", "-c", script]).output().unwrap()
}

#[test]
fn a_reference_in_the_environment_is_resolved_with_no_r4_toml() {
    let w = World::new();
    let out = run(
        bare(&w)
            .env("DB_PASSWORD", DB)
            .env("NOTE", format!("see {DB}"))
            .env("PLAIN", "value"),
        r#"printf '%s|%s|%s' "$DB_PASSWORD" "$NOTE" "$PLAIN""#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Text that merely contains a reference is left alone.
    assert_eq!(stdout(&out), format!("{DB_PASSWORD}|see {DB}|value"));
}

#[test]
fn r4_file_delivers_a_sealed_file_whose_path_the_variable_holds() {
    let w = World::new();
    let out = run(
        bare(&w).env("TLS_KEY_FILE", "r4+file://Edge/TLS/private key"),
        r#"case "$TLS_KEY_FILE" in /proc/*) cat "$TLS_KEY_FILE";; *) echo "not a path: $TLS_KEY_FILE";; esac"#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), TLS_KEY);
}

#[test]
fn a_reference_that_fails_fails_closed_naming_the_variable() {
    let w = World::new();
    let marker = w.marker();
    fails(
        bare(&w)
            .env(
                "DB_PASSWORD",
                "r4://Production Secrets/No Such Item/Password",
            )
            .arg("--")
            .args(marker.command()),
        66,
        &["DB_PASSWORD (r4://Production Secrets/No Such Item/Password)"],
    );
    marker.assert_not_ran();

    fails(
        bare(&w)
            .env("DB_PASSWORD", "r4://only/two")
            .arg("--")
            .args(marker.command()),
        64,
        &["DB_PASSWORD (from the environment) looks like a reference"],
    );
    marker.assert_not_ran();
}

#[test]
fn env_files_accept_the_dotenv_syntax_and_references() {
    let w = World::new();
    let file = w.path("app.env");
    std::fs::write(
        &file,
        format!(
            "# comment\n\nexport EXPORTED=yes\nSINGLE='a $HOME \\n b'\nDOUBLE=\"line1\\nline2 \\\"q\\\"\"\nUNQUOTED=  spaced value   # comment\nDB_PASSWORD={DB}\nKEY_FILE=r4+file://Edge/TLS/private key\n"
        ),
    )
    .unwrap();
    let out = run(
        bare(&w).arg("--env-file").arg(&file),
        r#"printf '%s|%s|%s|%s|%s|' "$EXPORTED" "$SINGLE" "$DOUBLE" "$UNQUOTED" "$DB_PASSWORD"; cat "$KEY_FILE""#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("yes|a $HOME \\n b|line1\nline2 \"q\"|spaced value|{DB_PASSWORD}|{TLS_KEY}")
    );
}

#[test]
fn a_broken_env_file_names_its_line() {
    let w = World::new();
    let file = w.path("bad.env");
    std::fs::write(&file, "A=1\nthis is not a pair\n").unwrap();
    let out = run(bare(&w).arg("--env-file").arg(&file), "true");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains(&format!("{}:2: expected NAME=value", file.display())),
        "{err}"
    );
}

/// The precedence table of the README, row by row: r4.toml over env files
/// (a later file over an earlier one) over the inherited environment;
/// `--no-override` lets an inherited plain value win over all.
#[test]
fn precedence_between_r4_toml_env_files_and_the_environment() {
    let w = World::new();
    w.config(&format!("[env]\nFROM_TOML = \"{DB}\"\n"));
    let first = w.path("first.env");
    let second = w.path("second.env");
    std::fs::write(
        &first,
        format!("FROM_TOML=file-loses\nFILE_OVER_ENV={STRIPE_REF}\nLATER=first\nPLAIN=from-file\n"),
    )
    .unwrap();
    std::fs::write(&second, "LATER=second\n").unwrap();
    let script = r#"printf '%s|%s|%s|%s' "$FROM_TOML" "$FILE_OVER_ENV" "$LATER" "$PLAIN""#;
    let mut cmd = w.std_command();
    cmd.env("FROM_TOML", "r4://Edge/TLS/private key")
        .env("FILE_OVER_ENV", DB)
        .env("PLAIN", "inherited")
        .arg("--env-file")
        .arg(&first)
        .arg("--env-file")
        .arg(&second);
    let out = run(&mut cmd, script);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{DB_PASSWORD}|{STRIPE}|second|from-file")
    );

    let mut cmd = w.std_command();
    cmd.env("FROM_TOML", "inherited-plain")
        .env("PLAIN", "inherited")
        .args(["--no-override", "--env-file"])
        .arg(&first);
    let out = run(&mut cmd, script);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("inherited-plain|{STRIPE}|first|inherited")
    );
}

#[test]
fn check_covers_every_source() {
    let w = World::new();
    let file = w.path("app.env");
    std::fs::write(&file, format!("STRIPE_KEY={STRIPE_REF}\nPLAIN=x\n")).unwrap();
    let out = bare(&w)
        .env("DB_PASSWORD", DB)
        .args(["-v", "check", "--env-file"])
        .arg(&file)
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(
        text.contains("ok  DB_PASSWORD") && text.contains("ok  STRIPE_KEY"),
        "{text}"
    );
    assert!(text.contains("2 secret(s) resolved and verified"), "{text}");
    assert!(
        err.contains("DB_PASSWORD: reference from environment"),
        "{err}"
    );
    assert!(
        err.contains(&format!("STRIPE_KEY: reference from {}:1", file.display())),
        "{err}"
    );
    for value in [DB_PASSWORD, STRIPE] {
        assert!(
            !text.contains(value) && !err.contains(value),
            "check printed a value"
        );
    }
}

#[test]
fn the_private_key_can_come_from_systemd_credentials() {
    let w = World::new();
    let creds = w.path("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::copy(w.path("agent.pem"), creds.join("r4-private-key")).unwrap();
    std::fs::write(creds.join("r4-api-key"), API_KEY).unwrap();
    let out = run(
        bare(&w)
            .env_remove("R4_PRIVATE_KEY_FILE")
            .env_remove("R4_API_KEY")
            .env("CREDENTIALS_DIRECTORY", &creds)
            .env("DB_PASSWORD", DB),
        r#"printf %s "$DB_PASSWORD""#,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), DB_PASSWORD);
}
