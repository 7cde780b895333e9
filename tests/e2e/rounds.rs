//! The number of sequential network rounds r4-exec needs, read from the
//! devserver's request log (start/end of every request), so the one-round
//! plan cannot regress silently. Latency is injected so that rounds are
//! clearly separated in time. This asserts counts, never durations.

use crate::util::*;

/// A world whose server logs requests and answers after 20 ms.
fn logged() -> Logged {
    Logged::start(&seed_text(true), |opts| opts.latency_ms = 20)
}

fn run(l: &Logged, config: &str) -> Vec<Req> {
    l.world.config(config);
    let out = l
        .world
        .r4exec()
        .env("R4_BASE_URL", l.server.base_url())
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    l.requests()
}

#[test]
fn explicit_references_take_one_request_in_one_round() {
    let l = logged();
    let reqs = run(&l, &format!("[r4]\nplan = \"sync\"\n{CONFIG}"));
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/machine/vault/sync"]);
    assert_eq!(rounds(&reqs), 1);
}

/// The default plan asks for the vault list before the sync: one round
/// more, so that a large world is never synced whole (tests/e2e/plan.rs).
#[test]
fn the_default_plan_takes_the_vault_list_then_the_sync() {
    let l = logged();
    let reqs = run(&l, CONFIG);
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v1/machine/vault", "/api/v1/machine/vault/sync"]
    );
    assert_eq!(rounds(&reqs), 2);
}

/// Once the world's size is known the default plan decides without the
/// list: with a fallback copy, whose stamp says how many items the world
/// had, every later start of a small world is one round, the sync; so is
/// a supervisor's every resolution after its first.
#[test]
fn a_known_small_world_takes_one_round() {
    let l = logged();
    let copy = l.world.path("cache/copy.json");
    let config = format!("{CONFIG}\n[fallback]\npath = \"{}\"\n", copy.display());
    let first = run(&l, &config);
    assert_eq!(
        rounds(&first),
        2,
        "nothing known yet: the list, then the sync"
    );
    let out = l
        .world
        .r4exec()
        .env("R4_BASE_URL", l.server.base_url())
        .args(["-v", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let second: Vec<Req> = l.requests().into_iter().skip(first.len()).collect();
    let paths: Vec<&str> = second.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/machine/vault/sync"]);
    assert_eq!(rounds(&second), 1);
    assert!(
        stderr(&out).contains("plan: sync in one round (auto: 5 items visible at the last verified answer, 3 referenced"),
        "{}",
        stderr(&out)
    );
    // A copy of another server says nothing about this one's world.
    std::fs::write(
        &copy,
        std::fs::read_to_string(&copy).unwrap().replacen(
            l.server.base_url(),
            "https://elsewhere.example/api/v1/machine",
            1,
        ),
    )
    .unwrap();
    let before = l.requests().len();
    run(&l, &config);
    assert_eq!(rounds(&l.requests()[before..]), 2);
}

#[test]
fn a_project_by_id_adds_a_concurrent_request_not_a_round() {
    let l = logged();
    let id = r4_devserver::project_id("App");
    let reqs = run(&l, &format!("[project]\nid = \"{id}\"\n"));
    assert_eq!(
        reqs.len(),
        2,
        "{:?}",
        reqs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(rounds(&reqs), 1);
}

#[test]
fn a_project_by_name_takes_two_rounds() {
    let l = logged();
    let reqs = run(&l, "[project]\nname = \"App\"\n");
    assert_eq!(reqs.len(), 3);
    assert_eq!(rounds(&reqs), 2);
}

#[test]
fn a_legacy_vault_adds_one_round_for_the_server_held_key() {
    let l = logged();
    let reqs = run(
        &l,
        "[r4]\nallow_legacy = true\nplan = \"sync\"\n[env]\nL = \"r4://Old/Legacy DB/Password\"\n",
    );
    assert_eq!(rounds(&reqs), 2);
    assert!(reqs.last().unwrap().path.ends_with("/vault/encryption-key"));
}

#[test]
fn over_https_one_http2_connection_carries_concurrent_requests() {
    let l = Logged::start(&seed_text(true), |opts| {
        opts.latency_ms = 20;
        opts.tls = true;
    });
    let (world, server) = (&l.world, &l.server);
    assert!(
        server.base_url().starts_with("https://"),
        "{}",
        server.base_url()
    );
    std::fs::write(world.path("ca.pem"), server.ca_pem().unwrap()).unwrap();
    world.config(&format!(
        "[r4]\nca_file = \"{}\"\n[project]\nname = \"App\"\n",
        world.path("ca.pem").display()
    ));
    let out = world
        .r4exec()
        .env("R4_BASE_URL", server.base_url())
        .args(["--", "sh", "-c", "printf %s \"$PRODUCTION_DB_PASSWORD\""])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), DB_PASSWORD, "{}", stderr(&out));
    let reqs = l.requests();
    assert_eq!(reqs.len(), 3);
    let conns: std::collections::BTreeSet<&str> = reqs.iter().map(|r| r.conn.as_str()).collect();
    assert_eq!(conns.len(), 1, "{conns:?}");
}
