"""What the benchmark scripts share: finding (or building) the ecrd binary,
starting it on a free loopback port and waiting until it answers, stopping
a process."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" when unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ecrd_binary(given: Path | None, build: bool) -> Path:
    """`given`, or the `dist` binary of the target dir (built first when
    `build` and none was given)."""
    if given is not None:
        return given
    if build:
        subprocess.run(["cargo", "build", "--profile", "dist", "--bin", "ecrd"], cwd=REPO_ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    return target / "dist" / "ecrd"


def wait_ready(port: int, proc: subprocess.Popen, timeout: float) -> None:
    """Waits until ecrd on `port` answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ecrd/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"ecrd on {port} not ready within {timeout}s")


def start_ecrd(binary: Path, args: list[str], log,
               timeout: float = 600) -> tuple[subprocess.Popen, int, float]:
    """Starts `ecrd serve` (no ECRD_* of the caller's, ECRD_LOG=warn);
    returns the process, its port and the seconds until it was ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    env["ECRD_LOG"] = "warn"
    started = time.monotonic()
    proc = subprocess.Popen([str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
                             *args], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    wait_ready(port, proc, timeout)
    return proc, port, time.monotonic() - started


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
