"""End-to-end harness: drives the real `ecrd` binary as a subprocess.

Nothing is built here. The binary comes from `ECRD_BIN` (absolute, or relative
to the repository root); without it, `target/release/ecrd`, then
`target/debug/ecrd`. Build first:

    cargo build --release && python3 -m pytest -q tests/e2e

Fixtures:
- `ecrd`: one server per test module (default flags), reset through
  `/_ecrd/reset` before every test that uses it;
- `spawn`: starts extra servers with their own flags/environment for one test
  and kills them afterwards;
- `boto`, `aws`: clients pointed at a server;
- `docker_env`: the environment for a `docker` client talking to a dockerd
  (the machine's own when one answers on the default socket, else a private
  one this session starts, and stops, itself), with `ecrd-e2e/hello:v1`
  built offline (FROM scratch);
- `docker(env, ...)`, `skopeo(...)`: run those clients, failing with their
  output.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# Keep the source tree clean of __pycache__ (also for assertion-rewritten tests).
sys.dont_write_bytecode = True

# Everything here talks to loopback: never through a proxy from the environment
# (urllib, botocore and the aws CLI all honour no_proxy).
for _var in ("no_proxy", "NO_PROXY"):
    os.environ[_var] = ",".join(
        filter(None, [os.environ.get(_var, ""), "127.0.0.1", "localhost"])
    )

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
DEFAULT_ACCOUNT = "000000000000"
# Operator endpoints refuse form and text content types (urllib's default
# for a body is a form), so callers with a body say it is JSON.
JSON = {"Content-Type": "application/json"}


def find_binary() -> Path:
    env = os.environ.get("ECRD_BIN")
    if env:
        path = Path(env)
        if not path.is_absolute():
            path = REPO_ROOT / path
        if not path.is_file():
            pytest.exit(f"ECRD_BIN={env} does not exist (resolved to {path})", returncode=2)
        return path
    for candidate in ("target/release/ecrd", "target/debug/ecrd"):
        path = REPO_ROOT / candidate
        if path.is_file():
            return path
    pytest.exit(
        "no ecrd binary: run `cargo build --release` first or set ECRD_BIN",
        returncode=2,
    )
    raise AssertionError("unreachable")


def free_port() -> int:
    """A free loopback port for a server about to start, chosen below the
    kernel's ephemeral range: between this check and the server's bind, no
    client connection or `bind(0)` elsewhere can be handed the same port."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200 if low > 21000 else 0):
        port = rng.randrange(20000, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10.0):
    """A plain HTTP call; returns (status, headers, body bytes), never raises on 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class EcrdServer:
    """One `ecrd serve` process on a free loopback port."""

    def __init__(self, args: list[str] | None = None, env: dict | None = None,
                 port: int | None = None):
        self.binary = find_binary()
        self.args = list(args or [])
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        # A fixed port (e.g. 443, for clients that cannot be given one), or a
        # free one picked at each start.
        self.fixed_port = port
        self.port = 0
        self.log = tempfile.NamedTemporaryFile(prefix="ecrd-e2e-", suffix=".log", delete=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "EcrdServer":
        # A port picked here may be taken before ecrd binds it; retry then.
        for _attempt in range(1 if self.fixed_port else 5):
            self.port = self.fixed_port or free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
            env.setdefault("ECRD_LOG", "warn")
            env.update(self.extra_env)
            cmd = [str(self.binary), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   *self.args]
            self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
            if self.wait_healthy(timeout):
                return self
            if self.proc.poll() is None:
                self.kill()
                break
            if "cannot listen" not in self.output():
                break
        raise RuntimeError(f"ecrd did not become healthy: {self.proc.args}\n{self.output()}")

    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                status, _, _ = http("GET", f"{self.url}/_ecrd/health", timeout=1.0)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def reset(self) -> None:
        status, _, body = http("POST", f"{self.url}/_ecrd/reset")
        assert status == 200, body

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


# ---------------------------------------------------------------- clients


def boto_client(server: EcrdServer, region: str = "us-east-1", key: str = "test",
                secret: str = "test", validate: bool = True):
    """A boto3 ECR client; validate=False skips botocore's client-side checks,
    so that the server's own constraint checks are what answers."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecr",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


def run_aws(server: EcrdServer, *args: str, region: str = "us-east-1", key: str = "test",
            secret: str = "test", check: bool = True,
            endpoint: str | None = None) -> subprocess.CompletedProcess:
    """The AWS CLI against `server` (or `endpoint`, e.g. its https:// URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
    )
    cmd = ["aws", "--endpoint-url", endpoint or server.url, *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stderr}")
    return result


def aws_json(server: EcrdServer, *args: str, **kwargs):
    result = run_aws(server, *args, "--output", "json", **kwargs)
    return json.loads(result.stdout) if result.stdout.strip() else {}


def signed_call(server: EcrdServer, operation: str | None, body: bytes, key: str = "test",
                secret: str = "test", region: str = "us-east-1", extra_headers: dict | None = None):
    """A raw `POST /` signed with botocore's SigV4Auth, so the body can be anything.

    Returns (status, headers, parsed JSON body or None).
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if operation is not None:
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    headers.update(extra_headers or {})
    request = AWSRequest(method="POST", url=f"{server.url}/", data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), "ecr", region).add_auth(request)
    status, response_headers, raw = http("POST", f"{server.url}/", body=body,
                                         headers=dict(request.headers.items()))
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, {k.lower(): v for k, v in response_headers.items()}, parsed


def error_of(excinfo) -> tuple[str, str]:
    """(code, message) of a botocore ClientError caught by pytest.raises."""
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


@contextlib.contextmanager
def loopback_hosts(names: list[str], mark: str):
    """Makes each of `names` resolve to 127.0.0.1 by appending to /etc/hosts
    (for clients that insist on ECR's host names); the file gets its exact
    original content back afterwards, also when the body fails. Skips the
    test when /etc/hosts cannot be edited or the resolver ignores it. The
    names are added to no_proxy meanwhile."""
    path = Path("/etc/hosts")
    try:
        original = path.read_bytes()
    except OSError as e:
        pytest.skip(f"cannot read /etc/hosts: {e}")
    block = ("" if original.endswith(b"\n") or not original else "\n") + mark + "\n" + "".join(
        f"127.0.0.1 {name}\n" for name in names)
    try:
        with open(path, "ab") as f:  # in place: /etc/hosts is often a bind mount
            f.write(block.encode())
    except OSError as e:
        pytest.skip(f"/etc/hosts is not writable here ({e}); {names[0]} cannot be made to "
                    "reach the loopback")
    saved_env = {k: os.environ.get(k) for k in ("no_proxy", "NO_PROXY")}
    try:
        for var in saved_env:
            os.environ[var] = ",".join(filter(None, [os.environ.get(var, ""), *names]))
        for name in names:
            try:
                resolved = socket.gethostbyname(name)
            except OSError as e:
                pytest.skip(f"{name} does not resolve after editing /etc/hosts: {e}")
            if resolved != "127.0.0.1":
                pytest.skip(f"{name} resolves to {resolved}, not 127.0.0.1 (resolver ignores /etc/hosts?)")
        yield names
    finally:
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        current = path.read_bytes()
        if current == original + block.encode():
            restored = original
        else:  # someone else edited the file meanwhile: take out only our block
            restored = current.replace(block.encode(), b"", 1)
        with open(path, "wb") as f:
            f.write(restored)
        assert path.read_bytes() == restored


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def _module_server():
    server = EcrdServer().start()
    yield server
    server.close()


@pytest.fixture
def ecrd(_module_server):
    """The module's server, with empty state."""
    if _module_server.proc.poll() is not None:
        pytest.fail(f"ecrd exited early:\n{_module_server.output()}")
    _module_server.reset()
    return _module_server


@pytest.fixture
def spawn():
    """Starts servers with custom flags/env for one test: spawn(args=[...], env={...})."""
    started: list[EcrdServer] = []

    def start(args: list[str] | None = None, env: dict | None = None) -> EcrdServer:
        server = EcrdServer(args, env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def boto(ecrd):
    return boto_client(ecrd)


@pytest.fixture
def unchecked(ecrd):
    """boto3 without client-side parameter validation."""
    return boto_client(ecrd, validate=False)


# ---------------------------------------------------------- docker, skopeo


def docker(env, *args, check=True, stdin=None):
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True,
                            input=stdin, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def skopeo(*args, check=True):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (.ci/run installs it)")
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"skopeo {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _docker_answers(env) -> bool:
    return subprocess.run(["docker", "info"], env=env, capture_output=True,
                          timeout=30).returncode == 0


@pytest.fixture(scope="session")
def docker_env():
    """An environment for `docker` with a private client config (logins stay
    out of the machine's). The daemon is the machine's own when one answers
    on the default socket (it is used, never stopped); otherwise a private
    dockerd (vfs storage, no networking of its own) started for this session
    and stopped after it."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed (.ci/run installs docker.io)")
    root = Path(tempfile.mkdtemp(prefix="ecrd-e2e-docker-"))
    base = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env = dict(base, DOCKER_CONFIG=str(root / "config"), DOCKER_BUILDKIT="0")
    proc = None
    log = None
    if not (Path("/var/run/docker.sock").exists() and _docker_answers(env)):
        if shutil.which("dockerd") is None:
            pytest.skip("dockerd is not installed (.ci/run installs docker.io)")
        if os.geteuid() != 0:
            pytest.skip("dockerd needs root")
        sock = root / "docker.sock"
        log = open(root / "dockerd.log", "w")
        proc = subprocess.Popen(
            ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
             "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--pidfile", str(root / "docker.pid"), "--host", f"unix://{sock}"],
            stdout=log, stderr=subprocess.STDOUT)
        env["DOCKER_HOST"] = f"unix://{sock}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _docker_answers(env):
                break
            if proc.poll() is not None:
                # A machine whose kernel refuses dockerd (no cgroups, no overlay
                # of namespaces) cannot run these tests; say so loudly, skip them.
                log_text = (root / "dockerd.log").read_text()
                print(f"dockerd exited, docker tests skipped:\n{log_text}")
                pytest.skip(f"dockerd could not start here: {log_text[-500:]}")
            time.sleep(0.5)
        else:
            proc.kill()
            proc.wait(timeout=30)
            pytest.skip(f"dockerd did not start within 60 s: "
                        f"{(root / 'dockerd.log').read_text()[-500:]}")
    # An image built offline: FROM scratch with two layers of our own.
    ctx = root / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello from ecrd e2e\n")
    (ctx / "data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\nCOPY data.bin /data.bin\n")
    subprocess.run(["docker", "build", "-q", "-t", "ecrd-e2e/hello:v1", str(ctx)], env=env,
                   check=True, capture_output=True, timeout=300)
    yield env
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    if log is not None:
        log.close()
    shutil.rmtree(root, ignore_errors=True)


def pytest_report_header(config):
    try:
        return f"ecrd binary: {find_binary()}"
    except BaseException:  # pytest.exit raises; report it at collection instead
        return "ecrd binary: not found"

