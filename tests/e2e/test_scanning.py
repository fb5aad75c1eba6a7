"""Image scanning end to end, on both backends: the fixture images that
`fixtures/scan/make_images.py` builds are pushed with skopeo into
repositories that scan on push, a pipeline waits with
`aws ecr wait image-scan-complete` and reads the findings with the AWS CLI
and boto3, and the findings are exactly those `fixtures/scan/expected.json`
lists for the real OSV records in `fixtures/osv/`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, EcrdServer, aws_json, boto_client, run_aws

BACKENDS = ["memory", "disk"]
FIXTURES = REPO_ROOT / "fixtures"
EXPECTED = json.loads((FIXTURES / "scan" / "expected.json").read_text())["images"]
OS_KINDS = {"DPKG", "APK", "RPM"}


@pytest.fixture(scope="module")
def layouts():
    """The fixture images as OCI layouts, built once for the module."""
    out = tempfile.mkdtemp(prefix="ecrd-e2e-images-")
    subprocess.run([sys.executable, str(FIXTURES / "scan" / "make_images.py"), out],
                   check=True, capture_output=True, timeout=120)
    yield Path(out)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module", params=BACKENDS)
def scanner(request):
    args = ["--vuln-db", str(FIXTURES / "osv")]
    data_dir = None
    if request.param == "disk":
        data_dir = tempfile.mkdtemp(prefix="ecrd-e2e-data-")
        args += ["--data-dir", data_dir]
    server = EcrdServer(args).start()
    yield server
    server.close()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


def push(server: EcrdServer, layouts: Path, image: str, repo: str, tag: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (.ci/run installs it)")
    password = run_aws(server, "ecr", "get-login-password").stdout.strip()
    result = subprocess.run(
        ["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
         "--dest-creds", f"AWS:{password}", f"oci:{layouts / image}:{image}",
         f"docker://localhost:{server.port}/{repo}:{tag}"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def fresh(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


def expected_findings(image: str, os_only: bool) -> list[tuple[str, str, str, str]]:
    kinds = {p["name"]: p["kind"] for p in EXPECTED[image]["inventory"]["packages"]}
    return sorted(
        (f["name"], f["package"], f["version"], f["severity"])
        for f in EXPECTED[image]["findings"]
        if not os_only or kinds.get(f["package"]) in OS_KINDS
    )


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_pipeline_waits_for_the_scan_and_reads_true_findings(scanner, layouts, image):
    repo = fresh("scan")
    aws_json(scanner, "ecr", "create-repository", "--repository-name", repo,
             "--image-scanning-configuration", "scanOnPush=true")
    push(scanner, layouts, image, repo, "v1")
    # What a CI job runs: wait, then gate on the counts.
    run_aws(scanner, "ecr", "wait", "image-scan-complete", "--repository-name", repo,
            "--image-id", "imageTag=v1")
    answer = aws_json(scanner, "ecr", "describe-image-scan-findings",
                      "--repository-name", repo, "--image-id", "imageTag=v1")
    assert answer["imageScanStatus"] == {
        "status": "COMPLETE", "description": "The scan was completed successfully."}
    findings = answer["imageScanFindings"]["findings"]
    got = sorted(
        (f["name"],
         next(a["value"] for a in f["attributes"] if a["key"] == "package_name"),
         next(a["value"] for a in f["attributes"] if a["key"] == "package_version"),
         f["severity"])
        for f in findings
    )
    # BASIC scanning reports operating-system packages only.
    want = expected_findings(image, os_only=True)
    assert got == want
    counts: dict[str, int] = {}
    for _, _, _, severity in want:
        counts[severity] = counts.get(severity, 0) + 1
    assert answer["imageScanFindings"]["findingSeverityCounts"] == counts
    for finding in findings:
        assert finding["uri"].startswith("https://")
    # DescribeImages carries the same summary.
    detail = aws_json(scanner, "ecr", "describe-images", "--repository-name", repo)["imageDetails"][0]
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    assert detail["imageScanFindingsSummary"].get("findingSeverityCounts", {}) == counts


def test_enhanced_scan_on_push_reports_language_packages_through_boto3(scanner, layouts):
    client = boto_client(scanner)
    repo = fresh("enhanced")
    client.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[{"scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": f"{repo}*", "filterType": "WILDCARD"}]}])
    try:
        client.create_repository(repositoryName=repo)
        push(scanner, layouts, "app-languages", repo, "v1")
        client.get_waiter("image_scan_complete").wait(
            repositoryName=repo, imageId={"imageTag": "v1"},
            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        pages = client.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=repo, imageId={"imageTag": "v1"}, PaginationConfig={"PageSize": 1})
        enhanced = [f for page in pages for f in page["imageScanFindings"].get("enhancedFindings", [])]
        got = sorted(
            (f["packageVulnerabilityDetails"]["vulnerabilityId"],
             f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"],
             f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["version"],
             f["severity"])
            for f in enhanced
        )
        assert got == expected_findings("app-languages", os_only=False)
        for finding in enhanced:
            assert finding["status"] == "ACTIVE"
            assert finding["type"] == "PACKAGE_VULNERABILITY"
            package = finding["packageVulnerabilityDetails"]["vulnerablePackages"][0]
            assert package["sourceLayerHash"].startswith("sha256:")
            assert package["filePath"].startswith("/")
    finally:
        client.put_registry_scanning_configuration(scanType="BASIC", rules=[])


def test_manual_scan_quota_and_errors_through_boto3(scanner, layouts):
    client = boto_client(scanner)
    repo = fresh("manual")
    client.create_repository(repositoryName=repo)
    push(scanner, layouts, "ubuntu2204-vulnerable", repo, "v1")
    with pytest.raises(client.exceptions.ScanNotFoundException):
        client.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    started = client.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    client.get_waiter("image_scan_complete").wait(
        repositoryName=repo, imageId={"imageTag": "v1"}, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(client.exceptions.LimitExceededException):
        client.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    answer = client.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    assert answer["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 2}
