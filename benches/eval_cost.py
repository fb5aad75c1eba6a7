#!/usr/bin/env python3
"""What access control costs per request, counted in instructions.

    python3 benches/eval_cost.py                       # uses target/dist/ecrd
    python3 benches/eval_cost.py --requests 3000 --ecrd-bin /path/to/ecrd

Runs ecrd under `valgrind --tool=callgrind` (apt-get install valgrind) twice
per configuration, once answering N1 and once N2 identical signed
DescribeRepositories requests, and reports (Ir(N2) - Ir(N1)) / (N2 - N1): the
instructions one request costs, start-up excluded. Instruction counts do not
depend on what else the machine is doing, unlike requests per second on a
shared 2-core machine, so the difference between the configurations is the
price of policy evaluation itself. Configurations:

- defaults: the `test` key, no identity policy, no repository policy;
- policies: the `test` key with an identity policy (a condition on a
  principal tag) and the repository with a repository policy (see
  api_bench.IDENTITY_POLICY / REPOSITORY_POLICY), so every request is
  evaluated against both.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_bench  # noqa: E402  (shared helpers: signing, policies, ports)

REPO_ROOT = Path(__file__).resolve().parents[1]


def instructions(binary: Path, extra: list[str], repository_policy: bool, requests: int) -> int:
    port = api_bench.free_port()
    out = tempfile.mktemp(prefix="callgrind-", suffix=".out")
    env = api_bench.ecrd_env()
    env["ECRD_LOG"] = "warn"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--lifecycle-interval", "0", "--gc-interval", "0", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        api_bench.wait_http_ok(f"http://127.0.0.1:{port}/_ecrd/health", 120, proc)
        body = api_bench.prepare(port, repository_policy=repository_policy)
        headers = api_bench.signed_request(port, "DescribeRepositories", body)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(requests):
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"answer {response.status}")
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    total = 0
    for line in Path(out).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    os.unlink(out)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ecrd-bin", default=str(REPO_ROOT / "target/dist/ecrd"))
    parser.add_argument("--requests", type=int, default=2000, help="N2; N1 is a quarter of it")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return 2
    binary = Path(args.ecrd_bin)
    n2 = args.requests
    n1 = max(1, n2 // 4)
    configs = {
        "defaults": ([], False),
        "policies": (["--credentials-file", api_bench.policy_credentials_file()], True),
    }
    per_request = {}
    for name, (extra, repository_policy) in configs.items():
        started = time.monotonic()
        low = instructions(binary, extra, repository_policy, n1)
        high = instructions(binary, extra, repository_policy, n2)
        per_request[name] = (high - low) / (n2 - n1)
        print(f"{name}: {per_request[name]:,.0f} instructions per request "
              f"({time.monotonic() - started:.0f} s under callgrind)", file=sys.stderr)
    base, evaluated = per_request["defaults"], per_request["policies"]
    print()
    print("| DescribeRepositories, one repository | instructions per request |")
    print("|---|---:|")
    print(f"| no policies | {base:,.0f} |")
    print(f"| identity policy + repository policy evaluated | {evaluated:,.0f} |")
    print(f"| **cost of evaluation** | **{(evaluated / base - 1) * 100:+.1f}%** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
