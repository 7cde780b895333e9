#!/usr/bin/env python3
"""Requests and sequential rounds in a devserver request log (the definition
used by tests/e2e/rounds.rs: a request that starts after the first-finishing
request of the current round has ended opens a new round), and the server's
time on that path in ms. usage: rounds.py REQUEST_LOG, prints: requests rounds server_ms"""
import json, sys

reqs = sorted((json.loads(l) for l in open(sys.argv[1]) if l.strip()), key=lambda r: r["start"])
rounds, first_end = 0, float("-inf")
# The server's share of the wall time: per round, its longest request (from
# the request arriving to the answer's last byte handed to the socket).
server, longest = 0.0, 0.0
for r in reqs:
    if rounds == 0 or r["start"] >= first_end:
        server += longest
        rounds, first_end, longest = rounds + 1, r["end"], 0.0
    else:
        first_end = min(first_end, r["end"])
    longest = max(longest, r["end"] - r["start"])
server += longest
print(len(reqs), rounds, "%.2f" % server)
