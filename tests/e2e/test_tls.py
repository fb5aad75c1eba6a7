"""`--tls` end to end, with the clients ECR users run: the AWS CLI over HTTPS
trusting ecrd's generated CA (`--ca-bundle`) while plain HTTP keeps
answering on the same port, and docker pushing and pulling through Debian's
`docker-credential-ecr-login` (amazon-ecr-credential-helper) configured in
`credHelpers`, with no `docker login` at all.

The credential helper cannot be given an endpoint: it calls
`https://api.ecr.<region>.amazonaws.com` (port 443) and acts only for
registry names of ECR's form, `<account>.dkr.ecr.<region>.amazonaws.com`
(without a port). So that test serves ecrd on 127.0.0.1:443 with
`--registry-host '{account}.dkr.ecr.{region}.amazonaws.com'`, makes both
names resolve to the loopback through /etc/hosts, hands ecrd's CA to the
helper (`SSL_CERT_FILE`) and to dockerd (`/etc/docker/certs.d/<host>/ca.crt`),
and puts every file back as it was afterwards, also when it fails. It needs
root (port 443, /etc); the Rust side (`tests/tls.rs`) covers the transport
itself.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_ACCOUNT, EcrdServer, aws_json, boto_client, loopback_hosts, run_aws
# A dockerd (the machine's, or a private one) and the image it pushes.
from conftest import docker  # noqa: F401  (docker_env is a conftest fixture)

REGION = "us-east-1"
REGISTRY = f"{DEFAULT_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
API_HOST = f"api.ecr.{REGION}.amazonaws.com"
HOSTS_MARK = "# ecrd e2e (tests/e2e/test_tls.py), removed after the run"


# ------------------------------------------------------------------ AWS CLI


def test_aws_cli_over_https_with_ca_bundle_and_plain_http_on_the_same_port(spawn, tmp_path):
    data = tmp_path / "data"
    server = spawn(args=["--tls", "--data-dir", str(data)])
    ca = data / "tls" / "ca.pem"
    assert ca.is_file(), server.output()
    https = f"https://localhost:{server.port}"

    created = aws_json(server, "ecr", "create-repository", "--repository-name", "over/tls",
                       "--ca-bundle", str(ca), endpoint=https)
    assert created["repository"]["repositoryUri"] == f"localhost:{server.port}/over/tls"
    token = aws_json(server, "ecr", "get-authorization-token", "--ca-bundle", str(ca),
                     endpoint=https)
    assert token["authorizationData"][0]["proxyEndpoint"] == https

    # The same state over plain HTTP, same port, same process.
    listed = aws_json(server, "ecr", "describe-repositories")
    assert [r["repositoryName"] for r in listed["repositories"]] == ["over/tls"]

    # Without the CA the CLI refuses the certificate: a real check happens.
    untrusted = run_aws(server, "ecr", "describe-repositories", endpoint=https, check=False)
    assert untrusted.returncode != 0
    assert "certificate verify failed" in untrusted.stderr.lower(), untrusted.stderr

    # Both transports at once: two kept-alive connections, used in turn.
    context = ssl.create_default_context(cafile=str(ca))
    secure = http.client.HTTPSConnection("localhost", server.port, context=context, timeout=10)
    plain = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _round in range(3):
            for connection in (secure, plain):
                connection.request("GET", "/v2/")
                response = connection.getresponse()
                response.read()
                assert response.status == 401
                assert response.getheader("Docker-Distribution-Api-Version") == "registry/2.0"
                assert 'service="ecr.amazonaws.com"' in response.getheader("Www-Authenticate", "")
        assert secure.sock.version().startswith("TLS"), secure.sock.version()
        assert not isinstance(plain.sock, ssl.SSLSocket)
    finally:
        secure.close()
        plain.close()


# ------------------------------------------------------------------ credential helper


def port_443_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 443))
        except OSError:
            return False
    return True


@pytest.fixture
def registry_on_443(tmp_path):
    """ecrd on 127.0.0.1:443 with `--tls` and ECR-form registry names."""
    if shutil.which("docker-credential-ecr-login") is None:
        pytest.skip("docker-credential-ecr-login is not installed "
                    "(.ci/run installs amazon-ecr-credential-helper)")
    if os.geteuid() != 0:
        pytest.skip("port 443, /etc/hosts and /etc/docker/certs.d need root")
    if not port_443_free():
        pytest.fail("127.0.0.1:443 is taken: the credential helper only calls "
                    f"https://{API_HOST} on port 443, so ecrd must listen there")
    data = tmp_path / "data"
    server = EcrdServer(["--tls", "--data-dir", str(data),
                         "--registry-host", "{account}.dkr.ecr.{region}.amazonaws.com"],
                        port=443)
    try:
        server.start()
        yield server, data / "tls" / "ca.pem"
    finally:
        server.close()


@pytest.fixture
def dockerd_trusts(registry_on_443):
    """dockerd trusts ecrd's CA for the ECR-form registry name: the CA goes to
    /etc/docker/certs.d/<registry>/ca.crt, and whatever was there before (or
    nothing) comes back afterwards."""
    _server, ca = registry_on_443
    certs_d = Path("/etc/docker/certs.d")
    directory = certs_d / REGISTRY
    made = [p for p in (Path("/etc/docker"), certs_d, directory) if not p.exists()]
    target = directory / "ca.crt"
    previous = target.read_bytes() if target.exists() else None
    directory.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(ca, target)
        yield target
    finally:
        if previous is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(previous)
        for path in reversed(made):
            try:
                path.rmdir()
            except OSError:
                pass


def test_docker_push_and_pull_through_the_ecr_credential_helper(
        registry_on_443, dockerd_trusts, docker_env, tmp_path):
    server, ca = registry_on_443
    repo = "helper/app"
    boto_client(server).create_repository(repositoryName=repo)

    # A client config that names the helper for ECR's host, and holds no
    # password: every credential docker sends comes from the helper.
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {REGISTRY: "ecr-login"}}))
    cache = tmp_path / "ecr-cache"
    env = {k: v for k, v in docker_env.items()
           if not k.startswith("AWS_") and k.lower() not in ("https_proxy", "http_proxy",
                                                             "all_proxy")}
    env.update(
        DOCKER_CONFIG=str(config),
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ECR_CACHE_DIR=str(cache),
        # Go reads extra roots from here: the helper trusts ecrd's CA.
        SSL_CERT_FILE=str(ca),
    )

    with loopback_hosts([API_HOST, REGISTRY], HOSTS_MARK):
        # The helper on its own, as docker calls it: it asks ecrd's
        # GetAuthorizationToken at https://api.ecr.us-east-1.amazonaws.com.
        got = subprocess.run(["docker-credential-ecr-login", "get"], input=REGISTRY, env=env,
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr + got.stdout
        credentials = json.loads(got.stdout)
        assert credentials["Username"] == "AWS"
        # The password is one ecrd verifies: it opens /v2/ over TLS.
        basic = base64.b64encode(f"AWS:{credentials['Secret']}".encode()).decode()
        status, _, body = http_via_tls(ca, "/v2/", {"Authorization": f"Basic {basic}"})
        assert status == 200, body

        ref = f"{REGISTRY}/{repo}:v1"
        wait_until_dockerd_resolves(env, REGISTRY)
        docker(env, "tag", "ecrd-e2e/hello:v1", ref)
        try:
            pushed = docker(env, "push", ref)
            digest = pushed.stdout.split("digest: ")[1].split()[0]
            details = boto_client(server).describe_images(repositoryName=repo)["imageDetails"]
            assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(digest, ["v1"])]

            image_id = docker(env, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
            docker(env, "image", "rm", ref)
            pulled = docker(env, "pull", ref)
            assert digest in pulled.stdout
            assert docker(env, "image", "inspect", "--format", "{{.Id}}",
                          ref).stdout.strip() == image_id
        finally:
            docker(env, "image", "rm", "-f", ref, check=False)

    # docker stored no password of its own, and the helper's cache names the
    # https:// proxyEndpoint ecrd answered (the helper refuses any other).
    saved = json.loads((config / "config.json").read_text())
    assert REGISTRY not in saved.get("auths", {}), saved
    cached = json.loads((cache / "cache.json").read_text())
    assert f"https://{REGISTRY}" in json.dumps(cached), cached
    assert not Path("/etc/hosts").read_text().count(HOSTS_MARK)


def wait_until_dockerd_resolves(env: dict, host: str, timeout: float = 20.0) -> None:
    """dockerd (Go) rereads /etc/hosts at most every 5 s, so a name added just
    now may still be unknown to it: ask until its answer is no longer a
    failed lookup (a missing tag is the expected answer)."""
    deadline = time.monotonic() + timeout
    while True:
        result = docker(env, "pull", f"{host}/ecrd-e2e-probe/absent:none", check=False)
        if "no such host" not in result.stderr:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"dockerd does not resolve {host}: {result.stderr}")
        time.sleep(1)


def http_via_tls(ca: Path, path: str, headers: dict):
    """A GET to ecrd on 127.0.0.1:443 over TLS, naming the registry host (SNI
    and Host) and trusting only ecrd's CA."""
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(REGISTRY, 443, context=context, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()
