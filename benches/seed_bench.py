#!/usr/bin/env python3
"""Seeding benchmark: 100 repositories holding 1,000 images, made ready by
`ecrd serve --init` versus the same state built through the API.

    python3 benches/seed_bench.py                  # builds target/dist/ecrd first
    python3 benches/seed_bench.py --no-build --ecrd-bin /path/to/ecrd --runs 5

What it measures (all on loopback, nothing fetched):
- The sources: `--repositories` OCI image layouts (fixtures/seed/make_layout.py)
  of `--images-per-repo` tiny distinct images each (one gzip layer, one
  config), under a temporary directory, and one seed file naming them all.
- `--init`: spawn -> first 200 from /_ecrd/health, the seed applied before
  the first request is served; memory and `--data-dir` (a fresh directory
  each run), median of `--runs`; and a second start over an already seeded
  directory (the idempotent case: nothing written again).
- The same state through the API, into an empty server: boto3 with
  CreateRepository, InitiateLayerUpload / UploadLayerPart /
  CompleteLayerUpload for each blob and PutImage with the tag, one client per
  thread over `--api-threads` threads; and `skopeo copy` of the first
  `--skopeo-images` images (one process per image, as a CI script would do;
  the time for all of them is extrapolated and marked so).
- moto's server (when installed; `--skip-moto`) given the same repositories
  and PutImage calls, as a peer: moto has no layer upload, so it is given
  less work (no blobs).

Prints a markdown table. The machine's load matters: report the load
average with the numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benches"))
from common import ecrd_binary, free_port, start_ecrd, stop  # noqa: E402
sys.path.insert(0, str(REPO_ROOT / "fixtures" / "seed"))
import make_layout  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def make_sources(root: Path, repositories: int, per_repo: int) -> tuple[Path, list]:
    """The layouts and the seed file; returns the seed path and, per
    repository, its name, layout and image digests."""
    lines = ["accounts:", '  - account: "000000000000"', "    regions:",
             "      - region: us-east-1", "        repositories:"]
    repos = []
    for r in range(repositories):
        name = f"bench/r{r:03d}"
        layout = root / "layouts" / f"r{r:03d}"
        digests = make_layout.write_layout(layout, per_repo, "v")
        repos.append((name, layout, digests))
        lines += [f"          - name: {name}", "            images:"]
        lines += [f'              - {{source: "oci:layouts/r{r:03d}:v{i}", tags: [v{i}]}}'
                  for i in range(1, per_repo + 1)]
    seed = root / "seed.yaml"
    seed.write_text("\n".join(lines) + "\n")
    return seed, repos


def client(port: int):
    import boto3
    from botocore.config import Config
    return boto3.client("ecr", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def api_load(port: int, repos: list, threads: int, blobs: bool = True) -> float:
    """Builds the seed's state through the API; returns the seconds it took."""
    import json

    def one_repository(entry) -> None:
        name, layout, digests = entry
        ecr = client(port)
        ecr.create_repository(repositoryName=name)
        for n, digest in enumerate(digests, start=1):
            manifest = blob(layout, digest)
            if blobs:
                parsed = json.loads(manifest)
                for part in [parsed["config"], *parsed["layers"]]:
                    upload = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
                    data = blob(layout, part["digest"])
                    ecr.upload_layer_part(repositoryName=name, uploadId=upload, partFirstByte=0,
                                          partLastByte=len(data) - 1, layerPartBlob=data)
                    ecr.complete_layer_upload(repositoryName=name, uploadId=upload,
                                              layerDigests=[part["digest"]])
            ecr.put_image(repositoryName=name, imageManifest=manifest.decode(),
                          imageManifestMediaType=OCI_MANIFEST, imageTag=f"v{n}")

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one_repository, repos))
    return time.monotonic() - started


def count_images(port: int, repos: list) -> int:
    ecr = client(port)
    total = 0
    for name, _, _ in repos:
        for page in ecr.get_paginator("describe_images").paginate(repositoryName=name):
            total += len(page["imageDetails"])
    return total


def skopeo_load(port: int, repos: list, count: int) -> tuple[float, int]:
    ecr = client(port)
    import base64
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    creds = base64.b64decode(token).decode()
    images = [(name, layout, n) for name, layout, digests in repos
              for n in range(1, len(digests) + 1)][:count]
    for name in sorted({name for name, _, _ in images}):
        ecr.create_repository(repositoryName=name)
    started = time.monotonic()
    for name, layout, n in images:
        subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests",
                        "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v{n}",
                        f"docker://127.0.0.1:{port}/{name}:v{n}"], check=True,
                       capture_output=True, timeout=120)
    return time.monotonic() - started, len(images)


def start_moto() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description="ecrd seeding benchmark")
    parser.add_argument("--ecrd-bin", type=Path, default=None)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--images-per-repo", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api-threads", type=int, default=8)
    parser.add_argument("--skopeo-images", type=int, default=20)
    parser.add_argument("--skip-moto", action="store_true")
    args = parser.parse_args()

    binary = ecrd_binary(args.ecrd_bin, build=not args.no_build)

    tmp = Path(tempfile.mkdtemp(prefix="ecrd-seed-bench-"))
    log = open(tmp / "ecrd.log", "w")
    rows: list[tuple[str, str, str]] = []
    try:
        total = args.repositories * args.images_per_repo
        started = time.monotonic()
        seed, repos = make_sources(tmp, args.repositories, args.images_per_repo)
        print(f"sources: {args.repositories} layouts, {total} images, "
              f"in {time.monotonic() - started:.1f}s", file=sys.stderr)

        for backend in ("memory", "disk"):
            times = []
            again = []
            for run in range(args.runs):
                extra = []
                if backend == "disk":
                    data = tmp / f"data-{run}"
                    extra = ["--data-dir", str(data)]
                proc, port, ready = start_ecrd(binary, ["--init", str(seed), *extra], log)
                if run == 0:
                    found = count_images(port, repos)
                    assert found == total, f"{found} images after seeding, not {total}"
                stop(proc)
                times.append(ready)
                if backend == "disk":
                    proc, _, ready = start_ecrd(binary, ["--init", str(seed), *extra], log)
                    stop(proc)
                    again.append(ready)
                    shutil.rmtree(data, ignore_errors=True)
            print(f"--init {backend}: {[round(t, 3) for t in times]}", file=sys.stderr)
            rows.append((f"`--init`, {backend}: start to ready", f"{statistics.median(times):.2f} s",
                         f"median of {args.runs}"))
            if again:
                rows.append(("`--init`, disk, already seeded: start to ready",
                             f"{statistics.median(again):.2f} s", "nothing written again"))

        for backend in ("memory", "disk"):
            extra = ["--data-dir", str(tmp / "api-data")] if backend == "disk" else []
            proc, port, _ = start_ecrd(binary, extra, log)
            seconds = api_load(port, repos, args.api_threads)
            assert count_images(port, repos) == total
            stop(proc)
            rows.append((f"boto3, {backend}: CreateRepository + layer uploads + PutImage",
                         f"{seconds:.2f} s", f"{args.api_threads} threads, "
                         f"{total * 7 + args.repositories} calls"))

        if args.skopeo_images > 0 and shutil.which("skopeo"):
            proc, port, _ = start_ecrd(binary, [], log)
            seconds, copied = skopeo_load(port, repos, args.skopeo_images)
            stop(proc)
            rows.append(("skopeo copy, memory, one process per image",
                         f"~{seconds / copied * total:.0f} s",
                         f"extrapolated from {copied} images ({seconds:.1f} s)"))

        if not args.skip_moto and shutil.which("moto_server"):
            proc, port = start_moto()
            try:
                seconds = api_load(port, repos, args.api_threads, blobs=False)
            finally:
                stop(proc)
            rows.append(("moto_server: CreateRepository + PutImage (no blobs)",
                         f"{seconds:.2f} s", f"{args.api_threads} threads"))
    finally:
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.repositories} repositories, {total} images; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| how | time to the whole state | notes |")
    print("|---|---:|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
