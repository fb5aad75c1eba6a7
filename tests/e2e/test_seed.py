"""Seeding and snapshots against the real binary, with real clients.

- `ecrd serve --init FILE` loads images from a local OCI layout (written by
  `fixtures/seed/make_layout.py`) and from a `docker save` archive (of an
  image built FROM scratch); `docker pull` of a seeded image works as soon
  as the server answers its health check, with no API call in between.
- A running memory server's state, fetched from `GET /_ecrd/snapshot`, is
  loaded with `ecrd import` into a `--data-dir`; a server on that directory
  serves the same manifests and blobs (byte for byte, same digests) to
  skopeo and docker, with the same tags, timestamps and policies. A
  tampered snapshot is refused by `ecrd import` and the directory is left
  as it was.
- `examples/seed/seed.yaml`, with the layout its comment says to build,
  applies cleanly, and a second start over the same `--data-dir` changes
  nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, boto_client, docker, find_binary, http, run_aws, skopeo

sys.path.insert(0, str(REPO_ROOT / "fixtures" / "seed"))
import make_layout  # noqa: E402  (the fixture script, used as a module)


def host(server) -> str:
    return f"localhost:{server.port}"


def password(server) -> str:
    return run_aws(server, "ecr", "get-login-password").stdout.strip()


def docker_login(env, server) -> None:
    login = docker(env, "login", "--username", "AWS", "--password-stdin", host(server),
                   stdin=password(server))
    assert "Login Succeeded" in login.stdout


def layout_manifest(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def read_from_image(env, ref: str, path: str) -> bytes:
    """The bytes of one file of a pulled image (created, never run: the
    images here have no shell)."""
    container = docker(env, "create", ref, "/none").stdout.strip()
    try:
        out = subprocess.run(["docker", "cp", f"{container}:{path}", "-"], env=env,
                             capture_output=True, timeout=120, check=True).stdout
    finally:
        docker(env, "rm", "-f", container, check=False)
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        member = tar.extractfile(Path(path).name)
        assert member is not None
        return member.read()


def forget_image(env, ref: str) -> None:
    """Drops the image (every tag of it) from the daemon, so a pull fetches it."""
    inspected = docker(env, "image", "inspect", "--format", "{{.Id}}", ref, check=False)
    if inspected.returncode == 0:
        docker(env, "image", "rm", "-f", inspected.stdout.strip())


@pytest.fixture
def sources(tmp_path, docker_env):
    """A seed directory: an OCI layout with two images, and `docker save`
    of the session's FROM-scratch image."""
    layout = tmp_path / "layouts" / "app"
    digests = make_layout.write_layout(layout, 2, "v")
    archive = tmp_path / "hello.tar"
    docker(docker_env, "save", "-o", str(archive), "ecrd-e2e/hello:v1")
    return {"layout": layout, "digests": digests, "archive": archive}


def seed_text() -> str:
    return """
accounts:
  - account: "000000000000"
    regions:
      - region: us-east-1
        repositories:
          - name: team/app
            imageTagMutability: IMMUTABLE
            tags: {env: ci}
            repositoryPolicy:
              Version: "2012-10-17"
              Statement:
                - {Sid: Pull, Effect: Allow, Principal: {AWS: "arn:aws:iam::111111111111:root"},
                   Action: [ecr:BatchGetImage]}
            lifecyclePolicy: '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}}]}'
            images:
              - {source: "oci:layouts/app:v1", tags: [v1, stable]}
              - {source: "oci:layouts/app:v2", tags: [v2]}
          - name: team/hello
            images:
              - {source: "docker-archive:hello.tar", tags: [saved]}
"""


def test_a_seeded_image_pulls_at_once(spawn, docker_env, sources, tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(seed_text())
    server = spawn(args=["--init", str(seed)])
    docker_login(docker_env, server)

    # The layout's image, by tag, straight after the health check answered.
    ref = f"{host(server)}/team/app:v1"
    forget_image(docker_env, ref)
    pulled = docker(docker_env, "pull", ref)
    assert sources["digests"][0] in pulled.stdout
    inspect = json.loads(docker(docker_env, "image", "inspect", ref).stdout)[0]
    assert f"{host(server)}/team/app@{sources['digests'][0]}" in inspect["RepoDigests"]
    assert read_from_image(docker_env, ref, "/hello.txt") == b"hello from app v1\n"

    # The docker-archive's image comes back as the same image docker saved.
    saved_id = docker(docker_env, "image", "inspect", "--format", "{{.Id}}",
                      "ecrd-e2e/hello:v1").stdout.strip()
    ref = f"{host(server)}/team/hello:saved"
    docker(docker_env, "pull", ref)
    assert docker(docker_env, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() \
        == saved_id
    assert read_from_image(docker_env, ref, "/hello.txt") == b"hello from ecrd e2e\n"
    docker(docker_env, "rmi", ref)

    # What the control plane says matches the seed file.
    ecr = boto_client(server)
    images = ecr.describe_images(repositoryName="team/app")["imageDetails"]
    assert {i["imageDigest"]: sorted(i["imageTags"]) for i in images} == {
        sources["digests"][0]: ["stable", "v1"], sources["digests"][1]: ["v2"]}
    repo = ecr.describe_repositories(repositoryNames=["team/app"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    # Immutability holds against docker too: the seeded tag cannot be moved.
    other = f"{host(server)}/team/app:v1"
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", other)
    refused = docker(docker_env, "push", other, check=False)
    assert refused.returncode != 0
    assert "immutable" in refused.stdout + refused.stderr


def snapshot_of(server) -> bytes:
    status, headers, body = http("GET", f"{server.url}/_ecrd/snapshot", timeout=60)
    assert status == 200, body[:500]
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/x-tar"
    return body


def state_of(server) -> dict:
    """What a user would compare: images (digest, tags, size, push time,
    media type), repository settings and policies."""
    ecr = boto_client(server)
    out = {}
    for repo in ecr.describe_repositories()["repositories"]:
        name = repo["repositoryName"]
        images = ecr.describe_images(repositoryName=name)["imageDetails"]
        entry = {
            "repository": {k: repo[k] for k in ("repositoryArn", "createdAt",
                                                "imageTagMutability",
                                                "imageScanningConfiguration")},
            "images": sorted((i["imageDigest"], sorted(i.get("imageTags", [])),
                              i["imageSizeInBytes"], i["imagePushedAt"],
                              i["imageManifestMediaType"]) for i in images),
            "tags": ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"],
        }
        try:
            entry["policy"] = ecr.get_repository_policy(repositoryName=name)["policyText"]
        except ecr.exceptions.RepositoryPolicyNotFoundException:
            entry["policy"] = None
        try:
            entry["lifecycle"] = ecr.get_lifecycle_policy(repositoryName=name)[
                "lifecyclePolicyText"]
        except ecr.exceptions.LifecyclePolicyNotFoundException:
            entry["lifecycle"] = None
        out[name] = entry
    return out


def ecrd_cli(*args, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(find_binary()), *args], capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"ecrd {args} failed ({result.returncode}):\n{result.stderr}")
    return result


def test_snapshot_of_a_memory_server_imported_into_a_data_dir(spawn, docker_env, sources,
                                                              tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(seed_text())
    memory = spawn(args=["--init", str(seed)])
    # Something not from the seed: an image skopeo pushes from the archive.
    boto_client(memory).create_repository(repositoryName="team/copied")
    creds = f"AWS:{password(memory)}"
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
           f"docker-archive:{sources['archive']}", f"docker://{host(memory)}/team/copied:c1")
    before = state_of(memory)
    snapshot = snapshot_of(memory)
    (tmp_path / "snapshot.tar").write_bytes(snapshot)

    data_dir = tmp_path / "data"
    imported = ecrd_cli("import", str(tmp_path / "snapshot.tar"), "--data-dir", str(data_dir))
    assert imported.returncode == 0
    disk = spawn(args=["--data-dir", str(data_dir)])
    assert state_of(disk) == before

    # skopeo reads the same manifest bytes and the same blob bytes.
    creds = f"AWS:{password(disk)}"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds,
                 f"docker://{host(disk)}/team/app:v2").stdout.encode()
    assert raw == layout_manifest(sources["layout"], sources["digests"][1])
    out = tmp_path / "out"
    skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds,
           f"docker://{host(disk)}/team/app:v1", f"oci:{out}:v1")
    manifest = json.loads(layout_manifest(sources["layout"], sources["digests"][0]))
    for blob in [manifest["config"], *manifest["layers"]]:
        name = blob["digest"].split(":", 1)[1]
        copied = (out / "blobs" / "sha256" / name).read_bytes()
        assert copied == (sources["layout"] / "blobs" / "sha256" / name).read_bytes()
        assert hashlib.sha256(copied).hexdigest() == name

    # docker pulls from the disk server, by digest, the image skopeo pushed.
    docker_login(docker_env, disk)
    digest = next(i[0] for i in before["team/copied"]["images"])
    ref = f"{host(disk)}/team/copied@{digest}"
    forget_image(docker_env, f"{host(disk)}/team/copied:c1")
    docker(docker_env, "pull", ref)
    assert read_from_image(docker_env, ref, "/hello.txt") == b"hello from ecrd e2e\n"
    docker(docker_env, "rmi", ref)

    # And back: the disk server's snapshot restores a fresh memory server.
    restored = spawn()
    status, _, body = http("POST", f"{restored.url}/_ecrd/snapshot", body=snapshot_of(disk),
                           headers={"Content-Type": "application/x-tar"}, timeout=60)
    assert status == 200, body
    assert state_of(restored) == before


def test_a_tampered_snapshot_is_refused_and_changes_nothing(spawn, sources, tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(seed_text())
    memory = spawn(args=["--init", str(seed)])
    snapshot = bytearray(snapshot_of(memory))
    # A byte of the layer the layout's v1 image holds, changed in place.
    manifest = json.loads(layout_manifest(sources["layout"], sources["digests"][0]))
    layer = (sources["layout"] / "blobs" / "sha256"
             / manifest["layers"][0]["digest"].split(":", 1)[1]).read_bytes()
    at = bytes(snapshot).find(layer)
    assert at > 0
    snapshot[at + len(layer) // 2] ^= 0xFF
    (tmp_path / "bad.tar").write_bytes(bytes(snapshot))

    data_dir = tmp_path / "data"
    refused = ecrd_cli("import", str(tmp_path / "bad.tar"), "--data-dir", str(data_dir),
                       check=False)
    assert refused.returncode != 0
    hex_digest = manifest["layers"][0]["digest"].split(":", 1)[1]
    assert f"blobs/sha256/{hex_digest}" in refused.stderr
    assert "the snapshot was changed or damaged; nothing was changed" in refused.stderr
    server = spawn(args=["--data-dir", str(data_dir)])
    assert boto_client(server).describe_repositories()["repositories"] == []


def test_the_example_seed_file_applies(spawn, tmp_path):
    example = REPO_ROOT / "examples" / "seed" / "seed.yaml"
    shutil.copy(example, tmp_path / "seed.yaml")
    # The layout, built as the example's comment says.
    built = subprocess.run([sys.executable, str(REPO_ROOT / "fixtures" / "seed" / "make_layout.py"),
                            str(tmp_path / "layouts" / "hello")],
                           capture_output=True, text=True, check=True, timeout=60)
    digest = built.stdout.split()[0]
    data_dir = tmp_path / "data"
    args = ["--init", str(tmp_path / "seed.yaml"), "--data-dir", str(data_dir)]
    server = spawn(args=args)

    ecr = boto_client(server)
    repo = ecr.describe_repositories(repositoryNames=["team/app"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    images = ecr.describe_images(repositoryName="team/app")["imageDetails"]
    assert [(i["imageDigest"], sorted(i["imageTags"])) for i in images] == \
        [(digest, ["latest", "v1"])]
    assert json.loads(ecr.get_repository_policy(repositoryName="team/app")["policyText"])[
        "Statement"][0]["Sid"] == "CiPull"
    assert "keep 10" in ecr.get_lifecycle_policy(repositoryName="team/app")["lifecyclePolicyText"]
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "BASIC"
    templates = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert [t["prefix"] for t in templates] == ["team"]
    # The second account's key, declared in the file, works and sees its repository.
    ci = boto_client(server, key="AKIACI", secret="cisecret")
    assert [r["repositoryName"] for r in ci.describe_repositories()["repositories"]] == \
        ["ci/cache"]
    # The image is there for a registry client at once.
    creds = f"AWS:{password(server)}"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds,
                 f"docker://{host(server)}/team/app:latest").stdout.encode()
    assert hashlib.sha256(raw).hexdigest() == digest.split(":", 1)[1]

    # Idempotent: a second start with the same file over the same directory
    # writes nothing and leaves every timestamp as it was.
    before = state_of(server)
    server.terminate()
    again = spawn(args=args)
    assert state_of(again) == before
    assert "0 records written" in again.output()
