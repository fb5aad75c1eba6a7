#!/usr/bin/env python3
"""Shared-storage benchmark: ecrd on its embedded disk backend, one replica
on PostgreSQL + S3, and two replicas on the same PostgreSQL database and
bucket with the clients split between them, side by side.

    python3 benches/replica_bench.py                  # builds target/dist/ecrd first
    python3 benches/replica_bench.py --no-build --size-mib 16 --blobs 12 --clients 4

Needs: Debian's postgresql package (a throwaway cluster is made with initdb
and started on a free loopback port; as root it runs as the `postgres`
user) and moto's S3 server (`pip install 'moto[server]'`), or
`--s3-endpoint URL` of another S3-compatible server with a bucket named by
`--bucket` that takes the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.

What it measures, for each configuration:
- push: `--clients` threads each pushing its share of `--blobs` different
  blobs of `--size-mib` MiB (one `POST ?digest=` with the whole body),
  aggregate MB/s from the first request to the last 201;
- pull: the same blobs pulled by the same threads, following the 307 (to
  ecrd's own signed URL on disk, to the bucket's presigned URL on S3),
  aggregate MB/s;
- DescribeImages: the median and 95th percentile latency of a page of 100
  of 300 images, signed with botocore and sent on a kept-alive connection,
  `--calls` times (on two replicas, alternating).
Each pulled blob's digest is checked once, untimed. With moto as the S3
server the blob figures are moto's (a Python server); PostgreSQL's cost
shows in the DescribeImages column.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
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
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, cpu_model, ecrd_binary, free_port, start_ecrd, stop  # noqa: E402

REPO = "bench/replicas"
KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise SystemExit("no initdb under /usr/lib/postgresql: apt-get install -y postgresql")
    return versions[-1].parent


def start_postgres(tmp: Path) -> tuple[str, callable]:
    """A throwaway cluster; returns its admin URL and a stop function."""
    bin_dir = postgres_bin()
    root = tmp / "postgres"
    root.mkdir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8", "-D", str(data)], check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    # Durable settings (fsync on): what a team's server would run.
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                    str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200",
                    "start"], check=True, stdout=subprocess.DEVNULL)

    def stop_postgres() -> None:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return f"postgres://postgres@127.0.0.1:{port}", stop_postgres


def create_database(admin: str, name: str) -> str:
    subprocess.run(["psql", f"{admin}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    return f"{admin}/{name}"


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def make_bucket(endpoint: str, name: str) -> None:
    request = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    urllib.request.urlopen(request).read()


def api(port: int, operation: str, body: dict) -> dict:
    import boto3  # noqa: F401  (botocore signs)
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"AmazonEC2ContainerRegistry_V20150921.{operation}",
    })
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("POST", "/", body=data, headers=dict(request.headers))
    response = conn.getresponse()
    text = response.read()
    if response.status != 200:
        raise RuntimeError(f"{operation}: {response.status} {text[:300]!r}")
    return json.loads(text)


def signed_headers(port: int, operation: str, data: bytes) -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"AmazonEC2ContainerRegistry_V20150921.{operation}",
    })
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    return dict(request.headers)


def basic_auth(port: int) -> str:
    token = api(port, "GetAuthorizationToken", {})["authorizationData"][0]["authorizationToken"]
    return f"Basic {token}"


def push(port: int, auth: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}", body=data,
                 headers={"Authorization": auth, "Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        raise RuntimeError(f"push: {response.status}")
    return digest


def pull(port: int, auth: str, digest: str, check: bool) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", f"/v2/{REPO}/blobs/{digest}", headers={"Authorization": auth})
    response = conn.getresponse()
    response.read()
    if response.status != 307:
        raise RuntimeError(f"pull: {response.status}")
    location = response.getheader("location")
    url = urllib.parse.urlsplit(location)
    if url.netloc:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    target = url.path + (f"?{url.query}" if url.query else "")
    conn.request("GET", target)
    response = conn.getresponse()
    hasher = hashlib.sha256() if check else None
    size = 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if hasher:
            hasher.update(chunk)
    if response.status != 200:
        raise RuntimeError(f"pull {location}: {response.status}")
    if hasher and "sha256:" + hasher.hexdigest() != digest:
        raise RuntimeError(f"pulled {digest} does not match")
    return size


def fill_images(port: int, auth: str, count: int) -> None:
    layer = b"one layer every image shares\n"
    layer_digest = push(port, auth, layer)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(count):
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()
        config_digest = push(port, auth, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": len(layer)}],
        })
        conn.request("PUT", f"/v2/{REPO}/manifests/v{i}", body=manifest, headers={
            "Authorization": auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"manifest: {response.status}")


def describe_latency(ports: list[int], calls: int) -> tuple[float, float]:
    body = json.dumps({"repositoryName": REPO, "maxResults": 100}).encode()
    conns = {port: http.client.HTTPConnection("127.0.0.1", port) for port in ports}
    times = []
    for i in range(calls):
        port = ports[i % len(ports)]
        headers = signed_headers(port, "DescribeImages", body)
        started = time.perf_counter()
        conns[port].request("POST", "/", body=body, headers=headers)
        response = conns[port].getresponse()
        text = response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or len(json.loads(text)["imageDetails"]) != 100:
            raise RuntimeError(f"DescribeImages: {response.status}")
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def run(name: str, ports: list[int], args, blobs: list[bytes]) -> dict:
    auth = basic_auth(ports[0])  # good on every replica: the secret is shared
    api(ports[0], "CreateRepository", {"repositoryName": REPO})
    size = sum(len(b) for b in blobs)
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        started = time.perf_counter()
        digests = list(pool.map(lambda ib: push(ports[ib[0] % len(ports)], auth, ib[1]),
                                enumerate(blobs)))
        push_s = time.perf_counter() - started
        started = time.perf_counter()
        list(pool.map(lambda id_: pull(ports[id_[0] % len(ports)], auth, id_[1], False),
                      enumerate(digests)))
        pull_s = time.perf_counter() - started
    for i, digest in enumerate(digests[:2]):
        pull(ports[(i + 1) % len(ports)], auth, digest, True)
    fill_images(ports[0], auth, args.images)
    p50, p95 = describe_latency(ports, args.calls)
    result = {"name": name, "push_mbps": size / push_s / 1e6, "pull_mbps": size / pull_s / 1e6,
              "describe_p50_ms": p50, "describe_p95_ms": p95}
    print(f"  {name}: push {result['push_mbps']:.0f} MB/s, pull {result['pull_mbps']:.0f} MB/s, "
          f"DescribeImages p50 {p50:.2f} ms p95 {p95:.2f} ms", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--blobs", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--s3-endpoint", help="an S3-compatible server instead of moto's")
    parser.add_argument("--bucket", default="ecrd-bench")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    binary = ecrd_binary(args.binary, not args.no_build)
    os.environ.update({k: os.environ.get(k, v) for k, v in KEYS.items()})
    tmp = Path(tempfile.mkdtemp(prefix="ecrd-replica-bench-"))
    os.chmod(tmp, 0o755)
    log = open(tmp / "servers.log", "w")
    blobs = [os.urandom(args.size_mib << 20) for _ in range(args.blobs)]
    procs: list[subprocess.Popen] = []
    admin, stop_postgres = start_postgres(tmp)
    moto = None
    endpoint = args.s3_endpoint
    if endpoint is None:
        moto, endpoint = start_moto()
    results = []
    try:
        proc, port, _ = start_ecrd(binary, ["--data-dir", str(tmp / "disk"), "--gc-interval", "0"], log)
        procs.append(proc)
        results.append(run("embedded (--data-dir)", [port], args, blobs))
        stop(proc)
        for replicas in (1, 2):
            database = create_database(admin, f"bench{replicas}")
            bucket = f"{args.bucket}-{replicas}"
            make_bucket(endpoint, bucket)
            storage = ["--metadata", database, "--blobs", f"s3://{bucket}/ecrd",
                       "--s3-endpoint", endpoint, "--gc-interval", "0"]
            ports = []
            for _ in range(replicas):
                proc, port, _ = start_ecrd(binary, storage, log)
                procs.append(proc)
                ports.append(port)
            label = "one replica" if replicas == 1 else "two replicas"
            results.append(run(f"{label} (PostgreSQL + S3)", ports, args, blobs))
            for proc in procs[-replicas:]:
                stop(proc)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        if moto:
            stop(moto)
        stop_postgres()
        shutil.rmtree(tmp, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True).stdout.strip()
    if args.json:
        print(json.dumps({"results": results, "commit": commit}, indent=2))
        return 0
    print(f"ecrd {commit}, {datetime.date.today()}, {cpu_model()} ({os.cpu_count()} cores), "
          f"{platform.system()}; {args.blobs} blobs of {args.size_mib} MiB by {args.clients} "
          f"clients; S3: {'moto' if moto else endpoint}\n")
    print("| Configuration | Push MB/s | Pull MB/s | DescribeImages p50 | p95 |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['push_mbps']:.0f} | {r['pull_mbps']:.0f} | "
              f"{r['describe_p50_ms']:.2f} ms | {r['describe_p95_ms']:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
