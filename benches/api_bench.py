#!/usr/bin/env python3
"""Control-plane benchmark: ecrd vs moto's server, side by side in one run.

    python3 benches/api_bench.py                 # builds target/dist/ecrd first
    python3 benches/api_bench.py --duration 20 --connections 32
    python3 benches/api_bench.py --no-build --ecrd-bin target/dist/ecrd

What it measures:
- Requests/s, p50 and p99 latency of three operations — DescribeRepositories
  (one repository), DescribeImages (a page of 100 from a repository of
  1,000 images) and GetAuthorizationToken — for ecrd and for
  `moto_server`, with the same load generator and settings. Each request is
  SigV4-signed once with botocore and the same headers are replayed (a
  signature stays valid for 15 minutes and neither server does replay
  protection), so the load generator does not pay for signing but the server
  does pay for verifying: ecrd checks every signature (`--auth strict`, the
  default), moto checks none.
- Every server (the three ecrd configurations and moto) runs side by side
  and takes turns (`--rounds`, each a slice of `--duration`, in a rotating
  order), each reporting its median round: on a shared machine whose speed
  drifts over minutes, servers measured one after another would differ by
  when they ran as much as by what they are.
- The same with access control in force: the `test` key carries an identity
  policy (with a condition on a principal tag) and the repository a
  repository policy, so every request is evaluated against both.
- ecrd start-to-first-answer: spawn -> first 200 from /_ecrd/health (median
  of N runs), and idle RSS (VmRSS from /proc/<pid>/status after start).

The load generator is `wrk` (apt-get install wrk) when installed, else a
threaded keep-alive `http.client` loop (much slower: the Python client then
limits ecrd's number, so the ratio is a lower bound).

Prints markdown tables; `--json PATH` also writes the numbers (for
benches/run_all.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET = "AmazonEC2ContainerRegistry_V20150921."
REPO_NAME = "bench/app"


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    """User plus system CPU the process has used, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_until_idle(pid: int, timeout: float = 15.0) -> None:
    """Waits until the process stops using CPU (at most `timeout`): a slow
    server (moto answering a page of 1,000 images takes a second) is still
    answering the requests the load generator left queued when it stopped,
    and that work would otherwise land in the next server's round."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_ticks(pid)
        if now - last <= 1:
            return
        last = now


def ecrd_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    return env


IDENTITY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ecr:Describe*", "ecr:Get*", "ecr:List*",
                                       "ecr:CreateRepository", "ecr:SetRepositoryPolicy",
                                       "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                       "ecr:CompleteLayerUpload", "ecr:PutImage"],
         "Resource": "*"},
        {"Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "platform"}}},
    ],
}
REPOSITORY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "CrossAccountPull", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::111111111111:root", "222222222222"]},
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                    "ecr:DescribeRepositories", "ecr:DescribeImages"]},
        {"Sid": "NoDeleteFromOutside", "Effect": "Deny", "Principal": "*",
         "Action": "ecr:Delete*",
         "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "000000000000"}}},
    ],
}


def policy_credentials_file() -> str:
    """A credentials file giving the `test` key an identity policy."""
    directory = tempfile.mkdtemp(prefix="ecrd-bench-")
    policy = Path(directory) / "identity.json"
    policy.write_text(json.dumps(IDENTITY_POLICY))
    creds = Path(directory) / "credentials"
    creds.write_text("test test 000000000000 arn:aws:iam::000000000000:user/bench "
                     "tag:team=bench policy=identity.json\n")
    return str(creds)


def start_ecrd(binary: Path, log: str | None = None,
               extra: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = ecrd_env()
    if log is not None:
        env["ECRD_LOG"] = log
    proc = subprocess.Popen(
        [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), *(extra or [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http_ok(f"http://127.0.0.1:{port}/_ecrd/health", 15, proc)
    return proc, port


def start_moto() -> tuple[subprocess.Popen, int]:
    port = free_port()
    exe = shutil.which("moto_server")
    cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_http_ok(f"http://127.0.0.1:{port}/moto-api/", 60, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- requests


def signed_request(port: int, operation: str, body: bytes) -> dict:
    """Headers of a SigV4-signed `POST /` (test/test, us-east-1), for replay."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"http://127.0.0.1:{port}/"
    request = AWSRequest(
        method="POST", url=url, data=body,
        headers={"X-Amz-Target": TARGET + operation,
                 "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def call(port: int, operation: str, body: bytes) -> tuple[int, bytes]:
    headers = signed_request(port, operation, body)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def must(port: int, operation: str, body: dict) -> dict:
    status, raw = call(port, operation, json.dumps(body).encode())
    if status != 200:
        raise RuntimeError(f"{operation} on port {port}: {status} {raw[:300]!r}")
    return json.loads(raw or b"{}")


def push_layer(port: int, data: bytes) -> str:
    """Uploads one layer through the API; returns its digest."""
    import base64
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = must(port, "InitiateLayerUpload", {"repositoryName": REPO_NAME})["uploadId"]
    must(port, "UploadLayerPart", {"repositoryName": REPO_NAME, "uploadId": upload,
                                   "partFirstByte": 0, "partLastByte": len(data) - 1,
                                   "layerPartBlob": base64.b64encode(data).decode()})
    must(port, "CompleteLayerUpload", {"repositoryName": REPO_NAME, "uploadId": upload,
                                       "layerDigests": [digest]})
    return digest


def fill_images(port: int, count: int, has_layer_api: bool) -> None:
    """`count` distinct tagged images (one shared config and layer; each
    manifest differs by an annotation)."""
    import hashlib
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = b"bench layer\n" * 64
    if has_layer_api:
        config_digest, layer_digest = push_layer(port, config), push_layer(port, layer)
    else:
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    for i in range(count):
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": len(layer)}],
            "annotations": {"bench.image": str(i)},
        })
        must(port, "PutImage", {"repositoryName": REPO_NAME, "imageManifest": manifest,
                                "imageManifestMediaType":
                                    "application/vnd.oci.image.manifest.v1+json",
                                "imageTag": f"v{i:04d}"})


def prepare(port: int, images: int, repository_policy: bool = False,
            has_layer_api: bool = True) -> dict[str, bytes]:
    """Creates the repository (and its images); returns each operation's
    request body, each checked once."""
    must(port, "CreateRepository", {"repositoryName": REPO_NAME})
    if repository_policy:
        must(port, "SetRepositoryPolicy", {"repositoryName": REPO_NAME,
                                           "policyText": json.dumps(REPOSITORY_POLICY)})
    fill_images(port, images, has_layer_api)
    bodies = {
        "DescribeRepositories": {"repositoryNames": [REPO_NAME]},
        "DescribeImages": {"repositoryName": REPO_NAME, "maxResults": 100},
        "GetAuthorizationToken": {},
    }
    names = [r["repositoryName"] for r in
             must(port, "DescribeRepositories", bodies["DescribeRepositories"])["repositories"]]
    if names != [REPO_NAME]:
        raise RuntimeError(f"DescribeRepositories on port {port}: {names}")
    page = must(port, "DescribeImages", bodies["DescribeImages"])
    if not has_layer_api:
        # moto ignores maxResults and answers every image.
        pass
    elif len(page.get("imageDetails", [])) != min(100, images) or \
            (images > 100 and not page.get("nextToken")):
        raise RuntimeError(f"DescribeImages on port {port}: {len(page.get('imageDetails', []))} "
                           f"images, nextToken {page.get('nextToken')!r}")
    if not must(port, "GetAuthorizationToken", {}).get("authorizationData"):
        raise RuntimeError(f"GetAuthorizationToken on port {port}: no authorizationData")
    return {op: json.dumps(b).encode() for op, b in bodies.items()}


# ---------------------------------------------------------------- load generators

WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d," ..
    "\"non2xx\":%d,\"socket_errors\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def lua_string(s: str) -> str:
    # A JSON string of ASCII text is also a valid Lua string literal.
    return json.dumps(s, ensure_ascii=True)


def run_wrk(port: int, operation: str, body: bytes, duration: int, connections: int,
            threads: int) -> dict:
    headers = signed_request(port, operation, body)
    script = ['wrk.method = "POST"', f"wrk.body = {lua_string(body.decode())}"]
    for k, v in headers.items():
        script.append(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}")
    script.append(WRK_DONE)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(script))
        path = f.name
    try:
        result = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
             "-s", path, f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True,
        )
    finally:
        os.unlink(path)
    line = next((l for l in result.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary:\n{result.stdout}\n{result.stderr}")
    r = json.loads(line[len("WRKJSON "):])
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "requests": r["requests"],
        "errors": r["non2xx"] + r["socket_errors"],
    }


def run_python_client(port: int, operation: str, body: bytes, duration: int,
                      connections: int) -> dict:
    headers = signed_request(port, operation, body)
    stop_at = time.monotonic() + duration
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = latencies[i]
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter() - t0)
        conn.close()

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    all_latencies = sorted(x for l in latencies for x in l)
    n = len(all_latencies)
    return {
        "rps": n / elapsed,
        "p50_ms": all_latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": all_latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "requests": n,
        "errors": sum(errors),
    }


def load(port: int, operation: str, body: bytes, args, seconds: float,
         warm_up: bool = True, pid: int | None = None) -> dict:
    if args.generator == "wrk":
        # A short warm-up, then the measured run.
        if warm_up:
            run_wrk(port, operation, body, 2, args.connections, args.threads)
            if pid is not None:
                wait_until_idle(pid)
        return run_wrk(port, operation, body, max(1, round(seconds)), args.connections,
                       args.threads)
    return run_python_client(port, operation, body, seconds, args.connections)


def median_round(rounds: list[dict]) -> dict:
    """The round with the median throughput (its latencies with it), the
    throughput of every round kept alongside."""
    ranked = sorted(rounds, key=lambda r: r["rps"])
    chosen = dict(ranked[len(ranked) // 2])
    chosen["rounds_rps"] = [r["rps"] for r in rounds]
    chosen["errors"] = sum(r["errors"] for r in rounds)
    return chosen


# ---------------------------------------------------------------- startup


def startup_times(binary: Path, runs: int) -> tuple[list[float], list[int]]:
    times, rss = [], []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=ecrd_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"ecrd exited with {proc.returncode}")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                try:
                    conn.request("GET", "/_ecrd/health")
                    if conn.getresponse().status == 200:
                        times.append(time.perf_counter() - t0)
                        break
                except OSError:
                    pass
                finally:
                    conn.close()
                time.sleep(0.0005)
            time.sleep(0.5)
            rss.append(rss_kib(proc.pid))
        finally:
            stop(proc)
    return times, rss


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ecrd-bin", default=str(REPO_ROOT / "target/dist/ecrd"))
    parser.add_argument("--no-build", action="store_true",
                        help="do not run `cargo build --profile dist --bin ecrd` first")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds of load per server and operation (split into --rounds)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="the ecrd configurations take turns this many times per "
                             "operation; each reports its median round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--skip-moto", action="store_true")
    parser.add_argument("--images", type=int, default=1000,
                        help="images in the repository DescribeImages pages through")
    parser.add_argument("--operations", default="DescribeRepositories,DescribeImages,"
                        "GetAuthorizationToken", help="comma-separated")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()

    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "python"
        if args.generator == "python":
            print("note: wrk not found (apt-get install wrk); using the slower Python client",
                  file=sys.stderr)

    binary = Path(args.ecrd_bin)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--profile", "dist", "--bin", "ecrd"], cwd=REPO_ROOT, check=True)
    if not binary.is_file():
        print(f"no ecrd binary at {binary}", file=sys.stderr)
        return 2

    times, rss = startup_times(binary, args.startup_runs)

    # name -> (label, how to start it). Each server runs alone while loaded.
    servers = {
        "ecrd": ("ecrd, defaults (SigV4 verified, request log at info)",
                 lambda: start_ecrd(binary)),
        "ecrd-quiet": ("ecrd, ECRD_LOG=warn (SigV4 verified, no request log)",
                       lambda: start_ecrd(binary, log="warn")),
        "ecrd-policies": ("ecrd, defaults + identity policy + repository policy evaluated",
                          lambda: start_ecrd(binary, extra=["--credentials-file",
                                                            policy_credentials_file()])),
    }
    if not args.skip_moto:
        servers["moto"] = ("moto_server (no SigV4 check)", start_moto)

    operations = [op for op in args.operations.split(",") if op]
    results: dict[str, dict[str, dict]] = {}
    idle_rss = 0
    # Every server runs side by side and takes turns, a round at a time in
    # a rotating order: on a shared machine whose speed drifts by tens of
    # percent over minutes, one server after another would compare moments
    # as much as servers (moto's own rate moved 2x between runs measured
    # one after the other). An idle server costs nothing while another is
    # loaded.
    names = list(servers)
    running: dict[str, tuple[subprocess.Popen, int, dict]] = {}
    try:
        for name in names:
            proc, port = servers[name][1]()
            running[name] = (proc, port, {})
            if name == "ecrd":
                idle_rss = rss_kib(proc.pid)
            print(f"filling {name} ({args.images} images)...", file=sys.stderr, flush=True)
            running[name][2].update(prepare(port, args.images,
                                            repository_policy=(name == "ecrd-policies"),
                                            has_layer_api=(name != "moto")))
        seconds = args.duration / max(1, args.rounds)
        for op in operations:
            rounds: dict[str, list[dict]] = {name: [] for name in names}
            for turn in range(max(1, args.rounds)):
                order = names[turn % len(names):] + names[:turn % len(names)]
                for name in order:
                    proc, port, bodies = running[name]
                    print(f"loading {name}: {op} round {turn + 1}/{args.rounds} "
                          f"({args.generator}, {args.connections} connections, "
                          f"{seconds:.0f}s)...", file=sys.stderr, flush=True)
                    rounds[name].append(load(port, op, bodies[op], args, seconds,
                                             warm_up=(turn == 0), pid=proc.pid))
                    wait_until_idle(proc.pid)
            for name in names:
                result = median_round(rounds[name])
                result["rss_after_mib"] = rss_kib(running[name][0].pid) / 1024
                results.setdefault(name, {})[op] = result
    finally:
        for proc, _port, _bodies in running.values():
            stop(proc)

    cpu = platform.processor() or platform.machine()
    print()
    print(f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} cores, {cpu}; "
          f"load generator: {args.generator} ({args.connections} connections, "
          f"{args.duration}s per server and operation, the servers taking turns in "
          f"{args.rounds} rounds, the median round reported; keep-alive, replayed SigV4 "
          f"headers); DescribeImages: page of "
          f"100 of a repository of {args.images} images (moto ignores maxResults and "
          f"answers all of them)")
    for op in operations:
        print()
        print(f"**{op}**")
        print()
        print("| server | req/s | p50 latency | p99 latency | errors | RSS after load |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, per_op in results.items():
            r = per_op[op]
            print(f"| {servers[name][0]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms | "
                  f"{r['p99_ms']:.2f} ms | {r['errors']} | {r['rss_after_mib']:.1f} MiB |")
        ecrd_rps = results["ecrd"][op]["rps"]
        if "moto" in results and results["moto"][op]["rps"] > 0:
            ratio = ecrd_rps / results["moto"][op]["rps"]
            print(f"| **ecrd (defaults) / moto** | **{ratio:,.0f}x** | | | | |")
        if "ecrd-quiet" in results and results["ecrd-quiet"][op]["rps"] > 0:
            cost = 1 - ecrd_rps / results["ecrd-quiet"][op]["rps"]
            print(f"| **cost of the request log** | **{cost * 100:+.1f}%** | | | | |")
        if "ecrd-policies" in results and ecrd_rps > 0:
            change = results["ecrd-policies"][op]["rps"] / ecrd_rps - 1
            print(f"| **with policies vs defaults** | **{change * 100:+.1f}%** | | | | |")
    print()
    print("| ecrd process | value |")
    print("|---|---:|")
    print(f"| start to first answer (median of {len(times)}) | "
          f"{statistics.median(times) * 1000:.1f} ms |")
    print(f"| start to first answer (min / max) | {min(times) * 1000:.1f} / "
          f"{max(times) * 1000:.1f} ms |")
    print(f"| idle RSS (median of {len(rss)} fresh starts) | {statistics.median(rss) / 1024:.1f} MiB |")
    print(f"| idle RSS (benchmark instance, before load) | {idle_rss / 1024:.1f} MiB |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "operations": results, "images": args.images,
            "startup_ms_median": statistics.median(times) * 1000,
            "idle_rss_mib_median": statistics.median(rss) / 1024,
        }, indent=2))
    bad = [name for name, per_op in results.items()
           if any(r["errors"] for r in per_op.values())]
    if bad:
        print(f"\nwarning: non-2xx or socket errors from {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
