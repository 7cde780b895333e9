//! `[r4] plan` (docs/plan.md): the referenced plan fetches the vault list,
//! the named vaults' item lists, keys and directories, and only the named
//! item details, and verifies them exactly as strictly as a sync (every
//! fault of the devserver is still caught); `auto` keeps the one-round sync
//! for a small world and switches to the referenced plan for a large one.
//! Request paths and rounds come from the devserver's request log.

use std::time::Duration;

use crate::util::*;
use r4_devserver::{item_id, vault_id, Fault};
use r4_exec::client::Client;
use r4_exec::config::Config;
use r4_exec::contract::checkpoint::VersionFloor;
use r4_exec::contract::VerifyError;
use r4_exec::resolve::{resolve_with_floor, Failure, ResolveOptions};

/// A world whose server logs every request and answers after 10 ms.
fn logged(seed: &str) -> Logged {
    Logged::start(seed, |opts| opts.latency_ms = 10)
}

/// Runs `r4-exec -v -- sh -c script` against the logged server.
fn run(l: &Logged, config: &str, script: &str) -> std::process::Output {
    l.world.config(config);
    // Truncated, not removed: the server appends to the file it opened.
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&l.log) {
        f.set_len(0).unwrap();
    }
    l.world
        .r4exec()
        .env("R4_BASE_URL", l.server.base_url())
        .args(["-v", "--timeout", "20", "--", "sh", "-c", script])
        .output()
        .unwrap()
}

/// The request paths, in start order, without the base path.
fn paths(l: &Logged) -> Vec<String> {
    l.requests()
        .into_iter()
        .map(|r| r.path.trim_start_matches("/api/v1/machine").to_string())
        .collect()
}

const REFERENCED: &str = "[r4]\nplan = \"referenced\"\n";
const SHOW: &str = "printf '%s|%s|' \"$DB_PASSWORD\" \"$STRIPE_KEY\"; cat \"$TLS_KEY_FILE\"";

#[test]
fn the_referenced_plan_fetches_only_what_is_named_in_three_rounds() {
    let l = logged(&seed_text(true));
    let out = run(&l, &format!("{REFERENCED}{CONFIG}"), SHOW);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout(&out), format!("{DB_PASSWORD}|{STRIPE}|{TLS_KEY}"));
    assert!(
        err.contains("plan: referenced (plan = \"referenced\"): the vault list, then 2 of 4 vaults (item list, wrapped key, directory), then 3 item details, in 3 rounds; a sync would carry 5 items"),
        "{err}"
    );
    let (ps, edge) = (vault_id("Production Secrets"), vault_id("Edge"));
    let mut paths = paths(&l);
    assert_eq!(paths.remove(0), "/vault");
    let mut expected: Vec<String> = [&ps, &edge]
        .iter()
        .flat_map(|v| {
            ["items", "wrapped-key", "public-keys"].map(|what| format!("/vault/{v}/{what}"))
        })
        .chain([
            format!(
                "/vault/{ps}/items/{}",
                item_id("Production Secrets", "Production DB")
            ),
            format!(
                "/vault/{ps}/items/{}",
                item_id("Production Secrets", "Stripe")
            ),
            format!("/vault/{edge}/items/{}", item_id("Edge", "TLS")),
        ])
        .collect();
    paths.sort();
    expected.sort();
    assert_eq!(paths, expected);
    assert_eq!(rounds(&l.requests()), 3);
}

#[test]
fn legacy_and_unencrypted_vaults_under_the_referenced_plan() {
    let l = logged(&seed_text(true));
    let out = run(
        &l,
        "[r4]\nplan = \"referenced\"\nallow_legacy = true\nallow_unencrypted = true\n[env]\nL = \"r4://Old/Legacy DB/Password\"\nP = \"r4://Plain/Settings/Region\"\n",
        "printf '%s|%s' \"$L\" \"$P\"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{LEGACY}|{PLAIN}"));
    // Without the opt-in, as with a sync.
    let out = run(
        &l,
        "[r4]\nplan = \"referenced\"\n[env]\nL = \"r4://Old/Legacy DB/Password\"\n",
        "true",
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("legacy vault (server-held key, not zero-trust)"));
}

/// Every lie the devserver can tell is caught under the referenced plan
/// too: the summary still covers every item through `itemsDigest`, and
/// each detail must match its listed version.
#[test]
fn every_fault_is_caught_under_the_referenced_plan() {
    let w = World::new();
    w.config(&format!("{REFERENCED}{CONFIG}"));
    assert_every_fault_is_caught(&w, "differs from the vault summary");
}

/// The default plan at 5 items (the sync, after the vault list) and at
/// 1 005 (the referenced plan): the counts that choose the plan change
/// nothing of what is verified.
#[test]
fn every_fault_is_caught_under_the_default_plan_small_and_large() {
    // A stale detail: the referenced plan compares each detail with the
    // listed version; in a sync the rebuilt list breaks `itemsDigest`.
    for (seed, plan, stale) in [
        (seed_text(true), "sync after the vault list", "itemsDigest"),
        (
            big_seed(1000),
            "plan: referenced (auto",
            "differs from the vault summary",
        ),
    ] {
        let w = World::from_seed(&seed, &[]);
        let out = w.r4exec().args(["-v", "--", "true"]).output().unwrap();
        assert!(stderr(&out).contains(plan), "{}", stderr(&out));
        assert_every_fault_is_caught(&w, stale);
    }
}

/// Every fault of the devserver, one at a time, refuses the start.
fn assert_every_fault_is_caught(w: &World, stale: &str) {
    for (fault, code, message) in [
        ("bad-signature-summary", 65, "signature does not verify"),
        ("bad-signature-detail", 65, "signature does not verify"),
        ("bad-signature-wrapped-key", 65, "signature does not verify"),
        ("items-digest-mismatch", 65, "itemsDigest"),
        ("stale-detail", 65, stale),
        ("replayed-checkpoint", 65, "verification failed"),
        ("wrong-dek", 65, "verification failed"),
        ("tamper-ciphertext", 65, "envelope failed authentication"),
        ("swap-envelope", 65, "envelope belongs to another field"),
        ("unknown-signer", 65, "verification failed"),
        ("revoked-signer", 65, "verification failed"),
        ("agent-signed-wrapped-key", 65, "verification failed"),
        ("key-id-mismatch", 65, "verification failed"),
        ("wrong-recipient", 77, "verification failed"),
        ("invalid-json", 65, "malformed response"),
    ] {
        w.server
            .admin()
            .set_faults(vec![fault.parse::<Fault>().unwrap()]);
        let marker = w.marker();
        let err = fails(
            w.r4exec()
                .args(["--timeout", "10", "--"])
                .args(marker.command()),
            code,
            &[message],
        );
        marker.assert_not_ran();
        assert_no_value(fault, &err);
    }
}

/// The version floor works the same on per-vault answers: a summary older
/// than one already seen in this process is a rollback.
#[test]
fn a_rollback_is_caught_under_the_referenced_plan() {
    let w = World::faulty(&["rollback"]);
    w.config(&format!("{REFERENCED}{CONFIG}"));
    assert_rollback_is_caught(&w);
}

/// The same under the default plan, small (the sync) and large (the
/// referenced plan).
#[test]
fn a_rollback_is_caught_under_the_default_plan_small_and_large() {
    for seed in [seed_text(true), big_seed(1000)] {
        assert_rollback_is_caught(&World::from_seed(&seed, &["rollback"]));
    }
}

fn assert_rollback_is_caught(w: &World) {
    let config = Config::load(&w.path("r4.toml"), true).unwrap();
    let mut opts = client_options(w);
    opts.timeout = Duration::from_secs(5);
    let client = Client::new(opts).unwrap();
    let ropts = ResolveOptions::default();
    let mut floor = VersionFloor::default();
    rt().block_on(async {
        let first = resolve_with_floor(&client, agent_key(), &config, &ropts, Some(&mut floor));
        assert!(first.await.is_ok());
        let second = resolve_with_floor(&client, agent_key(), &config, &ropts, Some(&mut floor));
        let problems = second.await.unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| matches!(p.failure, Failure::Verify(VerifyError::Rollback { .. }))),
            "{problems:#?}"
        );
    });
}

/// Selecting from the full vault list, not from what was fetched: a name
/// that is ambiguous among the visible vaults stays ambiguous, even beside
/// a reference that fetches one of the candidates.
#[test]
fn a_name_ambiguous_in_the_vault_list_stays_ambiguous() {
    let seed = format!(
        "{}\n[[vaults]]\nname = \"edge\"\nshared_with = [\"agent\"]\n  [[vaults.items]]\n  name = \"TLS\"\n    [[vaults.items.fields]]\n    name = \"private key\"\n    value = \"other\"\n",
        seed_text(true)
    );
    let l = logged(&seed);
    let config = format!(
        "{REFERENCED}[env]\nA = \"r4://Edge/TLS/private key\"\nB = \"r4://EDGE/TLS/private key\"\n"
    );
    let out = run(&l, &config, "true");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(
        err.contains("B (r4://EDGE/TLS/private key): vault \"EDGE\" is ambiguous"),
        "{err}"
    );
}

#[test]
fn referenced_with_a_project_is_a_usage_error() {
    let w = World::new();
    w.config(&format!("{REFERENCED}[project]\nname = \"App\"\n"));
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("plan = \"referenced\" fetches explicit references only"));
}

/// The default plan asks for the vault list first and, for a world of 5
/// items, takes the sync: two requests, two rounds, no item fetched twice.
#[test]
fn auto_takes_the_sync_after_the_vault_list_for_a_small_world() {
    let l = logged(&seed_text(true));
    let out = run(&l, CONFIG, SHOW);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plan: sync after the vault list (auto: 5 items visible, 3 referenced), in two rounds (4 vaults visible)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(paths(&l), ["/vault", "/vault/sync"]);
    assert_eq!(rounds(&l.requests()), 2);
}

/// The test world plus a vault "Big" of `n` items of three fields.
fn big_seed(n: usize) -> String {
    let mut seed = seed_text(true);
    seed.push_str("\n[[vaults]]\nname = \"Big\"\nshared_with = [\"agent\"]\n");
    for i in 0..n {
        seed.push_str(&format!(
            "  [[vaults.items]]\n  name = \"item {i}\"\n    [[vaults.items.fields]]\n    name = \"user\"\n    value = \"user-{i}\"\n    [[vaults.items.fields]]\n    name = \"password\"\n    type = \"PASSWORD\"\n    value = \"password-{i}-0123456789abcdef\"\n    [[vaults.items.fields]]\n    name = \"url\"\n    value = \"https://service-{i}.example.com/path\"\n"
        ));
    }
    seed
}

#[test]
fn auto_fetches_what_is_referenced_when_the_sync_is_large() {
    let l = logged(&big_seed(300));
    let config = "[env]\nDB_PASSWORD = \"r4://Production Secrets/Production DB/Password\"\nB = \"r4://Big/item 7/password\"\nC = \"r4://Big/item 250/url\"\n";
    let out = run(
        &l,
        config,
        "printf '%s|%s|%s' \"$DB_PASSWORD\" \"$B\" \"$C\"",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        stdout(&out),
        format!("{DB_PASSWORD}|password-7-0123456789abcdef|https://service-250.example.com/path")
    );
    assert!(
        err.contains("plan: referenced (auto: 305 items visible, 3 referenced): the vault list, then 2 of 5 vaults")
            && err.contains("then 3 item details")
            && err.contains("a sync would carry 305 items"),
        "{err}"
    );
    let paths = paths(&l);
    assert_eq!(paths[0], "/vault", "decided from the vault list");
    let details = paths.iter().filter(|p| p.matches('/').count() == 4).count();
    assert_eq!(details, 3, "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("/vault/sync")),
        "R4 never builds the sync: {paths:?}"
    );
    assert_eq!(rounds(&l.requests()), 3);
}

/// Forcing the sync keeps one round even for a large world.
#[test]
fn plan_sync_is_one_round_whatever_the_size() {
    let l = logged(&big_seed(300));
    let out = run(&l, &format!("[r4]\nplan = \"sync\"\n{CONFIG}"), SHOW);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("plan: sync in one round (5 vaults visible)"));
    assert_eq!(paths(&l), ["/vault/sync"]);
}

/// The fallback copy of a referenced answer is stored and used like that
/// of a sync: item lists kept, verified again.
#[test]
fn a_referenced_answer_is_kept_and_used_as_a_fallback_copy() {
    let w = World::new();
    let copy = w.path("copy.json");
    w.config(&format!(
        "{REFERENCED}{CONFIG}\n[fallback]\npath = \"{}\"\n",
        copy.display()
    ));
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&copy).unwrap();
    let body: serde_json::Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    assert_eq!(body["listed"]["items"].as_object().unwrap().len(), 2);
    w.server
        .admin()
        .set_faults(vec!["unavailable".parse().unwrap()]);
    let out = w
        .r4exec()
        .args(["-v", "--", "sh", "-c", "printf %s \"$STRIPE_KEY\""])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout(&out), STRIPE);
    assert!(
        err.contains("plan: the fallback copy (2 of 4 vaults kept)"),
        "{err}"
    );
    assert!(err.contains("started from the fallback copy"), "{err}");
}

/// A reference added during an outage, to an item the referenced answer
/// did not fetch, is "not found" from the copy (exit 66), not a
/// verification failure.
#[test]
fn an_item_not_fetched_into_the_copy_is_not_found() {
    let w = World::new();
    let copy = w.path("copy.json");
    let fallback = format!("[fallback]\npath = \"{}\"\n", copy.display());
    w.config(&format!(
        "{REFERENCED}[env]\nDB_PASSWORD = \"r4://Production Secrets/Production DB/Password\"\n{fallback}"
    ));
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    w.server
        .admin()
        .set_faults(vec!["unavailable".parse().unwrap()]);
    w.config(&format!(
        "{REFERENCED}[env]\nSTRIPE_KEY = \"r4://Production Secrets/Stripe/secret key\"\n{fallback}"
    ));
    let out = w.r4exec().args(["--", "true"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(66), "{err}");
    let item = item_id("Production Secrets", "Stripe");
    assert!(
        err.contains(&format!("STRIPE_KEY (r4://Production Secrets/Stripe/secret key): item {item} is listed but its contents are not in the answer")),
        "{err}"
    );
}

/// At 1 000 items and one reference the default plan fetches a few
/// requests' worth of bytes and never asks for the sync.
#[test]
fn auto_at_a_thousand_items_never_asks_for_the_sync() {
    let l = logged(&big_seed(1000));
    let config = "[env]\nB = \"r4://Big/item 999/password\"\n";
    let out = run(&l, config, "printf %s \"$B\"");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout(&out), "password-999-0123456789abcdef");
    assert!(
        err.contains("plan: referenced (auto: 1005 items visible, 1 referenced)"),
        "{err}"
    );
    let paths = paths(&l);
    assert!(
        !paths.iter().any(|p| p.starts_with("/vault/sync")),
        "{paths:?}"
    );
    assert_eq!(
        paths.len(),
        5,
        "list, Big's item list, key and directory, one detail: {paths:?}"
    );
    // With a fallback copy its stamp says the world is large: the next
    // start goes straight to the referenced plan, still without the sync.
    let copy = l.world.path("copy.json");
    let with_copy = format!("{config}[fallback]\npath = \"{}\"\n", copy.display());
    let out = run(&l, &with_copy, "true");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&l, &with_copy, "printf %s \"$B\"");
    let err = stderr(&out);
    assert_eq!(stdout(&out), "password-999-0123456789abcdef", "{err}");
    assert!(
        err.contains(
            "plan: referenced (auto: 1005 items visible at the last verified answer, 1 referenced)"
        ),
        "{err}"
    );
    let later = self::paths(&l);
    assert!(
        !later.iter().any(|p| p.starts_with("/vault/sync")),
        "{later:?}"
    );
    assert_eq!(later.len(), 5, "{later:?}");
}

/// The sync requests of a `--watch` supervisor's start and first two
/// polls, against `l` with `config`.
fn supervisor_syncs(l: &Logged, config: &str) -> Vec<String> {
    l.world.config(config);
    let mut cmd = l.world.std_command();
    cmd.env("R4_BASE_URL", l.server.base_url()).args([
        "--watch",
        "--watch-interval",
        "0.3",
        "--",
        "sh",
        "-c",
        "while kill -0 $PPID 2>/dev/null; do sleep 0.1; done",
    ]);
    let running = Running::spawn(&mut cmd, l.world.path("supervisor.stderr"));
    let polls = || {
        paths(l)
            .into_iter()
            .filter(|p| p.starts_with("/vault/sync?cursor="))
            .count()
    };
    wait_for("two delta polls", Duration::from_secs(30), || polls() >= 2);
    drop(running);
    paths(l)
        .into_iter()
        .filter(|p| p.starts_with("/vault/sync"))
        .collect()
}

/// The first sync request is a full sync, and every one after it a delta.
fn one_full_sync_then_deltas(syncs: &[String]) {
    assert_eq!(syncs[0], "/vault/sync", "{syncs:?}");
    assert!(
        syncs[1..]
            .iter()
            .all(|p| p.starts_with("/vault/sync?cursor=")),
        "{syncs:?}"
    );
}

/// A supervisor started from a full sync keeps its cursor: its first poll
/// asks for the changes since, and R4 builds one full sync for it, not one
/// at the start and another at the first poll.
#[test]
fn a_supervisor_started_from_a_sync_polls_deltas_from_the_first_poll() {
    let l = logged(&seed_text(true));
    one_full_sync_then_deltas(&supervisor_syncs(&l, CONFIG));
}

/// A supervisor started by the referenced plan has no cursor: its first
/// poll is the one full sync it asks for (docs/plan.md, "Limits"), and
/// every poll after is a delta.
#[test]
fn a_supervisor_started_by_the_referenced_plan_asks_one_full_sync_at_its_first_poll() {
    let l = logged(&big_seed(1000));
    one_full_sync_then_deltas(&supervisor_syncs(
        &l,
        "[env]\nB = \"r4://Big/item 999/password\"\n",
    ));
}

/// When the references name a quarter or more of what is visible, one sync
/// is cheaper than a detail request each, so `auto` takes it, even large.
#[test]
fn auto_takes_the_sync_when_most_items_are_referenced() {
    let l = logged(&big_seed(120));
    let mut config = String::from("[env]\n");
    for i in 0..40 {
        config.push_str(&format!("V{i} = \"r4://Big/item {i}/user\"\n"));
    }
    let out = run(&l, &config, "printf %s \"$V39\"");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout(&out), "user-39");
    assert!(
        err.contains("plan: sync after the vault list (auto: 125 items visible, 40 referenced)"),
        "{err}"
    );
    assert_eq!(paths(&l), ["/vault", "/vault/sync"]);
}
