#!/usr/bin/env python3
"""Requests and sequential rounds in a devserver request log (the definition
used by tests/rounds.rs: a request that starts after the first-finishing
request of the current round has ended opens a new round)."""
import json, sys

reqs = sorted((json.loads(l) for l in open(sys.argv[1]) if l.strip()), key=lambda r: r["start"])
rounds, first_end = 0, float("-inf")
for r in reqs:
    if rounds == 0 or r["start"] >= first_end:
        rounds, first_end = rounds + 1, r["end"]
    else:
        first_end = min(first_end, r["end"])
print(len(reqs), rounds)
