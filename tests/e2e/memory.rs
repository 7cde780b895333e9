//! What a supervising r4-exec keeps in its memory while COMMAND runs.
//!
//! Each test starts the real binary in supervisor mode against a devserver
//! whose values and API key are fresh random strings, waits until COMMAND
//! runs, then reads every readable region of r4-exec's address space through
//! `/proc/PID/maps` and `/proc/PID/mem` (heap, thread stacks, the environment
//! block, freed chunks, everything) and looks for the values and the key:
//!
//! - `--reap` alone: neither any value nor the API key is left;
//! - `--watch`: the values are there (it compares new ones with them), which
//!   also shows that the scan finds what is there;
//! - `--mask` without `--watch`: the values are there (it matches them), the
//!   API key is not (no more request is made);
//! - in every mode `/proc/PID/environ` no longer shows the API key.
//!
//! r4-exec is non-dumpable, so only root may read its memory: the scans
//! need root (CI runs as root) and fail, saying so, without it.
//!
//! Every value is searched for by two fragments, its first and its last 24
//! bytes: `malloc` writes its own pointers over the first 16 to 32 bytes of a
//! freed chunk, so a freed copy keeps only its tail.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;
use aho_corasick::AhoCorasick;

/// How long the supervisor gets, after COMMAND started, to drop what it no
/// longer needs (it does so right after the fork; this is slack for a busy
/// machine).
const SETTLE: Duration = Duration::from_secs(5);

fn require_root() {
    assert!(
        is_root(),
        "tests/e2e/memory.rs reads r4-exec's memory through /proc/PID/mem, which only root may read \
         (r4-exec is non-dumpable): run it as root, e.g. `sudo -E cargo test --test e2e memory::` \
         (CI runs as root)"
    );
}

/// A random lowercase hex string of `n` bytes of entropy.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("RNG");
    hex::encode(bytes)
}

/// A value that cannot occur by chance: two random halves around `label`.
fn random_value(label: &str) -> String {
    format!("{}.{label}.{}", random_hex(12), random_hex(12))
}

/// What to look for: a name for the report and the bytes.
struct Needle {
    what: String,
    bytes: Vec<u8>,
}

/// The first and the last 24 bytes of `value`, both named after `what`.
fn fragments(what: &str, value: &str) -> Vec<Needle> {
    let v = value.as_bytes();
    assert!(
        v.len() >= 48,
        "test values are long enough for two fragments"
    );
    vec![
        Needle {
            what: format!("{what} (head)"),
            bytes: v[..24].to_vec(),
        },
        Needle {
            what: format!("{what} (tail)"),
            bytes: v[v.len() - 24..].to_vec(),
        },
    ]
}

/// Fragments of the agent's private key as r4-exec reads it (the PEM file)
/// and decodes it (PKCS#8 DER), taken at 40% and 90% of each: inside the
/// private exponent and the CRT parameters, not the public modulus. (The
/// key r4-exec keeps with `--watch` is in aws-lc's own form, little-endian
/// words, which these do not match: they find leftover copies.)
fn agent_key_needles() -> Vec<Needle> {
    let pem = agent_key().to_pkcs8_pem();
    let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).expect("PEM");
    let mut needles = Vec::new();
    for (what, bytes) in [("PEM", pem.as_bytes()), ("DER", &der[..])] {
        for percent in [40, 90] {
            let at = bytes.len() * percent / 100;
            needles.push(Needle {
                what: format!("the agent's private key ({what} at {percent}%)"),
                bytes: bytes[at..at + 24].to_vec(),
            });
        }
    }
    needles
}

/// A devserver world whose secrets and API key are fresh random strings.
struct MemWorld {
    world: World,
    api_key: String,
    values: Vec<(&'static str, String)>,
}

impl MemWorld {
    fn new() -> MemWorld {
        let db = random_value("db-password");
        let stripe = random_value("stripe-key");
        let tls = random_value("tls-key-file");
        let api_key = format!("rk_memtest{}.{}", random_hex(4), random_value("api-key"));
        let seed = seed_text(true)
            .replace(DB_PASSWORD, &db)
            .replace(STRIPE, &stripe)
            .replace(TLS_KEY, &tls)
            .replace(API_KEY, &api_key);
        MemWorld {
            world: World::from_seed(&seed, &[]),
            api_key,
            values: vec![
                ("DB_PASSWORD (env)", db),
                ("STRIPE_KEY (env)", stripe),
                ("TLS_KEY_FILE (file)", tls),
            ],
        }
    }

    fn value_needles(&self) -> Vec<Needle> {
        self.values
            .iter()
            .flat_map(|(what, v)| fragments(what, v))
            .collect()
    }

    fn key_needles(&self) -> Vec<Needle> {
        fragments("the API key", &self.api_key)
    }

    fn all_needles(&self) -> Vec<Needle> {
        let mut all = self.value_needles();
        all.extend(self.key_needles());
        all.extend(agent_key_needles());
        all
    }

    /// Starts `r4-exec ARGS -- sh -c …` with only its own variables and
    /// PATH in its environment; COMMAND writes a marker, then waits for
    /// r4-exec to go away.
    fn start(&self, args: &[&str]) -> Running {
        self.start_as(args, None)
    }

    /// [`MemWorld::start`], as user `uid` (its group `uid` too) if given.
    fn start_as(&self, args: &[&str], uid: Option<u32>) -> Running {
        let w = &self.world;
        let marker = w.path("command-started");
        let _ = std::fs::remove_file(&marker);
        let script = r#"echo started > "$1"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
        let mut cmd = w.std_command();
        if let Some(id) = uid {
            cmd.uid(id).gid(id);
        }
        cmd.env("R4_API_KEY", &self.api_key)
            .args(args)
            .args(["--", "sh", "-c", script, "sh"])
            .arg(&marker);
        let mut running = Running::spawn(&mut cmd, w.path("r4-exec.stderr"));
        wait_for("COMMAND to start", DEADLINE, || {
            marker.exists()
                || match running.exited() {
                    Some(status) => panic!(
                        "r4-exec exited ({status}) before COMMAND started: {}",
                        running.stderr()
                    ),
                    None => false,
                }
        });
        running
    }
}

/// `/proc/PID/environ`: what the kernel shows of r4-exec's environment.
fn environ(r: &Running) -> Vec<u8> {
    std::fs::read(format!("/proc/{}/environ", r.id())).expect("read environ")
}

/// One occurrence found in r4-exec's memory.
#[derive(Debug)]
struct Hit {
    what: String,
    address: u64,
    region: String,
}

/// Everything a scan found, and how much it read.
struct Scan {
    hits: Vec<Hit>,
    bytes_read: u64,
    regions_read: usize,
    regions_unreadable: Vec<String>,
}

impl Scan {
    fn found(&self, what: &str) -> bool {
        self.hits.iter().any(|h| h.what.starts_with(what))
    }

    fn report(&self) -> String {
        let mut lines: Vec<String> = self
            .hits
            .iter()
            .map(|h| format!("  {} at {:#x} in {}", h.what, h.address, h.region))
            .collect();
        lines.push(format!(
            "  ({} bytes read in {} regions; unreadable: {:?})",
            self.bytes_read, self.regions_read, self.regions_unreadable
        ));
        lines.join("\n")
    }
}

/// A readable mapping of `/proc/PID/maps`: start, end, the line itself.
fn readable_regions(pid: u32) -> Vec<(u64, u64, String)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (range, perms) = (fields.next()?, fields.next()?);
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            perms
                .starts_with('r')
                .then(|| (start, end, line.to_string()))
        })
        .collect()
}

/// Reads every readable region of `pid` through `/proc/PID/mem` and looks
/// for every needle. Regions that cannot be read (`[vvar]`, `[vsyscall]`)
/// are listed, not fatal.
fn scan(pid: u32, needles: &[Needle]) -> Scan {
    const CHUNK: u64 = 4 << 20;
    let finder = AhoCorasick::new(needles.iter().map(|n| &n.bytes)).expect("needles");
    let overlap = needles.iter().map(|n| n.bytes.len()).max().unwrap_or(1) as u64 - 1;
    let mem = File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem (as root)");
    let mut scan = Scan {
        hits: Vec::new(),
        bytes_read: 0,
        regions_read: 0,
        regions_unreadable: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for (start, end, line) in readable_regions(pid) {
        let mut at = start;
        let mut ok = false;
        while at < end {
            let len = (end - at).min(CHUNK + overlap);
            let Some(buf) = read_fully(&mem, at, len as usize) else {
                break;
            };
            ok = true;
            scan.bytes_read += buf.len() as u64;
            for m in finder.find_overlapping_iter(&buf) {
                let address = at + m.start() as u64;
                if seen.insert((m.pattern().as_usize(), address)) {
                    scan.hits.push(Hit {
                        what: needles[m.pattern().as_usize()].what.clone(),
                        address,
                        region: line.clone(),
                    });
                }
            }
            if at + len >= end {
                break;
            }
            at += CHUNK;
        }
        if ok {
            scan.regions_read += 1;
        } else {
            scan.regions_unreadable.push(line);
        }
    }
    scan
}

/// `len` bytes at `offset`, or `None` if the kernel refuses any of them.
fn read_fully(mem: &File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match mem.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) | Err(_) => return None,
            Ok(n) => done += n,
        }
    }
    Some(buf)
}

/// Scans until none of `needles` is found (the supervisor drops what it
/// does not need right after starting COMMAND), for at most [`SETTLE`];
/// returns the last scan.
fn scan_until_clean(pid: u32, needles: &[Needle]) -> Scan {
    let start = Instant::now();
    loop {
        let s = scan(pid, needles);
        if s.hits.is_empty() || start.elapsed() > SETTLE {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_environ_has_no_key(r: &Running, key: &str) {
    let environ = environ(r);
    assert!(
        !environ.windows(key.len()).any(|w| w == key.as_bytes()),
        "/proc/PID/environ still shows the API key"
    );
}

fn assert_scanned_something(s: &Scan) {
    assert!(
        s.regions_read > 0 && s.bytes_read > 1 << 20,
        "the scan read almost nothing:\n{}",
        s.report()
    );
}

#[test]
fn reap_mode_keeps_neither_the_values_nor_the_api_key() {
    require_root();
    let m = MemWorld::new();
    let r = m.start(&["--reap"]);
    let s = scan_until_clean(r.id(), &m.all_needles());
    assert_scanned_something(&s);
    assert!(
        s.hits.is_empty(),
        "with --reap alone, r4-exec still holds:\n{}",
        s.report()
    );
    assert_environ_has_no_key(&r, &m.api_key);
}

#[test]
fn watch_mode_keeps_the_values_it_compares() {
    require_root();
    let m = MemWorld::new();
    let r = m.start(&["--watch", "--watch-interval", "600"]);
    let s = scan(r.id(), &m.value_needles());
    assert_scanned_something(&s);
    for (what, _) in &m.values {
        assert!(
            s.found(what),
            "--watch must keep {what} to compare (and the scan must find it):\n{}",
            s.report()
        );
    }
    // The API key is still needed for the polls: only the copy in the
    // environment block must be gone.
    assert_environ_has_no_key(&r, &m.api_key);
}

#[test]
fn mask_mode_keeps_the_values_but_not_the_api_key() {
    require_root();
    let m = MemWorld::new();
    let r = m.start(&["--mask"]);
    let s = scan_until_clean(r.id(), &m.key_needles());
    assert_scanned_something(&s);
    assert!(
        s.hits.is_empty(),
        "with --mask alone no request is made after the first: the API key must be gone:\n{}",
        s.report()
    );
    let s = scan(r.id(), &m.value_needles());
    for (what, _) in &m.values {
        assert!(
            s.found(what),
            "--mask must keep {what} to mask it:\n{}",
            s.report()
        );
    }
    assert_environ_has_no_key(&r, &m.api_key);
}

/// The unprivileged user of the test below.
const NOBODY: u32 = 65534;

#[test]
fn another_process_of_the_same_user_cannot_read_its_environ_or_memory() {
    // What protects r4-exec's memory from its own user's other processes,
    // whatever it still holds: it is non-dumpable, so /proc/PID/environ and
    // /proc/PID/mem belong to root.
    require_root();
    let m = MemWorld::new();
    let dir = m.world.dir.path();
    for path in [
        dir.to_path_buf(),
        m.world.path("agent.pem"),
        m.world.path("r4.toml"),
    ] {
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    let r = m.start_as(&["--watch", "--watch-interval", "600"], Some(NOBODY));
    let as_nobody = |file: &str| {
        Command::new("cat")
            .arg(format!("/proc/{}/{file}", r.id()))
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run cat")
    };
    let cmdline = as_nobody("cmdline");
    assert!(
        stdout(&cmdline).contains("--watch"),
        "the reader sees r4-exec's public files: {}",
        stderr(&cmdline)
    );
    for file in ["environ", "mem"] {
        let out = as_nobody(file);
        assert!(
            !out.status.success() && stderr(&out).contains("Permission denied"),
            "another process of r4-exec's user could open /proc/PID/{file}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn keep_r4_env_still_passes_the_api_key_on_in_supervisor_mode() {
    // The wipe is skipped then: every COMMAND started is given the key.
    let w = World::new();
    let out = w
        .r4exec()
        .args(["--reap", "--keep-r4-env", "--", "sh", "-c"])
        .arg(r#"printf '%s' "$R4_API_KEY""#)
        .output()
        .expect("run r4-exec");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), API_KEY);
}
