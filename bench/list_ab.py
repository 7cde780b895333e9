#!/usr/bin/env python3
"""Before/after CPU of a start that reads one large item list (BENCHMARKS.md,
"The default plan by world size"): alternating `perf stat` sets of two or
more r4-exec binaries against one devserver world of N items in one vault
(bench/plan_sizes.py's world), one `[env]` reference to its last item, so
the default plan reads the vault's whole item list. Prints each binary's
median task-clock and page faults per start over SETS sets of 10 runs, and
with --valgrind its instructions under callgrind (`--reap -- true`, one run:
deterministic to ~0.1 %; valgrind lacks AVX-512 and SHA-NI, so aws-lc runs
other code there than on the CPU). With --copy each binary keeps a fallback
copy (its own file, written by the warm-up run), as `auto+copy` of
bench/plan_sizes.py.

With --profile, the first binary's 40 starts are then recorded with perf
(call graphs) and grouped by bench/cpu_groups.py (BENCHMARKS.md, "The
default plan by world size"); build it with symbols for that, and keep its
name `r4-exec` (the grouping knows r4-exec's threads by that name).

usage: bench/list_ab.py N SETS BIN... [--valgrind] [--copy] [--profile]
  e.g. bench/list_ab.py 10000 6 /tmp/r4-exec.before target/x86_64-unknown-linux-gnu/release/r4-exec

Needs perf, openssl, target/release/r4-devserver (and valgrind for --valgrind);
R4_EXEC (as for plan_sizes.py) makes the agent key."""
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan_sizes as ps  # noqa: E402


def task_clock(exe, env):
    """(task-clock ms, page faults) per start, perf's mean of 10 runs."""
    out = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock,page-faults", "-r", "10",
                          exe, "--", "true"], env=env, capture_output=True, text=True).stderr
    fields = {line.split(",")[2]: float(line.split(",")[0])
              for line in out.splitlines() if line.count(",") >= 2 and line[0].isdigit()}
    return fields["task-clock"], fields["page-faults"]


def instructions(exe, env):
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          exe, "--reap", "--", "true"], env=env, capture_output=True, text=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def profile(exe, env, task_clock_ms, work):
    """Where `exe`'s start goes: 40 starts under `perf record`, grouped."""
    if os.path.basename(exe) != "r4-exec":
        sys.exit(f"--profile: {exe}: the binary must be named r4-exec")
    data = os.path.join(work, "perf.data")
    subprocess.run(["perf", "record", "-q", "-o", data, "--call-graph", "dwarf,32768", "-F", "5000",
                    "--", "sh", "-c", f'for i in $(seq 40); do "{exe}" -- true 2>/dev/null; done'],
                   env=env, check=True)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso", "--no-inline"],
                            check=True, capture_output=True)
    groups = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_groups.py")
    subprocess.run([sys.executable, groups, f"{task_clock_ms:.2f}"], input=script.stdout, check=True)


def main():
    args = [a for a in sys.argv[1:] if a not in ("--valgrind", "--copy", "--profile")]
    if len(args) < 3:
        sys.exit(__doc__)
    n, sets, exes = int(args[0]), int(args[1]), args[2:]
    with tempfile.TemporaryDirectory() as work:
        key, pub = ps.agent_key(work)
        server, base_url, _log = ps.world(work, n, pub)
        try:
            envs = {}
            for i, exe in enumerate(exes):
                config = os.path.join(work, f"r4-{i}.toml")
                with open(config, "w") as f:
                    f.write(f'[env]\nS = "r4://Big/item {n - 1}/password"\n')
                    if "--copy" in sys.argv:
                        f.write(f'[fallback]\npath = "{work}/copy-{i}.json"\n')
                env = {k: v for k, v in os.environ.items() if not k.startswith("R4_")}
                env.update(R4_API_KEY=ps.API_KEY, R4_PRIVATE_KEY_FILE=key, R4_CONFIG=config,
                           R4_BASE_URL=base_url)
                envs[exe] = env
                # The devserver signs its views on first use; the copy is written.
                subprocess.run([exe, "--", "true"], env=env, check=True, stderr=subprocess.DEVNULL)
            clock = {e: [] for e in exes}
            faults = {e: [] for e in exes}
            print(f"load: {open('/proc/loadavg').read().strip()}")
            for _ in range(sets):
                for exe in exes:
                    ms, pf = task_clock(exe, envs[exe])
                    clock[exe].append(ms)
                    faults[exe].append(pf)
            print(f"load: {open('/proc/loadavg').read().strip()}")
            for exe in exes:
                sets_ms = " ".join(f"{ms:.2f}" for ms in sorted(clock[exe]))
                print(f"{exe}: task-clock median {statistics.median(clock[exe]):.2f} ms "
                      f"(sets: {sets_ms}), page faults {statistics.median(faults[exe]):.0f}")
                if "--valgrind" in sys.argv:
                    print(f"{exe}: instructions {instructions(exe, envs[exe]):,}")
            if "--profile" in sys.argv:
                profile(exes[0], envs[exes[0]], statistics.median(clock[exes[0]]), work)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
