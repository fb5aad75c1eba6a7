#!/usr/bin/env python3
"""Every benchmark in one command, with the performance targets checked in
one table: the peers (moto's server, Debian's docker-registry) run side by
side in the same run, on the same machine, at the same commit.

    python3 benches/run_all.py                  # builds target/dist/ecrd first
    python3 benches/run_all.py --quick          # shorter loads (a rough look)
    python3 benches/run_all.py --out perf.md    # also write the report to a file

Runs, each with `--json` so the numbers can be compared here:
- benches/api_bench.py: DescribeRepositories, DescribeImages (page of 100 of
  1,000 images), GetAuthorizationToken; ecrd with and without the request
  log and with policies in force, moto; start to first answer, idle RSS.
- benches/blob_bench.py: 256 MiB monolithic and 4 MiB-chunked pushes, whole
  and ranged pulls, with and without the redirect, memory and disk, against
  docker-registry; ecrd's peak memory.
- benches/push_concurrency_bench.py: 4 vs 32 concurrent pushes; a blob
  finish's wait and the pushes' waits for the collection lock with
  garbage collections running.
- benches/scale_bench.py (when present): pages and lookups at 100 vs 100,000
  images and 10,000 repositories, lifecycle over 100,000 images, start on a
  large data directory.

Needs what the scripts need: wrk, the aws CLI, moto, docker-registry.
About 10 minutes (`--quick`: about 4).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHES = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHES))
from common import cpu_model  # noqa: E402


def machine() -> str:
    model = cpu_model()
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({model or platform.machine()}){mem}, {platform.system()} " \
           f"{platform.release()}"


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def run(script: str, args: list[str], json_path: Path) -> tuple[dict | None, str]:
    """Runs a bench script; returns its JSON (None if it failed) and its
    markdown output."""
    cmd = [sys.executable, str(BENCHES / script), "--no-build", "--json", str(json_path), *args]
    print(f"== {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0 or not json_path.exists():
        print(f"   {script} failed (exit {done.returncode})", file=sys.stderr)
        return None, done.stdout
    return json.loads(json_path.read_text()), done.stdout


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


class Targets:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, target: str, measured: str, holds: bool | None) -> None:
        mark = "n/a" if holds is None else ("yes" if holds else "**no**")
        self.rows.append((target, measured, mark))

    def markdown(self) -> str:
        lines = ["| target | measured | holds |", "|---|---:|:---:|"]
        lines += [f"| {t} | {m} | {h} |" for t, m, h in self.rows]
        return "\n".join(lines)


def api_targets(t: Targets, api: dict) -> None:
    ops = api["operations"]
    for op in ops.get("ecrd", {}):
        ecrd = ops["ecrd"][op]["rps"]
        if "moto" in ops:
            ratio = ecrd / ops["moto"][op]["rps"]
            t.add(f"{op}: ecrd (defaults) ≥ 100x moto", f"{ratio:,.0f}x "
                  f"({ecrd:,.0f} vs {ops['moto'][op]['rps']:,.1f} req/s)", ratio >= 100)
        if "ecrd-quiet" in ops:
            cost = 1 - ecrd / ops["ecrd-quiet"][op]["rps"]
            t.add(f"{op}: request log costs ≤ 10%", f"{cost * 100:+.1f}%", cost <= 0.10)
        if "ecrd-policies" in ops:
            change = ops["ecrd-policies"][op]["rps"] / ecrd - 1
            t.add(f"{op}: with policies ≤ 10% below defaults", f"{change * 100:+.1f}%",
                  change >= -0.10)
    t.add("start to first answer < 5 ms", f"{api['startup_ms_median']:.1f} ms",
          api["startup_ms_median"] < 5)
    t.add("idle RSS < 8 MiB", f"{api['idle_rss_mib_median']:.1f} MiB",
          api["idle_rss_mib_median"] < 8)


def blob_targets(t: Targets, blob: dict) -> None:
    size = blob["size"]
    res = blob["results"]
    reg = res.get("registry")

    def rate(key: str, what: str) -> float | None:
        r = res.get(key)
        return size / median(r[what]) / 1e6 if r and r.get(what) else None

    def versus(key: str, what: str, floor: float, label: str) -> None:
        mine, theirs = rate(key, what), rate("registry", what)
        if mine is None or theirs is None:
            return
        ratio = mine / theirs
        t.add(f"{label} ≥ {floor:g}x docker-registry", f"{ratio:.2f}x ({mine:,.0f} vs "
              f"{theirs:,.0f} MB/s)", ratio >= floor)

    if reg is None:
        return
    for mode, key in (("memory", "mem"), ("disk", "disk")):
        versus(key, "push", 2, f"{mode}: monolithic push")
        versus(key, "push_chunked", 2, f"{mode}: 4 MiB-chunked push")
        versus(key, "pull", 1, f"{mode}: pull, redirect followed")
        versus(f"{key}-direct", "pull", 1, f"{mode}: pull, no redirect")
        versus(key, "pull_ranges", 1, f"{mode}: 4 MiB-ranged pull")
    peak = blob["vmhwm_kib"]["memory"]["push"] * 1024 / size
    t.add("memory: peak RSS during a push ≤ 1.25x the blob", f"{peak:.2f}x", peak <= 1.25)


def concurrency_targets(t: Targets, conc: dict) -> None:
    for name, r in conc.items():
        if not name.startswith("ecrd"):
            continue
        ratio = r["mbps_32"] / r["mbps_4"]
        t.add(f"{name}: 32 concurrent pushes ≥ 4 (aggregate)", f"{ratio:.2f}x "
              f"({r['mbps_32']:,.0f} vs {r['mbps_4']:,.0f} MB/s)", ratio >= 1)
        # The stall a collection causes is what the pushes' steps wait for
        # its lock; the p99 of a finish also moves with the CPU the
        # collections take from the pushes, reported without a verdict.
        w = r["lock_waits_gc"]
        t.add(f"{name}: collections hold a push's step back ≤ a few ms (longest lock wait)",
              f"under {w['max_under_ms']:g} ms ({w['over_5ms']} of {w['count']} steps over "
              f"5 ms, {r['gc_runs']} collections)", w["max_under_ms"] <= 5)
        stall = r["finish_gc"]["p99_ms"] - r["finish_alone"]["p99_ms"]
        t.add(f"{name}: p99 of a blob finish, collections running vs not",
              f"{stall:+.1f} ms", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--quick", action="store_true", help="shorter loads, fewer repeats")
    parser.add_argument("--skip-moto", action="store_true")
    parser.add_argument("--skip-registry", action="store_true")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--profile", "dist", "--bin", "ecrd"], cwd=REPO_ROOT,
                       check=True)
    tmp = Path(tempfile.mkdtemp(prefix="run_all_"))
    load_before = os.getloadavg()
    skip_moto = ["--skip-moto"] if args.skip_moto else []
    skip_registry = ["--skip-registry"] if args.skip_registry else []
    api, api_md = run("api_bench.py", ["--duration", "3" if args.quick else "10",
                                       "--startup-runs", "10", *skip_moto], tmp / "api.json")
    blob, blob_md = run("blob_bench.py", ["--repeats", "2" if args.quick else "3",
                                          *skip_registry], tmp / "blob.json")
    conc, conc_md = run("push_concurrency_bench.py", ["--rounds", "2" if args.quick else "3",
                                                      *skip_registry], tmp / "conc.json")
    scale_md = ""
    if (BENCHES / "scale_bench.py").exists():
        _, scale_md = run("scale_bench.py", [], tmp / "scale.json")
    load_after = os.getloadavg()

    targets = Targets()
    if api:
        api_targets(targets, api)
    if blob:
        blob_targets(targets, blob)
    if conc:
        concurrency_targets(targets, conc)

    report = [
        f"# ecrd performance, {datetime.date.today().isoformat()}",
        "",
        f"Commit {commit()}; machine: {machine()}; load average before / after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f}. Rerun: `python3 benches/run_all.py`.",
        "",
        targets.markdown(),
        "",
        "## Control plane (benches/api_bench.py)", api_md.strip(),
        "",
        "## Blobs (benches/blob_bench.py)", blob_md.strip(),
        "",
        "## Concurrent pushes (benches/push_concurrency_bench.py)", conc_md.strip(),
    ]
    if scale_md:
        report += ["", "## Scale (benches/scale_bench.py)", scale_md.strip()]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if api and blob and conc else 1


if __name__ == "__main__":
    sys.exit(main())
