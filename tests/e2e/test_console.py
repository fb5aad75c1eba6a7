"""The web console end to end, on both backends: real images pushed with
skopeo into a repository that scans on push (with the real OSV records of
`fixtures/osv`), a lifecycle policy, a repository policy, an upload left
open and a garbage collection run; then headless Chromium (Debian's
`chromium`, driven by playwright-core from `tests/e2e/console/`) loads every
console view reachable by links, and the test checks what a user would look
for against what the API answers for the same data: tags, scan badges,
findings, what lifecycle would expire. Any console error, broken link,
inaccessible form, badge below 4.5:1 contrast or unbalanced HTML fails it.
Screenshots go to `$ECRD_E2E_ARTIFACTS/console/<backend>/` (default
`target/e2e-artifacts`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import JSON, REPO_ROOT, EcrdServer, aws_json, boto_client, http, run_aws

BACKENDS = ["memory", "disk"]
FIXTURES = REPO_ROOT / "fixtures"
CRAWLER = REPO_ROOT / "tests" / "e2e" / "console"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("ECRD_E2E_ARTIFACTS", REPO_ROOT / "target" / "e2e-artifacts"))
ACCOUNT = "000000000000"
REGION = "us-east-1"
REPO = "team/app"
LIFECYCLE = {
    "rules": [{
        "rulePriority": 1,
        "description": "keep one image",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"},
    }]
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "ReadOnlyForCi",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }],
}


def require_tools() -> None:
    missing = [tool for tool in ("skopeo", "node") if shutil.which(tool) is None]
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    if not (CRAWLER / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/e2e/console/node_modules (npm ci --prefix tests/e2e/console)")
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (.ci/run installs them)")


@pytest.fixture(scope="module")
def layouts():
    out = tempfile.mkdtemp(prefix="ecrd-e2e-console-images-")
    subprocess.run([sys.executable, str(FIXTURES / "scan" / "make_images.py"), out],
                   check=True, capture_output=True, timeout=120)
    yield Path(out)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request):
    require_tools()
    args = ["--vuln-db", str(FIXTURES / "osv")]
    data_dir = None
    if request.param == "disk":
        data_dir = tempfile.mkdtemp(prefix="ecrd-e2e-console-data-")
        args += ["--data-dir", data_dir]
    srv = EcrdServer(args).start()
    srv.backend = request.param
    yield srv
    srv.close()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


def push(server: EcrdServer, layouts: Path, image: str, tag: str) -> None:
    password = run_aws(server, "ecr", "get-login-password").stdout.strip()
    result = subprocess.run(
        ["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
         "--dest-creds", f"AWS:{password}", f"oci:{layouts / image}:{image}",
         f"docker://localhost:{server.port}/{REPO}:{tag}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


class Balance(HTMLParser):
    """Checks that every element is closed in order (void elements aside)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()


def well_formed(html: str) -> list[str]:
    parser = Balance()
    parser.feed(html)
    parser.close()
    errors = list(parser.errors)
    if parser.stack:
        errors.append(f"unclosed: {parser.stack}")
    if not html.lstrip().lower().startswith("<!doctype html>"):
        errors.append("no doctype")
    return errors


def console(server: EcrdServer, view: str, **query) -> str:
    url = f"{server.url}/_ecrd/console/{view}"
    if query:
        url += "?" + urllib.parse.urlencode(query, safe="/:", quote_via=urllib.parse.quote)
    return url


def test_every_view_shows_what_the_api_answers(server, layouts):
    ecr = boto_client(server)
    ecr.create_repository(repositoryName=REPO,
                          imageScanningConfiguration={"scanOnPush": True})
    push(server, layouts, "debian9-vulnerable", "v1")
    push(server, layouts, "alpine318-vulnerable", "v2")
    for tag in ("v1", "v2"):
        run_aws(server, "ecr", "wait", "image-scan-complete", "--repository-name", REPO,
                "--image-id", f"imageTag={tag}")
    ecr.put_lifecycle_policy(repositoryName=REPO, lifecyclePolicyText=json.dumps(LIFECYCLE))
    ecr.set_repository_policy(repositoryName=REPO, policyText=json.dumps(POLICY))
    ecr.create_repository(repositoryName="other/empty")

    # An upload left open, as an interrupted push leaves it.
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    status, headers, _ = http("POST", f"{server.url}/v2/{REPO}/blobs/uploads/",
                              headers={"Authorization": f"Basic {token}"})
    assert status == 202, status
    upload_id = {k.lower(): v for k, v in headers.items()}["docker-upload-uuid"]
    # One garbage collection, so the task view has a run to show.
    status, _, _ = http("POST", f"{server.url}/_ecrd/gc", body=b'{"graceSeconds": 3600}',
                        headers=JSON)
    assert status == 200

    # What the API says, to compare with what the pages show.
    details = {d["imageTags"][0]: d for d in ecr.describe_images(repositoryName=REPO)["imageDetails"]}
    findings = {
        tag: ecr.describe_image_scan_findings(repositoryName=REPO, imageId={"imageTag": tag})
        ["imageScanFindings"]["findings"]
        for tag in details
    }
    ecr.start_lifecycle_policy_preview(repositoryName=REPO)
    preview = ecr.get_lifecycle_policy_preview(repositoryName=REPO)
    while preview["status"] == "IN_PROGRESS":
        time.sleep(0.1)
        preview = ecr.get_lifecycle_policy_preview(repositoryName=REPO)
    expiring = {r["imageDigest"] for r in preview["previewResults"]}
    assert len(expiring) == 1

    shots = ARTIFACTS / "console" / server.backend
    shutil.rmtree(shots, ignore_errors=True)
    result = subprocess.run(
        ["node", str(CRAWLER / "crawl.mjs"), server.url, str(shots),
         "/_ecrd/console/", "/_ecrd/console/uploads", "/_ecrd/console/tasks"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unvisited"] == 0
    pages = {p["url"]: p for p in report["pages"]}

    for page in report["pages"]:
        where = page["url"]
        assert page["status"] == 200, where
        assert page["consoleErrors"] == [], (where, page["consoleErrors"])
        assert page["failed"] == [], (where, page["failed"])
        assert page["problems"] == [], (where, page["problems"])
        assert not page["overflowX"], f"{where} scrolls sideways on a laptop screen"
        status, headers, body = http("GET", where)
        headers = {k.lower(): v for k, v in headers.items()}
        assert headers["content-type"].startswith("text/html")
        assert "script" not in headers["content-security-policy"]
        assert well_formed(body.decode()) == [], where

    def page(view: str, **query) -> dict:
        url = console(server, view, **query)
        assert url in pages, f"no link led to {url}; visited {sorted(pages)}"
        return pages[url]

    overview = page("")
    assert ACCOUNT in overview["text"] and REGION in overview["text"]
    assert "2 repositories" in overview["text"]

    registry = page("registry", account=ACCOUNT, region=REGION)
    assert REPO in registry["text"] and "other/empty" in registry["text"]

    repo = page("repository", account=ACCOUNT, region=REGION, name=REPO)
    for tag, detail in details.items():
        assert tag in repo["text"]
        for severity, count in detail["imageScanFindingsSummary"]["findingSeverityCounts"].items():
            assert f"{severity} {count}" in repo["text"], (tag, severity)
    assert "ReadOnlyForCi" in repo["text"], "the repository policy is shown"

    for tag, detail in details.items():
        image = page("image", account=ACCOUNT, region=REGION, name=REPO,
                     digest=detail["imageDigest"])
        assert detail["imageDigest"] in image["h1"][0]
        for finding in findings[tag]:
            assert finding["name"] in image["text"], (tag, finding["name"])
            assert finding["uri"] in image["links"]
        # Filtering by a severity shows only that severity's findings.
        severity = findings[tag][0]["severity"]
        filtered = page("image", account=ACCOUNT, region=REGION, name=REPO,
                        digest=detail["imageDigest"], severity=severity)
        for finding in findings[tag]:
            shown = finding["name"] in filtered["text"]
            if finding["severity"] == severity:
                assert shown, finding["name"]

    lifecycle = page("lifecycle", account=ACCOUNT, region=REGION, name=REPO)
    assert "keep one image" in lifecycle["text"]
    shown_expiring = {d for d in (x["imageDigest"] for x in details.values())
                      if console(server, "image", account=ACCOUNT, region=REGION, name=REPO,
                                 digest=d) in lifecycle["links"]}
    assert expiring <= shown_expiring
    assert "EXPIRE" in lifecycle["text"]

    uploads = page("uploads")
    assert upload_id in uploads["text"]
    tasks = page("tasks")
    assert "garbage collection" in tasks["text"]

    assert (shots / "overview.png").is_file() and (shots / "image-phone.png").is_file()


def test_a_missing_repository_or_a_bad_query_is_a_page_not_a_crash(server):
    status, headers, body = http("GET", console(server, "repository", account=ACCOUNT,
                                                region=REGION, name="does/not-exist"))
    assert status == 404
    assert {k.lower(): v for k, v in headers.items()}["content-type"].startswith("text/html")
    assert b"does not exist in the registry" in body
    status, _, body = http("GET", console(server, "registry", account="12", region=REGION))
    assert status == 400 and b"12-digit account" in body
    status, _, body = http("GET", f"{server.url}/_ecrd/console/image")
    assert status == 400 and b"missing field" in body
    # Reads only: no view answers a POST.
    status, _, _ = http("POST", console(server, ""), body=b"{}", headers=JSON)
    assert status == 405
