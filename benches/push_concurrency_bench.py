#!/usr/bin/env python3
"""Concurrent pushes: aggregate throughput of 4 and of 32 clients pushing
different 16 MiB blobs at once, and how long a blob's finish waits while
garbage collections run during the pushes.

    python3 benches/push_concurrency_bench.py            # builds target/dist/ecrd first
    python3 benches/push_concurrency_bench.py --no-build --rounds 3
    python3 benches/push_concurrency_bench.py --skip-registry

For ecrd in memory mode, ecrd with `--data-dir` and Debian's
`docker-registry` (for reference), each alone:
- aggregate MB/s: C client threads each push one distinct blob (monolithic
  POST + PUT, body sent with sendfile(2) from a pre-generated file, as in
  blob_bench.py), all started together; the bytes of the round over the time
  from the first POST to the last 201; median of --rounds rounds; C = 4 and
  C = 32. "32 vs 4" is the ratio of the two aggregates (1.0 or more means
  concurrency costs nothing).
- finish wait (ecrd only): each push's time from its body's last byte handed
  to the kernel to its 201 (verification, fsync, rename, the layer link),
  p50 / p99 / max over all pushes of 32-client rounds, first alone, then with
  `POST /_ecrd/gc` (grace one hour, so nothing is deleted) called in a loop
  by another thread for the whole round. The difference is what a collection
  costs a push: the CPU the collections take from the pushes on a small
  machine, plus any wait for the collection lock.
- lock waits (ecrd only, alone and GC running): from `/_ecrd/metrics`'
  `ecrd_gc_lock_wait_seconds`, how long the steps of those pushes waited
  for the collection lock (upload starts and finishes); the difference is
  the stall a collection itself causes.

Prints markdown tables; `--json PATH` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import blob_bench as bb  # noqa: E402  (the push client and server starters)
from common import ecrd_binary  # noqa: E402

MIB = 1 << 20


class Blobs:
    """One data file; blob i is bytes [i, i + size)."""

    def __init__(self, tmp: Path, size: int, count: int):
        import hashlib
        self.size = size
        self.path = tmp / "push_concurrency_data"
        raw = os.urandom(size + count)
        self.path.write_bytes(raw)
        self.digests = ["sha256:" + hashlib.sha256(memoryview(raw)[i:i + size]).hexdigest()
                        for i in range(count)]


def one_round(server: bb.Server, blobs: Blobs, first: int, clients: int
              ) -> tuple[float, list[float]]:
    """`clients` pushes of blobs first..first+clients at once; returns the
    round's seconds and each push's finish wait."""
    tails: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        conn = bb.connect(server.port)
        mine: list[float] = []
        with open(blobs.path, "rb") as data:
            start.wait()
            try:
                bb.push(server, conn, data, first + i, blobs.size, blobs.digests[first + i],
                        mine)
            except Exception as e:  # reported after the round
                with lock:
                    errors.append(str(e))
        conn.close()
        with lock:
            tails.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} pushes failed: {errors[0]}")
    return elapsed, tails


class GcLoop:
    """Calls `POST /_ecrd/gc` back to back until stopped."""

    def __init__(self, port: int):
        self.port, self.runs, self.stopped = port, 0, threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.stopped.is_set():
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/_ecrd/gc",
                                         data=b'{"graceSeconds": 3600}', method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            self.runs += 1

    def __enter__(self) -> "GcLoop":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


def lock_waits(port: int) -> dict:
    """ecrd's `ecrd_gc_lock_wait_seconds` histogram: cumulative counts by
    bucket bound, plus `sum` and `count`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ecrd/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict = {"buckets": {}}
    for line in text.splitlines():
        if not line.startswith("ecrd_gc_lock_wait_seconds"):
            continue
        key, value = line.rsplit(" ", 1)
        if key.startswith("ecrd_gc_lock_wait_seconds_bucket"):
            bound = key.split('le="', 1)[1].split('"', 1)[0]
            out["buckets"][float(bound)] = float(value)
        elif key == "ecrd_gc_lock_wait_seconds_sum":
            out["sum"] = float(value)
        elif key == "ecrd_gc_lock_wait_seconds_count":
            out["count"] = float(value)
    return out


def waits_between(before: dict, after: dict) -> dict:
    """What the steps between two scrapes waited: how many, their mean, how
    many waited over 5 ms, and the bound the longest wait is under."""
    count = after["count"] - before["count"]
    under = {b: after["buckets"][b] - before["buckets"].get(b, 0.0)
             for b in after["buckets"]}
    longest = min((b for b, n in under.items() if n >= count), default=float("inf"))
    return {"count": int(count),
            "mean_ms": (after["sum"] - before["sum"]) / count * 1000 if count else 0.0,
            "over_5ms": int(count - under.get(0.005, count)),
            "max_under_ms": longest * 1000}


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def measure(name: str, server: bb.Server, blobs: Blobs, rounds: int, finish: bool) -> dict:
    out: dict = {}
    used = 0
    for clients in (4, 32):
        times = []
        for _ in range(rounds):
            elapsed, _ = one_round(server, blobs, used, clients)
            used += clients
            times.append(elapsed)
        out[f"mbps_{clients}"] = clients * blobs.size / statistics.median(times) / 1e6
        print(f"  {name}: {clients} clients: {out[f'mbps_{clients}']:,.0f} MB/s",
              file=sys.stderr, flush=True)
    if finish:
        for label, with_gc in (("alone", False), ("gc", True)):
            tails: list[float] = []
            gc_runs = 0
            waits_before = lock_waits(server.port)
            for _ in range(rounds):
                if with_gc:
                    with GcLoop(server.port) as loop:
                        _, t = one_round(server, blobs, used, 32)
                    gc_runs += loop.runs
                else:
                    _, t = one_round(server, blobs, used, 32)
                used += 32
                tails.extend(t)
            out[f"finish_{label}"] = {"p50_ms": percentile(tails, 0.5) * 1000,
                                      "p99_ms": percentile(tails, 0.99) * 1000,
                                      "max_ms": max(tails) * 1000}
            out[f"lock_waits_{label}"] = waits_between(waits_before, lock_waits(server.port))
            if with_gc:
                out["gc_runs"] = gc_runs
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ecrd-bin", default=None)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--registry-bin", default="/usr/bin/docker-registry")
    parser.add_argument("--skip-registry", action="store_true")
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    binary = ecrd_binary(Path(args.ecrd_bin) if args.ecrd_bin else None, not args.no_build)

    tmp = Path(tempfile.mkdtemp(prefix="push_concurrency_"))
    # 4- and 32-client rounds, then two sets of 32-client rounds.
    blobs = Blobs(tmp, args.size_mib * MIB, args.rounds * (4 + 32 + 64))
    starters = {
        "ecrd, memory": lambda: bb.start_ecrd(binary, tmp, False, False),
        "ecrd, disk `--data-dir`": lambda: bb.start_ecrd(binary, tmp, True, False),
    }
    if not args.skip_registry:
        starters["docker-registry (filesystem)"] = lambda: bb.start_registry(args.registry_bin,
                                                                             tmp)
    results = {}
    for name, start in starters.items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        server = start()
        try:
            results[name] = measure(name, server, blobs, args.rounds,
                                    finish=name.startswith("ecrd"))
        finally:
            server.stop()

    print(f"\nmachine: {os.cpu_count()} cores, {platform.machine()}; blobs of "
          f"{args.size_mib} MiB, monolithic; median of {args.rounds} rounds; load average "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| server | 4 clients MB/s | 32 clients MB/s | 32 vs 4 |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['mbps_4']:,.0f} | {r['mbps_32']:,.0f} | "
              f"{r['mbps_32'] / r['mbps_4']:.2f}x |")
    print("\n| server, 32 clients | finish wait p50 / p99 / max, alone | "
          "with GC running (runs) |")
    print("|---|---:|---:|")
    for name, r in results.items():
        if "finish_alone" not in r:
            continue
        a, g = r["finish_alone"], r["finish_gc"]
        print(f"| {name} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} ms | "
              f"{g['p50_ms']:.1f} / {g['p99_ms']:.1f} / {g['max_ms']:.1f} ms "
              f"({r['gc_runs']}) |")
    print("\n| server, 32 clients | steps that asked for the collection lock "
          "| mean wait | waits over 5 ms | longest wait under |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        for label, key in (("alone", "lock_waits_alone"), ("GC running", "lock_waits_gc")):
            if key not in r:
                continue
            w = r[key]
            print(f"| {name}, {label} | {w['count']} | {w['mean_ms']:.3f} ms | "
                  f"{w['over_5ms']} | {w['max_under_ms']:g} ms |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
