"""Every program under examples/ and every README quick start, run as a user
runs them, each against a fresh ecrd; plus `ecrd serve --help` against the
README's configuration table.

- examples/aws-cli/quickstart.sh (and the README's AWS CLI block is its text),
- examples/boto3/quickstart.py (push through the API, lifecycle, clock),
- examples/rust_sdk.rs (the binary `cargo test --release` builds),
- examples/node/quickstart.mjs (`npm ci --prefix examples/node` first),
- examples/docker/push-pull.sh (a dockerd already on the default socket, or
  the private one test_registry_clients starts),
- examples/terraform: `terraform fmt -check`, and replay.py's provider calls,
- the README's boto3, docker, skopeo and oras quick starts, block for block.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, boto_client, find_binary, http

EXAMPLES = REPO_ROOT / "examples"
README = REPO_ROOT / "README.md"
sys.path.insert(0, str(REPO_ROOT))
from fixtures.images import OCI_MANIFEST, image, push_with_api  # noqa: E402


def run_example(cmd: list[str], server, cwd: Path | None = None, env: dict | None = None,
                timeout: float = 300) -> str:
    """Runs one example against `server`; its output, or a failure showing it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECRD_"))}
    full_env.update(ECRD_ENDPOINT=server.url, **(env or {}))
    result = subprocess.run(cmd, cwd=cwd or REPO_ROOT, env=full_env, capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (
        f"{cmd} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n"
        f"{result.stderr}\n--- ecrd\n{server.output()[-3000:]}")
    return result.stdout


def code_blocks(markdown: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", markdown, re.S | re.M)


def section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n{heading}\n")
    rest = markdown[start + len(heading) + 2:]
    end = re.search(r"^#{2,3} ", rest, re.M)
    return rest[:end.start()] if end else rest


# ------------------------------------------------------------------ AWS CLI


def test_aws_cli_quickstart(spawn):
    server = spawn()
    out = run_example([str(EXAMPLES / "aws-cli" / "quickstart.sh")], server)
    assert "team/app\tTrue" in out
    assert "env\tdev" in out
    assert "RepositoryNotFoundException" in out
    [repo] = boto_client(server).describe_repositories()["repositories"]
    assert repo["repositoryName"] == "team/app"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    # The password it printed is a working registry login.
    password = [line for line in out.splitlines() if line.startswith("eyJ")][0]
    import base64
    status, _, _ = http("GET", f"{server.url}/v2/", headers={
        "Authorization": "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()})
    assert status == 200


def test_readme_aws_cli_block_is_the_example():
    """The README's AWS CLI quick start is the script, command for command."""
    block = code_blocks(section(README.read_text(), "### AWS CLI"), "sh")[0]
    script = (EXAMPLES / "aws-cli" / "quickstart.sh").read_text()
    commands = block.replace("\\\n", " ").replace("http://localhost:4566", '"$ENDPOINT"')
    flat_script = re.sub(r"\s+", " ", script.replace("\\\n", " "))
    for line in commands.splitlines():
        if line.strip():
            assert re.sub(r"\s+", " ", line.strip()) in flat_script, line


# ------------------------------------------------------------------ boto3


def test_boto3_quickstart(spawn):
    server = spawn()
    out = run_example([sys.executable, str(EXAMPLES / "boto3" / "quickstart.py")], server)
    assert "preview today: nothing expires" in out
    assert "preview in 8 days: ['v1'] expires by rule 1" in out
    assert "the image expired; the repository is empty" in out
    # It cleaned up after itself: clock back at real time, repository gone.
    status, _, body = http("GET", f"{server.url}/_ecrd/clock")
    assert status == 200 and b'"offsetSeconds":0.0' in body, body
    assert boto_client(server).describe_repositories()["repositories"] == []


def test_boto3_readme_block(spawn, tmp_path):
    server = spawn()
    block = code_blocks(section(README.read_text(), "### boto3"), "python")[0]
    script = tmp_path / "readme_boto3.py"
    script.write_text(block.replace("http://localhost:4566", server.url))
    out = run_example([sys.executable, str(script)], server, cwd=tmp_path)
    assert out.splitlines() == [
        f"localhost:{server.port}/team/boto3", "team/boto3",
        "The repository with name 'missing' does not exist in the registry with id "
        "'000000000000'"]


# ------------------------------------------------------------------ SDKs


def test_rust_sdk_example(spawn):
    # `cargo test --release` (and .ci/run) builds examples next to the binary.
    binary = find_binary().parent / "examples" / "rust_sdk"
    assert binary.is_file(), (
        f"{binary} is missing: build it with `cargo build --release --example rust_sdk`")
    server = spawn()
    out = run_example([str(binary)], server)
    assert "described quickstart/rust: IMMUTABLE, scan on push" in out
    assert "deleted; describing it again: RepositoryNotFoundException" in out
    assert out.splitlines()[-1] == "done"
    assert boto_client(server).describe_repositories()["repositories"] == []


def test_node_sdk_example(spawn):
    if shutil.which("node") is None:
        pytest.fail("node is not installed (.ci/run uses Debian's nodejs)")
    modules = EXAMPLES / "node" / "node_modules" / "@aws-sdk" / "client-ecr"
    assert modules.is_dir(), "run `npm ci --prefix examples/node` first (.ci/run does)"
    server = spawn()
    out = run_example(["node", str(EXAMPLES / "node" / "quickstart.mjs")], server)
    assert "described quickstart/node IMMUTABLE" in out
    assert "paginated: quickstart/node" in out
    assert "RepositoryNotFoundException" in out
    assert out.splitlines()[-1] == "done"


# ------------------------------------------------------------------ docker


@pytest.fixture
def docker_daemon(request, tmp_path):
    """A docker daemon's environment: the machine's own on the default socket
    when one answers (never stopped here), else the suite's private dockerd.
    The client config is private either way, so logins leave no trace."""
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed (.ci/run installs docker.io)")
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if subprocess.run(["docker", "info"], env=env, capture_output=True,
                      timeout=30).returncode == 0:
        return dict(env, DOCKER_CONFIG=str(tmp_path / "docker-config"))
    private = request.getfixturevalue("docker_env")
    return dict(private, DOCKER_CONFIG=str(tmp_path / "docker-config"))


def test_docker_push_pull_example(spawn, docker_daemon):
    server = spawn()
    env = {k: v for k, v in docker_daemon.items() if k.startswith("DOCKER")}
    out = run_example([str(EXAMPLES / "docker" / "push-pull.sh")], server, env=env)
    assert f"localhost:{server.port}/quickstart/docker@sha256:" in out
    assert "quickstart/docker" in out.splitlines()[-1]
    assert boto_client(server).describe_repositories()["repositories"] == []


def test_readme_docker_block(spawn, docker_daemon, tmp_path):
    """The README's docker quick start as written (its image built from
    scratch in ./hello), with the port this server has."""
    server = spawn()
    block = code_blocks(section(README.read_text(), "### docker"), "sh")[0]
    script = (block.replace("http://localhost:4566", server.url)
              .replace("localhost:4566", f"localhost:{server.port}"))
    env = {k: v for k, v in docker_daemon.items() if k.startswith("DOCKER")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1", DOCKER_BUILDKIT="0")
    out = run_example(["bash", "-euo", "pipefail", "-c", script], server, cwd=tmp_path, env=env)
    [detail] = boto_client(server).describe_images(
        repositoryName="quickstart/docker")["imageDetails"]
    assert detail["imageTags"] == ["v1"]
    assert detail["imageDigest"] in out  # docker pull printed the digest it got
    tag = f"localhost:{server.port}/quickstart/docker:v1"
    subprocess.run(["docker", "image", "rm", tag], env=dict(os.environ, **env),
                   capture_output=True, timeout=60)


# ------------------------------------------------------------------ skopeo, oras (README)


def test_readme_skopeo_block(spawn, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (.ci/run installs it)")
    server = spawn()
    block = code_blocks(section(README.read_text(), "### skopeo"), "sh")[0]
    script = (block.replace("http://localhost:4566", server.url)
              .replace("localhost:4566", f"localhost:{server.port}")
              .replace("fixtures/images.py", str(REPO_ROOT / "fixtures" / "images.py")))
    out = run_example(["bash", "-euo", "pipefail", "-c", script], server, cwd=tmp_path,
                      env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1"})
    expected = image({"hello.txt": b"hello from ecrd\n"}).digest
    assert expected in out  # the layout's digest, printed by fixtures/images.py
    [detail] = boto_client(server).describe_images(repositoryName="team/skopeo")["imageDetails"]
    assert detail["imageTags"] == ["v1"]


def test_readme_oras_blocks(spawn, tmp_path):
    pytest.importorskip("oras.client", reason="pip package oras (.ci/run installs it)")
    server = spawn()
    text = section(README.read_text(), "### oras")
    shell = code_blocks(text, "sh")[0]
    python = code_blocks(text, "python")[0]

    def local(s: str) -> str:
        return (s.replace("http://localhost:4566", server.url)
                .replace("localhost:4566", f"localhost:{server.port}")
                .replace("fixtures/images.py", str(REPO_ROOT / "fixtures" / "images.py")))

    (tmp_path / "push.py").write_text(local(python))
    script = local(shell) + f"\n{sys.executable} push.py\n"
    run_example(["bash", "-euo", "pipefail", "-c", script], server, cwd=tmp_path,
                env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_DEFAULT_REGION": "us-east-1"})
    assert (tmp_path / "pulled" / "sbom.json").read_bytes() == (tmp_path / "sbom.json").read_bytes()
    [detail] = boto_client(server).describe_images(repositoryName="team/oras")["imageDetails"]
    assert detail["imageTags"] == ["sbom"]


def test_fixture_image_pushed_through_the_api_pulls_from_v2(spawn):
    """fixtures/images.py's image, pushed with the API's layer upload and
    PutImage, is the same bytes on the registry plane."""
    server = spawn()
    ecr = boto_client(server)
    ecr.create_repository(repositoryName="fixtures/hello")
    img = image({"hello.txt": b"hello from fixtures\n"})
    assert push_with_api(ecr, "fixtures/hello", img, "v1") == img.digest
    assert push_with_api(ecr, "fixtures/hello", img, "v2") == img.digest  # blobs already there
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    auth = {"Authorization": f"Basic {token}"}
    status, headers, body = http("GET", f"{server.url}/v2/fixtures/hello/manifests/v1",
                                 headers={**auth, "Accept": OCI_MANIFEST})
    assert status == 200 and body == img.manifest
    assert {k.lower(): v for k, v in headers.items()}["docker-content-digest"] == img.digest
    for digest, data in img.blobs.items():
        status, _, body = http("GET", f"{server.url}/v2/fixtures/hello/blobs/{digest}",
                               headers=auth)  # urllib follows ecrd's 307
        assert (status, body) == (200, data)


# ------------------------------------------------------------------ Terraform


TERRAFORM_RESOURCES = {
    "aws_ecr_repository", "aws_ecr_lifecycle_policy", "aws_ecr_repository_policy",
    "aws_ecr_registry_policy", "aws_ecr_pull_through_cache_rule",
    "aws_ecr_repository_creation_template", "aws_ecr_registry_scanning_configuration",
    "aws_ecr_replication_configuration", "aws_ecr_account_setting",
    "aws_ecr_pull_time_update_exclusion", "aws_ecr_signing_configuration",
}


def test_terraform_configuration_is_formatted_and_complete():
    config = (EXAMPLES / "terraform" / "main.tf").read_text()
    used = set(re.findall(r'^resource "(aws_ecr_\w+)"', config, re.M))
    assert used == TERRAFORM_RESOURCES
    assert re.search(r'ecr\s*=\s*var\.endpoint', config)
    assert re.search(r'sts\s*=\s*var\.endpoint', config)
    # The replay covers exactly the resources the configuration uses.
    replay = (EXAMPLES / "terraform" / "replay.py").read_text()
    assert set(re.findall(r"^def (aws_ecr_\w+)\(", replay, re.M)) == TERRAFORM_RESOURCES
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (no Debian package; the rest was checked)")
    result = subprocess.run([terraform, "fmt", "-check", "-diff", "-recursive",
                             str(EXAMPLES / "terraform")], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, TF_CLI_CONFIG_FILE=os.devnull))
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_provider_replay(spawn):
    server = spawn(args=["--secrets-file", str(EXAMPLES / "terraform" / "secrets.json")])
    out = run_example([sys.executable, str(EXAMPLES / "terraform" / "replay.py")], server)
    for resource in TERRAFORM_RESOURCES:
        assert f"\n{resource}\n" in out, resource
    assert out.splitlines()[-1] == \
        "every resource: create, read, update, delete as the provider expects"


# ------------------------------------------------------------------ --help and README


def serve_help() -> str:
    return subprocess.run([str(find_binary()), "serve", "--help"], capture_output=True,
                          text=True, timeout=30, check=True).stdout


def help_names() -> tuple[set[str], set[str]]:
    """(flags, environment variables) that `ecrd serve --help` names."""
    out = serve_help()
    flags = set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", out, re.M)) - {"--help"}
    env = set(re.findall(r"\b(ECRD_[A-Z0-9_]+)\b", out))
    return flags, env


def help_pairs() -> set[tuple[str, str]]:
    """(flag, its variable) as clap prints them: `[env: NAME=]` in the flag's block."""
    blocks = re.split(r"^(?=\s{2,6}(?:-\w, )?--[a-z])", serve_help(), flags=re.M)
    pairs = set()
    for block in blocks:
        flag = re.match(r"\s+(?:-\w, )?(--[a-z0-9-]+)", block)
        env = re.search(r"\[env: (ECRD_[A-Z0-9_]+)", block)
        if flag and env:
            pairs.add((flag.group(1), env.group(1)))
    return pairs


def readme_pairs() -> set[tuple[str, str]]:
    table = section(README.read_text(), "## Configuration reference")
    return set(re.findall(r"^\| `(--[a-z0-9-]+)` \| `(ECRD_[A-Z0-9_]+)` \|", table, re.M))


def readme_names() -> tuple[set[str], set[str]]:
    """(flags, environment variables) of the README's configuration table."""
    table = section(README.read_text(), "## Configuration reference")
    flags, env = set(), set()
    for row in re.findall(r"^\|(.*)\|$", table, re.M):
        cells = [c.strip() for c in row.split("|")]
        if len(cells) < 4 or cells[0] == "Flag" or re.fullmatch(r":?-+:?", cells[0]):
            continue  # the header and its rule
        flags |= set(re.findall(r"`(--[a-z0-9-]+)`", cells[0]))
        env |= set(re.findall(r"`(ECRD_[A-Z0-9_]+)`", cells[1]))
    return flags, env


def test_help_and_readme_configuration_table_agree():
    help_flags, help_env = help_names()
    readme_flags, readme_env = readme_names()
    assert "ECRD_LOG" in help_env and "--port" in help_flags  # the parsers found something
    assert help_flags - readme_flags == set(), "flags in --help, not in the README's table"
    assert readme_flags - help_flags == set(), "flags in the README's table, not in --help"
    assert help_env - readme_env == set(), "variables in --help, not in the README's table"
    assert readme_env - help_env == set(), "variables in the README's table, not in --help"
    # And each row pairs a flag with the variable clap reads for it.
    assert help_pairs() == readme_pairs()
