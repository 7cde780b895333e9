//! Environment hygiene through the real binary: a name derived from a
//! project (or sent by the env endpoint) never sets a variable that changes
//! how programs start unless `[env]` maps it; `--pristine` and
//! `--preserve-env` give COMMAND an allow-listed environment.

use crate::util::*;
use r4_devserver::{vault_id, ItemSeed};

/// Adds item "Node" with field "Options" to the project's vault: it derives
/// `NODE_OPTIONS`, which would make every node program `--require` a module.
fn add_node_options(w: &World) {
    let item = ItemSeed::new(
        "Node",
        &[("Options", "TEXT", "--require /tmp/evil.js", true)],
    );
    w.server
        .admin()
        .add_item(&vault_id("Production Secrets"), item)
        .unwrap();
}

#[test]
fn a_derived_name_never_sets_a_variable_that_changes_how_programs_start() {
    let w = World::new();
    add_node_options(&w);
    let marker = w.marker();
    for source in ["verified", "env-endpoint"] {
        w.config(&format!(
            "[project]\nname = \"App\"\nsource = \"{source}\"\n"
        ));
        let err = fails(
            w.r4exec().arg("--").args(marker.command()),
            64,
            &[
                "NODE_OPTIONS (",
                "[project] would set NODE_OPTIONS",
                "map NODE_OPTIONS explicitly in [env]",
            ],
        );
        if source == "verified" {
            assert!(
                err.contains("r4://Production Secrets/Node/Options"),
                "{err}"
            );
        }
        assert!(!err.contains("evil"), "no value in messages: {err}");
        marker.assert_not_ran();
    }
}

#[test]
fn the_user_may_set_it_explicitly_or_leave_it_out() {
    let w = World::new();
    add_node_options(&w);
    w.config(
        "[env]\nNODE_OPTIONS = \"r4://Production Secrets/Node/Options\"\n[project]\nname = \"App\"\n",
    );
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "printf %s \"$NODE_OPTIONS\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "--require /tmp/evil.js");

    w.config("[project]\nname = \"App\"\nexclude = [\"NODE_*\"]\n");
    let out = w
        .r4exec()
        .args(["--", "sh", "-c", "printf %s \"${NODE_OPTIONS-unset}\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unset");
}

#[test]
fn pristine_starts_from_an_empty_environment_plus_the_secrets() {
    let w = World::new();
    let env_of = |args: &[&str]| {
        let out = w
            .r4exec()
            .env("FOO", "bar")
            .env("LC_ALL", "C")
            .env("LC_CTYPE", "C")
            .args(args)
            .args(["--", "env"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let mut names: Vec<String> = stdout(&out)
            .lines()
            .filter_map(|l| Some(l.split_once('=')?.0.to_owned()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        env_of(&["--pristine"]),
        ["DB_PASSWORD", "STRIPE_KEY", "TLS_KEY_FILE"]
    );
    assert_eq!(
        env_of(&["--preserve-env", "PATH,LC_*"]),
        [
            "DB_PASSWORD",
            "LC_ALL",
            "LC_CTYPE",
            "PATH",
            "STRIPE_KEY",
            "TLS_KEY_FILE"
        ]
    );
    // Without it, everything inherited is there (r4-exec's own R4_* aside).
    let all = env_of(&[]);
    assert!(all.contains(&"FOO".to_owned()) && !all.iter().any(|n| n.starts_with("R4_")));
}

#[test]
fn preserve_env_names_are_checked() {
    let w = World::new();
    for bad in ["1X", "A-B", "A*B", ""] {
        let out = w
            .r4exec()
            .args(["--preserve-env", bad, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--preserve-env"), "{}", stderr(&out));
    }
}
