//! The number of sequential network rounds r4-exec needs, read from the
//! devserver's request log (start/end of every request), so the one-round
//! plan cannot regress silently. Latency is injected so that rounds are
//! clearly separated in time. This asserts counts, never durations.

use crate::util::*;
use r4_devserver::{Options, Seed, ServerGuard};

struct Logged {
    server: ServerGuard,
    log: std::path::PathBuf,
    world: World,
}

/// A world whose server logs requests and answers after 20 ms.
fn logged() -> Logged {
    let world = World::new();
    let log = world.path("requests.jsonl");
    let mut opts = Options::new(Seed::from_toml(&seed_text(true)).unwrap());
    opts.latency_ms = 20;
    opts.request_log = Some(log.clone());
    let server = ServerGuard::start(opts);
    Logged { server, log, world }
}

struct Req {
    start: f64,
    end: f64,
    path: String,
    conn: String,
}

fn requests(log: &std::path::Path) -> Vec<Req> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut reqs: Vec<Req> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Req {
                start: v["start"].as_f64().unwrap(),
                end: v["end"].as_f64().unwrap(),
                path: v["path"].as_str().unwrap().to_string(),
                conn: v["conn"].to_string(),
            }
        })
        .collect();
    reqs.sort_by(|a, b| a.start.total_cmp(&b.start));
    reqs
}

/// Sequential depth: a request that starts after some request of the current
/// round has finished depends on it and opens a new round.
fn rounds(reqs: &[Req]) -> usize {
    let mut rounds = 0;
    let mut first_end = f64::NEG_INFINITY;
    for r in reqs {
        if rounds == 0 || r.start >= first_end {
            rounds += 1;
            first_end = r.end;
        } else {
            first_end = first_end.min(r.end);
        }
    }
    rounds
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
    requests(&l.log)
}

#[test]
fn explicit_references_take_one_request_in_one_round() {
    let l = logged();
    let reqs = run(&l, CONFIG);
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v1/machine/vault/sync"]);
    assert_eq!(rounds(&reqs), 1);
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
        "[r4]\nallow_legacy = true\n[env]\nL = \"r4://Old/Legacy DB/Password\"\n",
    );
    assert_eq!(rounds(&reqs), 2);
    assert!(reqs.last().unwrap().path.ends_with("/vault/encryption-key"));
}

#[test]
fn over_https_one_http2_connection_carries_concurrent_requests() {
    let world = World::new();
    let log = world.path("requests.jsonl");
    let mut opts = Options::new(Seed::from_toml(&seed_text(true)).unwrap());
    opts.latency_ms = 20;
    opts.request_log = Some(log.clone());
    opts.tls = true;
    let server = ServerGuard::start(opts);
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
    let reqs = requests(&log);
    assert_eq!(reqs.len(), 3);
    let conns: std::collections::BTreeSet<&str> = reqs.iter().map(|r| r.conn.as_str()).collect();
    assert_eq!(conns.len(), 1, "{conns:?}");
}
