#!/usr/bin/env python3
"""Turns bench/run.sh's results.tsv into the markdown of BENCHMARKS.md: the
end-to-end table, a least-squares line of r4-exec's time against the number
of secrets for each latency and vault count, and the issue's targets.
usage: report.py results.tsv"""
import csv
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for r in rows:
    for k in r:
        if k != "scheme":
            r[k] = float(r[k])

print("| scheme | secrets | vaults | latency | r4-exec (ms) | floor `env FOO=bar true` (ms) "
      "| server's share (ms) | seqwalk (ms) | requests | rounds | peak RSS (MiB) "
      "| seqwalk requests / rounds | load 1 min / busy cores |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    walk = f"{r['walk_mean']:.1f}"
    walk += f" ± {r['walk_sd']:.1f}" if r["walk_runs"] > 1 else ""
    if r["walk_runs"] < 20:
        walk += f" ({int(r['walk_runs'])} runs)"
    print(f"| {r['scheme']} | {int(r['secrets'])} | {int(r['vaults'])} | {int(r['latency'])} ms "
          f"| {r['r4_mean']:.1f} ± {r['r4_sd']:.1f} | {r['floor_mean']:.1f} ± {r['floor_sd']:.1f} "
          f"| {r['server_ms']:.1f} | {walk} | {int(r['requests'])} | {int(r['rounds'])} | {r['rss_kib'] / 1024:.1f} "
          f"| {int(r['walk_requests'])} / {int(r['walk_rounds'])} | {r['load']:.2f} / {r['busy']:.2f} |")


def fit(points):
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    icpt = my - slope * mx
    ss_tot = sum((y - my) ** 2 for _, y in points)
    ss_res = sum((y - icpt - slope * x) ** 2 for x, y in points)
    return slope, icpt, (1 - ss_res / ss_tot) if ss_tot else 1.0


print()
print("Linear fit of r4-exec's mean time against the number of secrets "
      "(http rows, least squares over the sizes measured):")
print()
print("| latency | vaults | sizes | slope (ms per secret) | intercept (ms) | R² |")
print("| ---: | ---: | --- | ---: | ---: | ---: |")
for lat in sorted({r["latency"] for r in rows}):
    for v in sorted({r["vaults"] for r in rows}):
        pts = [(r["secrets"], r["r4_mean"]) for r in rows
               if r["scheme"] == "http" and r["latency"] == lat and r["vaults"] == v]
        if len(pts) < 2:
            continue
        s, i, r2 = fit(pts)
        sizes = ", ".join(str(int(x)) for x, _ in pts)
        print(f"| {int(lat)} ms | {int(v)} | {sizes} | {s:.4f} | {i:.1f} | {r2:.4f} |")


def find(n, v, lat, scheme="http"):
    for r in rows:
        if (r["scheme"], r["secrets"], r["vaults"], r["latency"]) == (scheme, n, v, lat):
            return r
    return None


def verdict(ok, gap, unit):
    return "met" if ok else f"**missed** by {gap:.1f} {unit}"


print()
print("Targets:")
print()
r = find(100, 10, 50)
if r:
    print(f"- 50 ms latency, 100 secrets in 10 vaults, < 170 ms: {r['r4_mean']:.1f} ms, "
          f"{int(r['requests'])} request(s) in {int(r['rounds'])} round(s): "
          f"{verdict(r['r4_mean'] < 170, r['r4_mean'] - 170, 'ms')}")
for v in (1, 10):
    r = find(100, v, 0)
    if r:
        over = r["r4_mean"] - r["floor_mean"]
        print(f"- 0 ms, 100 secrets in {v} vault(s), < 15 ms wall: {r['r4_mean']:.1f} ms: "
              f"{verdict(r['r4_mean'] < 15, r['r4_mean'] - 15, 'ms')}; within 10 ms of the floor "
              f"({r['floor_mean']:.1f} ms): +{over:.1f} ms: {verdict(over < 10, over - 10, 'ms')} "
              f"(the devserver's own answer, on the same cores: {r['server_ms']:.1f} ms)")
for r in rows:
    if r["secrets"] == 1000:
        mib = r["rss_kib"] / 1024
        print(f"- peak RSS < 16 MiB at 1000 secrets ({int(r['vaults'])} vault(s), "
              f"{int(r['latency'])} ms): {mib:.1f} MiB: {verdict(mib < 16, mib - 16, 'MiB')}")
