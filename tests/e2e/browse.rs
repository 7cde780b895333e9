//! `r4-exec ls` and `r4-exec init` against the devserver: what they list is
//! verified like any answer, every reference they print resolves, what
//! fails verification is reported and not listed, and no value of the world
//! ever appears in their output, not even of a field marked not secret.

use crate::util::*;

/// Runs r4-exec with `args`; asserts the exit code and that no value of
/// the world is in stdout or stderr; returns both.
fn run(w: &World, args: &[&str], code: i32) -> (String, String) {
    let out = w.r4exec().args(args).output().unwrap();
    let (o, e) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(code), "{args:?}\n{o}\n{e}");
    for v in ALL_VALUES {
        assert!(
            !o.contains(v) && !e.contains(v),
            "{v:?} leaked by {args:?}:\n{o}\n{e}"
        );
    }
    (o, e)
}

/// Lines of `ls` output that describe a field, as (reference, rest).
fn field_lines(ls: &str) -> Vec<(String, String)> {
    ls.lines()
        .filter(|l| l.trim_start().starts_with("r4://"))
        .map(|l| {
            let l = l.trim();
            let i = l.find("  ").unwrap();
            (l[..i].to_string(), l[i..].trim().to_string())
        })
        .collect()
}

#[test]
fn ls_lists_every_readable_field_with_type_and_secrecy_and_no_value() {
    let w = World::new();
    let (out, err) = run(&w, &["ls"], 0);
    assert_eq!(
        err,
        "r4-exec: warning: no signer or log key is pinned: signatures are checked against the directory the server serves; see `r4-exec trust`\n"
    );
    let fields = field_lines(&out);
    let refs: Vec<&str> = fields.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        refs,
        [
            "r4://Edge/TLS/private key",
            "r4://Old/Legacy DB/Password",
            "r4://Old/Legacy DB/Host",
            "r4://Plain/Settings/Region",
            "r4://Production Secrets/Production DB/Username",
            "r4://Production Secrets/Production DB/Password",
            "r4://Production Secrets/Stripe/secret key",
        ],
        "{out}"
    );
    let rest = |r: &str| &fields.iter().find(|(x, _)| x == r).unwrap().1;
    assert!(rest("r4://Production Secrets/Production DB/Password")
        .starts_with("PASSWORD   secret      field "));
    assert!(rest("r4://Production Secrets/Production DB/Username")
        .starts_with("TEXT       not secret  field "));
    assert!(
        !out.contains("Not Shared") && !out.contains("Hidden"),
        "{out}"
    );
    assert!(
        out.contains("vault \"Old\"")
            && out.contains("a run refuses it unless allow_legacy = true"),
        "{out}"
    );
    assert!(
        out.contains("item \"Stripe\"") && out.contains("API_KEY  signed by sha256:"),
        "{out}"
    );
}

#[test]
fn every_reference_ls_prints_resolves_under_check() {
    let w = World::new();
    let (out, _) = run(&w, &["ls"], 0);
    let mut config = String::from("[r4]\nallow_legacy = true\nallow_unencrypted = true\n[env]\n");
    for (i, (reference, _)) in field_lines(&out).iter().enumerate() {
        config.push_str(&format!("V{i} = {reference:?}\n"));
    }
    w.config(&config);
    let (check, _) = run(&w, &["check"], 0);
    assert!(
        check.ends_with("7 secret(s) resolved and verified\n"),
        "{check}"
    );
}

#[test]
fn ls_toml_prints_env_lines_that_check_accepts() {
    let w = World::new();
    let (toml, _) = run(&w, &["ls", "--toml"], 0);
    assert!(toml.starts_with("[env]\n"), "{toml}");
    assert!(
        toml.contains("PRODUCTION_DB_PASSWORD = \"r4://Production Secrets/Production DB/Password\"  # PASSWORD, secret\n"),
        "{toml}"
    );
    assert!(toml.contains("\n# LEGACY_DB_PASSWORD = \"r4://Old/Legacy DB/Password\"  # legacy vault: needs allow_legacy = true in [r4]\n"), "{toml}");
    w.config(&toml);
    let (check, _) = run(&w, &["check"], 0);
    for name in [
        "PRODUCTION_DB_USERNAME",
        "PRODUCTION_DB_PASSWORD",
        "STRIPE_SECRET_KEY",
        "TLS_PRIVATE_KEY",
    ] {
        assert!(check.contains(&format!("ok  {name} ")), "{name}: {check}");
    }
    assert!(
        check.ends_with("4 secret(s) resolved and verified\n"),
        "{check}"
    );
}

#[test]
fn ls_narrows_to_a_vault_or_an_item() {
    let w = World::new();
    let (out, _) = run(&w, &["ls", "r4://production secrets/Production DB"], 0);
    let refs: Vec<String> = field_lines(&out).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        refs,
        [
            "r4://Production Secrets/Production DB/Username",
            "r4://Production Secrets/Production DB/Password"
        ]
    );
    let (out, _) = run(&w, &["ls", "r4://Edge/"], 0);
    assert_eq!(field_lines(&out).len(), 1, "{out}");
}

#[test]
fn ls_of_something_that_does_not_exist_lists_the_candidates() {
    let w = World::new();
    let (out, err) = run(&w, &["ls", "r4://Nope"], 66);
    assert_eq!(out, "");
    assert!(
        err.contains("r4-exec: Nope: no vault \"Nope\" (candidates: \"Edge\" ("),
        "{err}"
    );
    assert!(
        err.ends_with("r4-exec: what failed is not listed\n"),
        "{err}"
    );
    let (_, err) = run(&w, &["ls", "r4://Edge/TLS/nope"], 66);
    assert!(
        err.contains("r4://Edge/TLS: no field \"nope\" (candidates: \"private key\" ("),
        "{err}"
    );
    let (_, err) = run(&w, &["ls", "Edge"], 64);
    assert!(
        err.contains("\"Edge\": does not start with r4://; expected r4://<vault>[/<item>]"),
        "{err}"
    );
}

#[test]
fn ls_does_not_list_what_fails_verification() {
    let w = World::faulty(&["bad-signature-detail"]);
    let (out, err) = run(&w, &["ls"], 65);
    assert!(field_lines(&out).is_empty(), "{out}");
    assert!(
        err.contains("r4://Production Secrets/Stripe: verification failed"),
        "{err}"
    );
    assert!(
        err.ends_with("r4-exec: what failed is not listed\n"),
        "{err}"
    );

    let w = World::faulty(&["bad-signature-summary"]);
    let (out, err) = run(&w, &["ls"], 65);
    assert!(!out.contains("vault \"Production Secrets\""), "{out}");
    assert!(
        err.contains("r4://Production Secrets: verification failed"),
        "{err}"
    );
}

#[test]
fn ls_says_when_a_vault_key_is_wrapped_to_another_key() {
    let w = World::faulty(&["wrong-recipient"]);
    let (out, err) = run(&w, &["ls"], 77);
    assert!(!out.contains("vault \"Edge\""), "{out}");
    assert!(out.contains("vault \"Plain\""), "{out}");
    assert!(err.contains("r4://Edge: verification failed"), "{err}");
}

#[test]
fn duplicate_names_are_referenced_by_id() {
    let seed = seed_text(true).replace(
        "name = \"Stripe\"",
        "name = \"Production DB\"\n  id = \"5f0000000000000000000001\"",
    );
    let w = World::from_seed(&seed, &[]);
    let (out, _) = run(&w, &["ls", "r4://Production Secrets"], 0);
    let refs: Vec<String> = field_lines(&out).into_iter().map(|(r, _)| r).collect();
    assert_eq!(refs.len(), 3, "{out}");
    assert!(
        refs.iter().all(|r| !r.contains("/Production DB/")),
        "an ambiguous name was printed: {refs:?}"
    );
    let (toml, _) = run(&w, &["ls", "--toml", "r4://Production Secrets"], 0);
    w.config(&toml);
    let (check, _) = run(&w, &["check"], 0);
    assert!(
        check.ends_with("3 secret(s) resolved and verified\n"),
        "{toml}\n{check}"
    );
}

#[test]
fn init_writes_a_starter_that_check_accepts_and_never_overwrites() {
    let w = World::new();
    let path = w.path("new.toml");
    let path_s = path.to_str().unwrap();
    let (out, err) = run(&w, &["--config", path_s, "init"], 0);
    assert_eq!(out, "");
    assert!(
        err.ends_with(&format!("r4-exec: wrote {path_s} from 4 vault(s); next: `r4-exec check`, then `r4-exec -- COMMAND`\n")),
        "{err}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for v in ALL_VALUES {
        assert!(!text.contains(v), "{v:?} in r4.toml:\n{text}");
    }
    assert!(
        text.contains(&format!("base_url = \"{}\"", w.server.base_url())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "private_key_file = \"{}\"",
            w.path("agent.pem").display()
        )),
        "{text}"
    );
    let (check, _) = run(&w, &["--config", path_s, "check"], 0);
    assert!(
        check.ends_with("4 secret(s) resolved and verified\n"),
        "{check}"
    );

    std::fs::write(&path, "precious").unwrap();
    let (_, err) = run(&w, &["--config", path_s, "init"], 64);
    assert!(
        err.contains("exists and `r4-exec init` never overwrites"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn init_from_a_project_writes_its_project_table() {
    let w = World::new();
    let path = w.path("project.toml");
    let path_s = path.to_str().unwrap();
    run(&w, &["--config", path_s, "init", "--project", "app"], 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n[project]\nname = \"App\"\n"), "{text}");
    assert!(
        text.contains(
            "#   PRODUCTION_DB_PASSWORD = \"r4://Production Secrets/Production DB/Password\""
        ),
        "{text}"
    );
    let (check, _) = run(&w, &["--config", path_s, "check"], 0);
    assert!(
        check.ends_with("3 secret(s) resolved and verified\n"),
        "{check}"
    );

    let (_, err) = run(
        &w,
        &[
            "--config",
            w.path("none.toml").to_str().unwrap(),
            "init",
            "--project",
            "Nope",
        ],
        66,
    );
    assert!(
        err.contains("--project Nope: no project \"Nope\" (candidates: \"App\" ("),
        "{err}"
    );
    assert!(err.ends_with("r4-exec: nothing was written\n"), "{err}");
    assert!(!w.path("none.toml").exists());
}

#[test]
fn init_from_a_project_with_a_legacy_vault_says_check_will_refuse_it() {
    let seed = seed_text(true).replace(
        "name = \"Old\"\nmodel = \"legacy\"",
        "name = \"Old\"\nmodel = \"legacy\"\nproject = \"App\"",
    );
    let w = World::from_seed(&seed, &[]);
    let path = w.path("project.toml");
    let path_s = path.to_str().unwrap();
    let (_, err) = run(&w, &["--config", path_s, "init", "--project", "App"], 0);
    assert!(
        err.contains("r4-exec: warning: vault \"Old\" is legacy (the server holds its key): `r4-exec check` refuses it until allow_legacy = true in [r4]\n"),
        "{err}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n# allow_legacy = true\n"), "{text}");
    let (_, err) = run(&w, &["--config", path_s, "check"], 64);
    assert!(
        err.contains("set allow_legacy = true in [r4] to accept it"),
        "{err}"
    );
}
