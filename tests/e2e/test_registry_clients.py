"""The registry (/v2/) driven by real clients against the real binary, on
both backends: docker (login with `aws ecr get-login-password`, push, pull),
skopeo (copy in and out with the ECR password), and oras-py (push and pull
an OCI artifact). What they push is what the control plane lists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import EcrdServer, aws_json, boto_client, docker, run_aws, skopeo

BACKENDS = ["memory", "disk"]


@pytest.fixture(scope="module", params=BACKENDS)
def registry(request):
    """One server per backend for this module; the URI host is localhost:<port>."""
    args: list[str] = []
    data_dir = None
    if request.param == "disk":
        data_dir = tempfile.mkdtemp(prefix="ecrd-e2e-data-")
        args = ["--data-dir", data_dir]
    server = EcrdServer(args).start()
    yield server
    server.close()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


def host(server: EcrdServer) -> str:
    return f"localhost:{server.port}"


def password(server: EcrdServer) -> str:
    return run_aws(server, "ecr", "get-login-password").stdout.strip()


def fresh_repo(server: EcrdServer, prefix: str, **kwargs) -> str:
    name = f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    boto_client(server).create_repository(repositoryName=name, **kwargs)
    return name


# ------------------------------------------------------------------ docker


def test_docker_login_push_pull(registry, docker_env):
    repo = fresh_repo(registry, "web/app")
    login = docker(docker_env, "login", "--username", "AWS", "--password-stdin", host(registry),
                   stdin=password(registry))
    assert "Login Succeeded" in login.stdout
    ref = f"{host(registry)}/{repo}:v1"
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", ref)
    pushed = docker(docker_env, "push", ref)
    digest = pushed.stdout.split("digest: ")[1].split()[0]

    details = aws_json(registry, "ecr", "describe-images", "--repository-name", repo)["imageDetails"]
    assert len(details) == 1
    assert details[0]["imageDigest"] == digest
    assert details[0]["imageTags"] == ["v1"]
    assert details[0]["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert details[0]["imageSizeInBytes"] > 3 * 1024 * 1024

    # Drop the image entirely (every tag of it), so the pull fetches the manifest.
    image_id = docker(docker_env, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    docker(docker_env, "image", "rm", "-f", image_id)
    pulled = docker(docker_env, "pull", ref)
    assert digest in pulled.stdout
    docker(docker_env, "tag", ref, "ecrd-e2e/hello:v1")  # the next tests push it too
    inspect = json.loads(docker(docker_env, "image", "inspect", ref).stdout)
    assert f"{host(registry)}/{repo}@{digest}" in inspect[0]["RepoDigests"]


def test_docker_push_to_missing_repository_and_immutable_tag(registry, docker_env):
    docker(docker_env, "login", "--username", "AWS", "--password-stdin", host(registry),
           stdin=password(registry))
    missing = f"{host(registry)}/no/such-repo:v1"
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", missing)
    result = docker(docker_env, "push", missing, check=False)
    assert result.returncode != 0
    assert "does not exist in the registry with id '000000000000'" in result.stdout + result.stderr

    repo = fresh_repo(registry, "locked", imageTagMutability="IMMUTABLE")
    ref = f"{host(registry)}/{repo}:v1"
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", ref)
    docker(docker_env, "push", ref)
    # A different image under the same immutable tag is refused.
    ctx = Path(tempfile.mkdtemp())
    (ctx / "other.txt").write_text("another image\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY other.txt /other.txt\n")
    docker(docker_env, "build", "-q", "-t", ref, str(ctx))
    result = docker(docker_env, "push", ref, check=False)
    assert result.returncode != 0
    assert ("cannot be overwritten because the repository is immutable" in result.stdout + result.stderr)
    shutil.rmtree(ctx, ignore_errors=True)


# ------------------------------------------------------------------ skopeo


def write_oci_layout(path: Path, layer: bytes) -> str:
    """A one-layer OCI image layout on disk; returns the manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    layer_digest, layer_size = put(layer)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }).encode()
    config_digest, config_size = put(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}],
    }).encode()
    manifest_digest, manifest_size = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest_size,
                       "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
    }))
    return manifest_digest


def test_skopeo_copy_in_and_out(registry, tmp_path):
    repo = fresh_repo(registry, "sk/app")
    creds = f"AWS:{password(registry)}"
    layer = os.urandom(2 * 1024 * 1024)
    digest = write_oci_layout(tmp_path / "src", layer)

    # --preserve-digests: push the manifest and layers exactly as they are.
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
           f"oci:{tmp_path / 'src'}:v1", f"docker://{host(registry)}/{repo}:v1")
    listed = aws_json(registry, "ecr", "list-images", "--repository-name", repo)["imageIds"]
    assert listed == [{"imageDigest": digest, "imageTag": "v1"}]

    inspect = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds,
                                f"docker://{host(registry)}/{repo}:v1").stdout)
    assert inspect["Digest"] == digest
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", "--creds", creds,
                             f"docker://{host(registry)}/{repo}").stdout)
    assert tags["Tags"] == ["v1"]

    # Out again, into a fresh layout: the layer comes back bit for bit.
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds,
           f"docker://{host(registry)}/{repo}:v1", f"oci:{tmp_path / 'out'}:v1")
    layer_digest = hashlib.sha256(layer).hexdigest()
    assert (tmp_path / "out" / "blobs" / "sha256" / layer_digest).read_bytes() == layer

    # Registry to registry, across repositories.
    other = fresh_repo(registry, "sk/copy")
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
           "--src-creds", creds,
           "--dest-creds", creds, f"docker://{host(registry)}/{repo}:v1",
           f"docker://{host(registry)}/{other}:c1")
    described = aws_json(registry, "ecr", "describe-images", "--repository-name", other)
    assert described["imageDetails"][0]["imageDigest"] == digest

    # A wrong password is refused.
    result = skopeo("inspect", "--tls-verify=false", "--creds", "AWS:not-a-token",
                    f"docker://{host(registry)}/{repo}:v1", check=False)
    assert result.returncode != 0

    skopeo("delete", "--tls-verify=false", "--creds", creds, f"docker://{host(registry)}/{repo}@{digest}")
    assert aws_json(registry, "ecr", "list-images", "--repository-name", repo)["imageIds"] == []


# -------------------------------------------------------------------- oras


def test_oras_push_and_pull_artifact(registry, tmp_path):
    oras_client = pytest.importorskip("oras.client", reason="pip package oras (.ci/run installs it)")
    repo = fresh_repo(registry, "art/facts")
    artifact = tmp_path / "sbom.json"
    artifact.write_text('{"packages": []}\n')
    client = oras_client.OrasClient(hostname=host(registry), insecure=True, auth_backend="basic")
    client.login(username="AWS", password=password(registry), hostname=host(registry))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        response = client.push(target=f"{host(registry)}/{repo}:sbom", files=["sbom.json"],
                               manifest_annotations={"org.example.kind": "sbom"})
    finally:
        os.chdir(cwd)
    assert response.status_code == 201
    out = tmp_path / "pulled"
    files = client.pull(target=f"{host(registry)}/{repo}:sbom", outdir=str(out))
    assert Path(files[0]).read_text() == '{"packages": []}\n'

    image = aws_json(registry, "ecr", "describe-images", "--repository-name", repo)["imageDetails"][0]
    assert image["imageTags"] == ["sbom"]
    assert image["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image["artifactMediaType"]

    # The same manifest comes back through the control plane.
    got = boto_client(registry).batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "sbom"}])
    manifest = json.loads(got["images"][0]["imageManifest"])
    assert manifest["annotations"]["org.example.kind"] == "sbom"


def test_control_plane_token_is_the_docker_password(registry):
    token = aws_json(registry, "ecr", "get-authorization-token")["authorizationData"][0]
    user, _, pw = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and pw
    assert token["proxyEndpoint"] == f"https://{host(registry)}"


def test_restart_keeps_images_tags_and_policies(tmp_path):
    """create, push (skopeo), tag, set policies, stop, start: everything is there."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (.ci/run installs it)")
    data_dir = tmp_path / "data"
    server = EcrdServer(["--data-dir", str(data_dir)]).start()
    try:
        ecr = boto_client(server)
        ecr.create_repository(repositoryName="keep/app", imageTagMutability="IMMUTABLE",
                              tags=[{"Key": "team", "Value": "core"}])
        policy = json.dumps({"rules": [{"rulePriority": 1, "selection": {
            "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5},
            "action": {"type": "expire"}}]})
        ecr.put_lifecycle_policy(repositoryName="keep/app", lifecyclePolicyText=policy)
        creds = f"AWS:{password(server)}"
        digest = write_oci_layout(tmp_path / "src", os.urandom(512 * 1024))
        skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
               f"oci:{tmp_path / 'src'}:v1", f"docker://{host(server)}/keep/app:v1")
        before = ecr.describe_repositories()["repositories"]
        assert server.terminate() == 0
        port = server.port
        server.close()

        server = EcrdServer(["--data-dir", str(data_dir)]).start()
        ecr = boto_client(server)
        after = ecr.describe_repositories()["repositories"]
        assert [r["repositoryArn"] for r in after] == [r["repositoryArn"] for r in before]
        assert after[0]["imageTagMutability"] == "IMMUTABLE"
        arn = after[0]["repositoryArn"]
        assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "core"}]
        assert json.loads(ecr.get_lifecycle_policy(repositoryName="keep/app")["lifecyclePolicyText"]) \
            == json.loads(policy)
        ids = ecr.list_images(repositoryName="keep/app")["imageIds"]
        assert ids == [{"imageDigest": digest, "imageTag": "v1"}]
        # The password issued before the restart still opens the registry (the
        # token secret lives in the data directory); the image pulls back.
        assert port != 0
        skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds,
               f"docker://{host(server)}/keep/app:v1", f"oci:{tmp_path / 'out'}:v1")
        index = json.loads((tmp_path / "out" / "index.json").read_text())
        assert index["manifests"][0]["digest"] == digest
    finally:
        server.close()
