#!/usr/bin/env python3
"""Scanning benchmark: what scan on push costs a push, how long a scan of a
big image takes, and how much memory the scanner needs for it.

    python3 benches/scan_bench.py                    # builds target/dist/ecrd first
    python3 benches/scan_bench.py --no-build --size-mib 256 --big-mib 1024 --repeats 3

Needs the `aws` CLI (for the registry password). Uses the OSV fixture
records in fixtures/osv as vulnerability data.

For each image, a layer of SIZE MiB (a Debian 12 os-release and dpkg status
plus one file of random bytes, as an uncompressed tar, so the client does no
compression work) is pushed over /v2/ (monolithic blob POST + PUT, then the
config and the manifest); timed from the first blob POST to the manifest
PUT's 201. Every repetition pushes a different layer. Two fresh ecrd
processes (memory mode) run side by side, one whose repository scans on
push and one whose does not, and the pushes alternate between them; a
scan-on-push push is timed while earlier scans may still be running, as in
a real pipeline.

Then one image of BIG MiB is pushed to the scanning server and the time from
the manifest PUT to `imageScanStatus` COMPLETE is measured (polling
DescribeImageScanFindings every 20 ms), with the server's peak resident
memory (VmHWM) before and after, in disk mode so that the blob itself is
not held in memory.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
STATUS = b"Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Ecrd:
    def __init__(self, binary: Path, args: list[str]):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--port", str(self.port), "--vuln-db", str(ROOT / "fixtures/osv"),
             *args],
            env={**os.environ, "ECRD_LOG": "warn"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                status, _ = self.request("GET", "/_ecrd/health")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}
        self.aws_env = env
        password = subprocess.run(
            ["aws", "--endpoint-url", f"http://127.0.0.1:{self.port}", "ecr", "get-login-password"],
            env=env, capture_output=True, text=True, check=True).stdout.strip()
        self.auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()

    def aws(self, *args: str) -> dict:
        out = subprocess.run(["aws", "--endpoint-url", f"http://127.0.0.1:{self.port}", *args,
                              "--output", "json"], env=self.aws_env, capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out) if out.strip() else {}

    def request(self, method: str, path: str, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        location = response.getheader("Location")
        conn.close()
        return response.status, location or data

    def put_blob(self, repo: str, data, size: int, digest: str) -> None:
        status, location = self.request("POST", f"/v2/{repo}/blobs/uploads/",
                                        headers={"Authorization": self.auth})
        assert status == 202, status
        sep = "&" if "?" in location else "?"
        status, _ = self.request("PUT", f"{location}{sep}digest={digest}", body=data,
                                 headers={"Authorization": self.auth,
                                          "Content-Length": str(size),
                                          "Content-Type": "application/octet-stream"})
        assert status == 201, status

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def make_layer(path: Path, size_mib: int, seed: int) -> tuple[str, int]:
    """An uncompressed tar: os-release, dpkg status, SIZE MiB of random bytes."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in (("etc/os-release", OS_RELEASE), ("var/lib/dpkg/status", STATUS)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        info = tarfile.TarInfo(f"opt/data-{seed}.bin")
        info.size = size_mib * 1024 * 1024

        class Random(io.RawIOBase):
            def __init__(self):
                self.left = info.size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = os.urandom(n)
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Random(), 1 << 20))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), path.stat().st_size


def push_image(server: Ecrd, repo: str, tag: str, layer: Path, digest: str, size: int) -> float:
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [digest]}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "size": size, "digest": digest}],
    }).encode()
    start = time.perf_counter()
    with open(layer, "rb") as f:
        server.put_blob(repo, f, size, digest)
    server.put_blob(repo, config, len(config), config_digest)
    status, _ = server.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                               headers={"Authorization": server.auth,
                                        "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, status
    return time.perf_counter() - start


def wait_scan(server: Ecrd, repo: str, tag: str) -> float:
    start = time.perf_counter()
    while True:
        answer = server.aws("ecr", "describe-image-scan-findings", "--repository-name", repo,
                            "--image-id", f"imageTag={tag}")
        if answer["imageScanStatus"]["status"] != "IN_PROGRESS":
            assert answer["imageScanStatus"]["status"] == "COMPLETE", answer
            return time.perf_counter() - start
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--profile", "dist", "--bin", "ecrd"], cwd=ROOT, check=True)
    binary = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "dist" / "ecrd"
    work = Path(tempfile.mkdtemp(prefix="ecrd-scan-bench-"))
    try:
        layers = []
        for i in range(args.repeats):
            path = work / f"layer-{i}.tar"
            layers.append((path, *make_layer(path, args.size_mib, i)))
        # Both servers run side by side and the pushes alternate between
        # them, so load from anything else on the machine hits both alike.
        servers = {}
        for label, scan in (("scan on push", True), ("no scanning", False)):
            server = Ecrd(binary, [])
            server.aws("ecr", "create-repository", "--repository-name", "bench",
                       "--image-scanning-configuration", f"scanOnPush={'true' if scan else 'false'}")
            servers[label] = server
        times: dict[str, list[float]] = {label: [] for label in servers}
        for i, (p, d, s) in enumerate(layers):
            for label, server in servers.items():
                times[label].append(push_image(server, "bench", f"v{i}", p, d, s))
        wait_scan(servers["scan on push"], "bench", f"v{args.repeats - 1}")
        results = {label: statistics.median(t) for label, t in times.items()}
        for server in servers.values():
            server.stop()
        for path, _, _ in layers:
            path.unlink()
        base = results["no scanning"]
        print(f"push of a {args.size_mib} MiB image, median of {args.repeats}:")
        for label, seconds in results.items():
            print(f"  {label:13s} {seconds:7.3f} s  {args.size_mib / seconds:7.1f} MiB/s"
                  f"  {100 * (seconds / base - 1):+5.1f}%")

        big = work / "big.tar"
        digest, size = make_layer(big, args.big_mib, 99)
        data_dir = work / "data"
        server = Ecrd(binary, ["--data-dir", str(data_dir)])
        server.aws("ecr", "create-repository", "--repository-name", "big",
                   "--image-scanning-configuration", "scanOnPush=true")
        push_seconds = push_image(server, "big", "v1", big, digest, size)
        before = vm_hwm_mib(server.proc.pid)
        scan_seconds = wait_scan(server, "big", "v1")
        after = vm_hwm_mib(server.proc.pid)
        print(f"image of {size / 2**20:.0f} MiB (disk mode): push {push_seconds:.2f} s, "
              f"scan {scan_seconds:.2f} s ({size / 2**20 / scan_seconds:.0f} MiB/s), "
              f"peak RSS {before:.0f} MiB after push, {after:.0f} MiB after scan")
        server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
