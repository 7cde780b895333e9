//! `[files]` as real programs use them, through the real binary against the
//! devserver: owner-only memfds that `ssh-keygen` accepts, a path that
//! descendants which closed their descriptors can open (exec and supervisor
//! mode, as root and as another user), templates and bundles.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

/// Whether `python3` can import `module`.
fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A TOML basic string holding `v` exactly.
fn toml_str(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The test world plus a vault "Extra" shared with the agent, holding item
/// "Item" with the given fields (name, value).
fn world_with(fields: &[(&str, &str)]) -> World {
    let mut seed = seed_text(true);
    seed.push_str("\n[[vaults]]\nname = \"Extra\"\nshared_with = [\"agent\"]\n  [[vaults.items]]\n  name = \"Item\"\n");
    for (name, value) in fields {
        seed.push_str(&format!(
            "    [[vaults.items.fields]]\n    name = {}\n    type = \"SECRET\"\n    value = {}\n",
            toml_str(name),
            toml_str(value)
        ));
    }
    World::from_seed(&seed, &[])
}

/// Exec mode, and supervisor mode (where the holder keeps the files).
const MODES: &[&[&str]] = &[&[], &["--reap"]];

#[test]
fn file_secrets_are_owner_read_only_in_both_modes() {
    let w = World::new();
    for mode in MODES {
        let out = run_ok(&w, mode, r#"stat -L -c '%a %u' "$TLS_KEY_FILE"; id -u"#);
        let mut lines = out.lines();
        let (mode_line, uid) = (lines.next().unwrap(), lines.next().unwrap());
        assert_eq!(mode_line, format!("400 {uid}"), "{mode:?}");
    }
}

#[test]
fn ssh_keygen_accepts_a_key_delivered_as_a_file() {
    if !require(
        on_path("ssh-keygen"),
        "ssh_keygen_accepts_a_key_delivered_as_a_file",
        "ssh-keygen (it must accept the key file)",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("tmp");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "r4-test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let private = std::fs::read_to_string(&key).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let w = world_with(&[("deploy key", &private)]);
    w.config("[files]\nKEY_FILE = \"r4://Extra/Item/deploy key\"\n");
    for mode in MODES {
        let out = run_ok(
            &w,
            mode,
            r#"stat -L -c %a "$KEY_FILE"; ssh-keygen -y -f "$KEY_FILE""#,
        );
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("400"), "{mode:?}");
        // ssh-keygen -y prints the public key (its comment comes from the
        // private key): the same key type and material as tmp.pub.
        let derived: Vec<&str> = lines.next().unwrap().split(' ').take(2).collect();
        let expected: Vec<&str> = public.split(' ').take(2).collect();
        assert_eq!(derived, expected, "{mode:?}: {out}");
    }
}

/// A grandchild started by Python's `subprocess.run`, which closes every
/// inherited descriptor above 2 by default, reads the file by its path.
#[test]
fn a_python_grandchild_that_closed_its_descriptors_reads_the_file() {
    if !require(
        python_has("subprocess"),
        "a_python_grandchild_that_closed_its_descriptors_reads_the_file",
        "python3 (the grandchild test)",
    ) {
        return;
    }
    let w = World::new();
    let script = r#"
import os, subprocess
path = os.environ["TLS_KEY_FILE"]
n = path.rsplit("/", 1)[1]
probe = subprocess.run(["sh", "-c", "[ -e /proc/self/fd/" + n + " ] && echo open || echo closed"], capture_output=True, text=True)
content = subprocess.run(["cat", path], capture_output=True, text=True, check=True).stdout
print(path.startswith("/proc/"), probe.stdout.strip())
print(content, end="")
"#;
    for mode in MODES {
        let out = w
            .r4exec()
            .args(*mode)
            .args(["--", "python3", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        let text = stdout(&out);
        let (status, content) = text.split_once('\n').unwrap();
        assert_eq!(status, "True closed", "{mode:?}: {text}");
        assert_eq!(content, TLS_KEY, "{mode:?}");
    }
}

/// `sh -c 'cat "$F"' &` started by a parent that closed the descriptor:
/// in exec mode the parent is a child of COMMAND (COMMAND is the holder and
/// keeps it); in supervisor mode COMMAND itself never had it.
#[test]
fn a_background_grandchild_reads_the_file_after_its_parent_closed_the_descriptor() {
    let w = World::new();
    let script = r#"sh -c '
n="${TLS_KEY_FILE##*/}"
eval "exec $n<&-"
[ -e "/proc/self/fd/$n" ] && echo "still open" && exit 1
sh -c '\''cat "$TLS_KEY_FILE"'\'' &
wait'"#;
    for mode in MODES {
        assert_eq!(run_ok(&w, mode, script), TLS_KEY, "{mode:?}");
    }
}

#[test]
fn as_another_user_the_path_opens_and_r4_execs_own_descriptors_do_not() {
    const TEST: &str = "as_another_user_the_path_opens_and_r4_execs_own_descriptors_do_not";
    if !require(is_root(), TEST, "root, to run r4-exec as another user")
        || !require(
            on_path("setpriv"),
            TEST,
            "setpriv (util-linux), to run r4-exec as another user",
        )
    {
        return;
    }
    let w = World::new();
    // Everything r4-exec reads must be readable by uid 65534.
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        (w.dir.path().to_path_buf(), 0o755),
        (w.path("agent.pem"), 0o644),
        (w.path("r4.toml"), 0o644),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin_dir.path().join("r4-exec");
    std::fs::copy(bin(), &exe).unwrap();
    let script = r#"id -u
stat -L -c '%a %u' "$TLS_KEY_FILE"
sh -c '
n="${TLS_KEY_FILE##*/}"
eval "exec $n<&-"
sh -c '\''cat "$TLS_KEY_FILE"'\'' &
wait'
ls /proc/$PPID/fd >/dev/null 2>&1 && echo "parent fds: open" || echo "parent fds: denied""#;
    for (mode, parent) in [
        (&[][..], None),
        (&["--reap"][..], Some("parent fds: denied")),
    ] {
        let out = w
            .command(Path::new("setpriv"))
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&exe)
            .args(mode)
            .args(["--", "sh", "-c", script])
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir("/")
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        let text = stdout(&out);
        let expected = format!("65534\n400 65534\n{TLS_KEY}");
        assert!(text.starts_with(&expected), "{mode:?}: {text}");
        // Exec mode: COMMAND's parent is this test, not r4-exec. Supervisor
        // mode: r4-exec is non-dumpable, so its descriptors are root's; the
        // path names the holder's instead.
        if let Some(line) = parent {
            assert!(text.ends_with(&format!("{line}\n")), "{mode:?}: {text}");
        }
    }
}

const APP_YML: &str = r#"# app.yml, shipped with the app
spring:
  datasource:
    username: {{ r4://Production Secrets/Production DB/Username }}
    password: '{{r4://Production Secrets/Production DB/Password}}'
  note: "{{ "{{" }} is not a placeholder }}"
"#;

#[test]
fn templates_render_inline_and_from_a_file_into_env_and_memfd() {
    let w = World::new();
    std::fs::write(w.path("app.yml.tmpl"), APP_YML).unwrap();
    w.config(
        r#"
[env]
DATABASE_URL = { template = "postgres://{{ r4://Production Secrets/Production DB/Username }}:{{ r4://Production Secrets/Production DB/Password }}@db:5432/app" }
[files]
APP_YML = { template_file = "app.yml.tmpl" }
"#,
    );
    for mode in MODES {
        let out = run_ok(
            &w,
            mode,
            r#"printf '%s\n' "$DATABASE_URL"; stat -L -c %a "$APP_YML"; cat "$APP_YML""#,
        );
        let expected = format!(
            "postgres://{DB_USER}:{DB_PASSWORD}@db:5432/app\n400\n# app.yml, shipped with the app\nspring:\n  datasource:\n    username: {DB_USER}\n    password: '{DB_PASSWORD}'\n  note: \"{{{{ is not a placeholder }}}}\"\n"
        );
        assert_eq!(out, expected, "{mode:?}");
    }
}

#[test]
fn template_values_are_inserted_verbatim() {
    let w = world_with(&[(
        "tricky",
        "{{ r4://Production Secrets/Production DB/Password }} $HOME \\n",
    )]);
    w.config("[env]\nX = { template = \"<{{ r4://Extra/Item/tricky }}>\" }\n");
    assert_eq!(
        run_ok(&w, &[], r#"printf %s "$X""#),
        "<{{ r4://Production Secrets/Production DB/Password }} $HOME \\n>"
    );
}

#[test]
fn a_failing_placeholder_fails_closed_naming_the_template_and_line() {
    let w = World::new();
    std::fs::write(
        w.path("app.yml.tmpl"),
        APP_YML.replace("DB/Password}}", "DB/Pasword}}"),
    )
    .unwrap();
    w.config("[files]\nAPP_YML = { template_file = \"app.yml.tmpl\" }\n");
    let marker = w.marker();
    let err = fails(
        w.r4exec().arg("--").args(marker.command()),
        66,
        &["APP_YML (r4://Production Secrets/Production DB/Pasword at app.yml.tmpl line 5): no field \"Pasword\""],
    );
    assert!(
        !err.contains(DB_PASSWORD) && !err.contains(DB_USER),
        "{err}"
    );
    marker.assert_not_ran();
    // check says the same, and passes once it is fixed, listing each placeholder.
    let out = w.r4exec().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("at app.yml.tmpl line 5"),
        "{}",
        stderr(&out)
    );
    std::fs::write(w.path("app.yml.tmpl"), APP_YML).unwrap();
    let out = w.r4exec().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ok  APP_YML"), "{text}");
    assert!(
        text.contains("template app.yml.tmpl (2 placeholders)"),
        "{text}"
    );
    for line in [4, 5] {
        assert!(
            text.contains(&format!("at app.yml.tmpl line {line}  vault ")),
            "{text}"
        );
    }
    assert!(!text.contains(DB_PASSWORD), "{text}");
    // A malformed template is a configuration error, before any request.
    std::fs::write(w.path("app.yml.tmpl"), "a\nb: {{ .Values.password }}\n").unwrap();
    let out = w.r4exec().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "[files] APP_YML: template app.yml.tmpl:2:4: this {{ … }} is not a placeholder"
        ),
        "{}",
        stderr(&out)
    );
}

/// Values that break naive dotenv writers.
const NASTY: &[(&str, &str)] = &[
    ("QUOTES", "it's \"quoted\" and 'single'"),
    (
        "NEWLINES",
        "-----BEGIN KEY-----\nline two\n-----END KEY-----\n",
    ),
    ("DOLLARS", "pa$$word $HOME $(id) `id`"),
    ("BACKSLASHES", "C:\\new\\table \\' \\\" \\\\ \\n"),
    ("HASH", "value # not a comment #"),
    ("CRLF", "windows\r\nline\r\n"),
    ("EMPTY", ""),
    ("UNICODE", "tab\there é ✓"),
];

fn nasty_world() -> World {
    world_with(NASTY)
}

fn bundle_config(format: &str) -> String {
    let mut text = format!("[files.BUNDLE]\nformat = \"{format}\"\n[files.BUNDLE.bundle]\n");
    for (name, _) in NASTY {
        text.push_str(&format!("{name} = \"r4://Extra/Item/{name}\"\n"));
    }
    text
}

/// The bundle's values, parsed back by `parser` (Python) from the path.
fn parsed_back(
    w: &World,
    mode: &[&str],
    parser: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let out = w
        .r4exec()
        .args(mode)
        .args(["--", "python3", "-c", parser])
        .output()
        .unwrap();
    assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_every_value(parsed: &serde_json::Map<String, serde_json::Value>, what: &str) {
    assert_eq!(parsed.len(), NASTY.len(), "{what}: {parsed:?}");
    for (name, value) in NASTY {
        assert_eq!(parsed[*name], *value, "{what}: {name}");
    }
}

#[test]
fn a_dotenv_bundle_round_trips_through_python_dotenv() {
    if !require(
        python_has("dotenv"),
        "a_dotenv_bundle_round_trips_through_python_dotenv",
        "python3 with dotenv (python-dotenv parses the bundle back)",
    ) {
        return;
    }
    let w = nasty_world();
    w.config(&bundle_config("dotenv"));
    let parser =
        "import dotenv, json, os; print(json.dumps(dotenv.dotenv_values(os.environ['BUNDLE'])))";
    for mode in MODES {
        assert_every_value(&parsed_back(&w, mode, parser), "dotenv");
    }
    // load_dotenv, the usual call, sees the same (and overrides nothing).
    let parser = "import dotenv, json, os; dotenv.load_dotenv(os.environ['BUNDLE']); print(json.dumps({k: os.environ[k] for k in %s}))";
    let names: Vec<String> = NASTY.iter().map(|(n, _)| format!("'{n}'")).collect();
    let parser = parser.replace("%s", &format!("[{}]", names.join(",")));
    assert_every_value(&parsed_back(&w, &[], &parser), "load_dotenv");
}

#[test]
fn a_json_bundle_round_trips_through_json_parsers() {
    let w = nasty_world();
    w.config(&bundle_config("json"));
    let out = run_ok(&w, &[], r#"cat "$BUNDLE""#);
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_every_value(&parsed, "serde_json");
    if require(
        python_has("json"),
        "a_json_bundle_round_trips_through_json_parsers",
        "python3 (Python's json parses the bundle back)",
    ) {
        let parser = "import json, os; print(json.dumps(json.load(open(os.environ['BUNDLE']))))";
        assert_every_value(&parsed_back(&w, &["--reap"], parser), "python json");
    }
}

#[test]
fn a_value_dotenv_cannot_carry_fails_closed_naming_the_key() {
    let w = world_with(&[("interp", "a${HOME}b")]);
    w.config("[files]\nENV_FILE = { bundle = { INTERP = \"r4://Extra/Item/interp\" }, format = \"dotenv\" }\n");
    let out = run_sh(&w, &[], "true");
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ENV_FILE (dotenv bundle, key INTERP): holds \"${\""),
        "{err}"
    );
    assert!(!err.contains("a${HOME}b"), "{err}");
    w.config("[files]\nENV_FILE = { bundle = { INTERP = \"r4://Extra/Item/interp\" }, format = \"json\" }\n");
    assert_eq!(
        run_ok(&w, &[], r#"cat "$ENV_FILE""#),
        "{\n  \"INTERP\": \"a${HOME}b\"\n}\n"
    );
}

#[test]
fn a_project_bundle_takes_the_project_out_of_the_environment() {
    let w = World::new();
    w.config(
        "[env]\nSTRIPE_SECRET_KEY = \"r4://Edge/TLS/private key\"\n[files]\nAPP_ENV = { bundle = \"project\", format = \"dotenv\" }\n[project]\nname = \"App\"\n",
    );
    let out = run_ok(
        &w,
        &[],
        r#"env | grep -c '^PRODUCTION_' ; printf '%s' "$STRIPE_SECRET_KEY" | head -c 24; echo; cat "$APP_ENV""#,
    );
    assert_eq!(
        out,
        format!(
            "0\n{}\nPRODUCTION_DB_PASSWORD='{DB_PASSWORD}'\nPRODUCTION_DB_USERNAME='{DB_USER}'\n",
            &TLS_KEY[..24]
        )
    );
    let check = w.r4exec().arg("check").output().unwrap();
    let text = stdout(&check);
    assert!(
        text.contains("dotenv bundle of [project], 2 secrets"),
        "{text}"
    );
    assert!(
        text.contains(" as PRODUCTION_DB_PASSWORD  vault "),
        "{text}"
    );
}

#[test]
fn mask_hides_each_value_a_template_was_built_from() {
    let w = World::new();
    w.config(
        "[env]\nDATABASE_URL = { template = \"postgres://{{ r4://Production Secrets/Production DB/Username }}:{{ r4://Production Secrets/Production DB/Password }}@db/app\" }\n",
    );
    let out = w
        .std_command()
        .args(["--mask", "--", "sh", "-c"])
        .arg(r#"echo "$DATABASE_URL"; echo "$DATABASE_URL" | cut -d: -f3 | cut -d@ -f1"#)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text, "[r4:masked]\n[r4:masked]\n", "{text}");
}
