//! The verification path of a resolution, without the network: parse a full
//! `GET /vault/sync` answer and verify it as the resolver does, for 100 and
//! 1000 secrets across 10 vaults (one secret field per item).
//!
//! The answer is real: an in-process `r4-devserver` is seeded with the world,
//! the agent key pre-registered, and `/vault/sync` is fetched once. Then each
//! stage is measured on its own, and all of them together:
//!
//! - `parse`: `serde_json::from_slice::<SyncResponse>` (the signed objects
//!   keep their raw members, so this is where the JSON is read twice);
//! - `directories`: `verify_directory` of each vault (parses the signer keys);
//! - `unwrap`: `verify_and_unwrap` of each wrapped key (one PSS verify and
//!   one RSA-OAEP unwrap per vault);
//! - `summaries`: `verify_summary` (one PSS verify and the `itemsDigest`);
//! - `items`: `verify_item` of every item (one PSS verify per item, item and
//!   field digests);
//! - `envelopes`: `envelope::open` of every field;
//! - `total`: parse + everything above, what `r4-exec` spends on CPU after the
//!   answer arrived (reference selection and exec aside).
//!
//! `cargo bench --bench resolve`; BENCHMARKS.md records the results.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use r4_devserver::{Options, Seed, ServerGuard};
use r4_exec::contract::checkpoint::{
    summary_entries, verify_and_unwrap, verify_item, verify_summary_owned, VerifiedSummary,
};
use r4_exec::contract::crypto::PrivateKey;
use r4_exec::contract::directory::{verify_directory, TrustPolicy, VerifiedDirectory};
use r4_exec::contract::envelope::{self, Expect};
use r4_exec::contract::wire::SyncResponse;
use r4_exec::contract::Dek;

const API_KEY: &str = "rk_bench000000000.bench-secret";
const VAULTS: usize = 10;

/// The same world `bench/gen_seed.py` writes: `n` items of one SECRET field
/// spread round-robin over `v` vaults shared with the agent.
fn seed(n: usize, v: usize, public_pem: &str) -> Seed {
    let mut s = format!(
        "[org]\nname = \"Bench Org\"\n[tenant]\nname = \"Bench Tenant\"\n\
         [[agents]]\nname = \"bench\"\napi_key = \"{API_KEY}\"\npublic_key = \"\"\"{public_pem}\"\"\"\n"
    );
    for j in 0..v {
        s += &format!("[[vaults]]\nname = \"vault-{j}\"\nshared_with = [\"bench\"]\n");
        for i in (j..n).step_by(v) {
            s += &format!(
                "[[vaults.items]]\nname = \"item-{i}\"\n[[vaults.items.fields]]\nname = \"value\"\n\
                 type = \"SECRET\"\nvalue = \"secret-value-{i:06}-0123456789abcdef\"\n"
            );
        }
    }
    Seed::from_toml(&s).expect("bench seed")
}

/// `GET /vault/sync` over a plain HTTP/1.0 connection: the body exactly as
/// the server sends it.
fn fetch_sync(base_url: &str) -> Vec<u8> {
    let rest = base_url.strip_prefix("http://").expect("plain http");
    let (host, base_path) = rest.split_once('/').expect("base path");
    let mut conn = std::net::TcpStream::connect(host).expect("connect");
    write!(
        conn,
        "GET /{base_path}/vault/sync HTTP/1.0\r\nHost: {host}\r\nX-API-Key: {API_KEY}\r\n\r\n"
    )
    .expect("send");
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.") && head[9..].starts_with("200"),
        "{head}"
    );
    assert!(!head.contains("transfer-encoding: chunked"), "{head}");
    resp.split_off(split + 4)
}

struct Verified {
    dir: VerifiedDirectory,
    dek: Dek,
    dek_version: u64,
    summary: VerifiedSummary<'static>,
}

fn directories(sync: &SyncResponse, trust: &TrustPolicy) -> Vec<VerifiedDirectory> {
    sync.vaults
        .iter()
        .map(|v| verify_directory(&v.signers, &v.vault.id, trust).expect("directory"))
        .collect()
}

fn unwrap_keys(sync: &SyncResponse, dirs: &[VerifiedDirectory], key: &PrivateKey) -> Vec<Dek> {
    sync.vaults
        .iter()
        .zip(dirs)
        .map(|(v, dir)| {
            let wk = v.wrapped_key.as_ref().expect("v3 vault");
            let id = v.vault.encryption_key_id.as_deref();
            verify_and_unwrap(wk, &v.vault.id, id, key, dir)
                .expect("wrapped key")
                .0
        })
        .collect()
}

fn summaries(sync: &SyncResponse, dirs: &[VerifiedDirectory]) -> Vec<VerifiedSummary<'static>> {
    sync.vaults
        .iter()
        .zip(dirs)
        .map(|(v, dir)| {
            verify_summary_owned(summary_entries(&v.items), &v.checkpoint, &v.vault.id, dir)
                .expect("summary")
        })
        .collect()
}

fn verify_items(sync: &SyncResponse, vs: &[Verified]) -> usize {
    let mut n = 0;
    for (v, ver) in sync.vaults.iter().zip(vs) {
        for item in &v.items {
            verify_item(item, &v.vault.id, &item.id, &ver.summary, &ver.dir).expect("item");
            n += 1;
        }
    }
    n
}

fn open_all(sync: &SyncResponse, vs: &[Verified]) -> usize {
    let mut bytes = 0;
    for (v, ver) in sync.vaults.iter().zip(vs) {
        for item in &v.items {
            for f in &item.fields {
                let expect = Expect {
                    vault_id: &v.vault.id,
                    field_id: Some(&f.id),
                    dek_version: ver.dek_version,
                };
                bytes += envelope::open(&f.value, &ver.dek, expect)
                    .expect("envelope")
                    .len();
            }
        }
    }
    bytes
}

/// Everything after the answer arrived: parse, then verify and open all.
fn total(body: &[u8], key: &PrivateKey, trust: &TrustPolicy) -> usize {
    let sync: SyncResponse = serde_json::from_slice(body).expect("sync answer");
    let vs = verify_vaults(&sync, key, trust);
    verify_items(&sync, &vs) + open_all(&sync, &vs)
}

fn verify_vaults(sync: &SyncResponse, key: &PrivateKey, trust: &TrustPolicy) -> Vec<Verified> {
    let dirs = directories(sync, trust);
    let deks = unwrap_keys(sync, &dirs, key);
    let sums = summaries(sync, &dirs);
    dirs.into_iter()
        .zip(deks)
        .zip(sums)
        .zip(&sync.vaults)
        .map(|(((dir, dek), summary), v)| Verified {
            dir,
            dek,
            dek_version: v.wrapped_key.as_ref().expect("v3").body().dek_version,
            summary,
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let key = PrivateKey::generate(2048).expect("agent key");
    let trust = TrustPolicy::default();
    for n in [100usize, 1000] {
        let body = {
            let server = ServerGuard::start(Options::new(seed(n, VAULTS, &key.public().to_pem())));
            fetch_sync(server.base_url())
        };
        let sync: SyncResponse = serde_json::from_slice(&body).expect("sync answer");
        assert_eq!(sync.vaults.len(), VAULTS);
        let vs = verify_vaults(&sync, &key, &trust);
        assert_eq!(verify_items(&sync, &vs), n);
        assert!(open_all(&sync, &vs) > 0);
        let dirs: Vec<VerifiedDirectory> = vs.iter().map(|v| v.dir.clone()).collect();
        eprintln!(
            "resolve bench: {n} secrets in {VAULTS} vaults, sync answer {} bytes",
            body.len()
        );

        let mut g = c.benchmark_group(format!("sync_{n}_secrets_{VAULTS}_vaults"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if n >= 1000 { 4 } else { 2 }))
            .throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("parse", n), |b| {
            b.iter(|| serde_json::from_slice::<SyncResponse>(black_box(&body)).expect("parse"))
        });
        g.bench_function(BenchmarkId::new("directories", n), |b| {
            b.iter(|| directories(black_box(&sync), &trust))
        });
        g.bench_function(BenchmarkId::new("unwrap", n), |b| {
            b.iter(|| unwrap_keys(black_box(&sync), &dirs, &key))
        });
        g.bench_function(BenchmarkId::new("summaries", n), |b| {
            b.iter(|| summaries(black_box(&sync), &dirs))
        });
        g.bench_function(BenchmarkId::new("items", n), |b| {
            b.iter(|| verify_items(black_box(&sync), &vs))
        });
        g.bench_function(BenchmarkId::new("envelopes", n), |b| {
            b.iter(|| open_all(black_box(&sync), &vs))
        });
        g.bench_function(BenchmarkId::new("total", n), |b| {
            b.iter(|| total(black_box(&body), &key, &trust))
        });
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
