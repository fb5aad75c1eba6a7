"""Pull-through cache against a real upstream: Debian's `docker-registry`
(the CNCF distribution registry) on loopback stands in for Docker Hub, with
ecrd's `--upstream docker-hub=...` pointing at it. skopeo pulls through ecrd
as a user would; the image arrives byte for byte, the repository appears,
and the cache keeps serving once the upstream is gone."""

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, EcrdServer, boto_client, error_of, free_port, http

import sys

sys.path.insert(0, str(REPO_ROOT))
from fixtures.images import image, write_oci_layout  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub"

pytestmark = pytest.mark.skipif(
    shutil.which("skopeo") is None or not Path(REGISTRY_BIN).exists(),
    reason="needs skopeo and docker-registry (.ci/run installs them)",
)


class Upstream:
    """A docker-registry process with filesystem storage in a temp dir."""

    def __init__(self, root: Path):
        self.port = free_port()
        (root / "storage").mkdir()
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)],
            env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "none"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{self.url}/v2/", timeout=1.0)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def world():
    tmp = Path(tempfile.mkdtemp(prefix="ecrd-ptc-"))
    (tmp / "upstream").mkdir()
    upstream = Upstream(tmp / "upstream")
    secrets = tmp / "secrets.json"
    secrets.write_text(json.dumps({SECRET_ARN: {"username": "me", "accessToken": "token"}}))
    server = EcrdServer(["--upstream", f"docker-hub={upstream.url}",
                         "--secrets-file", str(secrets)]).start()
    try:
        yield tmp, upstream, server
    finally:
        server.close()
        upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_pull_through_ecrd_fetches_from_the_upstream_once_and_then_serves_the_cache(world):
    tmp, upstream, server = world
    # The upstream holds library/busybox:1.36 (a tiny image built offline).
    img = image({"bin/busybox": b"not really busybox\n"})
    layout = tmp / "layout"
    write_oci_layout(layout, {"1.36": img})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:1.36",
           f"docker://127.0.0.1:{upstream.port}/library/busybox:1.36")

    ecr = boto_client(server)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry-1.docker.io",
        credentialArn=SECRET_ARN)
    rule = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][0]
    assert rule["upstreamRegistry"] == "docker-hub"
    assert rule["credentialArn"] == SECRET_ARN
    validated = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert validated["isValid"] is True, validated

    # Before any pull the cached repository does not exist.
    with pytest.raises(Exception) as e:
        ecr.describe_repositories(repositoryNames=["hub/library/busybox"])
    assert error_of(e)[0] == "RepositoryNotFoundException"

    password = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    import base64
    creds = base64.b64decode(password).decode()
    # Docker Hub's single names are under library/, as with ECR.
    pulled = tmp / "pulled"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds,
           f"docker://127.0.0.1:{server.port}/hub/library/busybox:1.36", f"oci:{pulled}:x")
    index = json.loads((pulled / "index.json").read_text())
    assert index["manifests"][0]["digest"] == img.digest

    repo = ecr.describe_repositories(repositoryNames=["hub/library/busybox"])["repositories"][0]
    assert repo["repositoryName"] == "hub/library/busybox"
    # The manifest was answered before its blobs were all in: the image is
    # committed by the background import once they are.
    deadline = time.time() + 10
    while True:
        images = ecr.describe_images(repositoryName="hub/library/busybox")["imageDetails"]
        if images or time.time() > deadline:
            break
        time.sleep(0.05)
    assert [i["imageDigest"] for i in images] == [img.digest]
    assert images[0]["imageTags"] == ["1.36"]

    # With the upstream gone, the cache still serves the image (to the API
    # and to a registry client).
    upstream.stop()
    got = ecr.batch_get_image(repositoryName="hub/library/busybox",
                              imageIds=[{"imageTag": "1.36"}])["images"]
    assert got[0]["imageId"]["imageDigest"] == img.digest
    again = tmp / "again"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds,
           f"docker://127.0.0.1:{server.port}/hub/library/busybox:1.36", f"oci:{again}:x")
    assert json.loads((again / "index.json").read_text())["manifests"][0]["digest"] == img.digest

    # An image never cached cannot come from an upstream that is down.
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", creds,
                        f"docker://127.0.0.1:{server.port}/hub/library/alpine:3"],
                       check=True, capture_output=True, timeout=60)
