#!/usr/bin/env python3
"""Console benchmark: a page of 100 images out of 100,000, rendered by the web
console's repository view, against DescribeImages for the same page.

    python3 benches/console_bench.py                  # builds target/dist/ecrd first
    python3 benches/console_bench.py --no-build --ecrd-bin /path/to/ecrd --images 100000

How the repository is filled fast: one config and one layer blob are
uploaded once (`/v2/` monolithic upload), then `--images` image manifests
that differ only in an annotation (so each is a distinct image, with its own
tag) are PUT over `/v2/` from `--threads` keep-alive connections into a
memory-mode ecrd. The disk backend gets the same state through the snapshot
path: `GET /_ecrd/snapshot` from the memory server, `ecrd import` into a
fresh `--data-dir` (one transaction), then `ecrd serve --data-dir`.

ECR's default quota is 20,000 images per repository (adjustable on request);
ecrd enforces no such quota, so one repository holds all of them here.

What is timed, on both backends, `--iterations` times each, alternating:
- `GET /_ecrd/console/repository?account&region&name[&after]` (the view's
  whole HTML, settings, policy and 100 image rows);
- DescribeImages with `maxResults=100` and the same filter the console uses
  (`imageStatus=ANY`), SigV4-signed once with botocore and replayed (the
  signature stays valid for 15 minutes), so the client does not pay for
  signing while the server pays for verifying;
for the first page and for a page in the middle (the `nextToken` of page
`--middle-page`, which the console takes as `after`). Each request on its own
keep-alive connection, one at a time. Prints median and p95 latency and the
console/DescribeImages ratio of the medians.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benches"))
from common import ecrd_binary, start_ecrd, stop  # noqa: E402

TARGET = "AmazonEC2ContainerRegistry_V20150921."
REPO = "bench/big"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def signed(port: int, operation: str, body: dict) -> tuple[bytes, dict]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation})
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    return data, dict(request.headers.items())


def call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, bytes, dict]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data, {k.lower(): v for k, v in response.getheaders()}


def api(port: int, operation: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data, headers = signed(port, operation, body)
    status, out, _ = call(conn, "POST", "/", data, headers)
    conn.close()
    if status != 200:
        raise RuntimeError(f"{operation}: {status} {out[:300]!r}")
    return json.loads(out)


def basic_auth(port: int) -> str:
    token = api(port, "GetAuthorizationToken", {})["authorizationData"][0]["authorizationToken"]
    return f"Basic {token}"


def upload_blob(conn, auth: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, body, headers = call(conn, "POST", f"/v2/{REPO}/blobs/uploads/",
                                 headers={"Authorization": auth, "Content-Length": "0"})
    assert status == 202, (status, body)
    location = headers["location"]
    sep = "&" if "?" in location else "?"
    status, body, _ = call(conn, "PUT", f"{location}{sep}digest={digest}", body=data,
                           headers={"Authorization": auth,
                                    "Content-Type": "application/octet-stream"})
    assert status == 201, (status, body)
    return digest


def fill(port: int, images: int, threads: int) -> float:
    """Creates the repository and pushes `images` distinct manifests."""
    api(port, "CreateRepository", {"repositoryName": REPO})
    auth = basic_auth(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    layer = b"one layer shared by every image\n"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer_digest = upload_blob(conn, auth, layer)
    config_digest = upload_blob(conn, auth, config)
    conn.close()
    template = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }
    errors: list[str] = []

    def worker(first: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(first, images, threads):
            manifest = dict(template, annotations={"bench.image": str(n)})
            status, body, _ = call(c, "PUT", f"/v2/{REPO}/manifests/t{n}",
                                   json.dumps(manifest).encode(),
                                   {"Authorization": auth, "Content-Type": OCI_MANIFEST})
            if status != 201:
                errors.append(f"{status} {body[:200]!r}")
                return
        c.close()

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return time.monotonic() - started


def page_token(port: int, page: int) -> str | None:
    """The nextToken after `page` pages of 100 (page 0: none, the first page)."""
    token = None
    for _ in range(page):
        body = {"repositoryName": REPO, "maxResults": 100, "filter": {"imageStatus": "ANY"}}
        if token:
            body["nextToken"] = token
        token = api(port, "DescribeImages", body).get("nextToken")
    return token


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(port: int, token: str | None, iterations: int) -> dict:
    query = {"account": "000000000000", "region": "us-east-1", "name": REPO}
    if token:
        query["after"] = token
    console_path = "/_ecrd/console/repository?" + urllib.parse.urlencode(query)
    body = {"repositoryName": REPO, "maxResults": 100, "filter": {"imageStatus": "ANY"}}
    if token:
        body["nextToken"] = token
    data, headers = signed(port, "DescribeImages", body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    console: list[float] = []
    describe: list[float] = []
    # One of each first, unmeasured, and a check that both show 100 images.
    status, html, _ = call(conn, "GET", console_path)
    assert status == 200, html[:300]
    assert html.count(b"/_ecrd/console/image?") >= 100, "the page lists fewer than 100 images"
    status, out, _ = call(conn, "POST", "/", data, headers)
    assert status == 200, out[:300]
    assert len(json.loads(out)["imageDetails"]) == 100
    for _ in range(iterations):
        started = time.perf_counter()
        status, _, _ = call(conn, "GET", console_path)
        console.append(time.perf_counter() - started)
        assert status == 200
        started = time.perf_counter()
        status, _, _ = call(conn, "POST", "/", data, headers)
        describe.append(time.perf_counter() - started)
        assert status == 200
    conn.close()
    return {"console": console, "describe": describe, "html_bytes": len(html),
            "json_bytes": len(out)}


def main() -> int:
    parser = argparse.ArgumentParser(description="ecrd console page vs DescribeImages")
    parser.add_argument("--ecrd-bin", type=Path, default=None)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--middle-page", type=int, default=500)
    parser.add_argument("--backends", default="memory,disk")
    args = parser.parse_args()

    binary = ecrd_binary(args.ecrd_bin, build=not args.no_build)
    middle = min(args.middle_page, max(0, args.images // 100 - 1))

    tmp = Path(tempfile.mkdtemp(prefix="ecrd-console-bench-"))
    log = open(tmp / "ecrd.log", "w")
    results = []
    try:
        memory, port, _ = start_ecrd(binary, [], log)
        seconds = fill(port, args.images, args.threads)
        print(f"filled {args.images} images in {seconds:.1f}s "
              f"({args.images / seconds:.0f} manifest PUTs/s)", file=sys.stderr)
        servers = {"memory": (memory, port)}
        if "disk" in args.backends:
            snapshot = tmp / "snapshot.tar"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ecrd/snapshot",
                                        timeout=600) as r, open(snapshot, "wb") as f:
                shutil.copyfileobj(r, f)
            started = time.monotonic()
            subprocess.run([str(binary), "import", str(snapshot), "--data-dir", str(tmp / "data")],
                           check=True, capture_output=True, timeout=1800)
            print(f"imported into --data-dir in {time.monotonic() - started:.1f}s",
                  file=sys.stderr)
            servers["disk"] = start_ecrd(binary, ["--data-dir", str(tmp / "data")], log)[:2]
        for backend in args.backends.split(","):
            proc, p = servers[backend]
            for label, page in (("first page", 0), (f"page {middle + 1}", middle)):
                token = page_token(p, page)
                r = measure(p, token, args.iterations)
                results.append((backend, label, r))
                print(f"{backend} {label}: console median "
                      f"{statistics.median(r['console']) * 1000:.2f} ms, DescribeImages "
                      f"{statistics.median(r['describe']) * 1000:.2f} ms", file=sys.stderr)
        for proc, _ in servers.values():
            stop(proc)
    finally:
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.images} images in one repository, pages of 100, {args.iterations} "
          f"iterations; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| backend | page | console median | console p95 | DescribeImages median "
          "| DescribeImages p95 | console / DescribeImages |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, label, r in results:
        cm, dm = statistics.median(r["console"]), statistics.median(r["describe"])
        print(f"| {backend} | {label} | {cm * 1000:.2f} ms | {percentile(r['console'], 95) * 1000:.2f} ms "
              f"| {dm * 1000:.2f} ms | {percentile(r['describe'], 95) * 1000:.2f} ms "
              f"| {cm / dm:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
