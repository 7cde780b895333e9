#!/usr/bin/env python3
"""Groups the samples of a `perf record --call-graph dwarf` profile of r4-exec
starts by what the CPU was doing (BENCHMARKS.md, "Where a start's CPU goes").

usage: perf script -i perf.data -F comm,tid,ip,sym,dso --no-inline | bench/cpu_groups.py [TOTAL_MS]

Counts the samples of r4-exec's threads and of the command it execs (`true`);
TOTAL_MS (perf stat's task-clock per start) turns shares into milliseconds.
A sample goes to the first rule that matches: kernel samples by their kernel
stack; allocator samples by their leaf; aws-lc samples by the r4 function that
called into aws-lc; any other sample by the first frame (leaf to root) that
names a known crate, else the first r4 frame."""
import collections
import re
import sys

THREADS = ("r4-exec", "tokio-rt-worker")
ALLOC = re.compile(r"^(malloc|free|cfree|_int_malloc|_int_free|_int_realloc|realloc|calloc"
                   r"|malloc_consolidate|unlink_chunk|tcache|__libc_(malloc|free|calloc|realloc)"
                   r"|__rust_(alloc|dealloc|realloc)|__rdl_|sysmalloc|<?r4_exec::wipe)")
AWS_LC = re.compile(r"aws_lc|rsaz|^bn_|BN_")
CRYPTO = [  # r4 caller of aws-lc -> group
    ("oaep_decrypt", "crypto: RSA-OAEP unwraps"),
    ("verify_pss", "crypto: RSA-PSS verifies"),
    ("PrivateKey::from", "crypto: key parsing (private key, directories' public keys)"),
    ("PublicKey::from", "crypto: key parsing (private key, directories' public keys)"),
]
RULES = [
    ("JSON parsing (serde_json)", re.compile(r"serde_json|serde::de|serde_core")),
    ("canonicalisation (contract canon/JCS)", re.compile(r"r4_contract::canon")),
    ("base64 decoding", re.compile(r"base64")),
    ("TLS/HTTP stack (reqwest, hyper, rustls, url)", re.compile(r"reqwest|hyper|\bh2::|^<?http::|rustls|webpki|url::|idna")),
    ("tokio runtime", re.compile(r"tokio")),
    ("clap", re.compile(r"clap")),
    ("config (toml)", re.compile(r"toml")),
    ("process start: dynamic loader", re.compile(r"^_dl_|^dl_|ld-linux")),
]
KERNEL = [
    ("process start/exit: kernel execve, exit", re.compile(r"execve|load_elf_binary|bprm|do_exit|exit_mmap|do_group_exit|mmput")),
    ("kernel: page faults, mmap/brk", re.compile(r"exc_page_fault|handle_mm_fault|mmap|munmap|brk|mprotect")),
    ("kernel: thread creation", re.compile(r"clone|copy_process")),
]


def classify(comm, frames):
    if comm not in THREADS:
        return "the command (`true`, after exec)"
    if not frames:
        return "other"
    leaf, dso = frames[0]
    stack = " ".join(s for s, _ in frames)
    if "kernel" in dso:
        for name, rx in KERNEL:
            if rx.search(stack):
                return name
        return "kernel: network, other syscalls, scheduling"
    if ALLOC.search(leaf):
        return "allocator (glibc malloc/free + zeroing wipe)"
    if AWS_LC.search(leaf) or any(AWS_LC.search(s) for s, _ in frames[:4]):
        for key, name in CRYPTO:
            if key in stack:
                return name
        return "crypto: other (SHA-256, AES-GCM, DRBG)"
    for sym, d in frames:
        for name, rx in RULES:
            if rx.search(sym) or rx.search(d):
                return name
    if any(re.match(r"<?(r4_exec|r4_contract)::", s) for s, _ in frames):
        return "r4-exec's own code (and the libc it calls)"
    return "other"


def main():
    total_ms = float(sys.argv[1]) if len(sys.argv) > 1 else None
    counts = collections.Counter()
    comm, frames = None, []

    def flush():
        if comm is not None and (comm in THREADS or comm == "true"):
            counts[classify(comm, frames)] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
        elif not line[0].isspace():
            comm, frames = line.split()[0], []
        else:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)\s*$", line)
            if m:
                frames.append((m.group(1), m.group(2)))
    flush()
    n = sum(counts.values())
    print("| group | samples | share |" + (" ms per start |" if total_ms else ""))
    print("| --- | ---: | ---: |" + (" ---: |" if total_ms else ""))
    for name, c in counts.most_common():
        row = "| %s | %d | %.1f%% |" % (name, c, 100.0 * c / n)
        if total_ms:
            row += " %.2f |" % (total_ms * c / n)
        print(row)
    print("| total | %d | 100%% |%s" % (n, " %.2f |" % total_ms if total_ms else ""))


if __name__ == "__main__":
    main()
