//! Bad input through the real binary: every way a user can get the command
//! line, `r4.toml`, the key files or the environment wrong must stop r4-exec
//! *before* COMMAND runs, with the documented exit code and a message that
//! says what is wrong and where.
//!
//! Each test runs `r4-exec` with a scrubbed environment (only `PATH` and what
//! the test sets; never the developer's `R4_*` variables), in its own temporary
//! directory, with a COMMAND that would create a marker file if it ever ran
//! (`touch <tmp>/ran`), and asserts the exit code, the useful part of
//! stderr and that the marker is absent. No network is used: every case fails
//! before a request, except the shared-API-key-file case, which points at a
//! closed loopback port (127.0.0.1:9) and must fail with 69.
//!
//! Several of these were written to the message a demanding user should see
//! before r4-exec printed it (see each test's comment); they are what keeps
//! those messages from regressing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use crate::util::{fails, Marker};

/// The only inherited variable.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// A config that is valid and needs nothing else from the file.
const VALID_CONFIG: &str =
    "[env]\nDATABASE_URL = \"r4://Production Secrets/Production DB/Password\"\n";
/// A well-formed API key (never valid anywhere).
const API_KEY: &str = "rk_bad0input00000.not-a-real-secret-9f8e7d";
/// Documented exit codes.
const USAGE: i32 = 64;
const NETWORK: i32 = 69;
const NOT_EXECUTABLE: i32 = 126;
const NOT_FOUND: i32 = 127;

/// A temporary directory holding the fixtures of one test.
struct Fx {
    dir: TempDir,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` with mode 0600 and returns its path.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.write_mode(name, contents, 0o600)
    }

    fn write_mode(&self, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write fixture");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// `r4.toml` in the test directory.
    fn config(&self, text: &str) -> PathBuf {
        self.write("r4.toml", text)
    }

    /// A fresh valid 2048-bit agent key, made by `r4-exec keygen`.
    fn keygen(&self) -> PathBuf {
        let out = self.path("k.pem");
        self.cmd()
            .args(["keygen", "--bits", "2048", "--out"])
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::starts_with("sha256:"));
        out
    }

    /// The COMMAND of every run: `touch <tmp>/ran`.
    fn marker(&self) -> Marker {
        Marker::new(self.dir.path())
    }

    /// `r4-exec` with a scrubbed environment, run in the test directory.
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("r4-exec").expect("r4-exec binary");
        c.env_clear().env("PATH", PATH).current_dir(self.dir.path());
        c
    }

    /// `r4-exec --config <config> --timeout 10 -- touch <marker>`.
    fn exec(&self, config: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("--config")
            .arg(config)
            .args(["--timeout", "10", "--"])
            .args(self.marker().command());
        c
    }
}

/// Runs exec mode on `config_text` and expects a usage/config failure.
fn config_fails(config_text: &str, fragments: &[String]) {
    let fx = Fx::new();
    let cfg = fx.config(config_text);
    let frags: Vec<&str> = fragments.iter().map(String::as_str).collect();
    fails(&mut fx.exec(&cfg), USAGE, &frags);
    fx.marker().assert_not_ran();
}

// ---------------------------------------------------------------- sanity ----

#[test]
fn the_marker_command_does_create_the_marker() {
    // Guards the other tests: "marker absent" only means something if the
    // marker command works when it does run.
    let fx = Fx::new();
    let marker = fx.marker();
    let cmd = marker.command();
    let status = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .env_clear()
        .env("PATH", PATH)
        .status()
        .expect("sh");
    assert!(status.success());
    assert!(fx.marker().path().exists());
}

// ---------------------------------------------------------------- r4.toml ----

#[test]
fn malformed_toml_names_file_line_and_column() {
    let fx = Fx::new();
    let cfg = fx.config("[env]\nA = \"r4://V/I/F\"\nB = \n");
    fails(
        &mut fx.exec(&cfg),
        USAGE,
        &[&format!("{}:3:5: ", cfg.display()), "invalid string"],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn unterminated_string_names_line_and_column() {
    let fx = Fx::new();
    let cfg = fx.config("[r4]\nbase_url = \"https://r4.dev\n[env]\nA = \"r4://V/I/F\"\n");
    fails(
        &mut fx.exec(&cfg),
        USAGE,
        &[&format!("{}:2:", cfg.display())],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn unknown_key_in_r4_is_an_error_listing_the_valid_keys() {
    config_fails(
        "[r4]\nbase_uri = \"https://r4.dev/api/v1/machine\"\n[env]\nA = \"r4://V/I/F\"\n",
        &[
            "r4.toml:2:1: ".into(),
            "unknown field `…`, expected one of `base_url`, `api_key_file`, `private_key_file`"
                .into(),
        ],
    );
}

#[test]
fn unknown_table_is_an_error() {
    config_fails(
        "[env]\nA = \"r4://V/I/F\"\n[secrets]\nB = \"r4://V/I/F\"\n",
        &[
            "r4.toml:3:2: ".into(),
            "unknown field `…`, expected one of `r4`, `env`, `files`, `project`, `trust`".into(),
        ],
    );
}

#[test]
fn unknown_key_in_an_entry_table_is_an_error() {
    config_fails(
        "[env]\nA = { ref = \"r4://V/I/F\", optional = true }\n",
        &[
            "r4.toml:2:5: ".into(),
            "expected \"r4://<vault>/<item>/<field>\" or { ref = \"r4://…\" }".into(),
        ],
    );
}

#[test]
fn an_entry_that_is_not_a_reference_says_what_is_expected() {
    // Before the fix in src/config/mod.rs this said "data did not match any
    // variant of untagged enum RawEntry".
    let fx = Fx::new();
    let cfg = fx.config("[env]\nA = 5\n");
    let err = fails(
        &mut fx.exec(&cfg),
        USAGE,
        &[
            "r4.toml:2:5: ",
            "expected \"r4://<vault>/<item>/<field>\" or { ref = \"r4://…\" }",
        ],
    );
    assert!(!err.contains("untagged enum"), "{}", err);
    fx.marker().assert_not_ran();
}

#[test]
fn invalid_env_var_names_are_refused() {
    for (table, name) in [
        ("env", "1A"),
        ("env", "MY-VAR"),
        ("env", "A B"),
        ("env", ""),
        ("files", "TLS.KEY"),
    ] {
        config_fails(
            &format!("[{table}]\n\"{name}\" = \"r4://V/I/F\"\n"),
            &[format!(
                "r4.toml: [{table}] {name}: not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
            )],
        );
    }
}

#[test]
fn a_name_in_env_and_in_files_is_refused() {
    config_fails(
        "[env]\nTLS_KEY = \"r4://Edge/TLS/key\"\n[files]\nTLS_KEY = \"r4://Edge/TLS/key\"\n",
        &["r4.toml: TLS_KEY is mapped twice (in [env] and in [files])".into()],
    );
}

#[test]
fn a_reference_with_the_wrong_scheme_is_refused() {
    for bad in ["https://V/I/F", "R4://V/I/F", "r4:/V/I/F", "V/I/F", ""] {
        config_fails(
            &format!("[env]\nA = \"{bad}\"\n"),
            &["r4.toml: [env] A: not a reference: a reference starts with r4:// (r4://<vault>/<item>/<field>)".to_string()],
        );
    }
}

#[test]
fn a_reference_with_the_wrong_segment_count_is_refused() {
    for (bad, found) in [
        ("r4://V/I", 2),
        ("r4://V", 1),
        ("r4://V/I/F/G", 4),
        ("r4://V/I/F/", 4),
    ] {
        config_fails(
            &format!("[files]\nA = {{ ref = \"{bad}\" }}\n"),
            &[format!(
                "r4.toml: [files] A: not a reference: a reference has exactly three segments r4://<vault>/<item>/<field>, found {found}"
            )],
        );
    }
}

#[test]
fn a_reference_with_an_empty_segment_is_refused() {
    config_fails(
        "[env]\nA = \"r4://V//F\"\n",
        &["r4.toml: [env] A: not a reference: segment 2 of the reference is empty".into()],
    );
}

#[test]
fn a_reference_with_a_bad_escape_is_refused() {
    for (bad, seg) in [
        ("r4://V/I%20x/F", 2),
        ("r4://V%/I/F", 1),
        ("r4://V/I/F%2", 3),
        ("r4://V/I/100%", 3),
        ("r4://V/I/%2G", 3),
    ] {
        config_fails(
            &format!("[env]\nA = \"{bad}\"\n"),
            &[format!(
                "r4.toml: [env] A: not a reference: bad escape in segment {seg}: only %2F (for /) and %25 (for %) are allowed"
            )],
        );
    }
}

#[test]
fn a_project_needs_exactly_one_of_id_or_name() {
    config_fails(
        "[project]\nid = \"507f1f77bcf86cd799439014\"\nname = \"Demo\"\n",
        &["r4.toml: [project] needs exactly one of id or name".into()],
    );
}

#[test]
fn a_bad_project_glob_is_refused() {
    config_fails(
        "[project]\nname = \"Demo\"\ninclude = [\"PROD_[\"]\n",
        &["r4.toml: [project] include: unclosed character class".into()],
    );
}

#[test]
fn a_config_with_nothing_to_fetch_is_refused() {
    config_fails(
        "[r4]\nbase_url = \"https://r4.dev/api/v1/machine\"\n",
        &["r4.toml: nothing to fetch: add [env], [files] or [project] (or set a variable to an r4:// reference)".into()],
    );
}

// ------------------------------------------------------ missing config ----

#[test]
fn a_missing_config_given_with_dash_c_is_named() {
    let fx = Fx::new();
    let missing = fx.path("nope/r4.toml");
    fails(
        &mut fx.exec(&missing),
        USAGE,
        &[&format!(
            "cannot read {}: No such file or directory",
            missing.display()
        )],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_missing_config_given_in_r4_config_is_named() {
    let fx = Fx::new();
    let missing = fx.path("elsewhere.toml");
    let mut c = fx.cmd();
    c.env("R4_CONFIG", &missing)
        .arg("--")
        .args(fx.marker().command());
    fails(
        &mut c,
        USAGE,
        &[&format!(
            "cannot read {}: No such file or directory",
            missing.display()
        )],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_missing_default_config_is_named() {
    // No --config, no R4_CONFIG, no ./r4.toml in the working directory, and
    // no reference in the environment: r4.toml is optional, but something
    // must say what to fetch.
    let fx = Fx::new();
    let mut c = fx.cmd();
    c.arg("--").args(fx.marker().command());
    fails(
        &mut c,
        USAGE,
        &["nothing to resolve: no ./r4.toml, and no variable or --env-file line holds an r4:// reference; write one with `r4-exec init` (or start from r4.toml.example), or pass --config FILE"],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn check_without_r4_toml_points_at_init_and_the_example() {
    let fx = Fx::new();
    let mut c = fx.cmd();
    c.arg("check");
    fails(
        &mut c,
        USAGE,
        &["r4-exec: nothing to resolve: no ./r4.toml, and no variable or --env-file line holds an r4:// reference; write one with `r4-exec init` (or start from r4.toml.example), or pass --config FILE\n"],
    );
}

#[test]
fn an_error_inside_the_default_r4_toml_gets_no_advice_about_finding_it() {
    // It used to end in "; pass --config FILE or set R4_CONFIG", as if the
    // file had not been found.
    let fx = Fx::new();
    fx.config("[env]\nA = \"r4://V/I\"\n");
    let mut c = fx.cmd();
    c.arg("--").args(fx.marker().command());
    let stderr = fails(
        &mut c,
        USAGE,
        &["r4-exec: r4.toml: [env] A: not a reference: a reference has exactly three segments r4://<vault>/<item>/<field>, found 2\n"],
    );
    assert!(
        !stderr.contains("--config") && !stderr.contains("R4_CONFIG"),
        "{stderr}"
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_config_that_is_a_directory_or_not_utf8_is_refused() {
    let fx = Fx::new();
    fails(
        &mut fx.exec(fx.dir.path()),
        USAGE,
        &[&format!(
            "cannot read {}: is not a regular file (a FIFO, device, socket or directory: refused)",
            fx.dir.path().display()
        )],
    );
    let bin = fx.write("bin.toml", b"[env]\nA = \"r4://V/I/\xff\"\n");
    fails(
        &mut fx.exec(&bin),
        USAGE,
        &[&format!("cannot read {}: is not UTF-8 text", bin.display())],
    );
    fx.marker().assert_not_ran();
}

// ----------------------------------------------------------- private key ----

/// Exec mode with a valid config and the private key file `pem`.
fn key_fails(pem: &[u8], fragment: &str) {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    let key = fx.write("agent.pem", pem);
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key)
        .env("R4_API_KEY", API_KEY);
    fails(
        &mut c,
        USAGE,
        &[&format!("private key {}: {fragment}", key.display())],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn an_ec_private_key_in_pkcs8_is_not_rsa() {
    key_fails(EC_P256_PKCS8.as_bytes(), "not an RSA private key");
}

#[test]
fn an_ec_private_key_in_sec1_says_rsa_is_needed() {
    // Used to say `unexpected PEM label "EC PRIVATE KEY"`: true, but not what
    // r4-exec wants instead.
    key_fails(EC_P256_SEC1.as_bytes(), "not an RSA private key");
}

#[test]
fn an_encrypted_private_key_is_refused() {
    for pem in [RSA_2048_ENCRYPTED_PKCS8, RSA_2048_ENCRYPTED_PKCS1] {
        key_fails(
            pem.as_bytes(),
            "the private key is encrypted; r4-exec needs an unencrypted PKCS#8 or PKCS#1 key",
        );
    }
}

#[test]
fn a_public_key_is_not_a_private_key() {
    key_fails(
        RSA_2048_PUBLIC.as_bytes(),
        "this is a public key; a private key is needed",
    );
}

#[test]
fn a_1024_bit_rsa_key_is_too_small() {
    // Used to say `not an RSA private key`: aws-lc refuses small moduli
    // itself, before r4-exec's own size check could name the problem.
    for pem in [RSA_1024_PKCS8, RSA_1024_PKCS1] {
        key_fails(
            pem.as_bytes(),
            "RSA key too small; at least 2048 are required",
        );
    }
}

#[test]
fn a_garbage_private_key_is_not_pem() {
    key_fails(b"this is not a key\n", "not a PEM document");
    key_fails(b"", "not a PEM document");
    key_fails(b"\xff\xfe\x00binary", "not a PEM document");
    key_fails(
        b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        "not an RSA private key",
    );
}

#[test]
fn a_missing_private_key_is_named() {
    let fx = Fx::new();
    let missing = fx.path("absent.pem");
    let cfg = fx.config(&format!(
        "[r4]\nprivate_key_file = \"{}\"\n{VALID_CONFIG}",
        missing.display()
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_API_KEY", API_KEY);
    fails(
        &mut c,
        USAGE,
        &[&format!(
            "cannot read private key {}: No such file or directory",
            missing.display()
        )],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn no_api_key_and_no_private_key_are_reported_together() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    let expected = "r4-exec: no private key: set R4_PRIVATE_KEY_FILE or private_key_file in [r4], or pass it as the systemd credential r4-private-key (create one with `r4-exec keygen`)\n\
                    r4-exec: no API key: set R4_API_KEY, or api_key_file in [r4], or pass it as the systemd credential r4-api-key\n";
    let err = fails(&mut fx.exec(&cfg), USAGE, &[expected]);
    assert_eq!(err, expected);
    let new = fx.path("new.toml");
    for (sub, config) in [("register", &cfg), ("ls", &cfg), ("init", &new)] {
        let mut c = fx.cmd();
        c.arg("--config").arg(config).arg(sub);
        let err = fails(&mut c, USAGE, &[expected]);
        assert_eq!(err, expected, "{sub}");
    }
    fx.marker().assert_not_ran();
}

#[test]
fn no_private_key_configured_says_how_to_get_one() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.exec(&cfg);
    c.env("R4_API_KEY", API_KEY);
    fails(
        &mut c,
        USAGE,
        &["no private key: set R4_PRIVATE_KEY_FILE or private_key_file in [r4], or pass it as the systemd credential r4-private-key (create one with `r4-exec keygen`)"],
    );
    fx.marker().assert_not_ran();
}

// --------------------------------------------------------------- API key ----

#[test]
fn an_empty_r4_api_key_is_refused() {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    for value in ["", "   ", "\n"] {
        let mut c = fx.exec(&cfg);
        c.env("R4_PRIVATE_KEY_FILE", &key).env("R4_API_KEY", value);
        fails(&mut c, USAGE, &["R4_API_KEY is set but empty"]);
    }
    fx.marker().assert_not_ran();
}

#[test]
fn an_empty_r4_api_key_does_not_fall_back_to_the_key_file() {
    // Set-but-empty is a mistake to report, not a reason to look elsewhere.
    let fx = Fx::new();
    let key = fx.keygen();
    let key_file = fx.write("api-key", API_KEY);
    let cfg = fx.config(&format!(
        "[r4]\napi_key_file = \"{}\"\n{VALID_CONFIG}",
        key_file.display()
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key).env("R4_API_KEY", "");
    fails(&mut c, USAGE, &["R4_API_KEY is set but empty"]);
    fx.marker().assert_not_ran();
}

#[test]
fn an_empty_api_key_file_is_refused() {
    let fx = Fx::new();
    let key = fx.keygen();
    for (i, contents) in ["", " \n\t\n"].into_iter().enumerate() {
        let key_file = fx.write(&format!("api-key-{i}"), contents);
        let cfg = fx.config(&format!(
            "[r4]\napi_key_file = \"{}\"\n{VALID_CONFIG}",
            key_file.display()
        ));
        let mut c = fx.exec(&cfg);
        c.env("R4_PRIVATE_KEY_FILE", &key);
        fails(
            &mut c,
            USAGE,
            &[&format!("API key file {} is empty", key_file.display())],
        );
    }
    fx.marker().assert_not_ran();
}

#[test]
fn a_missing_api_key_says_where_to_put_one() {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key);
    fails(
        &mut c,
        USAGE,
        &["no API key: set R4_API_KEY, or api_key_file in [r4], or pass it as the systemd credential r4-api-key"],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_missing_api_key_file_is_named() {
    let fx = Fx::new();
    let key = fx.keygen();
    let missing = fx.path("no-such-api-key");
    let cfg = fx.config(&format!(
        "[r4]\napi_key_file = \"{}\"\n{VALID_CONFIG}",
        missing.display()
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key);
    fails(
        &mut c,
        USAGE,
        &[&format!(
            "cannot read API key file {}: No such file or directory",
            missing.display()
        )],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn an_api_key_file_readable_by_others_warns_and_the_run_goes_on() {
    let fx = Fx::new();
    let key = fx.keygen();
    let key_file = fx.write_mode("api-key", format!("{API_KEY}\n"), 0o644);
    let cfg = fx.config(&format!(
        "[r4]\nbase_url = \"http://127.0.0.1:9/api/v1/machine\"\napi_key_file = \"{}\"\n{VALID_CONFIG}",
        key_file.display()
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key);
    let stderr = fails(
        &mut c,
        NETWORK,
        &[
            &format!(
                "r4-exec: warning: {} is readable by other users; chmod 600 it",
                key_file.display()
            ),
            // The run went on to the (closed) server.
            "cannot reach the server",
            "COMMAND was not started",
        ],
    );
    assert!(
        !stderr.contains("not-a-real-secret"),
        "API key leaked: {stderr}"
    );
    fx.marker().assert_not_ran();
}

#[test]
fn an_api_key_file_of_mode_0600_does_not_warn() {
    let fx = Fx::new();
    let key = fx.keygen();
    let key_file = fx.write_mode("api-key", API_KEY, 0o600);
    let cfg = fx.config(&format!(
        "[r4]\nbase_url = \"http://127.0.0.1:9/api/v1/machine\"\napi_key_file = \"{}\"\n{VALID_CONFIG}",
        key_file.display()
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key);
    let err = fails(&mut c, NETWORK, &["cannot reach the server"]);
    assert!(!err.contains("warning"), "{}", err);
    fx.marker().assert_not_ran();
}

#[test]
fn an_api_key_with_control_characters_is_blamed_on_the_key_not_the_url() {
    // Used to say `base URL API key has characters not allowed in a header`.
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key)
        .env("R4_API_KEY", "rk_abc\u{1}.secret")
        .env("R4_BASE_URL", "http://127.0.0.1:9");
    let err = fails(&mut c, USAGE, &["API key", "not allowed"]);
    assert!(!err.contains("base URL"), "{}", err);
    fx.marker().assert_not_ran();
}

// ------------------------------------------------------ unreachable server ----

/// Exec mode against `base_url` with valid credentials.
fn unreachable_fails(base_url: &str, fragment: &str) {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key)
        .env("R4_API_KEY", API_KEY)
        .env("R4_BASE_URL", base_url);
    let stderr = fails(
        &mut c,
        NETWORK,
        &[fragment, "r4-exec: COMMAND was not started\n"],
    );
    for internal in [
        "Query {",
        "client error (Connect)",
        "os error",
        "error sending request",
    ] {
        assert!(!stderr.contains(internal), "{internal}: {stderr}");
    }
    fx.marker().assert_not_ran();
}

#[test]
fn a_host_that_does_not_resolve_is_named_in_words() {
    // Used to end in hickory's debug text: "dns error: proto error: no
    // records found for Query { name: Name(\"…\"), query_type: AAAA, … }".
    // `.invalid` never resolves (RFC 6761) and is answered without a query.
    unreachable_fails(
        "https://no-such-host.invalid/api/v1/machine",
        "r4-exec: GET /vault: cannot reach the server: cannot resolve no-such-host.invalid: no such name in DNS; check base_url in [r4] (or R4_BASE_URL) and the network\n",
    );
}

#[test]
fn a_refused_connection_names_host_and_port() {
    unreachable_fails(
        "http://127.0.0.1:9/api/v1/machine",
        "r4-exec: GET /vault: cannot reach the server: connection to 127.0.0.1:9 refused (nothing listens there); check base_url in [r4] (or R4_BASE_URL) and the network\n",
    );
}

// -------------------------------------------------------------- base URL ----

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let fx = Fx::new();
    let key = fx.keygen();
    for url in [
        "http://r4.dev/api/v1/machine",
        "http://10.0.0.1/api/v1/machine",
        "http://localhost.evil.example/api/v1/machine",
    ] {
        let cfg = fx.config(&format!("[r4]\nbase_url = \"{url}\"\n{VALID_CONFIG}"));
        let mut c = fx.exec(&cfg);
        c.env("R4_PRIVATE_KEY_FILE", &key)
            .env("R4_API_KEY", API_KEY);
        fails(
            &mut c,
            USAGE,
            &[&format!(
                "base URL \"{url}\" uses plain http:// to a non-loopback host; use https://"
            )],
        );
    }
    fx.marker().assert_not_ran();
}

#[test]
fn plain_http_in_r4_base_url_is_refused_too() {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key)
        .env("R4_API_KEY", API_KEY)
        .env("R4_BASE_URL", "http://r4.example.com/api/v1/machine");
    fails(
        &mut c,
        USAGE,
        &["base URL \"http://r4.example.com/api/v1/machine\" uses plain http:// to a non-loopback host; use https://"],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_base_url_that_is_not_an_http_url_is_refused() {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(VALID_CONFIG);
    for (url, fragment) in [
        (
            "ftp://r4.dev/x",
            "base URL \"ftp://r4.dev/x\" has unsupported scheme ftp:",
        ),
        ("r4.dev/api", "base URL \"r4.dev/api\" is not a URL"),
    ] {
        let mut c = fx.exec(&cfg);
        c.env("R4_PRIVATE_KEY_FILE", &key)
            .env("R4_API_KEY", API_KEY)
            .env("R4_BASE_URL", url);
        fails(&mut c, USAGE, &[fragment]);
    }
    fx.marker().assert_not_ran();
}

#[test]
fn a_malformed_trust_pin_is_refused() {
    let fx = Fx::new();
    let key = fx.keygen();
    let cfg = fx.config(&format!(
        "{VALID_CONFIG}[trust]\nsigners = [\"sha256:ABCD\"]\n"
    ));
    let mut c = fx.exec(&cfg);
    c.env("R4_PRIVATE_KEY_FILE", &key)
        .env("R4_API_KEY", API_KEY)
        .env("R4_BASE_URL", "http://127.0.0.1:9");
    fails(
        &mut c,
        USAGE,
        &["r4.toml: [trust] signers: \"sha256:ABCD\" is not a fingerprint (sha256:<64 lowercase hex>)"],
    );
    fx.marker().assert_not_ran();
}

// ------------------------------------------------------------ command line ----

#[test]
fn dash_dash_without_a_command_is_a_usage_error() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    for args in [vec!["--"], vec![]] {
        let mut c = fx.cmd();
        c.arg("--config").arg(&cfg).args(args);
        fails(
            &mut c,
            USAGE,
            &["no command: usage is r4-exec [OPTIONS] -- COMMAND [ARGS...] (see --help)"],
        );
    }
}

#[test]
fn a_command_without_dash_dash_says_to_put_it_there() {
    // clap alone said "unexpected argument 'true' found" and showed the usage.
    let fx = Fx::new();
    for (args, word) in [
        (&["true"][..], "true"),
        (&["-v", "node", "server.js"][..], "node"),
    ] {
        let mut c = fx.cmd();
        c.args(args);
        c.assert().code(USAGE).stdout("").stderr(predicate::str::starts_with(format!(
            "error: unexpected argument '{word}' found; to run it as COMMAND, put -- before it: r4-exec [OPTIONS] -- {word} [ARGS...]\n"
        )));
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error_64() {
    // Used to exit 2 (clap's default); the exit-code table says 64.
    let fx = Fx::new();
    let mut c = fx.cmd();
    c.arg("--no-such-flag")
        .arg("--")
        .args(fx.marker().command());
    c.assert().code(USAGE).stderr(predicate::str::contains(
        "unexpected argument '--no-such-flag'",
    ));
    fx.marker().assert_not_ran();
}

#[test]
fn a_command_that_does_not_exist_is_127() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.cmd();
    c.arg("--config")
        .arg(&cfg)
        .args(["--", "r4-exec-test-no-such-command", "arg"]);
    fails(
        &mut c,
        NOT_FOUND,
        &["r4-exec-test-no-such-command: command not found"],
    );
    let missing = fx.path("bin/nothing-here");
    let mut c = fx.cmd();
    c.arg("--config").arg(&cfg).arg("--").arg(&missing);
    fails(
        &mut c,
        NOT_FOUND,
        &[&format!("{}: command not found", missing.display())],
    );
}

#[test]
fn a_command_that_is_not_executable_is_126() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    // A script that would create the marker, without its x bit.
    let script = fx.write_mode(
        "script.sh",
        format!("#!/bin/sh\ntouch '{}'\n", fx.marker().path().display()),
        0o644,
    );
    let mut c = fx.cmd();
    c.arg("--config").arg(&cfg).arg("--").arg(&script);
    fails(
        &mut c,
        NOT_EXECUTABLE,
        &[&format!(
            "{}: cannot execute: EACCES: Permission denied",
            script.display()
        )],
    );
    fx.marker().assert_not_ran();
    // The same file through PATH.
    let mut c = fx.cmd();
    c.env("PATH", format!("{}:{PATH}", fx.dir.path().display()))
        .arg("--config")
        .arg(&cfg)
        .args(["--", "script.sh"]);
    fails(
        &mut c,
        NOT_EXECUTABLE,
        &["script.sh: cannot execute: EACCES: Permission denied"],
    );
    fx.marker().assert_not_ran();
}

#[test]
fn a_directory_as_command_is_126() {
    let fx = Fx::new();
    let cfg = fx.config(VALID_CONFIG);
    let mut c = fx.cmd();
    c.arg("--config").arg(&cfg).arg("--").arg(fx.dir.path());
    fails(
        &mut c,
        NOT_EXECUTABLE,
        &[&format!(
            "{}: cannot execute: EISDIR",
            fx.dir.path().display()
        )],
    );
}

// ------------------------------------------------------------------ keygen ----

#[test]
fn keygen_refuses_unsupported_sizes() {
    let fx = Fx::new();
    let out = fx.path("small.pem");
    let mut c = fx.cmd();
    c.args(["keygen", "--bits", "1024", "--out"]).arg(&out);
    fails(
        &mut c,
        USAGE,
        &["unsupported key size 1024 (use 2048, 3072 or 4096)"],
    );
    assert!(!out.exists());
}

#[test]
fn keygen_says_to_point_r4_private_key_file_at_the_new_key() {
    let fx = Fx::new();
    let out = fx.path("agent.pem");
    fx.cmd()
        .args(["keygen", "--bits", "2048", "--out", "agent.pem"])
        .assert()
        .success()
        .stderr(format!(
            "r4-exec: wrote a 2048-bit RSA key to agent.pem (mode 0600); next: export R4_PRIVATE_KEY_FILE={} (or set private_key_file in [r4]), then run `r4-exec register`\n",
            out.display()
        ));
    assert!(out.exists());
}

#[test]
fn keygen_without_out_writes_r4_agent_pem_here() {
    let fx = Fx::new();
    fx.cmd()
        .args(["keygen", "--bits", "2048"])
        .assert()
        .success();
    let mode = std::fs::metadata(fx.path("r4-agent.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn keygen_never_overwrites() {
    let fx = Fx::new();
    let existing = fx.write("k.pem", "precious");
    let mut c = fx.cmd();
    c.args(["keygen", "--bits", "2048", "--out"]).arg(&existing);
    fails(
        &mut c,
        USAGE,
        &[&format!(
            "cannot create {}: File exists (os error 17) (refusing to overwrite an existing key)",
            existing.display()
        )],
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
}

// -------------------------------------------------------- help and version ----

#[test]
fn help_lists_every_subcommand_and_the_exit_codes() {
    let fx = Fx::new();
    let out = fx.cmd().arg("--help").assert().success().stderr("");
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for sub in ["keygen", "register", "whoami", "check"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "--help does not list `{sub}`:\n{help}"
        );
    }
    assert!(
        help.contains("Usage: r4-exec [OPTIONS] [-- <COMMAND>...]"),
        "{help}"
    );
    // The exit-code table is generated from the one in code, every code.
    assert!(help.contains(&r4_exec::exit::help_text()), "{help}");
    for (code, _) in r4_exec::exit::TABLE {
        assert!(
            help.contains(&format!("\n  {code}  ")),
            "--help lacks {code}:\n{help}"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let fx = Fx::new();
    for flag in ["--version", "-V"] {
        fx.cmd()
            .arg(flag)
            .assert()
            .success()
            .stdout(format!("r4-exec {}\n", env!("CARGO_PKG_VERSION")))
            .stderr("");
    }
}

// ----------------------------------------------------------- test key data ----
// Generated once with OpenSSL 3.0 for these tests; never used for anything else.

/// An EC P-256 key, PKCS#8 (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
const EC_P256_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLwLDiZ2GVsUXpfbk
/Cu7yS8jEfzLwYgSpLuJNY5ES7ChRANCAAQ0bFn9xevi0N9T3nY0amqFbELcIliP
w/UhjDH6LtSYqu/jGxRv4l6++VLbKRGW1eHUPLw11w6RAwW5GzwryA8k
-----END PRIVATE KEY-----
";

/// The same EC key as SEC1 (`openssl ec -in ec8.pem`): label `EC PRIVATE KEY`.
const EC_P256_SEC1: &str = "\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIC8Cw4mdhlbFF6X25Pwru8kvIxH8y8GIEqS7iTWOREuwoAoGCCqGSM49
AwEHoUQDQgAENGxZ/cXr4tDfU952NGpqhWxC3CJYj8P1IYwx+i7UmKrv4xsUb+Je
vvlS2ykRltXh1Dy8NdcOkQMFuRs8K8gPJA==
-----END EC PRIVATE KEY-----
";

/// A 1024-bit RSA key, PKCS#8 (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`).
const RSA_1024_PKCS8: &str = include_str!("../../contract/tests/data/rsa-1024.pkcs8.pem");

/// The same 1024-bit key as PKCS#1 (`openssl rsa -traditional`).
const RSA_1024_PKCS1: &str = include_str!("../../contract/tests/data/rsa-1024.pkcs1.pem");

/// A 2048-bit RSA key encrypted with AES-256 (PKCS#8 `ENCRYPTED PRIVATE KEY`, passphrase `x`).
const RSA_2048_ENCRYPTED_PKCS8: &str = "\
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIFLTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQIvrt4YCl+NLcCAggA
MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBAvxTrIhOrFcH9I7i4ERlesBIIE
0BpUeOviWb6oHMj5dopAvOPfy8N0E/5qOYUUpo5Ap41xhZyui64qHbYSIVXsyxl4
yRX3xQ7Lm7pF0COkFISd70jDxAjwi70/9nhnOWPYF4l4FEcm29TmC4b+i0Y5+VVO
INbvezfJ7G05DvHCraOnWlJsgebaeussGK0aF08GN/LPmOsqXKITDwFST+6j3CLf
yXiyLrPzegl1m6Ri1qlQgWRR37MsX61CukCBiBBH89TMtum1LUDEwOuqjvML8R6/
fa2vzAJ0zhpDeC0G/2NG9iI3bBrjFxhiBXgemHUHZf0iGGx861LUuV41f7kJaEYp
9mhGGTBF26rax/JGRpHU1SdIGwUqEfVxG7KMZfoGa1fizt5qNmDqmYLcLmKXPKLc
w1UOiLPS3cRq3Q6F+dH0/YaXfevAFDwL80dSK5OeLw+NME+3g2xJaBDu2Ku5wZUh
Oy2iLOWrqn5t3v/8d1ymWFGmHDQ9A774zpHfIfq3IB2XMgxRlQN/QlvFniIkryOJ
kMDU4oH10qW7GXYe3CVEJFHBAzNI4SwIv4XgbYOq4uFp3cdBOVxQ7r1dkQalvVAZ
Xy907B6NgR121uJJ0punN7GyQ/EA9+f2QIKmPnlxoNuGJMrzD+RMGAf05GPbNo7v
4YyrYRX8lALab9aUryLCFVU+oWJG9knsiNfcoYCPDdF4+qbC1+wRcauYxps/eqF3
5n30I6nRLObG2nna7Kc77LCq6YdIZha/ZA1YFFj0BoJfhDf2cx6+cJtKVcio/NT9
b2PDKcsd3nIC7S4oUADcNet0/kCSeDOFrgB+0RTcvOuxE0TkUN6UkHAiiojD0IIg
G5qUdpYCLu9sdt1IBV5rNelTBQjn7DlpJ4KbT2fmEO6IhdSAwEYAgQAzW9QIf7CC
3GazTQLwjFD7o1Q7FIybQmPGtZVejzZ/6PJEMrqLfJC17V9I5/99OHuK5MD4Rbmb
6r9YrHilpyt8/YTQpjVfUVQPuXGOx9vzTqU9bTS5HHGC1ATbkzGZAPo2tZh8TKZz
Tp1yuc/KttWYGyfdyQL3bU74715efoDV/cvlHIzDwV3XadRbIKSSyY2SioYs1T5X
6PtOyGsJZ23J8pZB6DVmW8eDF9oY0ScnIaotkF7BMjFTXc88RH2omTcPQEd3Nuyg
ETcSSuskD/lFg8ZMoI5dZ9O8riND8ZtPyxeot3RABxCT0JO/ptaFDtgSRPJ9lNMG
covXeycZTNgzIWmK4QsL3aZJu0XbQ/WMUy16pigOEU4WMZB3zxOzC6aDjqsGUotv
TKtA3AnelKnF0y8qsuKDOPmJMiJe1zrcdBrdps0PmuMACExFmKD6FDeON+7VndW3
UlTzZ+yHG/1PpGMsmMWznrY43qODUyOHxRiMUiKSYpMCf8YiTvsAAVmKDDPHJQLE
aClnqVmgs/v0bDQW50YZ2vowY1rj/SZxq9HPvO5MMbcljdFn6iPuWZwwSXzrHd4W
cwiQu2BlQeZdhFadCKe2t2lGHxdZJtiN+hSa7GO0QzLhbl8t6KZ2Br5cQzvLEHiE
a1EVpTtu9/dcXnGjL08q/s3uqAldnxLj6c2jFmAUwiwNyLTijx9pgkQmhuL0iaZO
D//8jpNx3oH8E4KDqOb+n1QC5KN3Brm/N5YjK8Txvbbl
-----END ENCRYPTED PRIVATE KEY-----
";

/// The same key as a legacy encrypted PKCS#1 PEM (`Proc-Type: 4,ENCRYPTED`).
const RSA_2048_ENCRYPTED_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,A9B32300C80BCA3BE25FCD51FB44EAFB

8FFus5ews7yZ1f3FugCD82tDPrm8P11DYpMZpAtADH/n400on1DQ3Pihn+8XYmVN
MYeTCpBA3/Psu6Tzub0k5X5ZfPzEzAT3YAVDMMd/vwhoUxy5V+6dL3hXQNAP/noZ
Pnx2iC6OFLwJ3kbgKey/M919F841JbMnZh9wVdSJjXMkzeYWfhLjmWrdpHAnaZGx
Tft4TyQY1uJllt8awcaU5rXxDyjef2QwlzfWfGNdt397ENeJ+Q45JYuxwHsGiqqe
20z3H+xKxOFMatfoYw1ZAL59rDb+78noBBphIoHugNQIR9UtUT4KNvyuAApRgra7
0tHw8SapO032ZF/zbicFH1DdVPtPIaeW2l5cfgTTay8raA9o/XKve0iSEeqxcQw9
BJGCDsFlClqcvPVgm5gU44v0nSCVPs5FL8zqinHxIJMHBtQw1LHezKK9CrWxQK/6
gUFQB2ADsHE5LtfhnYR0ysARQ1lYGO/0sA6xI5mONAlDvfm2YgQp5g7YKUvNBYwP
RhO8hvYM1s6bYewG91AXMUxfSsgqKx8ykgLeHIHEVZOGRfOSNBanF4w5yKLmzxzj
HEFhCMwunNGH+hHpvP9PjWw3vjACx3OwNv8c6fmsOY9py3yRY2mJcZOQFPKNSJZW
lfgaiMby/dJ40s7J4/QXxokD0e43SdYPeVxFmBKx6FRSvFWEJjyW6meQ0USfaXgk
aE4+xGTmXnVpWaajsXQ4Nkkg0ifCbzW0ghLPBJigEXiB+WyGlKcWoJk7bAkZP4t0
rB3fbW/N+/HEY5CYP6Dr8aiRd8CmRQzcmYLYy5LALT5WCAj0npDsDeh9cWkRgfyG
HVV7Y51S9e9e3/TEzn9uiCtPhvjRjCO1PjaJW7Ly5c/JJagTUPfVBS4KhUUqD1L9
tqMm8VkRIXutVueBMDf/z8HyZxcBKaIDGXKEL1BHco7XgxBlPeXQaoraWX8dH8cy
A6jUuxMTHeElzkQknvDsRbPxZXRYSNygl88kLl3J86A50xCNNLOzvStcBDWw8KD8
5dV/eR1Pbu3G+y3bDK0xoJJ+3HvCPY1OD4i0GVPDH4IhF6Pl8jSMU6MDpupzbV7s
WE4RZ+eEig0iKj4+HxeD+fAnA91RCEoTQ/0rAkfVr51yEmOuCLzgyBl1IVdO6h+Y
OrMcRcfRzbQiqQD4kZKdpvhbp2ELXfKvGNYqYkw7+/vDuHUSp5Koy4B4EVv/xwAY
Dmzto2a1InEvasukJSfM4nsqYgNon6rN30VxUTDe4r5Z/yqXOy3P/PtbVjcqKyzR
+I0UPXwzZF9h/LjTh5UB9ZR4uH1rYJ8S849IUOV0l9793Yk+Ra/nrmV6Hp2ti0jw
rJ1zgbQD/mkwcvdCrq1LWacGSubaIV2agaehveGaebCJp5B9Zr6AsjHSiyTny1mO
M1BWgM6yrHb2vbyfaGU4pCfkLN4e6739YijrV5Kii0bOMDRFuL+ARV8iuD6vBnG5
R8dPO1zWvgqRkWIEiSOrsdhUbQNc9WeSiA/J9RR4JEP2den4W4J5Eze4+HNi9xqP
gWhWYDC/VxFWSQ8nbq5caJshFBQ6QzMVOVWrmWt3hfuJ2lp3hf4Lvju7I3yyRUJe
-----END RSA PRIVATE KEY-----
";

/// The public half of that key (`openssl rsa -pubout`): SPKI `PUBLIC KEY`.
const RSA_2048_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmHjnDqHZYy0D4U3dZ0GN
vz2pQ5sza+Z8hrrT+lj9LKl5xfuI/OnVtjaksz5HpmKUl+kB0AVGy/PCjcNCr8oy
8OwYWhqqmhD9hg13RmGhcUl2fRAXhK2+Yv8GG0i/PRNX7FVoMqsePG5cGoIKE/lR
N23BB9GS+zxa4ocBMQQvnbCXhpUL8kX2Gc9OJEOOfQumQgC8NvftR8jzhZznm4Vy
GFiOcdRsNF/EIcYwf2UAgolJ+WPZiZrwEKX9VHg9ha7d1Lp8aA5Ihl3qtPgZCIM+
pVV5377XRwPKGhyV848aSWDDxPvN7QwIya1oSNXgsCso5+oOcjGg5UihWIBB4qzp
5wIDAQAB
-----END PUBLIC KEY-----
";
