#!/usr/bin/env python3
"""Data-plane benchmark: monolithic push and pull of one large blob, ecrd vs
the CNCF distribution registry (Debian's `docker-registry`), side by side.

    python3 benches/blob_bench.py                   # builds target/dist/ecrd first
    python3 benches/blob_bench.py --no-build --size-mib 256 --repeats 3
    python3 benches/blob_bench.py --skip-registry   # ecrd only

Needs: `aws` CLI (creates the ECR repository, gets the registry password),
`apt-get install -y docker-registry` (/usr/bin/docker-registry) unless
--skip-registry.

What it measures, for ecrd in memory mode, ecrd in disk mode (`--data-dir`
in a temp dir) and docker-registry (filesystem storage in a temp dir, no auth),
each server running alone, all with logging at warn:

- push: `POST /v2/<repo>/blobs/uploads/` then one `PUT <location>&digest=`
  carrying the whole blob (monolithic), timed from the POST to the PUT's 201.
  The body goes out with sendfile(2) from a file pre-generated once (so it
  comes from the page cache and the client does no copying in Python). Each
  repetition pushes a different blob of the same size (the same file read at
  offset i), so no server can skip work because it already holds the blob.
- chunked push: POST, one `PATCH` with `Content-Range` per 4 MiB, then
  `PUT ?digest=` (another blob of the same size); ranged pull: the blob in
  4 MiB `Range` GETs (a redirect followed once, its URL reused).
- pull: `GET /v2/<repo>/blobs/<digest>` read into a 1 MiB buffer and thrown
  away, timed from the request to the last byte. ecrd answers 307 to a signed
  URL by default; the client follows it on the same keep-alive connection
  (without credentials, as for a presigned S3 URL). ecrd is also run with
  `--blob-redirect=false` (bytes served on /v2/ directly). Pulled blobs were
  just pushed, so disk-mode and docker-registry reads come from the page cache.
- server CPU: user + system time of the whole server process (all threads,
  /proc/<pid>/stat, 10 ms ticks) spent on one push or one pull; less
  sensitive than MB/s to other load on the machine.
- push tail: from the body's last byte handed to the kernel to the 201
  (verification, fsync, rename: the server's finishing work).
- every content is checked once, untimed (digest of one pulled copy).
- ecrd peak memory: VmHWM of a fresh disk-mode (and, for contrast, memory-mode)
  process after one push, and after one pull.
- client ceiling: the same push and pull code against a null sink (a raw
  socket server in another process that discards uploads and sendfile()s
  downloads), to show the client is not the bottleneck.

Each number is the median of --repeats runs, in MB/s (10^6 bytes/s). Prints
markdown tables.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import http.client
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
import urllib.parse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_NAME = "bench/blob"
MIB = 1 << 20
READ_CHUNK = MIB
# The chunk of chunked pushes (PATCH) and ranged pulls.
CHUNK = 4 * MIB


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, ok: tuple[int, ...], timeout: float,
              proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", path)
            if conn.getresponse().status in ok:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer within {timeout}s")


def proc_status(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a whole process (all its threads), seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """A registry under test: a process, a port and the auth header to send."""

    def __init__(self, proc: subprocess.Popen, port: int, auth: str | None,
                 workdir: Path | None = None):
        self.proc, self.port, self.auth, self.workdir = proc, port, auth, workdir

    def stop(self) -> None:
        stop(self.proc)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def aws(port: int, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    out = subprocess.run(["aws", "--endpoint-url", f"http://127.0.0.1:{port}", "ecr", *args],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"aws ecr {args[0]}: {out.stderr.strip()}")
    return out.stdout.strip()


def start_ecrd(binary: Path, tmp: Path, disk: bool, redirect: bool) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    env["ECRD_LOG"] = "warn"
    cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port),
           f"--blob-redirect={'true' if redirect else 'false'}", "--lifecycle-interval", "0"]
    workdir = None
    if disk:
        workdir = Path(tempfile.mkdtemp(prefix="blob_bench_ecrd_", dir=tmp))
        cmd += ["--data-dir", str(workdir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port, "/_ecrd/health", (200,), 15, proc)
        aws(port, "create-repository", "--repository-name", REPO_NAME)
        password = aws(port, "get-login-password")
    except Exception:
        stop(proc)
        raise
    auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    return Server(proc, port, auth, workdir)


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
"""


def start_registry(binary: str, tmp: Path) -> Server:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="blob_bench_registry_", dir=tmp))
    (workdir / "storage").mkdir()
    config = workdir / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=workdir / "storage", port=port))
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none")
    proc = subprocess.Popen([binary, "serve", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port, "/v2/", (200,), 30, proc)
    except Exception:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Server(proc, port, None, workdir)


# ---------------------------------------------------------------- null sink

def sink_main(port: int, data_path: str, size: int) -> None:
    """A minimal HTTP/1.1 server: discards request bodies, answers every POST
    with 202 + Location, every PUT with 201, every GET with the first `size`
    bytes of the data file (sendfile). Keep-alive, one thread per connection."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)

    def handle(conn: socket.socket) -> None:
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        pending = b""
        with conn, open(data_path, "rb") as f:
            while True:
                while b"\r\n\r\n" not in pending:
                    got = conn.recv(65536)
                    if not got:
                        return
                    pending += got
                head, _, pending = pending.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                left = length - len(pending)
                pending = pending[length:] if left <= 0 else b""
                while left > 0:
                    n = conn.recv_into(view[:min(left, READ_CHUNK)])
                    if n == 0:
                        return
                    left -= n
                if method == "POST":
                    conn.sendall(b"HTTP/1.1 202 Accepted\r\nLocation: /v2/sink/uploads/x?s=1\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                elif method == "PUT":
                    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                else:
                    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
                                 "Content-Type: application/octet-stream\r\n\r\n".encode())
                    conn.sendfile(f, offset=0, count=size)

    while True:
        c, _ = srv.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def start_sink(data_path: Path, size: int) -> Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--_sink", str(port), str(data_path),
                             str(size)],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                raise RuntimeError("null sink did not start")
            time.sleep(0.02)
    return Server(proc, port, None)


# ---------------------------------------------------------------- client


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def headers_for(server: Server, extra: dict | None = None) -> dict:
    h = dict(extra or {})
    if server.auth:
        h["Authorization"] = server.auth
    return h


def start_upload(server: Server, conn: http.client.HTTPConnection) -> str:
    """`POST /v2/<repo>/blobs/uploads/`; returns the upload's Location."""
    conn.request("POST", f"/v2/{REPO_NAME}/blobs/uploads/", body=b"",
                 headers=headers_for(server, {"Content-Length": "0"}))
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        raise RuntimeError(f"POST uploads: {r.status} {r.reason}")
    return r.getheader("Location")


def push(server: Server, conn: http.client.HTTPConnection, data, offset: int, size: int,
         digest: str, tails: list | None = None) -> float:
    """One monolithic push; returns seconds from the POST to the PUT's answer.
    Appends to `tails` the seconds from the body's last byte handed to the
    kernel to the answer (the server's finishing work: verify, fsync, ...)."""
    t0 = time.perf_counter()
    loc = urllib.parse.urlsplit(start_upload(server, conn))
    sep = "&" if loc.query else "?"
    url = f"{loc.path}{'?' + loc.query if loc.query else ''}{sep}digest={digest}"
    conn.putrequest("PUT", url, skip_accept_encoding=True)
    for k, v in headers_for(server, {"Content-Type": "application/octet-stream",
                                     "Content-Length": str(size)}).items():
        conn.putheader(k, v)
    conn.endheaders()
    sent = conn.sock.sendfile(data, offset=offset, count=size)
    if sent != size:
        raise RuntimeError(f"sendfile sent {sent} of {size} bytes")
    t_sent = time.perf_counter()
    r = conn.getresponse()
    body = r.read()
    t_end = time.perf_counter()
    elapsed = t_end - t0
    if tails is not None:
        tails.append(t_end - t_sent)
    if r.status != 201:
        raise RuntimeError(f"PUT upload: {r.status} {r.reason} {body[:300]!r}")
    return elapsed


def push_chunked(server: Server, conn: http.client.HTTPConnection, data, offset: int,
                 size: int, digest: str, chunk: int) -> float:
    """One chunked push: POST, a PATCH (with Content-Range) per `chunk`
    bytes, then PUT with the digest; returns seconds from the POST to the
    PUT's answer."""
    t0 = time.perf_counter()
    location = start_upload(server, conn)
    sent_total = 0
    while sent_total < size:
        n = min(chunk, size - sent_total)
        loc = urllib.parse.urlsplit(location)
        conn.putrequest("PATCH", f"{loc.path}{'?' + loc.query if loc.query else ''}",
                        skip_accept_encoding=True)
        for k, v in headers_for(server, {
                "Content-Type": "application/octet-stream", "Content-Length": str(n),
                "Content-Range": f"{sent_total}-{sent_total + n - 1}"}).items():
            conn.putheader(k, v)
        conn.endheaders()
        if conn.sock.sendfile(data, offset=offset + sent_total, count=n) != n:
            raise RuntimeError("sendfile sent a short chunk")
        r = conn.getresponse()
        body = r.read()
        if r.status != 202:
            raise RuntimeError(f"PATCH upload: {r.status} {r.reason} {body[:300]!r}")
        location = r.getheader("Location")
        sent_total += n
    loc = urllib.parse.urlsplit(location)
    sep = "&" if loc.query else "?"
    conn.request("PUT", f"{loc.path}{'?' + loc.query if loc.query else ''}{sep}digest={digest}",
                 body=b"", headers=headers_for(server, {"Content-Length": "0"}))
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        raise RuntimeError(f"PUT upload: {r.status} {r.reason} {body[:300]!r}")
    return time.perf_counter() - t0


def pull_ranges(server: Server, conn: http.client.HTTPConnection, digest: str, size: int,
                chunk: int) -> float:
    """One pull in `Range` requests of `chunk` bytes (the redirect, if any,
    followed once and its URL reused, as a client resuming would)."""
    buf = bytearray(READ_CHUNK)
    t0 = time.perf_counter()
    path = f"/v2/{REPO_NAME}/blobs/{digest}"
    auth = headers_for(server)
    got = 0
    while got < size:
        end = min(size, got + chunk) - 1
        conn.request("GET", path, headers={**auth, "Range": f"bytes={got}-{end}"})
        r = conn.getresponse()
        if r.status in (301, 302, 303, 307, 308):
            r.read()
            loc = urllib.parse.urlsplit(r.getheader("Location"))
            path, auth = loc.path + ("?" + loc.query if loc.query else ""), {}
            continue
        if r.status != 206:
            raise RuntimeError(f"GET blob range: {r.status} {r.reason} {r.read()[:300]!r}")
        while True:
            n = r.readinto(buf)
            if not n:
                break
            got += n
    if got != size:
        raise RuntimeError(f"GET blob ranges: {got} bytes, expected {size}")
    return time.perf_counter() - t0


def pull(server: Server, conn: http.client.HTTPConnection, digest: str, size: int,
         hasher=None) -> tuple[float, bool]:
    """One pull into a discard buffer; returns (seconds, followed a redirect)."""
    buf = bytearray(READ_CHUNK)
    t0 = time.perf_counter()
    conn.request("GET", f"/v2/{REPO_NAME}/blobs/{digest}", headers=headers_for(server))
    r = conn.getresponse()
    redirected = False
    if r.status in (301, 302, 303, 307, 308):
        r.read()
        loc = urllib.parse.urlsplit(r.getheader("Location"))
        if loc.netloc and loc.netloc != f"127.0.0.1:{server.port}":
            raise RuntimeError(f"redirect to another host: {loc.geturl()}")
        conn.request("GET", loc.path + ("?" + loc.query if loc.query else ""))
        r = conn.getresponse()
        redirected = True
    if r.status != 200:
        raise RuntimeError(f"GET blob: {r.status} {r.reason} {r.read()[:300]!r}")
    got = 0
    view = memoryview(buf)
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += n
        if hasher is not None:
            hasher.update(view[:n])
    elapsed = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"GET blob: {got} bytes, expected {size}")
    return elapsed, redirected


# ---------------------------------------------------------------- runs


class Blobs:
    """One data file of size + repeats bytes; blob i is bytes [i, i + size)."""

    def __init__(self, tmp: Path, size: int, repeats: int):
        self.size = size
        self.path = tmp / "blob_bench_data"
        with open(self.path, "wb") as f:
            left = size + repeats
            while left:
                n = min(left, 16 * MIB)
                f.write(os.urandom(n))
                left -= n
        self.digests = []
        with open(self.path, "rb") as f:
            raw = f.read()
        for i in range(repeats):
            self.digests.append("sha256:" + hashlib.sha256(memoryview(raw)[i:i + size]).hexdigest())
        del raw
        self.file = open(self.path, "rb")


def mbps(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 1e6


def run_server(name: str, server: Server, blobs: Blobs, repeats: int, do_push: bool = True,
               log=print) -> dict:
    conn = connect(server.port)
    out: dict = {"push": [], "push_tail": [], "pull": [], "redirected": False,
                 "push_cpu": [], "pull_cpu": [], "push_chunked": [], "pull_ranges": []}
    pid = server.proc.pid
    try:
        for i in range(repeats):
            if do_push:
                c0 = cpu_seconds(pid)
                t = push(server, conn, blobs.file, i, blobs.size, blobs.digests[i],
                         out["push_tail"])
                out["push_cpu"].append(cpu_seconds(pid) - c0)
                out["push"].append(t)
                log(f"  {name}: push {i + 1}/{repeats}: {blobs.size / t / 1e6:,.0f} MB/s "
                    f"(last byte sent -> 201: {out['push_tail'][-1] * 1000:,.0f} ms)")
        for i in range(repeats):
            if do_push:
                j = repeats + i
                t = push_chunked(server, conn, blobs.file, j, blobs.size, blobs.digests[j],
                                 CHUNK)
                out["push_chunked"].append(t)
                log(f"  {name}: chunked push {i + 1}/{repeats}: {blobs.size / t / 1e6:,.0f} MB/s")
        for i in range(repeats):
            t = pull_ranges(server, conn, blobs.digests[i], blobs.size, CHUNK)
            out["pull_ranges"].append(t)
            log(f"  {name}: ranged pull {i + 1}/{repeats}: {blobs.size / t / 1e6:,.0f} MB/s")
        for i in range(repeats):
            c0 = cpu_seconds(pid)
            t, redirected = pull(server, conn, blobs.digests[i], blobs.size)
            out["pull_cpu"].append(cpu_seconds(pid) - c0)
            out["pull"].append(t)
            out["redirected"] = redirected
            log(f"  {name}: pull {i + 1}/{repeats}: {blobs.size / t / 1e6:,.0f} MB/s"
                f"{' (via 307)' if redirected else ''}")
        # Untimed: the content came back intact.
        h = hashlib.sha256()
        pull(server, conn, blobs.digests[0], blobs.size, hasher=h)
        if "sha256:" + h.hexdigest() != blobs.digests[0]:
            raise RuntimeError(f"{name}: pulled content does not match its digest")
    finally:
        conn.close()
    return out


def sink_run(blobs: Blobs, repeats: int, log) -> dict:
    sink = start_sink(blobs.path, blobs.size)
    try:
        conn = connect(sink.port)
        pushes = [push(sink, conn, blobs.file, i, blobs.size, blobs.digests[i])
                  for i in range(repeats)]
        pulls = []
        for _ in range(repeats):
            t, _ = pull(sink, conn, "x", blobs.size)
            pulls.append(t)
        conn.close()
        log(f"  null sink: push {mbps(blobs.size, pushes):,.0f} MB/s, "
            f"pull {mbps(blobs.size, pulls):,.0f} MB/s")
        return {"push": pushes, "pull": pulls}
    finally:
        sink.stop()


def peak_memory(binary: Path, tmp: Path, blobs: Blobs, disk: bool) -> dict:
    """VmHWM (KiB) of a fresh ecrd: idle, after one push, after one pull."""
    server = start_ecrd(binary, tmp, disk=disk, redirect=True)
    try:
        pid = server.proc.pid
        r = {"idle": proc_status(pid, "VmHWM")}
        conn = connect(server.port)
        push(server, conn, blobs.file, 0, blobs.size, blobs.digests[0])
        r["push"] = proc_status(pid, "VmHWM")
        r["rss_after_push"] = proc_status(pid, "VmRSS")
        pull(server, conn, blobs.digests[0], blobs.size)
        r["pull"] = proc_status(pid, "VmHWM")
        conn.close()
        return r
    finally:
        server.stop()


def sha256_rate(blobs: Blobs) -> float:
    """Single-core SHA-256 over the blob with OpenSSL (hashlib), MB/s."""
    with open(blobs.path, "rb") as f:
        raw = f.read(blobs.size)
    t0 = time.perf_counter()
    hashlib.sha256(raw).digest()
    return len(raw) / (time.perf_counter() - t0) / 1e6


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ecrd-bin", default=str(REPO_ROOT / "target/dist/ecrd"))
    parser.add_argument("--no-build", action="store_true",
                        help="do not run `cargo build --profile dist --bin ecrd` first")
    parser.add_argument("--registry-bin", default="/usr/bin/docker-registry")
    parser.add_argument("--skip-registry", action="store_true")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=None,
                        help="where data, data dirs and registry storage go (default: $TMPDIR)")
    parser.add_argument("--json", default=None, help="also write raw timings here")
    parser.add_argument("--_sink", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._sink:
        sink_main(int(args._sink[0]), args._sink[1], int(args._sink[2]))
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    binary = Path(args.ecrd_bin)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--profile", "dist", "--bin", "ecrd"], cwd=REPO_ROOT, check=True)
    if not binary.is_file():
        log(f"no ecrd binary at {binary}")
        return 2
    if not args.skip_registry and not Path(args.registry_bin).is_file():
        log(f"no {args.registry_bin}: apt-get install -y docker-registry, or --skip-registry")
        return 2
    if shutil.which("aws") is None:
        log("the aws CLI is needed (create-repository, get-login-password)")
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="blob_bench_", dir=args.tmp))
    size = args.size_mib * MIB
    loads = [loadavg()]
    try:
        log(f"generating {args.size_mib} MiB of random data in {tmp} ...")
        # Blobs 0..repeats for monolithic pushes, the next ones for chunked.
        blobs = Blobs(tmp, size, 2 * args.repeats)
        sha = sha256_rate(blobs)
        log(f"  hashlib sha256: {sha:,.0f} MB/s (one core)")
        log("client against a null sink ...")
        sink = sink_run(blobs, args.repeats, log)

        # (key, label, starter, push measured here)
        configs = [
            ("mem", "ecrd, memory", lambda: start_ecrd(binary, tmp, False, True)),
            ("mem-direct", "ecrd, memory, --blob-redirect=false",
             lambda: start_ecrd(binary, tmp, False, False)),
            ("disk", "ecrd, disk (--data-dir)", lambda: start_ecrd(binary, tmp, True, True)),
            ("disk-direct", "ecrd, disk, --blob-redirect=false",
             lambda: start_ecrd(binary, tmp, True, False)),
        ]
        if not args.skip_registry:
            configs.append(("registry", "docker-registry",
                            lambda: start_registry(args.registry_bin, tmp)))
        results: dict[str, dict] = {}
        for key, label, starter in configs:
            log(f"{label} ...")
            server = starter()
            try:
                results[key] = run_server(key, server, blobs, args.repeats, log=log)
            finally:
                server.stop()
            loads.append(loadavg())
        log("ecrd peak memory (fresh processes) ...")
        mem_disk = peak_memory(binary, tmp, blobs, disk=True)
        mem_mem = peak_memory(binary, tmp, blobs, disk=False)
        loads.append(loadavg())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        Path(args.json).write_text(json.dumps({
            "size": size, "results": results, "sink": sink, "sha256_mbps": sha,
            "vmhwm_kib": {"disk": mem_disk, "memory": mem_mem}, "loadavg": loads}, indent=1))

    reg = results.get("registry")
    reg_push = mbps(size, reg["push"]) if reg else None
    reg_pull = mbps(size, reg["pull"]) if reg else None

    def ratio(x: float, base: float | None) -> str:
        return f"{x / base:.2f}x" if base else "n/a"

    version = subprocess.run([args.registry_bin, "--version"], capture_output=True,
                             text=True).stdout.strip() if reg else "not run"
    cpu = platform.processor() or platform.machine()
    print()
    print(f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} cores, {cpu}, "
          f"{platform.system()} {platform.release()}; blob: {args.size_mib} MiB random, "
          f"monolithic POST + PUT (sendfile body), pull read in {READ_CHUNK // MIB} MiB chunks; "
          f"median of {args.repeats}; MB/s = 10^6 bytes/s; load average (1/5/15 min) before, "
          f"after each server: {' | '.join(loads)}; docker-registry: {version}")
    print()
    print("| server | push MB/s | push vs docker-registry | push: last byte sent to 201 "
          "| push: server CPU | pull MB/s | pull vs docker-registry | pull: server CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("mem", "ecrd, memory (pull: 307 to signed URL, followed)"),
        ("mem-direct", "ecrd, memory, `--blob-redirect=false`"),
        ("disk", "ecrd, disk `--data-dir` (pull: 307, followed)"),
        ("disk-direct", "ecrd, disk, `--blob-redirect=false`"),
        ("registry", "docker-registry (filesystem, no auth)"),
    ]
    for key, label in rows:
        r = results.get(key)
        if r is None:
            continue
        p, g = mbps(size, r["push"]), mbps(size, r["pull"])
        tail = statistics.median(r["push_tail"]) * 1000
        pc = statistics.median(r["push_cpu"]) * 1000
        gc = statistics.median(r["pull_cpu"]) * 1000
        print(f"| {label} | {p:,.0f} | {ratio(p, reg_push)} | {tail:,.0f} ms | {pc:,.0f} ms "
              f"| {g:,.0f} | {ratio(g, reg_pull)} | {gc:,.0f} ms |")
    print(f"| client alone, null sink (ceiling) | {mbps(size, sink['push']):,.0f} | | | | "
          f"{mbps(size, sink['pull']):,.0f} | | |")
    print()
    print(f"| server | chunked push MB/s ({CHUNK // MIB} MiB PATCHes) | vs docker-registry "
          f"| ranged pull MB/s ({CHUNK // MIB} MiB Range GETs) | vs docker-registry |")
    print("|---|---:|---:|---:|---:|")
    reg_chunked = mbps(size, reg["push_chunked"]) if reg else None
    reg_ranges = mbps(size, reg["pull_ranges"]) if reg else None
    for key, label in rows:
        r = results.get(key)
        if r is None or not r["push_chunked"]:
            continue
        p, g = mbps(size, r["push_chunked"]), mbps(size, r["pull_ranges"])
        print(f"| {label} | {p:,.0f} | {ratio(p, reg_chunked)} | {g:,.0f} | "
              f"{ratio(g, reg_ranges)} |")
    print()
    print("| ecrd, fresh process, one push then one pull | disk (`--data-dir`) | memory |")
    print("|---|---:|---:|")
    for k, label in [("idle", "VmHWM idle"), ("push", "VmHWM after push"),
                     ("rss_after_push", "VmRSS after push"), ("pull", "VmHWM after pull")]:
        print(f"| {label} | {mem_disk[k] / 1024:.1f} MiB | {mem_mem[k] / 1024:.1f} MiB |")
    print()
    print(f"Reference: hashlib (OpenSSL) SHA-256 on this machine, one core: {sha:,.0f} MB/s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
