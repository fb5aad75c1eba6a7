"""Accounts, principals and policies, end to end against the real binary, on
both backends.

One server per backend serves the whole module (reset before each test):

- `ECRD_CREDENTIALS` holds account A (111111111111, principal `user/ci`) and
  account B (222222222222, its root);
- a credentials file holds account C (333333333333): an unrestricted admin,
  a read-only user whose identity policy is a file next to the credentials
  file, and an assumed-role session (with a session token) whose inline
  identity policy explicitly denies `ecr:DeleteRepository`;
- `--registry-host '{account}.dkr.ecr.{region}.amazonaws.com:{port}'`, so the
  registry host names the account, as in ECR.

What is checked: STS GetCallerIdentity (aws CLI and boto3) and its error for
other actions; cross-account refusals on the control plane with AWS's exact
sentences, grants through repository and registry policies, explicit denies,
no existence oracle; identity policies; the registry plane across accounts
(raw HTTP always, skopeo and docker when installed: the account-named host is
made to reach the loopback through /etc/hosts and undone afterwards); the
calls the Terraform AWS provider makes for `aws_ecr_repository_policy` and
`aws_ecr_registry_policy`; policies surviving a restart and dying with their
repository.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, EcrdServer, find_binary, free_port, loopback_hosts, run_aws

# The shared harness drives docker and skopeo (`docker_env` is its session
# fixture: a dockerd, skipping with the reason when none can run); the
# registry-client module knows how to make an OCI layout: reuse both.
from conftest import docker, skopeo  # noqa: F401
from test_registry_clients import write_oci_layout  # noqa: F401

BACKENDS = ["memory", "disk"]
REGION = "us-east-1"
REGISTRY_HOST_TEMPLATE = "{account}.dkr.ecr.{region}.amazonaws.com:{port}"

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
ACCOUNT_C = "333333333333"
PRINCIPAL_A = f"arn:aws:iam::{ACCOUNT_A}:user/ci"
PRINCIPAL_B = f"arn:aws:iam::{ACCOUNT_B}:root"
PRINCIPAL_READER = f"arn:aws:iam::{ACCOUNT_C}:user/auditor"
PRINCIPAL_SESSION = f"arn:aws:sts::{ACCOUNT_C}:assumed-role/deployer/ci-session"

ENV_CREDENTIALS = (
    f"AKIAPROD:prodsecret:{ACCOUNT_A}:{PRINCIPAL_A},"
    f"AKIADEV:devsecret:{ACCOUNT_B}"
)

# who -> (access key, secret, session token)
KEYS = {
    "default": ("test", "test", None),
    "a": ("AKIAPROD", "prodsecret", None),
    "b": ("AKIADEV", "devsecret", None),
    "admin_c": ("AKIAADMINC", "adminsecret", None),
    "reader": ("AKIAREAD", "readsecret", None),
    "session": ("ASIANODELETE", "sessionsecret", "the-session-token"),
}

READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "ReadOnly",
        "Effect": "Allow",
        "Action": ["ecr:Describe*", "ecr:List*", "ecr:Get*", "ecr:BatchGetImage",
                   "ecr:BatchCheckLayerAvailability"],
        "Resource": "*",
    }],
}

NO_DELETE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"},
    ],
}

CREDENTIALS_FILE = f"""\
# account C: an admin, a read-only user (policy file), a role session (inline policy)
AKIAADMINC adminsecret {ACCOUNT_C}
AKIAREAD readsecret {ACCOUNT_C} {PRINCIPAL_READER} tag:team=audit policy=policies/read-only.json

ASIANODELETE sessionsecret {ACCOUNT_C} the-session-token {PRINCIPAL_SESSION} policy={json.dumps(NO_DELETE_POLICY)}
"""

PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability"]
PUSH_ACTIONS = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                "ecr:PutImage", "ecr:BatchCheckLayerAvailability"]

INVALID_REPOSITORY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid repository policy provided'"
)
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid registry policy provided'"
)


# ------------------------------------------------------------------ helpers


def repo_arn(account: str, name: str, region: str = REGION) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def denied(principal: str, action: str, resource: str, why: str = "resource") -> str:
    """AWS's AccessDenied sentence, in the four forms ecrd answers."""
    head = f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
    return {
        "resource": f"{head} because no resource-based policy allows the {action} action",
        "identity": f"{head} because no identity-based policy allows the {action} action",
        "explicit-resource": f"{head} with an explicit deny in a resource-based policy",
        "explicit-identity": f"{head} with an explicit deny in an identity-based policy",
    }[why]


def repository_policy_not_found(name: str, account: str) -> str:
    return (f"Repository policy does not exist for the repository with name '{name}' "
            f"in the registry with id '{account}'")


def repository_not_found(name: str, account: str) -> str:
    return f"The repository with name '{name}' does not exist in the registry with id '{account}'"


def statement(effect: str, principal, actions, sid: str | None = None) -> dict:
    s = {"Effect": effect, "Principal": principal, "Action": actions}
    if sid:
        s["Sid"] = sid
    return s


def policy(*statements: dict, version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def allow(principal_arn_or_account, actions, sid: str = "Allow") -> dict:
    return statement("Allow", {"AWS": principal_arn_or_account}, actions, sid)


def deny(principal_arn_or_account, actions, sid: str = "Deny") -> dict:
    return statement("Deny", {"AWS": principal_arn_or_account}, actions, sid)


def _as_list(value):
    if value is None:
        return []
    return sorted(value, key=json.dumps) if isinstance(value, list) else [value]


def _canonical_policy(document) -> dict:
    """Equivalence as awspolicyequivalence sees it: a single statement or a
    single string is the same as a list of one; order inside lists is free."""
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    out = []
    for s in statements:
        c = {}
        for key, value in s.items():
            if key in ("Action", "NotAction", "Resource", "NotResource"):
                c[key] = _as_list(value)
            elif key in ("Principal", "NotPrincipal") and isinstance(value, dict):
                c[key] = {k: _as_list(v) for k, v in value.items()}
            else:
                c[key] = value
        out.append(c)
    return {"Version": doc.get("Version"), "Statement": sorted(out, key=json.dumps),
            **{k: v for k, v in doc.items() if k not in ("Version", "Statement")}}


def assert_equivalent(got: str, want: str) -> None:
    assert _canonical_policy(got) == _canonical_policy(want), (got, want)


def normalize_json(text: str) -> str:
    """structure.NormalizeJsonString of the Terraform plugin SDK: Go's
    json.Marshal of the decoded value (compact, keys sorted)."""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def client(server: EcrdServer, who: str, service: str = "ecr", region: str = REGION):
    import boto3
    from botocore.config import Config

    key, secret, token = KEYS[who]
    return boto3.client(
        service, endpoint_url=server.url, region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )


def aws_as(server: EcrdServer, who: str, *args: str, check: bool = True):
    key, secret, token = KEYS[who]
    assert token is None, "run_aws does not pass session tokens"
    return run_aws(server, *args, key=key, secret=secret, check=check)


def expect_error(call, code: str, message: str | None = None, status: int = 400, **kwargs):
    """Calls `call(**kwargs)`, which must fail with `code` (and exactly `message`)."""
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    error = e.value.response["Error"]
    got = (error.get("Code"), error.get("Message"))
    want = (code, message if message is not None else got[1])
    assert got == want, f"{call.__name__}({kwargs}): got {got}, want {want}"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.value.response
    return error


def expect_denied(call, principal: str, action: str, resource: str, why: str = "resource",
                  **kwargs):
    return expect_error(call, "AccessDeniedException", denied(principal, action, resource, why),
                        **kwargs)


def upload_blob(ecr, repo: str, data: bytes, registry_id: str | None = None) -> str:
    """InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload; the digest."""
    ids = {"registryId": registry_id} if registry_id else {}
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = ecr.initiate_layer_upload(repositoryName=repo, **ids)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=upload, partFirstByte=0,
                          partLastByte=len(data) - 1, layerPartBlob=data, **ids)
    done = ecr.complete_layer_upload(repositoryName=repo, uploadId=upload,
                                     layerDigests=[digest], **ids)
    assert done["layerDigest"] == digest
    return digest


def put_test_image(ecr, repo: str, tag: str, layer: bytes | None = None) -> dict:
    """A one-layer OCI image through the control plane; what was pushed."""
    layer = layer if layer is not None else os.urandom(4096)
    layer_digest = upload_blob(ecr, repo, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = upload_blob(ecr, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    })
    out = ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag,
                        imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    assert out["image"]["imageId"]["imageDigest"] == digest
    return {"digest": digest, "manifest": manifest, "layer": layer, "layer_digest": layer_digest}


def login_password(server: EcrdServer, who: str) -> str:
    token = client(server, who).get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    return password


def registry_host(server: EcrdServer, account: str, region: str = REGION) -> str:
    return REGISTRY_HOST_TEMPLATE.format(account=account, region=region, port=server.port)


def v2(server: EcrdServer, method: str, path: str, host: str, password: str | None,
       body: bytes | None = None, headers: dict | None = None):
    """One /v2/ request to the loopback with the Host a client would send;
    redirects are not followed. Returns (status, lower-cased headers, body)."""
    all_headers = {"Host": host, **(headers or {})}
    if password is not None:
        all_headers["Authorization"] = "Basic " + base64.b64encode(
            f"AWS:{password}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def v2_error(body: bytes) -> tuple[str, str]:
    errors = json.loads(body)["errors"]
    assert len(errors) == 1, errors
    return errors[0]["code"], errors[0]["message"]


def get_blob(server: EcrdServer, repo: str, digest: str, host: str, password: str):
    """GET a blob, following one redirect to ecrd's own signed URL."""
    status, headers, body = v2(server, "GET", f"/v2/{repo}/blobs/{digest}", host, password)
    if status in (302, 307):
        location = urllib.parse.urlsplit(headers["location"])
        target = location.path + (f"?{location.query}" if location.query else "")
        status, headers, body = v2(server, "GET", target, host, None)
    return status, headers, body


# ------------------------------------------------------------------ servers


def write_config(directory: Path) -> Path:
    (directory / "policies").mkdir(parents=True, exist_ok=True)
    (directory / "policies" / "read-only.json").write_text(json.dumps(READ_ONLY_POLICY, indent=2))
    creds = directory / "credentials"
    creds.write_text(CREDENTIALS_FILE)
    return creds


def start_server(creds: Path, data_dir: Path | None = None,
                 extra_args: list[str] | None = None) -> EcrdServer:
    args = ["--registry-host", REGISTRY_HOST_TEMPLATE, "--credentials-file", str(creds)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    return EcrdServer(args + list(extra_args or []),
                      env={"ECRD_CREDENTIALS": ENV_CREDENTIALS}).start()


@pytest.fixture(scope="module", params=BACKENDS)
def _acl_server(request, tmp_path_factory):
    conf = tmp_path_factory.mktemp(f"acl-{request.param}")
    creds = write_config(conf)
    data_dir = conf / "data" if request.param == "disk" else None
    server = start_server(creds, data_dir)
    server.creds = creds
    server.backend = request.param
    yield server
    server.close()


@pytest.fixture
def acl(_acl_server):
    """The module's server (A and B from the environment, C from the file), emptied."""
    if _acl_server.proc.poll() is not None:
        pytest.fail(f"ecrd exited early:\n{_acl_server.output()}")
    _acl_server.reset()
    return _acl_server


ACCOUNT_HOSTS = [f"{account}.dkr.ecr.{REGION}.amazonaws.com" for account in (ACCOUNT_A, ACCOUNT_B)]
HOSTS_MARK = "# ecrd e2e (tests/e2e/test_access_control.py), removed after the run"


@pytest.fixture(scope="module")
def account_hosts():
    """Makes `<account>.dkr.ecr.us-east-1.amazonaws.com` resolve to 127.0.0.1
    for A and B (conftest's `loopback_hosts`: undone afterwards, also when a
    test fails)."""
    with loopback_hosts(ACCOUNT_HOSTS, HOSTS_MARK):
        yield ACCOUNT_HOSTS


# ------------------------------------------------------------------ STS


def test_sts_get_caller_identity_with_the_aws_cli(acl):
    """`aws sts get-caller-identity --endpoint-url` (aws CLI v1)."""
    default = json.loads(aws_as(acl, "default", "sts", "get-caller-identity", "--output",
                                "json").stdout)
    assert default == {"UserId": DEFAULT_ACCOUNT, "Account": DEFAULT_ACCOUNT,
                       "Arn": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"}
    user = json.loads(aws_as(acl, "a", "sts", "get-caller-identity", "--output", "json").stdout)
    assert (user["Account"], user["Arn"]) == (ACCOUNT_A, PRINCIPAL_A)
    assert re.fullmatch(r"AIDA[A-Z0-9]{16,17}", user["UserId"]), user
    # The CLI's text output, as scripts use it.
    account = aws_as(acl, "a", "sts", "get-caller-identity", "--query", "Account", "--output",
                     "text").stdout.strip()
    assert account == ACCOUNT_A


def test_sts_get_caller_identity_with_boto3(acl):
    b = client(acl, "b", "sts").get_caller_identity()
    assert (b["Account"], b["Arn"], b["UserId"]) == (ACCOUNT_B, PRINCIPAL_B, ACCOUNT_B)
    a1 = client(acl, "a", "sts").get_caller_identity()
    a2 = client(acl, "a", "sts").get_caller_identity()
    assert (a1["Account"], a1["Arn"]) == (ACCOUNT_A, PRINCIPAL_A)
    assert a1["UserId"] == a2["UserId"] and a1["UserId"].startswith("AIDA")
    # An identity policy does not stop GetCallerIdentity (no permission needed in AWS).
    reader = client(acl, "reader", "sts").get_caller_identity()
    assert (reader["Account"], reader["Arn"]) == (ACCOUNT_C, PRINCIPAL_READER)
    assert reader["UserId"].startswith("AIDA") and reader["UserId"] != a1["UserId"]
    # An assumed-role session from the credentials file (with its session token).
    session = client(acl, "session", "sts").get_caller_identity()
    assert (session["Account"], session["Arn"]) == (ACCOUNT_C, PRINCIPAL_SESSION)
    assert re.fullmatch(r"AROA[A-Z0-9]{16,17}:ci-session", session["UserId"]), session


def test_sts_other_actions_are_invalid_action(acl):
    sts = client(acl, "a", "sts")
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_A}:role/deployer",
                        RoleSessionName="s1")
    error = e.value.response["Error"]
    assert error["Code"] == "InvalidAction", e.value.response
    assert "AssumeRole" in error["Message"], error
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        sts.get_session_token()
    assert e.value.response["Error"]["Code"] == "InvalidAction"
    assert "GetSessionToken" in e.value.response["Error"]["Message"]


def test_sts_refuses_unknown_keys_and_bad_signatures(acl):
    """STS's own codes (not ECR's) for the two common credential mistakes."""
    import boto3
    from botocore.config import Config

    def sts_with(key, secret):
        return boto3.client("sts", endpoint_url=acl.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))

    with pytest.raises(ClientError) as e:
        sts_with("AKIAUNKNOWN", "whatever").get_caller_identity()
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]) == (
        "InvalidClientTokenId", "The security token included in the request is invalid.")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        sts_with("AKIAPROD", "not-the-secret").get_caller_identity()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["Error"]["Message"].startswith(
        "The request signature we calculated does not match the signature you provided.")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# ------------------------------------------------------------------ control plane, cross account


def test_cross_account_is_refused_without_a_policy(acl):
    a, b = client(acl, "a"), client(acl, "b")
    repo = a.create_repository(repositoryName="prod/api")["repository"]
    assert repo["registryId"] == ACCOUNT_A
    assert repo["repositoryUri"] == f"{registry_host(acl, ACCOUNT_A)}/prod/api"
    image = put_test_image(a, "prod/api", "v1")
    arn = repo_arn(ACCOUNT_A, "prod/api")
    lifecycle = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"}}]})
    cases = [
        ("DescribeImages", b.describe_images, {"repositoryName": "prod/api"}),
        ("ListImages", b.list_images, {"repositoryName": "prod/api"}),
        ("BatchGetImage", b.batch_get_image,
         {"repositoryName": "prod/api", "imageIds": [{"imageTag": "v1"}]}),
        ("PutLifecyclePolicy", b.put_lifecycle_policy,
         {"repositoryName": "prod/api", "lifecyclePolicyText": lifecycle}),
        ("DeleteRepository", b.delete_repository, {"repositoryName": "prod/api", "force": True}),
        ("SetRepositoryPolicy", b.set_repository_policy,
         {"repositoryName": "prod/api", "policyText": policy(allow(PRINCIPAL_B, "ecr:*"))}),
        ("DescribeRepositories", b.describe_repositories, {"repositoryNames": ["prod/api"]}),
        ("GetRepositoryPolicy", b.get_repository_policy, {"repositoryName": "prod/api"}),
        ("BatchDeleteImage", b.batch_delete_image,
         {"repositoryName": "prod/api", "imageIds": [{"imageTag": "v1"}]}),
        ("InitiateLayerUpload", b.initiate_layer_upload, {"repositoryName": "prod/api"}),
        ("PutImage", b.put_image, {"repositoryName": "prod/api", "imageTag": "evil",
                                   "imageManifest": image["manifest"]}),
    ]
    for action, call, kwargs in cases:
        expect_denied(call, PRINCIPAL_B, f"ecr:{action}", arn, registryId=ACCOUNT_A, **kwargs)
    # CreateRepository in another account: the resource is the would-be repository.
    expect_denied(b.create_repository, PRINCIPAL_B, "ecr:CreateRepository",
                  repo_arn(ACCOUNT_A, "prod/sneaky"), registryId=ACCOUNT_A,
                  repositoryName="prod/sneaky")
    # Nothing changed in A.
    assert [r["repositoryName"] for r in a.describe_repositories()["repositories"]] == ["prod/api"]
    assert a.list_images(repositoryName="prod/api")["imageIds"] == [
        {"imageDigest": image["digest"], "imageTag": "v1"}]
    # B's own registry is B's: the same name there is simply missing.
    expect_error(b.describe_images, "RepositoryNotFoundException",
                 repository_not_found("prod/api", ACCOUNT_B), repositoryName="prod/api")


def test_repository_policy_grants_pull_and_explicit_deny_wins(acl):
    a, b = client(acl, "a"), client(acl, "b")
    a.create_repository(repositoryName="prod/api")
    a.create_repository(repositoryName="prod/other")
    image = put_test_image(a, "prod/api", "v1")
    arn = repo_arn(ACCOUNT_A, "prod/api")
    read_actions = ["ecr:DescribeImages", "ecr:ListImages", *PULL_ACTIONS]

    grant = policy(allow(PRINCIPAL_B, read_actions, sid="AllowDevPull"))
    out = a.set_repository_policy(repositoryName="prod/api", policyText=grant)
    assert (out["registryId"], out["repositoryName"]) == (ACCOUNT_A, "prod/api")
    assert_equivalent(out["policyText"], grant)

    described = b.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")["imageDetails"]
    assert [(d["registryId"], d["repositoryName"], d["imageDigest"], d["imageTags"])
            for d in described] == [(ACCOUNT_A, "prod/api", image["digest"], ["v1"])]
    listed = b.list_images(registryId=ACCOUNT_A, repositoryName="prod/api")["imageIds"]
    assert listed == [{"imageDigest": image["digest"], "imageTag": "v1"}]
    got = b.batch_get_image(registryId=ACCOUNT_A, repositoryName="prod/api",
                            imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == []
    assert got["images"][0]["imageId"] == {"imageDigest": image["digest"], "imageTag": "v1"}
    assert got["images"][0]["imageManifest"] == image["manifest"]
    assert got["images"][0]["registryId"] == ACCOUNT_A
    url = b.get_download_url_for_layer(registryId=ACCOUNT_A, repositoryName="prod/api",
                                       layerDigest=image["layer_digest"])
    assert url["layerDigest"] == image["layer_digest"] and url["downloadUrl"]
    layers = b.batch_check_layer_availability(registryId=ACCOUNT_A, repositoryName="prod/api",
                                              layerDigests=[image["layer_digest"]])
    assert [la["layerAvailability"] for la in layers["layers"]] == ["AVAILABLE"]

    # What the policy does not grant stays refused, and so does every other repository.
    expect_denied(b.delete_repository, PRINCIPAL_B, "ecr:DeleteRepository", arn,
                  registryId=ACCOUNT_A, repositoryName="prod/api", force=True)
    expect_denied(b.get_repository_policy, PRINCIPAL_B, "ecr:GetRepositoryPolicy", arn,
                  registryId=ACCOUNT_A, repositoryName="prod/api")
    expect_denied(b.initiate_layer_upload, PRINCIPAL_B, "ecr:InitiateLayerUpload", arn,
                  registryId=ACCOUNT_A, repositoryName="prod/api")
    expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages",
                  repo_arn(ACCOUNT_A, "prod/other"), registryId=ACCOUNT_A,
                  repositoryName="prod/other")
    # Another principal of another account gets nothing from a grant to B.
    expect_denied(client(acl, "admin_c").describe_images, f"arn:aws:iam::{ACCOUNT_C}:root",
                  "ecr:DescribeImages", arn, registryId=ACCOUNT_A, repositoryName="prod/api")

    # An explicit Deny for B's pull wins over the Allow; the rest of the Allow holds.
    with_deny = policy(allow(PRINCIPAL_B, read_actions, sid="AllowDevPull"),
                       deny(PRINCIPAL_B, "ecr:BatchGetImage", sid="DenyDevManifests"))
    a.set_repository_policy(repositoryName="prod/api", policyText=with_deny)
    expect_denied(b.batch_get_image, PRINCIPAL_B, "ecr:BatchGetImage", arn, "explicit-resource",
                  registryId=ACCOUNT_A, repositoryName="prod/api", imageIds=[{"imageTag": "v1"}])
    assert b.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")[
        "imageDetails"][0]["imageDigest"] == image["digest"]

    # A Deny for everyone binds the owner's own principal too.
    deny_all = policy(allow(PRINCIPAL_B, read_actions),
                      statement("Deny", "*", "ecr:DescribeImages"))
    a.set_repository_policy(repositoryName="prod/api", policyText=deny_all)
    expect_denied(a.describe_images, PRINCIPAL_A, "ecr:DescribeImages", arn, "explicit-resource",
                  repositoryName="prod/api")
    expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages", arn, "explicit-resource",
                  registryId=ACCOUNT_A, repositoryName="prod/api")

    # Deleting the policy takes B back to no access at all.
    deleted = a.delete_repository_policy(repositoryName="prod/api")
    assert deleted["repositoryName"] == "prod/api" and deleted["registryId"] == ACCOUNT_A
    assert_equivalent(deleted["policyText"], deny_all)
    expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages", arn,
                  registryId=ACCOUNT_A, repositoryName="prod/api")
    assert a.describe_images(repositoryName="prod/api")["imageDetails"][0]["imageDigest"] == \
        image["digest"]


def test_principal_forms_account_id_and_wildcard(acl):
    a, b = client(acl, "a"), client(acl, "b")
    a.create_repository(repositoryName="shared/base")
    arn = repo_arn(ACCOUNT_A, "shared/base")
    # An account id as principal stands for every principal of that account.
    a.set_repository_policy(repositoryName="shared/base",
                            policyText=policy(allow(ACCOUNT_B, "ecr:ListImages")))
    assert b.list_images(registryId=ACCOUNT_A, repositoryName="shared/base")["imageIds"] == []
    expect_denied(client(acl, "admin_c").list_images, f"arn:aws:iam::{ACCOUNT_C}:root",
                  "ecr:ListImages", arn, registryId=ACCOUNT_A, repositoryName="shared/base")
    # A principal other than B's does not grant B.
    a.set_repository_policy(repositoryName="shared/base", policyText=policy(
        allow(f"arn:aws:iam::{ACCOUNT_B}:user/someone-else", "ecr:ListImages")))
    expect_denied(b.list_images, PRINCIPAL_B, "ecr:ListImages", arn,
                  registryId=ACCOUNT_A, repositoryName="shared/base")
    # "*" grants everyone, with wildcards in the action; as in ECR's examples.
    a.set_repository_policy(repositoryName="shared/base", policyText=policy(
        statement("Allow", "*", ["ecr:List*", "ecr:Describe*"]), version="2008-10-17"))
    assert b.list_images(registryId=ACCOUNT_A, repositoryName="shared/base")["imageIds"] == []
    assert client(acl, "admin_c").describe_images(
        registryId=ACCOUNT_A, repositoryName="shared/base")["imageDetails"] == []
    expect_denied(b.batch_get_image, PRINCIPAL_B, "ecr:BatchGetImage", arn,
                  registryId=ACCOUNT_A, repositoryName="shared/base",
                  imageIds=[{"imageTag": "v1"}])


def test_no_existence_oracle_across_accounts(acl):
    a, b = client(acl, "a"), client(acl, "b")
    a.create_repository(repositoryName="prod/api")
    for name in ("prod/api", "prod/does-not-exist"):
        arn = repo_arn(ACCOUNT_A, name)
        expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages", arn,
                      registryId=ACCOUNT_A, repositoryName=name)
        expect_denied(b.describe_repositories, PRINCIPAL_B, "ecr:DescribeRepositories", arn,
                      registryId=ACCOUNT_A, repositoryNames=[name])
        expect_denied(b.list_images, PRINCIPAL_B, "ecr:ListImages", arn,
                      registryId=ACCOUNT_A, repositoryName=name)
        expect_denied(b.get_repository_policy, PRINCIPAL_B, "ecr:GetRepositoryPolicy", arn,
                      registryId=ACCOUNT_A, repositoryName=name)
        expect_denied(b.delete_repository, PRINCIPAL_B, "ecr:DeleteRepository", arn,
                      registryId=ACCOUNT_A, repositoryName=name)
    # The owner still learns the truth.
    expect_error(a.describe_images, "RepositoryNotFoundException",
                 repository_not_found("prod/does-not-exist", ACCOUNT_A),
                 repositoryName="prod/does-not-exist")


def test_registry_policy_grants_create_repository_across_accounts(acl):
    """A registry policy covers ecr:CreateRepository / ecr:ReplicateImage on
    the registry's repositories; it grants nothing about images."""
    a, b = client(acl, "a"), client(acl, "b")
    registry_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "AllowDevCreate", "Effect": "Allow", "Principal": {"AWS": PRINCIPAL_B},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_A}:repository/*"}]})
    out = a.put_registry_policy(policyText=registry_policy)
    assert out["registryId"] == ACCOUNT_A
    assert_equivalent(out["policyText"], registry_policy)
    created = b.create_repository(registryId=ACCOUNT_A, repositoryName="from-dev")["repository"]
    assert created["registryId"] == ACCOUNT_A
    assert created["repositoryArn"] == repo_arn(ACCOUNT_A, "from-dev")
    assert "from-dev" in [r["repositoryName"] for r in a.describe_repositories()["repositories"]]
    expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages",
                  repo_arn(ACCOUNT_A, "from-dev"), registryId=ACCOUNT_A,
                  repositoryName="from-dev")
    # In another region the registry (and its policy) is another one.
    expect_denied(client(acl, "b", region="eu-west-1").create_repository, PRINCIPAL_B,
                  "ecr:CreateRepository", repo_arn(ACCOUNT_A, "from-dev", "eu-west-1"),
                  registryId=ACCOUNT_A, repositoryName="from-dev")
    # Each registry has its own policy.
    expect_error(b.get_registry_policy, "RegistryPolicyNotFoundException")
    a.delete_registry_policy()
    expect_denied(b.create_repository, PRINCIPAL_B, "ecr:CreateRepository",
                  repo_arn(ACCOUNT_A, "again"), registryId=ACCOUNT_A, repositoryName="again")


# ------------------------------------------------------------------ identity policies


def test_read_only_identity_policy(acl):
    admin, reader = client(acl, "admin_c"), client(acl, "reader")
    admin.create_repository(repositoryName="audit/app")
    image = put_test_image(admin, "audit/app", "v1")
    arn = repo_arn(ACCOUNT_C, "audit/app")

    assert [r["repositoryName"] for r in reader.describe_repositories()["repositories"]] == [
        "audit/app"]
    assert reader.describe_images(repositoryName="audit/app")["imageDetails"][0][
        "imageDigest"] == image["digest"]
    got = reader.batch_get_image(repositoryName="audit/app", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"] == image["manifest"]
    assert reader.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    expect_error(reader.get_lifecycle_policy, "LifecyclePolicyNotFoundException",
                 repositoryName="audit/app")

    expect_denied(reader.create_repository, PRINCIPAL_READER, "ecr:CreateRepository",
                  repo_arn(ACCOUNT_C, "audit/new"), "identity", repositoryName="audit/new")
    expect_denied(reader.delete_repository, PRINCIPAL_READER, "ecr:DeleteRepository", arn,
                  "identity", repositoryName="audit/app")
    expect_denied(reader.set_repository_policy, PRINCIPAL_READER, "ecr:SetRepositoryPolicy", arn,
                  "identity", repositoryName="audit/app",
                  policyText=policy(allow(ACCOUNT_B, "ecr:ListImages")))
    expect_denied(reader.put_image_tag_mutability, PRINCIPAL_READER,
                  "ecr:PutImageTagMutability", arn, "identity", repositoryName="audit/app",
                  imageTagMutability="IMMUTABLE")
    assert [r["repositoryName"] for r in admin.describe_repositories()["repositories"]] == [
        "audit/app"]
    assert admin.describe_repositories()["repositories"][0]["imageTagMutability"] == "MUTABLE"

    # Within one account a repository policy naming the principal is enough
    # (IAM's same-account rule: identity OR resource policy allows).
    admin.set_repository_policy(repositoryName="audit/app", policyText=policy(
        allow(PRINCIPAL_READER, "ecr:PutImageTagMutability")))
    out = reader.put_image_tag_mutability(repositoryName="audit/app",
                                          imageTagMutability="IMMUTABLE")
    assert out["imageTagMutability"] == "IMMUTABLE"
    assert admin.describe_repositories()["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
    expect_denied(reader.delete_repository, PRINCIPAL_READER, "ecr:DeleteRepository", arn,
                  "identity", repositoryName="audit/app")


def test_explicit_deny_in_an_identity_policy(acl):
    session = client(acl, "session")
    repo = session.create_repository(repositoryName="deploy/svc")["repository"]
    assert repo["registryId"] == ACCOUNT_C
    arn = repo_arn(ACCOUNT_C, "deploy/svc")
    expect_denied(session.delete_repository, PRINCIPAL_SESSION, "ecr:DeleteRepository", arn,
                  "explicit-identity", repositoryName="deploy/svc")
    assert [r["repositoryName"] for r in session.describe_repositories()["repositories"]] == [
        "deploy/svc"]


def test_cross_account_needs_the_identity_policy_too(acl):
    """Across accounts both sides must allow: A's repository policy grants
    account C everything, C's read-only user still only reads."""
    a = client(acl, "a")
    a.create_repository(repositoryName="prod/api")
    image = put_test_image(a, "prod/api", "v1")
    arn = repo_arn(ACCOUNT_A, "prod/api")
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(ACCOUNT_C, "ecr:*")))
    reader, admin = client(acl, "reader"), client(acl, "admin_c")
    assert reader.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")[
        "imageDetails"][0]["imageDigest"] == image["digest"]
    lifecycle = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 9},
        "action": {"type": "expire"}}]})
    expect_denied(reader.put_lifecycle_policy, PRINCIPAL_READER, "ecr:PutLifecyclePolicy", arn,
                  "identity", registryId=ACCOUNT_A, repositoryName="prod/api",
                  lifecyclePolicyText=lifecycle)
    # C's admin has no identity policy: the repository policy is enough.
    out = admin.put_lifecycle_policy(registryId=ACCOUNT_A, repositoryName="prod/api",
                                     lifecyclePolicyText=lifecycle)
    assert out["registryId"] == ACCOUNT_A
    assert json.loads(a.get_lifecycle_policy(repositoryName="prod/api")[
        "lifecyclePolicyText"]) == json.loads(lifecycle)
    # The session's identity Deny holds across accounts as well.
    expect_denied(client(acl, "session").delete_repository, PRINCIPAL_SESSION,
                  "ecr:DeleteRepository", arn, "explicit-identity", registryId=ACCOUNT_A,
                  repositoryName="prod/api", force=True)


# ------------------------------------------------------------------ policy operations


def test_policy_operations_and_their_errors(acl):
    a = client(acl, "a")
    a.create_repository(repositoryName="prod/api")
    expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
    expect_error(a.delete_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
    expect_error(a.get_repository_policy, "RepositoryNotFoundException",
                 repository_not_found("ghost", ACCOUNT_A), repositoryName="ghost")
    expect_error(a.set_repository_policy, "RepositoryNotFoundException",
                 repository_not_found("ghost", ACCOUNT_A), repositoryName="ghost",
                 policyText=policy(allow(ACCOUNT_B, "ecr:ListImages")))

    good = statement("Allow", {"AWS": PRINCIPAL_B}, "ecr:ListImages")
    invalid = {
        "not JSON": "{not json",
        "no Statement": json.dumps({"Version": "2012-10-17"}),
        "bad Effect": policy(dict(good, Effect="Maybe")),
        "unknown action": policy(dict(good, Action="ecr:TeleportImage")),
        "other service": policy(dict(good, Action="s3:GetObject")),
        "no Principal": policy({"Effect": "Allow", "Action": "ecr:ListImages"}),
        "bad principal": policy(dict(good, Principal={"AWS": "not-an-account"})),
        "a Resource element": policy(dict(good, Resource=repo_arn(ACCOUNT_A, "prod/api"))),
        "bad Version": policy(good, version="2020-01-01"),
    }
    for why, text in invalid.items():
        error = expect_error(a.set_repository_policy, "InvalidParameterException",
                             repositoryName="prod/api", policyText=text)
        assert error["Message"] == INVALID_REPOSITORY_POLICY, (why, error)
    expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")

    text = policy(good)
    assert_equivalent(a.set_repository_policy(repositoryName="prod/api", policyText=text,
                                              force=True)["policyText"], text)
    got = a.get_repository_policy(repositoryName="prod/api")
    assert (got["registryId"], got["repositoryName"]) == (ACCOUNT_A, "prod/api")
    assert_equivalent(got["policyText"], text)
    # With the owner's own registry id it is the same call.
    assert_equivalent(a.get_repository_policy(registryId=ACCOUNT_A, repositoryName="prod/api")[
        "policyText"], text)
    deleted = a.delete_repository_policy(repositoryName="prod/api")
    assert_equivalent(deleted["policyText"], text)
    expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")

    # Registry policies.
    error = expect_error(a.get_registry_policy, "RegistryPolicyNotFoundException")
    assert ACCOUNT_A in error["Message"], error
    error = expect_error(a.delete_registry_policy, "RegistryPolicyNotFoundException")
    assert ACCOUNT_A in error["Message"], error
    registry_resource = f"arn:aws:ecr:{REGION}:{ACCOUNT_A}:repository/*"
    good_registry = {"Sid": "Replicate", "Effect": "Allow", "Principal": {"AWS": PRINCIPAL_B},
                     "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
                     "Resource": registry_resource}
    invalid_registry = {
        "not JSON": "[",
        "bad Effect": policy(dict(good_registry, Effect="Perhaps")),
        "unknown action": policy(dict(good_registry, Action="ecr:TeleportImage")),
        "no Principal": policy({k: v for k, v in good_registry.items() if k != "Principal"}),
    }
    for why, text in invalid_registry.items():
        error = expect_error(a.put_registry_policy, "InvalidParameterException", policyText=text)
        assert error["Message"] == INVALID_REGISTRY_POLICY, (why, error)
    text = policy(good_registry)
    put = a.put_registry_policy(policyText=text)
    assert put["registryId"] == ACCOUNT_A
    assert_equivalent(put["policyText"], text)
    got = a.get_registry_policy()
    assert got["registryId"] == ACCOUNT_A
    assert_equivalent(got["policyText"], text)
    deleted = a.delete_registry_policy()
    assert deleted["registryId"] == ACCOUNT_A
    assert_equivalent(deleted["policyText"], text)
    expect_error(a.get_registry_policy, "RegistryPolicyNotFoundException")

    # B may not read or write A's registry policy (registryId is not even a
    # parameter of these calls: each caller gets their own registry's).
    expect_error(client(acl, "b").get_registry_policy, "RegistryPolicyNotFoundException")


def test_aws_cli_policy_commands_and_denials(acl, tmp_path):
    """The CLI as a user types it: set-repository-policy --force from a file,
    and the AccessDeniedException line the CLI prints."""
    aws_as(acl, "a", "ecr", "create-repository", "--repository-name", "prod/api")
    cli_denied = aws_as(acl, "b", "ecr", "describe-images", "--registry-id", ACCOUNT_A,
                        "--repository-name", "prod/api", check=False)
    assert cli_denied.returncode != 0
    assert (
        "An error occurred (AccessDeniedException) when calling the DescribeImages operation: "
        + denied(PRINCIPAL_B, "ecr:DescribeImages", repo_arn(ACCOUNT_A, "prod/api"))
    ) in cli_denied.stderr, cli_denied.stderr

    document = tmp_path / "allow-dev-pull.json"
    text = policy(allow(PRINCIPAL_B, ["ecr:DescribeImages", *PULL_ACTIONS], sid="AllowDevPull"))
    document.write_text(text)
    out = json.loads(aws_as(acl, "a", "ecr", "set-repository-policy", "--repository-name",
                            "prod/api", "--policy-text", f"file://{document}", "--force",
                            "--output", "json").stdout)
    assert (out["registryId"], out["repositoryName"]) == (ACCOUNT_A, "prod/api")
    assert_equivalent(out["policyText"], text)
    got = json.loads(aws_as(acl, "a", "ecr", "get-repository-policy", "--repository-name",
                            "prod/api", "--output", "json").stdout)
    assert_equivalent(got["policyText"], text)
    allowed = json.loads(aws_as(acl, "b", "ecr", "describe-images", "--registry-id", ACCOUNT_A,
                                "--repository-name", "prod/api", "--output", "json").stdout)
    assert allowed == {"imageDetails": []}


def test_policies_are_deleted_with_their_repository(acl):
    a, b = client(acl, "a"), client(acl, "b")
    a.create_repository(repositoryName="prod/api")
    put_test_image(a, "prod/api", "v1")
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, "ecr:DescribeImages")))
    assert b.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")["imageDetails"]
    a.delete_repository(repositoryName="prod/api", force=True)
    expect_error(a.get_repository_policy, "RepositoryNotFoundException",
                 repository_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
    a.create_repository(repositoryName="prod/api")
    expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
    expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages",
                  repo_arn(ACCOUNT_A, "prod/api"), registryId=ACCOUNT_A, repositoryName="prod/api")


# ------------------------------------------------------------------ registry plane, raw HTTP


def test_registry_plane_cross_account_raw_http(acl):
    """/v2/ with the Host a client sends for A's registry and B's password:
    every answer is checked byte for byte, without any client installed."""
    a = client(acl, "a")
    a.create_repository(repositoryName="prod/api")
    image = put_test_image(a, "prod/api", "v1")
    arn = repo_arn(ACCOUNT_A, "prod/api")
    host_a, host_b = registry_host(acl, ACCOUNT_A), registry_host(acl, ACCOUNT_B)
    pw_a, pw_b = login_password(acl, "a"), login_password(acl, "b")
    proxy = client(acl, "b").get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
    assert proxy == f"https://{host_b}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    manifest_path = "/v2/prod/api/manifests/v1"

    # The owner pulls.
    status, headers, body = v2(acl, "GET", manifest_path, host_a, pw_a, headers=accept)
    assert status == 200 and body == image["manifest"].encode()
    assert headers["docker-content-digest"] == image["digest"]
    # B's password opens the registry API (docker login works)...
    status, _, _ = v2(acl, "GET", "/v2/", host_a, pw_b)
    assert status == 200
    # ...but not A's repository.
    status, _, body = v2(acl, "GET", manifest_path, host_a, pw_b, headers=accept)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:BatchGetImage", arn))
    status, _, body = get_blob(acl, "prod/api", image["layer_digest"], host_a, pw_b)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:GetDownloadUrlForLayer", arn))
    status, _, body = v2(acl, "POST", "/v2/prod/api/blobs/uploads/", host_a, pw_b)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:InitiateLayerUpload", arn))
    # A missing repository in A looks the same to B.
    status, _, body = v2(acl, "GET", "/v2/prod/nope/manifests/v1", host_a, pw_b, headers=accept)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:BatchGetImage",
                                               repo_arn(ACCOUNT_A, "prod/nope")))
    # The host picks the registry: B's own host has no prod/api.
    status, _, body = v2(acl, "GET", manifest_path, host_b, pw_b, headers=accept)
    assert status == 404, body
    assert v2_error(body) == ("NAME_UNKNOWN", repository_not_found("prod/api", ACCOUNT_B))

    # Manifests only: layers stay closed.
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, "ecr:BatchGetImage")))
    status, headers, body = v2(acl, "GET", manifest_path, host_a, pw_b, headers=accept)
    assert status == 200 and body == image["manifest"].encode()
    status, _, body = get_blob(acl, "prod/api", image["layer_digest"], host_a, pw_b)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:GetDownloadUrlForLayer", arn))

    # The pull pair: the layer comes back bit for bit; pushing stays closed.
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, PULL_ACTIONS)))
    status, _, body = get_blob(acl, "prod/api", image["layer_digest"], host_a, pw_b)
    assert status == 200 and body == image["layer"]
    status, _, body = v2(acl, "POST", "/v2/prod/api/blobs/uploads/", host_a, pw_b)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:InitiateLayerUpload", arn))
    status, _, body = v2(acl, "PUT", "/v2/prod/api/manifests/b1", host_a, pw_b,
                         body=image["manifest"].encode(),
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:PutImage", arn))
    status, _, body = v2(acl, "DELETE", f"/v2/prod/api/manifests/{image['digest']}", host_a, pw_b)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:BatchDeleteImage", arn))

    # With the push actions granted too, B's manifest lands in A's repository.
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, sorted({*PULL_ACTIONS,
                                                                         *PUSH_ACTIONS}))))
    status, headers, body = v2(acl, "PUT", "/v2/prod/api/manifests/b1", host_a, pw_b,
                               body=image["manifest"].encode(),
                               headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body
    assert headers["docker-content-digest"] == image["digest"]
    assert sorted(i.get("imageTag") for i in a.list_images(repositoryName="prod/api")[
        "imageIds"]) == ["b1", "v1"]

    # An explicit Deny closes the manifest again.
    a.set_repository_policy(repositoryName="prod/api", policyText=policy(
        allow(PRINCIPAL_B, PULL_ACTIONS), deny(PRINCIPAL_B, "ecr:BatchGetImage")))
    status, _, body = v2(acl, "GET", manifest_path, host_a, pw_b, headers=accept)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_B, "ecr:BatchGetImage", arn,
                                               "explicit-resource"))


def test_registry_plane_identity_policy(acl):
    """The read-only user pulls from its own registry and may not push."""
    admin = client(acl, "admin_c")
    admin.create_repository(repositoryName="audit/app")
    image = put_test_image(admin, "audit/app", "v1")
    arn = repo_arn(ACCOUNT_C, "audit/app")
    host_c = registry_host(acl, ACCOUNT_C)
    pw = login_password(acl, "reader")
    status, _, body = v2(acl, "GET", "/v2/audit/app/manifests/v1", host_c, pw,
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200 and body == image["manifest"].encode(), body
    # ecr:GetDownloadUrlForLayer is covered by the policy's ecr:Get*.
    status, _, body = get_blob(acl, "audit/app", image["layer_digest"], host_c, pw)
    assert status == 200 and body == image["layer"]
    status, _, body = v2(acl, "POST", "/v2/audit/app/blobs/uploads/", host_c, pw)
    assert status == 403, body
    assert v2_error(body) == ("DENIED", denied(PRINCIPAL_READER, "ecr:InitiateLayerUpload", arn,
                                               "identity"))


# ------------------------------------------------------------------ registry plane, real clients

def assert_push_denied(output: str, granted: list[str]) -> str:
    """The push was refused with the sentence for one of the push actions the
    policy does not grant; returns that action."""
    match = re.search(
        rf"User: {re.escape(PRINCIPAL_B)} is not authorized to perform: (ecr:\w+) on resource: "
        rf"{re.escape(repo_arn(ACCOUNT_A, 'prod/api'))} because no resource-based policy allows "
        r"the (ecr:\w+) action", output)
    assert match, output
    assert match.group(1) == match.group(2), output
    assert match.group(1) in set(PUSH_ACTIONS) - set(granted), output
    return match.group(1)


def cli_password(server: EcrdServer, who: str) -> str:
    password = aws_as(server, who, "ecr", "get-login-password").stdout.strip()
    assert password
    return password


def test_skopeo_cross_account_pull_and_push(acl, account_hosts, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (.ci/run installs it)")
    a = client(acl, "a")
    uri = a.create_repository(repositoryName="prod/api")["repository"]["repositoryUri"]
    host_a = registry_host(acl, ACCOUNT_A)
    assert uri == f"{host_a}/prod/api"
    arn = repo_arn(ACCOUNT_A, "prod/api")
    ref = f"docker://{uri}:v1"
    creds_a = f"AWS:{cli_password(acl, 'a')}"
    creds_b = f"AWS:{cli_password(acl, 'b')}"
    layer = os.urandom(300 * 1024)
    digest = write_oci_layout(tmp_path / "src", layer)
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds_a,
           f"oci:{tmp_path / 'src'}:v1", ref)
    assert a.list_images(repositoryName="prod/api")["imageIds"] == [
        {"imageDigest": digest, "imageTag": "v1"}]

    def pull_as_b(out: str, check: bool = True):
        return skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds",
                      creds_b, ref, f"oci:{tmp_path / out}:v1", check=check)

    # Denied: B's password, A's registry, no policy.
    result = pull_as_b("denied", check=False)
    assert result.returncode != 0
    assert denied(PRINCIPAL_B, "ecr:BatchGetImage", arn) in result.stderr, result.stderr

    # A allows B to pull: the image comes out bit for bit.
    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, PULL_ACTIONS, "AllowDevPull")))
    pull_as_b("pulled")
    index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    layer_path = tmp_path / "pulled" / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
    assert layer_path.read_bytes() == layer

    # B may not push into A's repository.
    write_oci_layout(tmp_path / "mine", os.urandom(64 * 1024))
    result = skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds",
                    creds_b, f"oci:{tmp_path / 'mine'}:v1", f"docker://{uri}:from-dev",
                    check=False)
    assert result.returncode != 0
    assert_push_denied(result.stderr, PULL_ACTIONS)
    assert a.list_images(repositoryName="prod/api")["imageIds"] == [
        {"imageDigest": digest, "imageTag": "v1"}]

    # An explicit Deny for B wins over the Allow.
    a.set_repository_policy(repositoryName="prod/api", policyText=policy(
        allow(PRINCIPAL_B, PULL_ACTIONS, "AllowDevPull"),
        deny(PRINCIPAL_B, "ecr:BatchGetImage", "DenyDev")))
    result = pull_as_b("denied-again", check=False)
    assert result.returncode != 0
    assert denied(PRINCIPAL_B, "ecr:BatchGetImage", arn, "explicit-resource") in result.stderr, \
        result.stderr


def test_docker_cross_account_pull_and_push(acl, account_hosts, docker_env, tmp_path):
    a = client(acl, "a")
    uri = a.create_repository(repositoryName="prod/api")["repository"]["repositoryUri"]
    host_a = registry_host(acl, ACCOUNT_A)
    assert uri == f"{host_a}/prod/api"
    arn = repo_arn(ACCOUNT_A, "prod/api")
    ref = f"{uri}:v1"
    # An image of this test's own, so removing it locally forces a real pull.
    (tmp_path / "payload.bin").write_bytes(os.urandom(512 * 1024))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY payload.bin /payload.bin\n")
    docker(docker_env, "build", "-q", "-t", ref, str(tmp_path))

    login = docker(docker_env, "login", "--username", "AWS", "--password-stdin", host_a,
                   stdin=cli_password(acl, "a"))
    assert "Login Succeeded" in login.stdout
    pushed = docker(docker_env, "push", ref)
    digest = pushed.stdout.split("digest: ")[1].split()[0]
    assert a.list_images(repositoryName="prod/api")["imageIds"] == [
        {"imageDigest": digest, "imageTag": "v1"}]
    image_id = docker(docker_env, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    docker(docker_env, "image", "rm", "-f", image_id)

    # B logs in to A's registry host with B's password (as ECR's cross-account pull does).
    login = docker(docker_env, "login", "--username", "AWS", "--password-stdin", host_a,
                   stdin=cli_password(acl, "b"))
    assert "Login Succeeded" in login.stdout
    result = docker(docker_env, "pull", ref, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "denied: " + denied(PRINCIPAL_B, "ecr:BatchGetImage", arn) in output, output

    a.set_repository_policy(repositoryName="prod/api",
                            policyText=policy(allow(PRINCIPAL_B, PULL_ACTIONS, "AllowDevPull")))
    pulled = docker(docker_env, "pull", ref)
    assert digest in pulled.stdout, pulled.stdout
    inspect = json.loads(docker(docker_env, "image", "inspect", ref).stdout)
    assert f"{uri}@{digest}" in inspect[0]["RepoDigests"]
    assert inspect[0]["Id"] == image_id

    # B pushing into A's repository is refused.
    other = f"{uri}:from-dev"
    docker(docker_env, "tag", ref, other)
    result = docker(docker_env, "push", other, check=False)
    assert result.returncode != 0
    assert_push_denied(result.stdout + result.stderr, PULL_ACTIONS)
    assert a.list_images(repositoryName="prod/api")["imageIds"] == [
        {"imageDigest": digest, "imageTag": "v1"}]

    # Explicit Deny: refused again.
    a.set_repository_policy(repositoryName="prod/api", policyText=policy(
        allow(PRINCIPAL_B, PULL_ACTIONS, "AllowDevPull"),
        deny(PRINCIPAL_B, ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "DenyDev")))
    docker(docker_env, "image", "rm", "-f", image_id)
    result = docker(docker_env, "pull", ref, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "denied: " + denied(PRINCIPAL_B, "ecr:BatchGetImage", arn, "explicit-resource") \
        in output, output


# ------------------------------------------------------------------ Terraform AWS provider replay
#
# What hashicorp/terraform-provider-aws does, call by call, read from
# internal/service/ecr/repository_policy.go and registry_policy.go (and the
# acceptance tests next to them for the documents). Each step names the
# provider function it mirrors.


def test_terraform_aws_ecr_repository_policy(acl):
    sts, ecr = client(acl, "a", "sts"), client(acl, "a")
    # provider configure (conns / aws-sdk-go-base): STS GetCallerIdentity
    # gives the account id, used by data.aws_caller_identity and registry_id checks.
    identity = sts.get_caller_identity()
    account = identity["Account"]
    assert (account, identity["Arn"]) == (ACCOUNT_A, PRINCIPAL_A)

    name = "tf-acc-test-repo"
    # aws_ecr_repository.test: resourceRepositoryCreate -> CreateRepository
    created = ecr.create_repository(repositoryName=name)["repository"]
    assert created["registryId"] == account

    # testAccRepositoryPolicyConfig: jsonencode({Version 2008-10-17, Principal "*", ecr:ListImages})
    config_v1 = json.dumps({"Version": "2008-10-17", "Statement": [{
        "Sid": name, "Effect": "Allow", "Principal": "*", "Action": "ecr:ListImages"}]})
    # testAccRepositoryPolicyUpdatedConfig adds ecr:DescribeImages, with role
    # principals listed in an arbitrary order (the principalOrder case).
    config_v2 = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": name, "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{account}:role/{name}-mercedes",
                              f"arn:aws:iam::{account}:role/{name}-redbull",
                              f"arn:aws:iam::{ACCOUNT_B}:root"]},
        "Action": ["ecr:ListImages", "ecr:DescribeImages"]}]})

    def put(config: str, is_new: bool, state: dict) -> None:
        # resourceRepositoryPolicyPut: SetRepositoryPolicy{PolicyText:
        # NormalizeJsonString(policy), RepositoryName} (no RegistryId, no Force),
        # retried while the error is InvalidParameterException "Invalid repository
        # policy provided": a valid document must succeed at the first try.
        out = ecr.set_repository_policy(repositoryName=name, policyText=normalize_json(config))
        assert out["repositoryName"] == name
        if is_new:
            state["id"] = name  # d.SetId(repositoryName)
        state["policy"] = config  # the configured value, before the read
        read(state)

    def read(state: dict) -> None:
        # resourceRepositoryPolicyRead -> findRepositoryPolicyByRepositoryName:
        # GetRepositoryPolicy{RepositoryName: d.Id()}
        out = ecr.get_repository_policy(repositoryName=state["id"])
        # verify.SecondJSONUnlessEquivalent: keep the state's text when the
        # server's is equivalent (else there is a diff), then NormalizeJsonString.
        chosen = out["policyText"]
        if "policy" in state:
            assert_equivalent(out["policyText"], state["policy"])
            chosen = state["policy"]
        state.update(policy=normalize_json(chosen), registry_id=out["registryId"],
                     repository=out["repositoryName"])

    state: dict = {}
    # terraform apply (create)
    put(config_v1, True, state)
    assert state == {"id": name, "policy": normalize_json(config_v1), "registry_id": account,
                     "repository": name}
    # testAccCheckRepositoryPolicyExists / refresh: read again, nothing changes.
    before = dict(state)
    read(state)
    assert state == before

    # ImportState (ImportStatePassthroughContext: the id is the repository
    # name) and ImportStateVerify: a fresh read gives the same attributes.
    imported = {"id": name}
    read(imported)
    assert imported == state

    # terraform apply (update): resourceRepositoryPolicyPut, not new.
    put(config_v2, False, state)
    assert_equivalent(state["policy"], config_v2)
    assert "ecr:DescribeImages" in state["policy"]

    # terraform destroy: resourceRepositoryPolicyDelete ->
    # DeleteRepositoryPolicy{RegistryId: registry_id, RepositoryName: d.Id()}
    deleted = ecr.delete_repository_policy(registryId=state["registry_id"], repositoryName=name)
    assert (deleted["registryId"], deleted["repositoryName"]) == (account, name)
    assert_equivalent(deleted["policyText"], config_v2)
    # testAccCheckRepositoryPolicyDestroy / refresh after delete:
    # GetRepositoryPolicy -> RepositoryPolicyNotFoundException (tfresource.NotFound,
    # removed from state).
    expect_error(ecr.get_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found(name, account),
                 registryId=state["registry_id"], repositoryName=name)
    # A second destroy (resource already gone) is tolerated by the provider
    # because the code is RepositoryPolicyNotFoundException.
    expect_error(ecr.delete_repository_policy, "RepositoryPolicyNotFoundException",
                 repository_policy_not_found(name, account),
                 registryId=state["registry_id"], repositoryName=name)

    # TestAccECRRepositoryPolicy_Disappears_repository: the repository goes away;
    # read and delete now see RepositoryNotFoundException (also "gone").
    put(config_v1, True, state)
    # aws_ecr_repository: resourceRepositoryDelete -> DeleteRepository{Force}
    ecr.delete_repository(registryId=account, repositoryName=name, force=True)
    expect_error(ecr.get_repository_policy, "RepositoryNotFoundException",
                 repository_not_found(name, account), repositoryName=name)
    expect_error(ecr.delete_repository_policy, "RepositoryNotFoundException",
                 repository_not_found(name, account), registryId=account, repositoryName=name)


def test_terraform_aws_ecr_registry_policy(acl):
    sts, ecr = client(acl, "a", "sts"), client(acl, "a")
    # provider configure: STS GetCallerIdentity; data.aws_region / aws_partition.
    account = sts.get_caller_identity()["Account"]
    assert account == ACCOUNT_A
    resource = f"arn:aws:ecr:{REGION}:{account}:repository/*"
    # testAccRegistryPolicyConfig_basic / _updated
    basic = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "testpolicy", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "ecr:ReplicateImage", "Resource": resource}]})
    updated = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "testpolicy", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"], "Resource": [resource]}]})

    def read(state: dict) -> None:
        # resourceRegistryPolicyRead -> findRegistryPolicy: GetRegistryPolicy{};
        # then SecondJSONUnlessEquivalent + NormalizeJsonString as above.
        out = ecr.get_registry_policy()
        chosen = out["policyText"]
        if "policy" in state:
            assert_equivalent(out["policyText"], state["policy"])
            chosen = state["policy"]
        state.update(policy=normalize_json(chosen), registry_id=out["registryId"])

    def put(config: str, state: dict) -> None:
        # resourceRegistryPolicyPut: PutRegistryPolicy{PolicyText: NormalizeJsonString(policy)}
        out = ecr.put_registry_policy(policyText=normalize_json(config))
        state["id"] = out["registryId"]  # d.SetId(output.RegistryId)
        state["policy"] = config
        read(state)

    state: dict = {}
    put(basic, state)  # create
    assert state == {"id": account, "policy": normalize_json(basic), "registry_id": account}
    assert re.search(r'"ecr:ReplicateImage".+', state["policy"])
    # ImportState: the id is the registry id; ImportStateVerify.
    imported = {"id": account}
    read(imported)
    assert imported == state
    put(updated, state)  # update
    assert re.search(r'"ecr:CreateRepository".+', state["policy"])
    assert state["registry_id"] == account

    # resourceRegistryPolicyDelete: DeleteRegistryPolicy{}
    deleted = ecr.delete_registry_policy()
    assert deleted["registryId"] == account
    assert_equivalent(deleted["policyText"], updated)
    # testAccCheckRegistryPolicyDestroy / refresh: RegistryPolicyNotFoundException
    # (retry.NotFound -> removed from state); delete again is tolerated.
    error = expect_error(ecr.get_registry_policy, "RegistryPolicyNotFoundException")
    assert account in error["Message"]
    expect_error(ecr.delete_registry_policy, "RegistryPolicyNotFoundException")


# ------------------------------------------------------------------ durability, modes, configuration


def test_policies_survive_a_restart_and_die_with_their_repository(tmp_path):
    creds = write_config(tmp_path / "conf")
    data_dir = tmp_path / "data"
    server = start_server(creds, data_dir)
    try:
        a, b = client(server, "a"), client(server, "b")
        a.create_repository(repositoryName="prod/api")
        image = put_test_image(a, "prod/api", "v1")
        repo_policy = policy(allow(PRINCIPAL_B, ["ecr:DescribeImages", *PULL_ACTIONS]))
        registry_policy = policy({"Effect": "Allow", "Principal": {"AWS": PRINCIPAL_B},
                                  "Action": "ecr:CreateRepository",
                                  "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_A}:repository/*"})
        a.set_repository_policy(repositoryName="prod/api", policyText=repo_policy)
        a.put_registry_policy(policyText=registry_policy)
        assert server.terminate() == 0
        server.close()

        server = start_server(creds, data_dir)
        a, b = client(server, "a"), client(server, "b")
        assert_equivalent(a.get_repository_policy(repositoryName="prod/api")["policyText"],
                          repo_policy)
        assert_equivalent(a.get_registry_policy()["policyText"], registry_policy)
        # The grant still works after the restart, on both planes.
        assert b.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")[
            "imageDetails"][0]["imageDigest"] == image["digest"]
        status, _, body = v2(server, "GET", "/v2/prod/api/manifests/v1",
                             registry_host(server, ACCOUNT_A), login_password(server, "b"),
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert status == 200 and body == image["manifest"].encode()

        # delete-repository --force takes the repository policy with it.
        a.delete_repository(repositoryName="prod/api", force=True)
        a.create_repository(repositoryName="prod/api")
        expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                     repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
        expect_denied(b.describe_images, PRINCIPAL_B, "ecr:DescribeImages",
                      repo_arn(ACCOUNT_A, "prod/api"), registryId=ACCOUNT_A,
                      repositoryName="prod/api")
        assert server.terminate() == 0
        server.close()

        # ...and that is durable too; the registry policy is not a repository's.
        server = start_server(creds, data_dir)
        a = client(server, "a")
        expect_error(a.get_repository_policy, "RepositoryPolicyNotFoundException",
                     repository_policy_not_found("prod/api", ACCOUNT_A), repositoryName="prod/api")
        assert_equivalent(a.get_registry_policy()["policyText"], registry_policy)
    finally:
        server.close()


def test_permissive_auth_still_evaluates(spawn):
    """--auth permissive: any key is accepted and maps to a principal (a
    12-digit key to that account's root, anything else to the default
    account's root); policies are evaluated for that principal."""
    server = spawn(args=["--auth", "permissive"])

    def as_key(key: str, service: str = "ecr"):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=server.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key="anything",
                            config=Config(retries={"max_attempts": 1}))

    anyone = as_key("AKIAWHOEVER", "sts").get_caller_identity()
    assert (anyone["Account"], anyone["Arn"]) == (DEFAULT_ACCOUNT,
                                                   f"arn:aws:iam::{DEFAULT_ACCOUNT}:root")
    numbered = as_key(ACCOUNT_B, "sts").get_caller_identity()
    assert (numbered["Account"], numbered["Arn"]) == (ACCOUNT_B, PRINCIPAL_B)

    owner, other = as_key(ACCOUNT_A), as_key(ACCOUNT_B)
    owner.create_repository(repositoryName="prod/api")
    arn = repo_arn(ACCOUNT_A, "prod/api")
    expect_denied(other.describe_images, PRINCIPAL_B, "ecr:DescribeImages", arn,
                  registryId=ACCOUNT_A, repositoryName="prod/api")
    expect_denied(as_key("AKIAWHOEVER").list_images, f"arn:aws:iam::{DEFAULT_ACCOUNT}:root",
                  "ecr:ListImages", arn, registryId=ACCOUNT_A, repositoryName="prod/api")
    owner.set_repository_policy(repositoryName="prod/api",
                                policyText=policy(allow(ACCOUNT_B, "ecr:DescribeImages")))
    assert other.describe_images(registryId=ACCOUNT_A, repositoryName="prod/api")[
        "imageDetails"] == []


@pytest.mark.parametrize(
    "case",
    ["principal of another account", "not a principal", "invalid identity policy",
     "missing policy file"],
)
def test_bad_credentials_fail_fast(case, tmp_path):
    SECRET = "s3cr3t-never-printed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    args: list[str] = []
    if case == "principal of another account":
        env["ECRD_CREDENTIALS"] = f"AKIAX:{SECRET}:{ACCOUNT_A}:arn:aws:iam::{ACCOUNT_B}:user/x"
        needle = f"arn:aws:iam::{ACCOUNT_B}:user/x"
    elif case == "not a principal":
        env["ECRD_CREDENTIALS"] = f"AKIAX:{SECRET}:{ACCOUNT_A}:arn:aws:s3:::bucket"
        needle = "AKIAX"
    elif case == "invalid identity policy":
        creds = tmp_path / "credentials"
        creds.write_text(f'AKIAX {SECRET} {ACCOUNT_A} policy={{"Version": "2012-10-17"\n')
        args = ["--credentials-file", str(creds)]
        needle = str(creds)
    else:
        creds = tmp_path / "credentials"
        creds.write_text(f"AKIAX {SECRET} {ACCOUNT_A} policy=nowhere/policy.json\n")
        args = ["--credentials-file", str(creds)]
        needle = "nowhere/policy.json"
    result = subprocess.run(
        [str(find_binary()), "serve", "--host", "127.0.0.1", "--port", str(free_port()), *args],
        env=env, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode != 0, result.stderr
    assert needle in result.stderr, result.stderr
    assert SECRET not in result.stderr, result.stderr  # never echo a secret
