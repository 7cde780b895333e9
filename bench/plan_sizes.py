#!/usr/bin/env python3
"""The cost of one start by world size and plan (BENCHMARKS.md, "The default
plan by world size"): a vault of N items of three fields (user, password,
url) beside nothing else, one [env] reference into it, a release
r4-devserver on loopback with --request-log.

usage: bench/plan_sizes.py [--sizes 10,1000,10000] [--plans auto,auto+copy,sync,referenced] [--runs 7]
(auto+copy: the default plan with a fallback copy, which tells each start
after the first how large the world is)
(run from the repository root after `cargo build --release -p r4-devserver
--bins && cargo build --release -p r4-exec --bin r4-exec`; bench/plan_sizes.sh
does both)

Per world and plan, after one warm-up run, RUNS runs of `r4-exec -- true`;
each run's requests, response bytes, full-sync requests (`/vault/sync`
without a cursor) and sequential rounds come from the request log (the
definition of bench/rounds.py), its CPU (user + system) from wait4(2). Prints
a Markdown table of medians, and the CPU of each world relative to the
smallest under the same plan."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
# R4_EXEC: the r4-exec binary to measure (default: BIN/r4-exec; the static
# one is target/x86_64-unknown-linux-gnu/release/r4-exec).
EXE = os.environ.get("R4_EXEC") or os.path.join(BIN, "r4-exec")
API_KEY = "rk_bench000000000.bench-secret"


def seed(n, pub):
    parts = ['[org]\nname = "Bench Org"\n[tenant]\nname = "Bench Tenant"\n',
             f'[[agents]]\nname = "bench"\napi_key = "{API_KEY}"\npublic_key = """{pub}"""\n',
             '[[vaults]]\nname = "Big"\nshared_with = ["bench"]\n']
    for i in range(n):
        parts.append(
            f'  [[vaults.items]]\n  name = "item {i}"\n'
            f'    [[vaults.items.fields]]\n    name = "user"\n    value = "user-{i}"\n'
            f'    [[vaults.items.fields]]\n    name = "password"\n    type = "PASSWORD"\n'
            f'    value = "password-{i}-0123456789abcdef"\n'
            f'    [[vaults.items.fields]]\n    name = "url"\n'
            f'    value = "https://service-{i}.example.com/path"\n')
    return "\n".join(parts)


def agent_key(work):
    """A new agent key in `work`: its path and its public key (PEM)."""
    key = os.path.join(work, "agent.pem")
    subprocess.run([EXE, "keygen", "--bits", "2048", "--out", key],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], check=True,
                         capture_output=True, text=True).stdout
    return key, pub


def rounds(reqs):
    count, first_end = 0, float("-inf")
    for r in reqs:
        if count == 0 or r["start"] >= first_end:
            count, first_end = count + 1, r["end"]
        else:
            first_end = min(first_end, r["end"])
    return count


def one_run(work, log, env):
    open(log, "w").close()
    start = time.monotonic()
    proc = subprocess.Popen([EXE, "--", "true"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"r4-exec failed:\n{err}")
    # The log line is written when the body is finished: give the server a
    # moment after a dropped answer.
    time.sleep(0.05)
    reqs = sorted((json.loads(l) for l in open(log) if l.strip()), key=lambda r: r["start"])
    return {
        "requests": len(reqs),
        "bytes": sum(r.get("bytes", 0) for r in reqs),
        "syncs": sum(1 for r in reqs if r["path"].split("?")[0].endswith("/vault/sync")
                     and "cursor=" not in r["path"]),
        "rounds": rounds(reqs),
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
        "wall_ms": wall * 1000,
    }


def world(work, n, pub):
    path = os.path.join(work, f"seed-{n}.toml")
    with open(path, "w") as f:
        f.write(seed(n, pub))
    log = os.path.join(work, f"requests-{n}.jsonl")
    server = subprocess.Popen([os.path.join(BIN, "r4-devserver"), "--seed", path, "--request-log", log],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base_url = server.stdout.readline().strip()
    return server, base_url, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,1000,10000")
    # auto+copy: the default plan with a fallback copy, whose stamp tells
    # the next start the world's size (the warm-up run writes it).
    ap.add_argument("--plans", default="auto,auto+copy,sync,referenced")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    plans = args.plans.split(",")
    with tempfile.TemporaryDirectory() as work:
        key, pub = agent_key(work)
        rows = []
        for n in sizes:
            server, base_url, log = world(work, n, pub)
            try:
                for plan in plans:
                    config = os.path.join(work, f"r4-{plan}.toml")
                    name, _, extra = plan.partition("+")
                    copy = os.path.join(work, f"copy-{n}.json")
                    with open(config, "w") as f:
                        f.write(f'[r4]\nplan = "{name}"\n[env]\nS = "r4://Big/item {n - 1}/password"\n')
                        if extra == "copy":
                            f.write(f'[fallback]\npath = "{copy}"\n')
                    env = {k: v for k, v in os.environ.items() if not k.startswith("R4_")}
                    env.update(R4_API_KEY=API_KEY, R4_PRIVATE_KEY_FILE=key, R4_CONFIG=config,
                               R4_BASE_URL=base_url)
                    one_run(work, log, env)
                    runs = [one_run(work, log, env) for _ in range(args.runs)]
                    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    rows.append((n, plan, med))
            finally:
                server.terminate()
                server.wait()
    print(f"runs per row: {args.runs} (medians); r4-exec {EXE}")
    print("| items | plan | requests | bytes received | full-sync requests | rounds | r4-exec CPU (ms) | CPU vs smallest | wall (ms) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = {}
    for n, plan, m in rows:
        base.setdefault(plan, m["cpu_ms"])
        print(f"| {n} | `{plan}` | {m['requests']:.0f} | {m['bytes']:,.0f} | {m['syncs']:.0f} | {m['rounds']:.0f} "
              f"| {m['cpu_ms']:.1f} | {m['cpu_ms'] / base[plan]:.2f}x | {m['wall_ms']:.0f} |")


if __name__ == "__main__":
    main()
