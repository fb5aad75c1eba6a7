"""The container image (`Dockerfile`, built by `tools/build-image.sh`) and the
compose file (`docker-compose.yml`), end to end: the image is built offline
from the statically linked binary, runs as a non-root user, reports healthy
through its shell-less HEALTHCHECK, serves `docker login` (with `aws ecr
get-login-password`) + push + pull, and keeps what was pushed in its volume
across a new container; `docker-compose up -d` gives the same.

The static binary is `$ECRD_STATIC_BIN`, else the one next to `ECRD_BIN`'s
target directory (`<target>/x86_64-unknown-linux-gnu/dist/ecrd`, which
`.ci/run` builds with `tools/build-image.sh --binary-only`).

dockerd here may run with `--bridge=none --iptables=false` (no default
network), so `docker run` shares the host's network (`--network host`) and
listens on a free loopback port (`ECRD_HOST=127.0.0.1` over the image's
`0.0.0.0`, so nothing is reachable from outside the machine). Compose makes
its own network, so the compose file runs unchanged: the image's `0.0.0.0`
inside, the port published on the loopback. Everything the tests make
(containers, image, volumes, networks) is removed afterwards.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, aws_json, find_binary, free_port, run_aws
# A dockerd (the machine's, or a private one) and the image it pushes.
from conftest import docker  # noqa: F401  (docker_env is a conftest fixture)

TARGET = "x86_64-unknown-linux-gnu"
UID = "65532"


class Endpoint:
    """What `run_aws` needs of a server: its URL."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


def static_binary() -> Path:
    env = os.environ.get("ECRD_STATIC_BIN")
    if env:
        path = Path(env)
    else:
        # <target>/release/ecrd → <target>/x86_64-unknown-linux-gnu/dist/ecrd
        path = find_binary().parent.parent / TARGET / "dist" / "ecrd"
    if not path.is_file():
        pytest.fail(f"no static ecrd at {path}: build it with `tools/build-image.sh --binary-only` "
                    "(or set ECRD_STATIC_BIN)")
    return path


@pytest.fixture(scope="module")
def image(docker_env):
    """ecrd's image, built by tools/build-image.sh from the static binary."""
    tag = f"ecrd-e2e/ecrd:{os.getpid()}"
    env = dict(docker_env, ECRD_STATIC_BIN=str(static_binary()))
    built = subprocess.run([str(REPO_ROOT / "tools" / "build-image.sh"), tag], env=env,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    yield tag
    docker(docker_env, "image", "rm", "-f", tag, check=False)


@pytest.fixture
def cleanup(docker_env):
    """Names of containers and volumes to remove after the test."""
    made = {"containers": [], "volumes": []}
    yield made
    for name in made["containers"]:
        docker(docker_env, "rm", "-f", "-v", name, check=False)
    for name in made["volumes"]:
        docker(docker_env, "volume", "rm", "-f", name, check=False)


def wait_healthy(env: dict, container: str, timeout: float = 90.0) -> None:
    """Waits for docker's own HEALTHCHECK verdict (not a probe of ours)."""
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        state = json.loads(docker(env, "inspect", "--format", "{{json .State}}",
                                  container).stdout)
        status = state.get("Health", {}).get("Status", "")
        if status == "healthy":
            return
        if not state.get("Running"):
            break
        time.sleep(0.5)
    logs = docker(env, "logs", container, check=False)
    raise AssertionError(f"{container} is {status!r}, not healthy:\n{logs.stdout}{logs.stderr}")


def run_container(env: dict, image: str, name: str, volume: str, port: int) -> None:
    docker(env, "run", "-d", "--name", name, "--network", "host",
           "-e", "ECRD_HOST=127.0.0.1", "-e", f"ECRD_PORT={port}",
           "-e", "ECRD_DATA_DIR=/data", "-e", f"ECRD_REGISTRY_HOST=localhost:{port}",
           "-v", f"{volume}:/data", image)


def push_and_pull(env: dict, endpoint: Endpoint, repo: str) -> str:
    """`docker login` with the CLI's password, push, drop the local image,
    pull; returns the pushed digest."""
    host = f"localhost:{endpoint.port}"
    aws_json(None, "ecr", "create-repository", "--repository-name", repo, endpoint=endpoint.url)
    password = run_aws(None, "ecr", "get-login-password", endpoint=endpoint.url).stdout.strip()
    login = docker(env, "login", "--username", "AWS", "--password-stdin", host, stdin=password)
    assert "Login Succeeded" in login.stdout
    ref = f"{host}/{repo}:v1"
    docker(env, "tag", "ecrd-e2e/hello:v1", ref)
    digest = docker(env, "push", ref).stdout.split("digest: ")[1].split()[0]
    details = aws_json(None, "ecr", "describe-images", "--repository-name", repo,
                       endpoint=endpoint.url)["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(digest, ["v1"])]
    docker(env, "image", "rm", ref)
    assert digest in docker(env, "pull", ref).stdout
    docker(env, "image", "rm", ref)
    return digest


def test_image_is_static_non_root_and_shell_less(image, docker_env):
    config = json.loads(docker(docker_env, "image", "inspect", "--format", "{{json .Config}}",
                               image).stdout)
    assert config["User"] == f"{UID}:{UID}"
    assert "4566/tcp" in config["ExposedPorts"]
    assert "ECRD_HOST=0.0.0.0" in config["Env"]
    assert "ECRD_PORT=4566" in config["Env"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/ecrd", "health"]
    assert config["Entrypoint"] == ["/usr/local/bin/ecrd"]
    assert config["Cmd"] == ["serve"]
    # FROM scratch: the binary and two empty directories owned by the user,
    # nothing else (no shell, so the health check must be exec form).
    container = docker(docker_env, "create", image).stdout.strip()
    try:
        exported = subprocess.run(["docker", "export", container], env=docker_env,
                                  capture_output=True, timeout=120, check=True).stdout
    finally:
        docker(docker_env, "rm", "-f", container, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    assert members["usr/local/bin/ecrd"].isfile()
    for directory in ("data", "tmp"):
        assert members[directory].isdir() and str(members[directory].uid) == UID, directory
    assert "bin/sh" not in members
    # What docker itself adds to every container's filesystem, and no more.
    ours = {name for name in members
            if not name.startswith(("etc", "dev", "proc", "sys", ".dockerenv"))}
    assert ours == {"usr", "usr/local", "usr/local/bin", "usr/local/bin/ecrd", "data", "tmp"}, ours


def test_container_healthy_push_pull_and_state_in_the_volume(image, docker_env, cleanup):
    env = docker_env
    port = free_port()
    endpoint = Endpoint(port)
    volume = f"ecrd-e2e-data-{os.getpid()}"
    first = f"ecrd-e2e-first-{os.getpid()}"
    cleanup["containers"].append(first)
    cleanup["volumes"].append(volume)
    run_container(env, image, first, volume, port)
    wait_healthy(env, first)

    digest = push_and_pull(env, endpoint, "container/app")

    # Names resolve inside the scratch image (static glibc's getaddrinfo,
    # as the pull-through cache's upstream client uses it): `localhost`
    # from the /etc/hosts docker provides.
    docker(env, "exec", first, "/usr/local/bin/ecrd", "health", "--url",
           f"http://localhost:{port}/_ecrd/health")

    # The server runs as the image's user, and writes its state there.
    pid = docker(env, "inspect", "--format", "{{.State.Pid}}", first).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {UID}, status
    mountpoint = Path(docker(env, "volume", "inspect", "--format", "{{.Mountpoint}}",
                             volume).stdout.strip())
    assert mountpoint.is_dir()
    assert str(mountpoint.stat().st_uid) == UID
    assert any(str(p.stat().st_uid) == UID for p in mountpoint.iterdir())

    # A new container on the same volume has the image, and the password
    # handed out before still works (the token secret is in the volume).
    password = run_aws(None, "ecr", "get-login-password", endpoint=endpoint.url).stdout.strip()
    docker(env, "rm", "-f", first)
    second = f"ecrd-e2e-second-{os.getpid()}"
    cleanup["containers"].append(second)
    run_container(env, image, second, volume, port)
    wait_healthy(env, second)
    details = aws_json(None, "ecr", "describe-images", "--repository-name", "container/app",
                       endpoint=endpoint.url)["imageDetails"]
    assert [d["imageDigest"] for d in details] == [digest]
    host = f"localhost:{port}"
    docker(env, "login", "--username", "AWS", "--password-stdin", host, stdin=password)
    ref = f"{host}/container/app@{digest}"
    assert digest in docker(env, "pull", ref).stdout
    docker(env, "image", "rm", ref)


class LoopbackDns:
    """A DNS server on 127.0.0.1:53 that answers every A question with
    127.0.0.1 (and every other type with no record), counting the names it
    was asked: enough to see a resolver inside a container really query it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", 53))
        except OSError as e:
            self.sock.close()
            pytest.fail(f"cannot serve DNS on 127.0.0.1:53 for the probe: {e}")
        self.sock.settimeout(0.2)
        self.asked: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            if len(query) < 17:
                continue
            # The question: labels up to the zero byte, then type and class.
            end = query.index(b"\0", 12) + 5
            labels, i = [], 12
            while query[i]:
                labels.append(query[i + 1:i + 1 + query[i]].decode(errors="replace"))
                i += 1 + query[i]
            qtype = struct.unpack("!H", query[end - 4:end - 2])[0]
            self.asked.append(".".join(labels))
            answers = b""
            if qtype == 1:  # A: a pointer to the question's name, IN, TTL 0, 4 bytes
                answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + bytes([127, 0, 0, 1])
            header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if answers else 0, 0, 0)
            self.sock.sendto(header + query[12:end] + answers, peer)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_names_resolve_through_dns_inside_the_image(image, docker_env, ecrd, tmp_path):
    """The static binary's resolver (glibc's getaddrinfo, linked in; what the
    pull-through cache's upstream client uses) works in the scratch image:
    a name only a DNS server knows reaches the host's ecrd."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
    name = "upstream.ecrd-e2e.test"
    dns = LoopbackDns()
    try:
        result = docker(docker_env, "run", "--rm", "--network", "host",
                        "-v", f"{resolv}:/etc/resolv.conf:ro", image,
                        "health", "--url", f"http://{name}:{ecrd.port}/_ecrd/health",
                        check=False)
    finally:
        dns.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert name in dns.asked, dns.asked


def test_docker_compose_up(image, docker_env):
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (.ci/run installs it from apt)")
    env = dict(docker_env)
    port = free_port()
    project = f"ecrde2e{os.getpid()}"
    # The compose file as users run it (its own bridge network, the port
    # published on the loopback), on a free port.
    compose_files = ["-f", str(REPO_ROOT / "docker-compose.yml")]
    env.update(ECRD_IMAGE=image, ECRD_PUBLISH=f"127.0.0.1:{port}",
               ECRD_REGISTRY_HOST=f"localhost:{port}")

    def compose(*args, check=True):
        result = subprocess.run(["docker-compose", "-p", project, *compose_files, *args],
                                env=env, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"docker-compose {args} failed:\n{result.stdout}{result.stderr}")
        return result

    try:
        compose("up", "-d")
        container = compose("ps", "-q", "ecrd").stdout.strip()
        assert container
        wait_healthy(env, container)
        endpoint = Endpoint(port)
        digest = push_and_pull(env, endpoint, "compose/app")
        # The named volume keeps it over `down` + `up`.
        compose("down")
        compose("up", "-d")
        wait_healthy(env, compose("ps", "-q", "ecrd").stdout.strip())
        details = aws_json(None, "ecr", "describe-images", "--repository-name", "compose/app",
                           endpoint=endpoint.url)["imageDetails"]
        assert [d["imageDigest"] for d in details] == [digest]
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
    volumes = docker(env, "volume", "ls", "-q").stdout.split()
    assert f"{project}_ecrd-data" not in volumes
