#!/usr/bin/env python3
"""What a fleet's starts cost R4 and the hosts (BENCHMARKS.md, "A fleet of
starts"): for worlds of 1, 100 and 1 000 items (one vault, three fields an
item, one [env] reference), a release r4-devserver on loopback with
--request-log, then N sequential starts of `r4-exec -- true` and C
concurrent ones, under the default plan.

usage: bench/fleet.py [--sizes 1,100,1000] [--sequential 1000] [--concurrent 100]
(from the repository root, after the release builds that bench/fleet.sh makes;
R4_EXEC=PATH measures another r4-exec, e.g. the static binary, as in
bench/plan_sizes.py)

Per start: requests, bytes received (response bodies) and sent (request
heads as HTTP/1.1 carries them), the devserver's CPU (utime + stime from
/proc/PID/stat, before and after the batch, divided by the starts) and
r4-exec's (wait4(2)). Then the same figures for a roll of 10 000 replicas in
60 s, on paper: requests, bytes and CPU per second."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plan_sizes import API_KEY, BIN, EXE, agent_key, seed  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start(env):
    return subprocess.Popen([EXE, "--", "true"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def reap(procs):
    cpu = 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("r4-exec failed")
        cpu += usage.ru_utime + usage.ru_stime
    return cpu


def batch(server, log, env, n, concurrent):
    open(log, "w").close()
    before, t0 = server_cpu_s(server.pid), time.monotonic()
    if concurrent:
        client_cpu = reap([start(env) for _ in range(n)])
    else:
        client_cpu = sum(reap([start(env)]) for _ in range(n))
    wall = time.monotonic() - t0
    time.sleep(0.2)
    after = server_cpu_s(server.pid)
    reqs = [json.loads(l) for l in open(log) if l.strip()]
    return {
        "requests": len(reqs) / n,
        "received": sum(r.get("bytes", 0) for r in reqs) / n,
        "sent": sum(r.get("requestBytes", 0) for r in reqs) / n,
        "server_ms": (after - before) * 1000 / n,
        "client_ms": client_cpu * 1000 / n,
        "wall_s": wall,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,100,1000")
    ap.add_argument("--sequential", type=int, default=1000)
    ap.add_argument("--concurrent", type=int, default=100)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        key, pub = agent_key(work)
        for n in [int(s) for s in args.sizes.split(",")]:
            path = os.path.join(work, f"seed-{n}.toml")
            with open(path, "w") as f:
                f.write(seed(n, pub))
            log = os.path.join(work, "requests.jsonl")
            server = subprocess.Popen([os.path.join(BIN, "r4-devserver"), "--seed", path,
                                       "--request-log", log],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                base_url = server.stdout.readline().strip()
                config = os.path.join(work, "r4.toml")
                with open(config, "w") as f:
                    f.write(f'[env]\nS = "r4://Big/item {n - 1}/password"\n')
                env = {k: v for k, v in os.environ.items() if not k.startswith("R4_")}
                env.update(R4_API_KEY=API_KEY, R4_PRIVATE_KEY_FILE=key, R4_CONFIG=config,
                           R4_BASE_URL=base_url)
                batch(server, log, env, 3, False)  # warm the server's signed views
                rows.append((n, f"{args.sequential} sequential", batch(server, log, env, args.sequential, False)))
                rows.append((n, f"{args.concurrent} concurrent", batch(server, log, env, args.concurrent, True)))
            finally:
                server.terminate()
                server.wait()
    print(f"load before: {open('/proc/loadavg').read().split()[0]}; {os.cpu_count()} cores")
    print("| items | starts | requests | bytes received | bytes sent | server CPU (ms) | r4-exec CPU (ms) | batch wall (s) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, how, m in rows:
        print(f"| {n} | {how} | {m['requests']:.1f} | {m['received']:,.0f} | {m['sent']:,.0f} "
              f"| {m['server_ms']:.2f} | {m['client_ms']:.2f} | {m['wall_s']:.1f} |")
    print()
    print("A roll of 10 000 replicas in 60 s (167 starts a second), from the sequential rows:")
    print("| items | requests/s | received MB/s | sent MB/s | server cores | host CPU per replica (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, how, m in rows:
        if "sequential" not in how:
            continue
        rate = 10000 / 60
        print(f"| {n} | {m['requests'] * rate:,.0f} | {m['received'] * rate / 1e6:.2f} | "
              f"{m['sent'] * rate / 1e6:.3f} | {m['server_ms'] * rate / 1000:.2f} | {m['client_ms']:.1f} |")


if __name__ == "__main__":
    main()
