"""Repository operations through boto3, against the real binary."""

import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import DEFAULT_ACCOUNT, error_of

NAME_PATTERN_MESSAGE = (
    "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
    "'must satisfy regular expression "
    "'(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''"
)


def test_create_describe_delete_with_tags(ecrd, boto):
    created = boto.create_repository(
        repositoryName="team/web-app",
        tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "platform"}],
        imageScanningConfiguration={"scanOnPush": True},
    )["repository"]
    assert created["repositoryName"] == "team/web-app"
    assert created["registryId"] == DEFAULT_ACCOUNT
    assert created["repositoryArn"] == (
        f"arn:aws:ecr:us-east-1:{DEFAULT_ACCOUNT}:repository/team/web-app"
    )
    assert created["repositoryUri"] == f"localhost:{ecrd.port}/team/web-app"
    assert created["imageTagMutability"] == "MUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    assert created["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert isinstance(created["createdAt"], datetime.datetime)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((created["createdAt"] - now).total_seconds()) < 60

    described = boto.describe_repositories(repositoryNames=["team/web-app"])["repositories"]
    assert described == [created]

    tags = boto.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "platform")]

    deleted = boto.delete_repository(repositoryName="team/web-app")["repository"]
    assert deleted["repositoryName"] == "team/web-app"
    assert deleted["repositoryArn"] == created["repositoryArn"]
    assert boto.describe_repositories()["repositories"] == []


def test_duplicate_and_missing_repositories(boto):
    boto.create_repository(repositoryName="dup")
    with pytest.raises(ClientError) as e:
        boto.create_repository(repositoryName="dup")
    assert error_of(e) == (
        "RepositoryAlreadyExistsException",
        f"The repository with name 'dup' already exists in the registry with id '{DEFAULT_ACCOUNT}'",
    )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    missing = (
        "RepositoryNotFoundException",
        f"The repository with name 'nope' does not exist in the registry with id '{DEFAULT_ACCOUNT}'",
    )
    with pytest.raises(ClientError) as e:
        boto.describe_repositories(repositoryNames=["nope"])
    assert error_of(e) == missing
    with pytest.raises(ClientError) as e:
        boto.describe_repositories(repositoryNames=["dup", "nope"])
    assert error_of(e) == missing
    with pytest.raises(ClientError) as e:
        boto.delete_repository(repositoryName="nope")
    assert error_of(e) == missing
    with pytest.raises(ClientError) as e:
        boto.put_image_scanning_configuration(
            repositoryName="nope", imageScanningConfiguration={"scanOnPush": True}
        )
    assert error_of(e) == missing
    # The request id comes back on errors too.
    assert e.value.response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize(
    "name", ["Team/App", "UPPER", "../etc", "a//b", "app/", "/app", "x y", "a__b", "-lead"]
)
def test_invalid_names_get_the_ecr_message(boto, name):
    with pytest.raises(ClientError) as e:
        boto.create_repository(repositoryName=name)
    assert error_of(e) == ("InvalidParameterException", NAME_PATTERN_MESSAGE)


def test_name_length_limits(boto, unchecked):
    with pytest.raises(ClientError) as e:
        unchecked.create_repository(repositoryName="a")
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'must have length greater than or equal to 2'",
    )
    longest = "a" * 256
    assert boto.create_repository(repositoryName=longest)["repository"]["repositoryName"] == longest
    with pytest.raises(ClientError) as e:
        unchecked.create_repository(repositoryName="a" * 257)
    assert error_of(e)[0] == "InvalidParameterException"
    assert "256" in error_of(e)[1]
    names = [r["repositoryName"] for r in boto.describe_repositories()["repositories"]]
    assert names == [longest]


def test_valid_name_shapes(boto):
    for name in ["ab", "a.b", "a-b", "a_b", "ns/sub/app-1.2_x", "0/1", "x1.y2-z3"]:
        boto.create_repository(repositoryName=name)
    assert len(boto.describe_repositories()["repositories"]) == 7


def test_paginator_walks_25_repositories(boto):
    names = [f"page/repo-{i:02d}" for i in range(25)]
    for name in names:
        boto.create_repository(repositoryName=name)
    paginator = boto.get_paginator("describe_repositories")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 10}))
    assert [len(p["repositories"]) for p in pages] == [10, 10, 5]
    seen = [r["repositoryName"] for p in pages for r in p["repositories"]]
    assert sorted(seen) == names
    assert len(set(seen)) == 25
    assert "nextToken" in pages[0] and "nextToken" not in pages[-1]

    # MaxItems with a resume token.
    first = paginator.paginate(PaginationConfig={"MaxItems": 12, "PageSize": 5}).build_full_result()
    assert len(first["repositories"]) == 12
    rest = paginator.paginate(
        PaginationConfig={"PageSize": 5, "StartingToken": first["NextToken"]}
    ).build_full_result()
    assert sorted(r["repositoryName"] for r in first["repositories"] + rest["repositories"]) == names

    # Without a page size, one page holds them all.
    assert len(boto.describe_repositories()["repositories"]) == 25


def test_pagination_parameter_errors(boto, unchecked):
    boto.create_repository(repositoryName="one")
    with pytest.raises(ClientError) as e:
        boto.describe_repositories(maxResults=1001)
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid parameter at 'maxResults' failed to satisfy constraint: "
        "'must have value less than or equal to 1000'",
    )
    with pytest.raises(ClientError) as e:
        unchecked.describe_repositories(maxResults=0)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.describe_repositories(repositoryNames=["one"], maxResults=2)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.describe_repositories(nextToken="garbage!")
    assert error_of(e)[0] == "InvalidParameterException"


def test_kms_encryption(boto):
    kms = boto.create_repository(
        repositoryName="kms-default", encryptionConfiguration={"encryptionType": "KMS"}
    )["repository"]["encryptionConfiguration"]
    assert kms["encryptionType"] == "KMS"
    assert kms["kmsKey"].startswith(f"arn:aws:kms:us-east-1:{DEFAULT_ACCOUNT}:key/")

    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    explicit = boto.create_repository(
        repositoryName="kms-explicit",
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key_id},
    )["repository"]["encryptionConfiguration"]
    assert explicit == {
        "encryptionType": "KMS",
        "kmsKey": f"arn:aws:kms:us-east-1:{DEFAULT_ACCOUNT}:key/{key_id}",
    }
    full_arn = f"arn:aws:kms:us-east-1:{DEFAULT_ACCOUNT}:key/{key_id}"
    dsse = boto.create_repository(
        repositoryName="kms-dsse",
        encryptionConfiguration={"encryptionType": "KMS_DSSE", "kmsKey": full_arn},
    )["repository"]["encryptionConfiguration"]
    assert dsse == {"encryptionType": "KMS_DSSE", "kmsKey": full_arn}

    described = boto.describe_repositories(repositoryNames=["kms-explicit"])["repositories"][0]
    assert described["encryptionConfiguration"] == explicit

    with pytest.raises(ClientError) as e:
        boto.create_repository(
            repositoryName="aes-with-key",
            encryptionConfiguration={"encryptionType": "AES256", "kmsKey": key_id},
        )
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.create_repository(
            repositoryName="bad-type", encryptionConfiguration={"encryptionType": "ROT13"}
        )
    assert error_of(e)[0] == "InvalidParameterException"
    assert "enum" in error_of(e)[1]


def test_scanning_configuration(boto):
    repo = boto.create_repository(repositoryName="scan")["repository"]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    out = boto.put_image_scanning_configuration(
        repositoryName="scan", imageScanningConfiguration={"scanOnPush": True}
    )
    assert out["registryId"] == DEFAULT_ACCOUNT
    assert out["repositoryName"] == "scan"
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    described = boto.describe_repositories(repositoryNames=["scan"])["repositories"][0]
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}


def test_tag_mutability_with_exclusion_filters(boto):
    filters = [
        {"filterType": "WILDCARD", "filter": "latest"},
        {"filterType": "WILDCARD", "filter": "dev-*"},
    ]
    repo = boto.create_repository(
        repositoryName="immut",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=filters,
    )["repository"]
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == filters
    described = boto.describe_repositories(repositoryNames=["immut"])["repositories"][0]
    assert described["imageTagMutabilityExclusionFilters"] == filters

    out = boto.put_image_tag_mutability(repositoryName="immut", imageTagMutability="IMMUTABLE")
    assert out["imageTagMutability"] == "IMMUTABLE"
    assert out["repositoryName"] == "immut"
    assert out["registryId"] == DEFAULT_ACCOUNT
    assert not out.get("imageTagMutabilityExclusionFilters")
    described = boto.describe_repositories(repositoryNames=["immut"])["repositories"][0]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert not described.get("imageTagMutabilityExclusionFilters")

    out = boto.put_image_tag_mutability(
        repositoryName="immut",
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "release-*"}],
    )
    assert out["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"

    # A *_WITH_EXCLUSION setting needs filters; filters need one.
    with pytest.raises(ClientError) as e:
        boto.create_repository(repositoryName="immut2", imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.create_repository(
            repositoryName="immut3",
            imageTagMutability="MUTABLE",
            imageTagMutabilityExclusionFilters=filters,
        )
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.put_image_tag_mutability(
            repositoryName="immut",
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "bad filter!"}],
        )
    code, message = error_of(e)
    assert code == "InvalidParameterException"
    assert "imageTagMutabilityExclusionFilters.1.member.filter" in message
    with pytest.raises(ClientError) as e:
        boto.put_image_tag_mutability(repositoryName="missing", imageTagMutability="IMMUTABLE")
    assert error_of(e)[0] == "RepositoryNotFoundException"
    assert [r["repositoryName"] for r in boto.describe_repositories()["repositories"]] == ["immut"]


def test_resource_tags(boto):
    arn = boto.create_repository(repositoryName="tagged", tags=[{"Key": "a", "Value": "1"}])[
        "repository"
    ]["repositoryArn"]
    boto.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    tags = boto.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "2"), ("b", "3")]

    boto.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert boto.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "3"}]

    with pytest.raises(ClientError) as e:
        boto.tag_resource(
            resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)]
        )
    assert error_of(e)[0] == "TooManyTagsException"
    assert len(boto.list_tags_for_resource(resourceArn=arn)["tags"]) == 1

    with pytest.raises(ClientError) as e:
        boto.tag_resource(resourceArn=arn, tags=[{"Key": "aws:owner", "Value": "x"}])
    assert error_of(e)[0] == "InvalidTagParameterException"

    with pytest.raises(ClientError) as e:
        boto.list_tags_for_resource(resourceArn="not-an-arn")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.list_tags_for_resource(
            resourceArn=f"arn:aws:ecr:us-east-1:{DEFAULT_ACCOUNT}:repository/nope"
        )
    assert error_of(e)[0] == "RepositoryNotFoundException"


def test_delete_with_force_and_registry_id(boto):
    boto.create_repository(repositoryName="forced", registryId=DEFAULT_ACCOUNT)
    out = boto.delete_repository(repositoryName="forced", registryId=DEFAULT_ACCOUNT, force=True)
    assert out["repository"]["repositoryName"] == "forced"
    assert boto.describe_repositories()["repositories"] == []


def test_account_settings_and_registry(boto):
    got = boto.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")
    assert (got["name"], got["value"]) == ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE")
    put = boto.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    assert (put["name"], put["value"]) == ("REGISTRY_POLICY_SCOPE", "V1")
    assert boto.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V1"
    with pytest.raises(ClientError) as e:
        boto.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V9")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        boto.get_account_setting(name="NOPE")
    assert error_of(e)[0] == "InvalidParameterException"

    registry = boto.describe_registry()
    assert registry["registryId"] == DEFAULT_ACCOUNT
    assert registry["replicationConfiguration"] == {"rules": []}


def test_authorization_token(ecrd, boto):
    import base64

    out = boto.get_authorization_token()["authorizationData"]
    assert len(out) == 1
    data = out[0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    assert len(password) > 32
    assert data["proxyEndpoint"] == f"https://localhost:{ecrd.port}"
    ahead = data["expiresAt"] - datetime.datetime.now(datetime.timezone.utc)
    assert abs(ahead.total_seconds() - 12 * 3600) < 120
