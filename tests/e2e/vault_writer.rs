//! "A vault writer sets data, never code": one test per finding of the
//! review, each showing the attack it stops through the real binary, with
//! the real consumer where one is installed (git, python, node, openssl).
//! The writer's tool is an item and a field in a project vault: `[project]`
//! derives `SCREAMING_SNAKE(item + field)`.

use std::process::Command;

use crate::util::*;
use r4_devserver::{vault_id, ItemSeed};

/// Adds item `item` with one TEXT field `field` = `value` to the project's
/// vault, "Production Secrets".
fn write_item(w: &World, item: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(&str, &str, &str, bool)> =
        fields.iter().map(|(f, v)| (*f, "TEXT", *v, true)).collect();
    w.server
        .admin()
        .add_item(
            &vault_id("Production Secrets"),
            ItemSeed::new(item, &fields),
        )
        .unwrap();
}

const PROJECT: &str = "[project]\nname = \"App\"\n";

/// Finding 2: a member of every family, derived from a vault, is refused
/// by name (and COMMAND does not start); the same names are fine when the
/// user maps them explicitly.
#[test]
fn a_derived_name_of_every_family_is_refused() {
    let w = World::new();
    let names: Vec<String> = r4_exec::hygiene::families()
        .map(|f| f.replace('*', "X"))
        .filter(|n| !n.starts_with('_'))
        .collect();
    for (i, name) in names.iter().enumerate() {
        // Item "<NAME>" + field "-" derives NAME itself.
        write_item(&w, name, &[("-", &format!("writer-value-{i}"))]);
    }
    w.config(PROJECT);
    let marker = w.marker();
    let err = fails(w.r4exec().arg("--").args(marker.command()), 64, &[]);
    for name in &names {
        assert!(
            err.contains(&format!("[project] would set {name} (")),
            "{name} not refused:\n{err}"
        );
    }
    assert!(!err.contains("writer-value"), "no value in messages");
    marker.assert_not_ran();
}

/// Runs COMMAND under a `[project]` that derives `pairs`, then under an
/// r4.toml that maps the same names explicitly; returns the second output.
/// The first must be refused naming the first name, COMMAND not started.
fn refused_then_explicit(
    w: &World,
    item: &str,
    pairs: &[(&str, &str, &str)],
    command: &[&str],
) -> std::process::Output {
    let fields: Vec<(&str, &str)> = pairs.iter().map(|(_, f, v)| (*f, *v)).collect();
    write_item(w, item, &fields);
    w.config(PROJECT);
    let marker = w.marker();
    fails(
        w.r4exec().arg("--").args(marker.command()),
        64,
        &[&format!("[project] would set {}", pairs[0].0)],
    );
    marker.assert_not_ran();
    let mut explicit = String::from("[env]\n");
    for (name, field, _) in pairs {
        explicit += &format!("{name} = \"r4://Production Secrets/{item}/{field}\"\n");
    }
    w.config(&explicit);
    w.r4exec().arg("--").args(command).output().unwrap()
}

/// git: `GIT_CONFIG_COUNT/KEY_0/VALUE_0` from a vault set
/// `core.fsmonitor`, which `git status` runs. Derived: refused. The same
/// mapping written by the user reaches git and runs (the attack is real).
#[test]
fn git_config_from_a_vault_runs_nothing() {
    if !require(
        on_path("git"),
        "git_config_from_a_vault_runs_nothing",
        "git",
    ) {
        return;
    }
    let w = World::new();
    let repo = w.path("repo");
    assert!(Command::new("git")
        .args(["init", "-q"])
        .arg(&repo)
        .status()
        .unwrap()
        .success());
    let pwned = w.path("pwned");
    let hook = format!("touch {}; false", pwned.display());
    let out = refused_then_explicit(
        &w,
        "Git Config",
        &[
            ("GIT_CONFIG_COUNT", "Count", "1"),
            ("GIT_CONFIG_KEY_0", "Key 0", "core.fsmonitor"),
            ("GIT_CONFIG_VALUE_0", "Value 0", &hook),
        ],
        &["git", "-C", repo.to_str().unwrap(), "status", "--short"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pwned.exists(), "control: the explicit mapping reaches git");
}

/// python: `PYTHONPATH` from a vault would import the writer's
/// `sitecustomize` in every python program.
#[test]
fn pythonpath_from_a_vault_loads_nothing() {
    if !require(
        on_path("python3"),
        "pythonpath_from_a_vault_loads_nothing",
        "python3",
    ) {
        return;
    }
    let w = World::new();
    let dir = w.path("py");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("sitecustomize.py"), "print('writer code ran')\n").unwrap();
    let out = refused_then_explicit(
        &w,
        "Pythonpath",
        &[("PYTHONPATH", "-", dir.to_str().unwrap())],
        &["python3", "-c", "pass"],
    );
    assert!(
        stdout(&out).contains("writer code ran"),
        "control: {}",
        stderr(&out)
    );
}

/// node: `NODE_OPTIONS=--require …` from a vault would run the writer's
/// module before every node program.
#[test]
fn node_options_from_a_vault_require_nothing() {
    if !require(
        on_path("node"),
        "node_options_from_a_vault_require_nothing",
        "node",
    ) {
        return;
    }
    let w = World::new();
    let module = w.path("evil.js");
    std::fs::write(&module, "console.log('writer code ran')\n").unwrap();
    let options = format!("--require {}", module.display());
    let out = refused_then_explicit(
        &w,
        "Node",
        &[("NODE_OPTIONS", "Options", &options)],
        &["node", "-e", "0"],
    );
    assert!(
        stdout(&out).contains("writer code ran"),
        "control: {}",
        stderr(&out)
    );
}

/// openssl: `SSL_CERT_FILE` from a vault would make OpenSSL trust the
/// writer's CA (`openssl verify` with no -CAfile reads it).
#[test]
fn ssl_cert_file_from_a_vault_changes_no_trust() {
    if !require(
        on_path("openssl"),
        "ssl_cert_file_from_a_vault_changes_no_trust",
        "openssl",
    ) {
        return;
    }
    let w = World::new();
    let ca = w.path("ca.pem");
    let key = w.path("ca.key");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=Writer CA",
        ])
        .args(["-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let out = refused_then_explicit(
        &w,
        "Ssl Cert",
        &[("SSL_CERT_FILE", "File", ca.to_str().unwrap())],
        &["openssl", "verify", ca.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "control: the writer's CA is trusted: {}",
        stdout(&out)
    );
}

/// Finding 1, end to end: a `bundle = "project"` dotenv file with a value
/// ending in `\` and a next value that tries to open a line of its own;
/// python-dotenv's `load_dotenv` sees exactly the two values.
#[test]
fn a_project_bundle_cannot_smuggle_a_line() {
    let python_dotenv = Command::new("python3")
        .args(["-c", "import dotenv"])
        .status()
        .is_ok_and(|s| s.success());
    if !require(
        python_dotenv,
        "a_project_bundle_cannot_smuggle_a_line",
        "python-dotenv",
    ) {
        return;
    }
    let w = World::new();
    write_item(&w, "Win", &[("Path", "C:\\path\\")]);
    write_item(&w, "Winx", &[("Next", "x'\nLD_PRELOAD=/tmp/evil.so\n#")]);
    w.config(
        "[project]\nname = \"App\"\ninclude = [\"WIN*\"]\n[files]\nAPP_ENV = { bundle = \"project\", format = \"dotenv\" }\n",
    );
    let out = w
        .r4exec()
        .args([
            "--",
            "python3",
            "-c",
            "import os,dotenv,json; v=dotenv.dotenv_values(os.environ['APP_ENV']); print(json.dumps(sorted(v)))",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"["WINX_NEXT", "WIN_PATH"]"#);
}

/// Finding 3: `init` wrote a refused name as an explicit `[env]` line; the
/// next run set it. Now the line is commented out, with a warning.
#[test]
fn init_leaves_refused_names_commented_out() {
    let w = World::new();
    write_item(&w, "Ld", &[("Preload", "/tmp/evil.so")]);
    let path = w.path("new.toml");
    let out = w
        .r4exec()
        .args(["--config", path.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# LD_PRELOAD = "), "{text}");
    assert!(
        stderr(&out).contains("LD_PRELOAD (r4://"),
        "{}",
        stderr(&out)
    );
    let out = w
        .r4exec()
        .args(["--config", path.to_str().unwrap(), "--"])
        .args(["sh", "-c", "printf %s \"${LD_PRELOAD-unset}\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unset");
    let out = w.r4exec().args(["ls", "--toml"]).output().unwrap();
    assert!(stdout(&out).contains("# LD_PRELOAD = "), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("commented out (LD_*"),
        "{}",
        stderr(&out)
    );
}

/// Finding 4: docs/environment.md's order for every pair of sources, one
/// table: `[project]` and `[env]` of r4.toml, an `--env-file` reference or
/// plain value, an inherited reference or plain value. Each row sets
/// `C_PLAIN` from two sources and names the one that must win.
#[test]
fn precedence_of_every_pair_of_sources() {
    let w = World::new();
    write_item(&w, "C", &[("Plain", "from-project")]);
    write_item(
        &w,
        "Other",
        &[
            ("Toml", "from-toml"),
            ("File", "from-env-file-ref"),
            ("Env", "from-env-ref"),
        ],
    );
    let toml_env = "[env]\nC_PLAIN = \"r4://Production Secrets/Other/Toml\"\n";
    let project = "[project]\nname = \"App\"\ninclude = [\"C_*\"]\n";
    let file_ref = "C_PLAIN=r4://Production Secrets/Other/File\n";
    let file_plain = "C_PLAIN=from-env-file-plain\n";
    let env_ref = "r4://Production Secrets/Other/Env";
    // (r4.toml, env file, inherited, --no-override, winner)
    let rows: &[(&str, &str, Option<&str>, bool, &str)] = &[
        (project, file_ref, None, false, "from-project"),
        (project, "", Some(env_ref), false, "from-project"),
        (project, file_plain, None, false, "from-project"),
        (project, "", Some("inherited"), false, "from-project"),
        (toml_env, file_ref, None, false, "from-toml"),
        (toml_env, "", Some(env_ref), false, "from-toml"),
        (toml_env, file_plain, None, false, "from-toml"),
        (toml_env, "", Some("inherited"), false, "from-toml"),
        ("", file_ref, Some(env_ref), false, "from-env-file-ref"),
        ("", file_plain, Some(env_ref), false, "from-env-file-plain"),
        ("", file_ref, Some("inherited"), false, "from-env-file-ref"),
        (
            "",
            file_plain,
            Some("inherited"),
            false,
            "from-env-file-plain",
        ),
        (project, "", Some("inherited"), true, "inherited"),
        (toml_env, "", Some("inherited"), true, "inherited"),
        ("", file_plain, Some("inherited"), true, "inherited"),
        (project, file_plain, None, true, "from-project"),
    ];
    let env_file = w.path("app.env");
    for (i, (toml, file, inherited, no_override, winner)) in rows.iter().enumerate() {
        // A configuration with nothing else to fetch still needs a file.
        let toml = if toml.is_empty() {
            "[env]\nUNUSED = \"r4://Production Secrets/Stripe/secret key\"\n"
        } else {
            toml
        };
        w.config(toml);
        std::fs::write(&env_file, file).unwrap();
        let mut cmd = w.r4exec();
        cmd.arg("--env-file").arg(&env_file);
        if *no_override {
            cmd.arg("--no-override");
        }
        if let Some(v) = inherited {
            cmd.env("C_PLAIN", v);
        }
        let out = cmd
            .args(["--", "sh", "-c", "printf %s \"$C_PLAIN\""])
            .output()
            .unwrap();
        assert!(out.status.success(), "row {i}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            *winner,
            "row {i}: {toml:?} {file:?} {inherited:?}"
        );
    }
}

/// Finding 5: a FIFO at the fallback path held a healthy start until it
/// was killed; a link to /dev/zero was read without bound. Both are
/// refused at once, and the start goes on from R4.
#[test]
fn a_fifo_or_device_at_the_fallback_path_is_not_read() {
    let w = World::new();
    let fifo = w.path("copy.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let zero = w.path("copy.zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for path in [&fifo, &zero] {
        let started = std::time::Instant::now();
        let out = w
            .r4exec()
            .env("R4_FALLBACK_FILE", path)
            .args(["--timeout", "3", "--", "true"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(
            meta.is_file(),
            "the stored copy replaced {}",
            path.display()
        );
    }
    // In an outage, each is refused by what it is, not read: the run fails
    // at once naming why (a hang would be killed by the timeout and show
    // no such line).
    // (The healthy starts above stored a regular copy over both paths, as
    // docs/fallback.md says: new ones.)
    let outage = World::faulty(&["unavailable"]);
    let fifo = outage.path("copy.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let zero = outage.path("copy.zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for path in [&fifo, &zero] {
        let out = outage
            .r4exec()
            .env("R4_FALLBACK_FILE", path)
            .args(["--timeout", "3", "--", "true"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.code().is_some(), "killed: {err}");
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("not a regular file") || err.contains("symbolic link"),
            "{}: {err}",
            path.display()
        );
    }
}

/// Finding 6: an env file with an unquoted multi-line PEM and an r4.toml
/// with an API key on a bad line: the errors name FILE:LINE, never text.
#[test]
fn errors_never_quote_configuration_text() {
    let w = World::new();
    let env_file = w.path("bad.env");
    std::fs::write(
        &env_file,
        "KEY=-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq+SECRET/ = x\n",
    )
    .unwrap();
    let err = fails(
        w.r4exec()
            .arg("--env-file")
            .arg(&env_file)
            .args(["--", "true"]),
        64,
        &["bad.env:2: "],
    );
    assert!(!err.contains("SECRET") && !err.contains("MIIE"), "{err}");
    w.config("[r4]\napi_key = \"rk_live.SECRET\"\n[env]\nA = \"r4://V/I/F\"\n");
    let err = fails(w.r4exec().args(["--", "true"]), 64, &["r4.toml:2:1: "]);
    assert!(!err.contains("SECRET") && !err.contains("rk_live"), "{err}");
    w.config("[env]\nDB_PASSWORD = hunter2SECRET\n");
    let err = fails(w.r4exec().args(["--", "true"]), 64, &["r4.toml:2:15: "]);
    assert!(!err.contains("SECRET") && !err.contains("hunter2"), "{err}");
}

/// Finding 7: item names with escape sequences are printed escaped by `ls`
/// and in "candidates:" errors.
#[test]
fn names_from_a_vault_reach_the_terminal_escaped() {
    let w = World::new();
    write_item(&w, "evil\u{1b}[2K\rall secrets verified", &[("F", "v")]);
    let out = w.r4exec().arg("ls").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
    assert!(
        text.contains("evil\\x1b[2K\\x0dall secrets verified"),
        "{text}"
    );
    w.config("[env]\nX = \"r4://Production Secrets/evi/F\"\n");
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
}

/// Finding 8: `--pristine` dropped the env file's plain values while its
/// references were delivered.
#[test]
fn pristine_keeps_env_file_values() {
    let w = World::new();
    let env_file = w.path("app.env");
    std::fs::write(
        &env_file,
        "LIT=from-env-file\nREF=r4://Production Secrets/Stripe/secret key\n",
    )
    .unwrap();
    let out = w
        .r4exec()
        .env("INHERITED", "x")
        .arg("--env-file")
        .arg(&env_file)
        .args(["--pristine", "--preserve-env", "PATH", "--", "sh", "-c"])
        .arg("printf '%s|%s|%s' \"$LIT\" \"$REF\" \"${INHERITED-unset}\"")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("from-env-file|{STRIPE}|unset"));
}
