#!/usr/bin/env python3
"""Scale benchmark: does a page cost the same at 100,000 images and 10,000
repositories as at 100? (issue 14, "Scale").

For each backend (disk: `ecrd serve --data-dir` on a fixture directory;
memory: a memory server that imported a snapshot of it) and each size
(small: 100 images / 100 repositories; big: --images / --repositories), it
times, as the median of many requests on one kept-alive connection per
server, the small and the big server running at once and taking turns (so
the other work of a shared machine falls on both alike):
- a default page of DescribeImages, ListImages and DescribeRepositories
  (SigV4 headers signed once and replayed, the body never parsed, so the
  client's share is the same for both sizes);
- `GET /v2/scale/images/tags/list?n=100` (Basic `AWS:<password>`);
- DescribeImages of one image by tag and by digest.
Then, on the big fixture only: a lifecycle evaluation over all its images
(StartLifecyclePolicyPreview, then GetLifecyclePolicyPreview until
COMPLETE), and start to first answer (`/_ecrd/health` 200) of
`ecrd serve --data-dir` on it (median of several starts).

Fixtures are made by `ecrd fixture` (through the domain API) and kept in
--fixture-dir between runs (a fixture of 100,000 images takes minutes to
make: each config blob is fsynced); --fresh makes them again.

    python3 benches/scale_bench.py [--no-build] [--images N] [--repositories M] [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, cpu_model, ecrd_binary, start_ecrd, stop  # noqa: E402

TARGET = "AmazonEC2ContainerRegistry_V20150921."
REPO = "scale/images"
SMALL = (100, 100)
PAGE_RATIO_TARGET = 1.2
LIFECYCLE_TARGET_S = 1.0
START_TARGET_S = 0.100


def lifecycle_policy(images: int) -> dict:
    """Keeps the newest 95% of the tagged images (so a twentieth expire) and
    expires anything older than a year (nothing: the fixture spans 200
    days). Every image is evaluated; what a run then does grows with what
    expires, not with the repository."""
    return {"rules": [
        {"rulePriority": 1, "description": "keep the newest 95%",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                       "countType": "imageCountMoreThan", "countNumber": images - images // 20},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "nothing older than a year",
         "selection": {"tagStatus": "any", "countType": "sinceImagePushed",
                       "countUnit": "days", "countNumber": 365},
         "action": {"type": "expire"}},
    ]}


# ------------------------------------------------------------- fixtures


def fixture_dir(binary: Path, root: Path, images: int, repositories: int, fresh: bool) -> Path:
    """A data directory with the fixture of that size, made when missing."""
    path = root / f"{images}i-{repositories}r"
    done = path / "fixture.json"
    if fresh and path.exists():
        shutil.rmtree(path)
    if not done.exists():
        if path.exists():
            shutil.rmtree(path)
        print(f"making the fixture {path.name} ...", file=sys.stderr, flush=True)
        out = subprocess.run([str(binary), "fixture", "--data-dir", str(path),
                              "--images", str(images), "--repositories", str(repositories)],
                             check=True, capture_output=True, text=True).stdout
        done.write_text(out)
    return path


def snapshot_of(binary: Path, data_dir: Path) -> Path:
    """A snapshot tar of a fixture (for the memory backend), made when missing."""
    tar = data_dir.with_suffix(".tar")
    if not tar.exists() or tar.stat().st_mtime < (data_dir / "fixture.json").stat().st_mtime:
        subprocess.run([str(binary), "export", "--data-dir", str(data_dir), "-o", str(tar)],
                       check=True, capture_output=True)
    return tar


# ------------------------------------------------------------- requests


def signed_headers(port: int, operation: str, body: bytes) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                         headers={"X-Amz-Target": TARGET + operation,
                                  "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    return dict(request.headers.items())


class Client:
    """One kept-alive connection to an ecrd."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def raw(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def call(self, operation: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        status, raw = self.raw("POST", "/", body, signed_headers(self.port, operation, body))
        if status != 200:
            raise RuntimeError(f"{operation}: {status} {raw[:300]!r}")
        return json.loads(raw)


def page_requests(c: Client, images: int) -> dict:
    """Each measured request of a server holding `images` images, ready to
    replay: name -> (method, path, body, headers)."""
    token = c.call("GetAuthorizationToken", {})["authorizationData"][0]["authorizationToken"]
    tag = f"v{images // 2:06d}"
    found = c.call("DescribeImages", {"repositoryName": REPO, "imageIds": [{"imageTag": tag}]})
    digest = found["imageDetails"][0]["imageDigest"]
    page = c.call("DescribeImages", {"repositoryName": REPO})
    assert len(page["imageDetails"]) == min(100, images), len(page["imageDetails"])

    def op(operation: str, payload: dict) -> tuple:
        body = json.dumps(payload).encode()
        return ("POST", "/", body, signed_headers(c.port, operation, body))

    return {
        "DescribeImages page": op("DescribeImages", {"repositoryName": REPO}),
        "ListImages page": op("ListImages", {"repositoryName": REPO}),
        "DescribeRepositories page": op("DescribeRepositories", {}),
        "tags/list n=100": ("GET", f"/v2/{REPO}/tags/list?n=100", None,
                            {"Authorization": f"Basic {token}"}),
        "DescribeImages by tag": op(
            "DescribeImages", {"repositoryName": REPO, "imageIds": [{"imageTag": tag}]}),
        "DescribeImages by digest": op(
            "DescribeImages", {"repositoryName": REPO, "imageIds": [{"imageDigest": digest}]}),
    }


def measure_pages(servers: dict, runs: int) -> dict:
    """Median seconds per request of each query, for each server of
    `servers` (name -> (port, images)). The servers take turns, 10 requests
    each, so the other work on a shared machine falls on both sizes alike."""
    clients = {name: Client(port) for name, (port, _) in servers.items()}
    requests = {name: page_requests(clients[name], images)
                for name, (_, images) in servers.items()}
    out: dict = {name: {} for name in servers}
    for query in next(iter(requests.values())):
        times: dict = {name: [] for name in servers}
        for name, c in clients.items():
            for _ in range(max(3, runs // 10)):
                status, raw = c.raw(*requests[name][query])
                if status != 200:
                    raise RuntimeError(f"{query}: {status} {raw[:300]!r}")
        for _ in range(max(1, runs // 10)):
            for name, c in clients.items():
                for _ in range(10):
                    t = time.perf_counter()
                    c.raw(*requests[name][query])
                    times[name].append(time.perf_counter() - t)
        for name in servers:
            out[name][query] = statistics.median(times[name])
    return out


def lifecycle_seconds(port: int, images: int, runs: int) -> tuple[float, int]:
    """Median seconds of a preview over the whole repository, and how many
    images it would expire."""
    c = Client(port)
    text = json.dumps(lifecycle_policy(images))
    times, expiring = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        c.call("StartLifecyclePolicyPreview", {"repositoryName": REPO, "lifecyclePolicyText": text})
        while True:
            got = c.call("GetLifecyclePolicyPreview", {"repositoryName": REPO, "maxResults": 1})
            if got["status"] == "COMPLETE":
                break
            time.sleep(0.01)
        times.append(time.perf_counter() - t)
        expiring = got.get("summary", {}).get("expiringImageTotalCount", 0)
    return statistics.median(times), expiring


def import_snapshot(port: int, tar: Path) -> float:
    started = time.perf_counter()
    with open(tar, "rb") as f:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/_ecrd/snapshot", data=f,
                                         method="POST",
                                         headers={"Content-Type": "application/x-tar",
                                                  "Content-Length": str(tar.stat().st_size)})
        with urllib.request.urlopen(request, timeout=600) as r:
            r.read()
    return time.perf_counter() - started


# ------------------------------------------------------------- runs


def serve_args(log_dir: Path) -> list[str]:
    # No background runs while measuring.
    return ["--lifecycle-interval", "0", "--gc-interval", "0", "--replication", "false"]


def scratch_copy(fixture: Path) -> Path:
    """A data directory with a copy of the fixture's metadata (no blobs: a
    preview reads none). Previews are stored, and a stored preview of
    thousands of results is one large row that every later lookup near it
    in SQLite's b-tree pays for (see the README's "Scale"), so they are
    never taken on the fixture itself."""
    scratch = fixture.with_name(fixture.name + "-scratch")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    for name in ("metadata.db", "token-secret"):
        shutil.copy2(fixture / name, scratch / name)
    return scratch


def run_backend(binary: Path, backend: str, fixtures: dict, runs: int, log) -> dict:
    """Both sizes of one backend, served at once (`fixtures`: "small" and
    "big" -> (data directory, images)); the lifecycle preview on the big one."""
    args = serve_args(Path())
    procs, servers, result = [], {}, {}
    try:
        for name, (fixture, images) in fixtures.items():
            extra = ["--data-dir", str(fixture)] if backend == "disk" else []
            proc, port, _ = start_ecrd(binary, [*extra, *args], log)
            procs.append(proc)
            servers[name] = (port, images)
            result[name] = {}
            if backend == "memory":
                result[name]["snapshot import s"] = import_snapshot(
                    port, snapshot_of(binary, fixture))
        for name, pages in measure_pages(servers, runs).items():
            result[name]["pages"] = pages
        if backend == "memory":
            port, images = servers["big"]
            result["big"]["lifecycle s"], result["big"]["lifecycle expiring"] = \
                lifecycle_seconds(port, images, 3)
    finally:
        for proc in procs:
            stop(proc)
    if backend == "disk":
        fixture, images = fixtures["big"]
        scratch = scratch_copy(fixture)
        proc, port, _ = start_ecrd(binary, ["--data-dir", str(scratch), *args], log)
        try:
            result["big"]["lifecycle s"], result["big"]["lifecycle expiring"] = \
                lifecycle_seconds(port, images, 3)
        finally:
            stop(proc)
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def startup_seconds(binary: Path, fixture: Path, runs: int, log) -> float:
    times = []
    for _ in range(runs):
        proc, _, seconds = start_ecrd(binary, ["--data-dir", str(fixture), *serve_args(Path())],
                                      log)
        stop(proc)
        times.append(seconds)
    return statistics.median(times)


def machine() -> str:
    model = cpu_model()
    return f"{model or platform.processor()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="use the binary as built")
    parser.add_argument("--binary", type=Path, help="the ecrd binary (default: the target dir's)")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=300, help="requests per median")
    parser.add_argument("--starts", type=int, default=7, help="server starts per median")
    parser.add_argument("--fixture-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "ecrd-scale-fixtures")
    parser.add_argument("--fresh", action="store_true", help="make the fixtures again")
    parser.add_argument("--backends", default="memory,disk")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    binary = ecrd_binary(args.binary, build=not args.no_build)
    args.fixture_dir.mkdir(parents=True, exist_ok=True)
    big = (args.images, args.repositories)
    fixtures = {size: fixture_dir(binary, args.fixture_dir, *size, args.fresh)
                for size in (SMALL, big)}
    log = open(args.fixture_dir / "ecrd.log", "ab")

    results: dict = {"machine": machine(), "commit": commit(), "images": args.images,
                     "repositories": args.repositories, "backends": {}}
    for backend in args.backends.split(","):
        results["backends"][backend] = run_backend(
            binary, backend, {"small": (fixtures[SMALL], SMALL[0]), "big": (fixtures[big], big[0])},
            args.runs, log)
    results["start to first answer s"] = {
        "small": startup_seconds(binary, fixtures[SMALL], args.starts, log),
        "big": startup_seconds(binary, fixtures[big], args.starts, log),
    }

    rows = []
    holds = True
    for backend, per_size in results["backends"].items():
        small, large = per_size["small"]["pages"], per_size["big"]["pages"]
        for name in small:
            ratio = large[name] / small[name]
            ok = ratio <= PAGE_RATIO_TARGET
            holds &= ok
            rows.append((backend, name, f"{small[name] * 1e3:.3f} ms", f"{large[name] * 1e3:.3f} ms",
                         f"{ratio:.2f}x", f"≤ {PAGE_RATIO_TARGET}x", "yes" if ok else "**no**"))
        lc = per_size["big"]["lifecycle s"]
        ok = lc < LIFECYCLE_TARGET_S
        holds &= ok
        rows.append((backend, f"lifecycle preview ({per_size['big']['lifecycle expiring']} expiring)",
                     "", f"{lc * 1e3:.0f} ms", "", f"< {LIFECYCLE_TARGET_S * 1e3:.0f} ms",
                     "yes" if ok else "**no**"))
    st = results["start to first answer s"]
    ok = st["big"] < START_TARGET_S
    holds &= ok
    rows.append(("disk", "start to first answer", f"{st['small'] * 1e3:.1f} ms",
                 f"{st['big'] * 1e3:.1f} ms", f"{st['big'] / st['small']:.2f}x",
                 f"< {START_TARGET_S * 1e3:.0f} ms", "yes" if ok else "**no**"))
    results["holds"] = holds

    print(f"\nScale: {SMALL[0]} images / {SMALL[1]} repositories vs "
          f"{args.images:,} / {args.repositories:,}; machine: {results['machine']}; "
          f"commit {results['commit']}\n")
    print(f"| backend | measure | {SMALL[0]} / {SMALL[1]} | {args.images:,} / {args.repositories:,} "
          "| ratio | target | holds |")
    print("|---|---|---:|---:|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
