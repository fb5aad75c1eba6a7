"""The AWS CLI (`aws ecr ...`) against the real binary, as a user would type it."""

import base64
import datetime
import json

from conftest import DEFAULT_ACCOUNT, aws_json, boto_client, run_aws


def as_datetime(value) -> datetime.datetime:
    """The CLI prints timestamps as epoch seconds or ISO 8601, depending on its settings."""
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    return datetime.datetime.fromisoformat(value)


def test_repository_round_trip(ecrd):
    created = aws_json(
        ecrd, "ecr", "create-repository",
        "--repository-name", "cli/app",
        "--tags", "Key=env,Value=ci", "Key=owner,Value=me",
        "--image-scanning-configuration", "scanOnPush=true",
        "--image-tag-mutability", "IMMUTABLE",
        "--encryption-configuration", "encryptionType=KMS",
    )["repository"]
    assert created["repositoryName"] == "cli/app"
    assert created["registryId"] == DEFAULT_ACCOUNT
    assert created["repositoryUri"] == f"localhost:{ecrd.port}/cli/app"
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    assert created["encryptionConfiguration"]["encryptionType"] == "KMS"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((as_datetime(created["createdAt"]) - now).total_seconds()) < 60

    listed = aws_json(ecrd, "ecr", "describe-repositories")["repositories"]
    assert [r["repositoryName"] for r in listed] == ["cli/app"]

    tags = aws_json(
        ecrd, "ecr", "list-tags-for-resource", "--resource-arn", created["repositoryArn"]
    )["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "ci"), ("owner", "me")]

    deleted = aws_json(ecrd, "ecr", "delete-repository", "--repository-name", "cli/app")
    assert deleted["repository"]["repositoryArn"] == created["repositoryArn"]
    assert aws_json(ecrd, "ecr", "describe-repositories")["repositories"] == []


def test_errors_reach_the_cli(ecrd):
    result = run_aws(
        ecrd, "ecr", "describe-repositories", "--repository-names", "ghost", check=False
    )
    assert result.returncode != 0
    assert "RepositoryNotFoundException" in result.stderr
    assert (
        f"The repository with name 'ghost' does not exist in the registry with id "
        f"'{DEFAULT_ACCOUNT}'" in result.stderr
    )

    result = run_aws(ecrd, "ecr", "create-repository", "--repository-name", "Bad/Name",
                     check=False)
    assert result.returncode != 0
    assert "InvalidParameterException" in result.stderr
    assert "must satisfy regular expression" in result.stderr


def test_login_password_and_authorization_token(ecrd):
    password = run_aws(ecrd, "ecr", "get-login-password").stdout.strip()
    assert password and "\n" not in password

    data = aws_json(ecrd, "ecr", "get-authorization-token")["authorizationData"]
    assert len(data) == 1
    token = base64.b64decode(data[0]["authorizationToken"]).decode()
    user, _, token_password = token.partition(":")
    assert user == "AWS"
    assert len(token_password) > 32
    assert data[0]["proxyEndpoint"] == f"https://localhost:{ecrd.port}"
    expires = as_datetime(data[0]["expiresAt"])
    ahead = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert abs(ahead - 12 * 3600) < 120


def test_tag_untag_list(ecrd):
    arn = aws_json(ecrd, "ecr", "create-repository", "--repository-name", "tags")[
        "repository"]["repositoryArn"]
    run_aws(ecrd, "ecr", "tag-resource", "--resource-arn", arn,
            "--tags", "Key=a,Value=1", "Key=b,Value=2")
    run_aws(ecrd, "ecr", "untag-resource", "--resource-arn", arn, "--tag-keys", "a")
    tags = aws_json(ecrd, "ecr", "list-tags-for-resource", "--resource-arn", arn)["tags"]
    assert tags == [{"Key": "b", "Value": "2"}]


def test_settings_registry_and_scanning(ecrd):
    got = aws_json(ecrd, "ecr", "get-account-setting", "--name", "BASIC_SCAN_TYPE_VERSION")
    assert got == {"name": "BASIC_SCAN_TYPE_VERSION", "value": "AWS_NATIVE"}
    put = aws_json(ecrd, "ecr", "put-account-setting", "--name", "REGISTRY_POLICY_SCOPE",
                   "--value", "V1")
    assert put == {"name": "REGISTRY_POLICY_SCOPE", "value": "V1"}

    registry = aws_json(ecrd, "ecr", "describe-registry")
    assert registry["registryId"] == DEFAULT_ACCOUNT

    aws_json(ecrd, "ecr", "create-repository", "--repository-name", "mut")
    out = aws_json(ecrd, "ecr", "put-image-tag-mutability", "--repository-name", "mut",
                   "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION",
                   "--image-tag-mutability-exclusion-filters",
                   json.dumps([{"filterType": "WILDCARD", "filter": "latest"}]))
    assert out["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert out["imageTagMutabilityExclusionFilters"] == [
        {"filterType": "WILDCARD", "filter": "latest"}
    ]
    out = aws_json(ecrd, "ecr", "put-image-scanning-configuration", "--repository-name", "mut",
                   "--image-scanning-configuration", "scanOnPush=true")
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}


def test_regions_are_namespaces(ecrd):
    aws_json(ecrd, "ecr", "create-repository", "--repository-name", "east-only",
             region="us-east-1")
    west = aws_json(ecrd, "ecr", "describe-repositories", region="eu-west-1")
    assert west["repositories"] == []
    east = aws_json(ecrd, "ecr", "describe-repositories", region="us-east-1")
    assert [r["repositoryName"] for r in east["repositories"]] == ["east-only"]


def test_wrong_credentials(ecrd):
    result = run_aws(ecrd, "ecr", "describe-repositories", key="AKIANOBODY", secret="x",
                     check=False)
    assert result.returncode != 0
    assert "UnrecognizedClientException" in result.stderr
    result = run_aws(ecrd, "ecr", "describe-repositories", secret="wrong", check=False)
    assert result.returncode != 0
    assert "InvalidSignatureException" in result.stderr


def test_cli_paginates(ecrd):
    client = boto_client(ecrd)
    for i in range(5):
        client.create_repository(repositoryName=f"paged-{i}")
    # The CLI follows nextToken by itself; --page-size sets maxResults.
    everything = aws_json(ecrd, "ecr", "describe-repositories", "--page-size", "2")
    assert sorted(r["repositoryName"] for r in everything["repositories"]) == [
        f"paged-{i}" for i in range(5)
    ]
    some = aws_json(ecrd, "ecr", "describe-repositories", "--max-items", "3", "--page-size", "2")
    assert len(some["repositories"]) == 3
    assert some["NextToken"]
    rest = aws_json(ecrd, "ecr", "describe-repositories", "--starting-token", some["NextToken"],
                    "--page-size", "2")
    assert len(rest["repositories"]) == 2
