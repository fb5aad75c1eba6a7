"""Replication and repository creation templates against the real binary, on
both backends: skopeo pushes once into us-east-1 and pulls the same digest
from eu-west-1 and from another account; boto3 replays what the Terraform
AWS provider sends for `aws_ecr_replication_configuration` and
`aws_ecr_repository_creation_template` (internal/service/ecr/
replication_configuration.go, repository_creation_template.go).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time

import pytest

from conftest import EcrdServer, boto_client, error_of, run_aws
from test_registry_clients import skopeo, write_oci_layout

BACKENDS = ["memory", "disk"]
SOURCE = "000000000000"
PARTNER = "111111111111"
PARTNER_KEY, PARTNER_SECRET = "AKIAPARTNER", "partnersecret"


@pytest.fixture(scope="module", params=BACKENDS)
def server(request):
    args = ["--credentials", f"{PARTNER_KEY}:{PARTNER_SECRET}:{PARTNER}"]
    data_dir = None
    if request.param == "disk":
        data_dir = tempfile.mkdtemp(prefix="ecrd-e2e-replication-")
        args += ["--data-dir", data_dir]
    srv = EcrdServer(args).start()
    yield srv
    srv.close()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fresh(server):
    server.reset()
    return server


def partner(server, region="us-east-1"):
    return boto_client(server, region=region, key=PARTNER_KEY, secret=PARTNER_SECRET)


def login_password(server, region="us-east-1", key="test", secret="test") -> str:
    return run_aws(server, "ecr", "get-login-password", region=region, key=key,
                   secret=secret).stdout.strip()


def settled(ecr, repo, tag, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        statuses = ecr.describe_image_replication_status(
            repositoryName=repo, imageId={"imageTag": tag})["replicationStatuses"]
        if statuses and all(s["status"] != "IN_PROGRESS" for s in statuses):
            return sorted(statuses, key=lambda s: (s["region"], s["registryId"]))
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def test_skopeo_push_once_pull_from_every_destination(fresh, tmp_path):
    ecr = boto_client(fresh)
    partner(fresh).put_registry_policy(policyText=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReplicationAccessCrossAccount", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"},
            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
            "Resource": f"arn:aws:ecr:us-east-1:{PARTNER}:repository/*",
        }],
    }))
    ecr.put_replication_configuration(replicationConfiguration={"rules": [{
        "destinations": [{"region": "eu-west-1", "registryId": SOURCE},
                         {"region": "us-east-1", "registryId": PARTNER}],
        "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}],
    }]})
    ecr.create_repository(repositoryName="prod/web")
    layer = os.urandom(1024 * 1024)
    digest = write_oci_layout(tmp_path / "src", layer)
    host = f"localhost:{fresh.port}"
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
           "--dest-creds", f"AWS:{login_password(fresh)}",
           f"oci:{tmp_path / 'src'}:v1", f"docker://{host}/prod/web:v1")

    assert [(s["region"], s["registryId"], s["status"]) for s in settled(ecr, "prod/web", "v1")] == [
        ("eu-west-1", SOURCE, "COMPLETE"), ("us-east-1", PARTNER, "COMPLETE")]

    layer_digest = hashlib.sha256(layer).hexdigest()
    for name, creds in [
        ("eu", f"AWS:{login_password(fresh, region='eu-west-1')}"),
        ("partner", f"AWS:{login_password(fresh, key=PARTNER_KEY, secret=PARTNER_SECRET)}"),
    ]:
        inspect = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds,
                                    f"docker://{host}/prod/web:v1").stdout)
        assert inspect["Digest"] == digest, name
        out = tmp_path / f"out-{name}"
        skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds,
               f"docker://{host}/prod/web:v1", f"oci:{out}:v1")
        assert (out / "blobs" / "sha256" / layer_digest).read_bytes() == layer
    # The partner sees the copy through its own control plane.
    images = partner(fresh).describe_images(repositoryName="prod/web")["imageDetails"]
    assert images[0]["imageDigest"] == digest


def test_terraform_replication_configuration_replay(fresh):
    """resourceReplicationConfigurationPut / Read / Delete, call for call."""
    ecr = boto_client(fresh)
    config = {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": SOURCE}]}]}
    # Create: PutReplicationConfiguration, then Read (DescribeRegistry).
    put = ecr.put_replication_configuration(replicationConfiguration=config)
    assert put["replicationConfiguration"] == config
    read = ecr.describe_registry()
    assert read["registryId"] == SOURCE
    assert read["replicationConfiguration"] == config
    # Update: the same Put with the new configuration (filters, two rules).
    updated = {"rules": [
        {"destinations": [{"region": "eu-west-1", "registryId": SOURCE}],
         "repositoryFilters": [{"filter": "app", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [{"region": "us-west-2", "registryId": PARTNER}]},
    ]}
    ecr.put_replication_configuration(replicationConfiguration=updated)
    assert ecr.describe_registry()["replicationConfiguration"] == updated
    # Delete: an empty rule list; Read then finds no rules ("gone").
    ecr.put_replication_configuration(replicationConfiguration={"rules": []})
    assert ecr.describe_registry()["replicationConfiguration"]["rules"] == []
    # The provider refuses the same-registry destination only through ECR.
    with pytest.raises(Exception) as excinfo:
        ecr.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": "us-east-1", "registryId": SOURCE}]}]})
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_terraform_repository_creation_template_replay(fresh):
    """resourceRepositoryCreationTemplateCreate / Read / Update / Delete."""
    ecr = boto_client(fresh)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "a", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]})
    lifecycle = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
        "countNumber": 14}, "action": {"type": "expire"}}]})
    # Create: no encryption block, image_tag_mutability defaulted to MUTABLE.
    created = ecr.create_repository_creation_template(
        prefix="tf", imageTagMutability="MUTABLE", appliedFor=["PULL_THROUGH_CACHE"],
        description="tf managed", repositoryPolicy=policy, lifecyclePolicy=lifecycle,
        resourceTags=[{"Key": "Owner", "Value": "tf"}])
    assert created["repositoryCreationTemplate"]["prefix"] == "tf"

    def read():
        out = ecr.describe_repository_creation_templates(prefixes=["tf"])
        assert out["registryId"] == SOURCE
        return out["repositoryCreationTemplates"]

    [t] = read()
    assert t["appliedFor"] == ["PULL_THROUGH_CACHE"]
    assert t["description"] == "tf managed"
    assert t["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert t["imageTagMutability"] == "MUTABLE"
    assert json.loads(t["lifecyclePolicy"]) == json.loads(lifecycle)
    assert json.loads(t["repositoryPolicy"]) == json.loads(policy)
    assert t["resourceTags"] == [{"Key": "Owner", "Value": "tf"}]
    assert "customRoleArn" not in t

    # Update: only what changed; a removed description/role is sent as "".
    ecr.update_repository_creation_template(
        prefix="tf", appliedFor=["PULL_THROUGH_CACHE", "REPLICATION"],
        description="", customRoleArn=f"arn:aws:iam::{SOURCE}:role/ecr",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev-*"}],
        encryptionConfiguration={"encryptionType": "KMS"}, resourceTags=[])
    [t] = read()
    assert sorted(t["appliedFor"]) == ["PULL_THROUGH_CACHE", "REPLICATION"]
    assert "description" not in t
    assert t["customRoleArn"] == f"arn:aws:iam::{SOURCE}:role/ecr"
    assert t["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "dev-*"}]
    assert t["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert t["resourceTags"] == []
    ecr.update_repository_creation_template(prefix="tf", customRoleArn="")
    [t] = read()
    assert "customRoleArn" not in t

    # Delete; a second Delete is TemplateNotFoundException (treated as gone),
    # and Read finds nothing.
    ecr.delete_repository_creation_template(prefix="tf")
    with pytest.raises(Exception) as excinfo:
        ecr.delete_repository_creation_template(prefix="tf")
    assert error_of(excinfo)[0] == "TemplateNotFoundException"
    assert read() == []
    with pytest.raises(Exception) as excinfo:
        ecr.create_repository_creation_template(
            prefix="tf2", appliedFor=["REPLICATION"], repositoryPolicy="{")
    assert error_of(excinfo) == (
        "InvalidParameterException",
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
        "'Invalid repository policy provided'")
