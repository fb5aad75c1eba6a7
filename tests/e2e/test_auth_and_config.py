"""SigV4 refusals, accounts, regions and the flags/environment of `ecrd serve`."""

import base64
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import (
    DEFAULT_ACCOUNT,
    JSON,
    boto_client,
    error_of,
    find_binary,
    free_port,
    http,
    run_aws,
)


def test_unknown_key_is_unrecognized(ecrd):
    client = boto_client(ecrd, key="AKIAUNKNOWN", secret="whatever")
    with pytest.raises(ClientError) as e:
        client.describe_repositories()
    assert error_of(e) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_wrong_secret_is_an_invalid_signature(ecrd):
    client = boto_client(ecrd, secret="not-the-secret")
    with pytest.raises(ClientError) as e:
        client.create_repository(repositoryName="never")
    code, message = error_of(e)
    assert code == "InvalidSignatureException"
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert boto_client(ecrd).describe_repositories()["repositories"] == []


def test_regions_are_namespaces(ecrd):
    east = boto_client(ecrd, region="us-east-1")
    west = boto_client(ecrd, region="eu-west-1")
    east.create_repository(repositoryName="regional")
    assert west.describe_repositories()["repositories"] == []
    with pytest.raises(ClientError) as e:
        west.describe_repositories(repositoryNames=["regional"])
    assert error_of(e)[0] == "RepositoryNotFoundException"
    repo = west.create_repository(repositoryName="regional")["repository"]
    assert repo["repositoryArn"] == f"arn:aws:ecr:eu-west-1:{DEFAULT_ACCOUNT}:repository/regional"
    west.delete_repository(repositoryName="regional")
    assert [r["repositoryName"] for r in east.describe_repositories()["repositories"]] == [
        "regional"
    ]


def test_second_account_from_env(spawn):
    server = spawn(env={"ECRD_CREDENTIALS": "AKIAOTHER:secret:111111111111"})
    default = boto_client(server)
    other = boto_client(server, key="AKIAOTHER", secret="secret")
    default.create_repository(repositoryName="same-name")
    repo = other.create_repository(repositoryName="same-name")["repository"]
    assert repo["registryId"] == "111111111111"
    assert repo["repositoryArn"] == "arn:aws:ecr:us-east-1:111111111111:repository/same-name"
    assert other.describe_registry()["registryId"] == "111111111111"
    other.delete_repository(repositoryName="same-name")
    assert len(default.describe_repositories()["repositories"]) == 1
    assert other.describe_repositories()["repositories"] == []
    # The other account's key with the wrong secret is refused.
    with pytest.raises(ClientError) as e:
        boto_client(server, key="AKIAOTHER", secret="nope").describe_repositories()
    assert error_of(e)[0] == "InvalidSignatureException"


def test_credentials_file_and_default_account_flags(spawn, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("# CI keys\nAKIAFILE filesecret 222222222222\n\n")
    server = spawn(args=["--credentials-file", str(creds), "--default-account", "123456789012"])
    from_file = boto_client(server, key="AKIAFILE", secret="filesecret")
    assert from_file.create_repository(repositoryName="from-file")["repository"]["registryId"] == (
        "222222222222"
    )
    assert boto_client(server).create_repository(repositoryName="default-acct")["repository"][
        "registryId"
    ] == "123456789012"


def test_session_token_from_credentials_file(spawn, tmp_path):
    import boto3
    from botocore.config import Config

    creds = tmp_path / "credentials"
    creds.write_text("ASIASESSION sessionsecret 444444444444 the-session-token\n")
    server = spawn(env={"ECRD_CREDENTIALS_FILE": str(creds)})

    def client(token):
        return boto3.client(
            "ecr", endpoint_url=server.url, region_name="us-east-1",
            aws_access_key_id="ASIASESSION", aws_secret_access_key="sessionsecret",
            aws_session_token=token, config=Config(retries={"max_attempts": 1}),
        )

    assert client("the-session-token").describe_registry()["registryId"] == "444444444444"
    for wrong in ("another-token", None):
        with pytest.raises(ClientError) as e:
            client(wrong).describe_registry()
        assert error_of(e) == (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ), wrong


def test_aws_shaped_registry_host(spawn):
    server = spawn(args=["--registry-host", "{account}.dkr.ecr.{region}.amazonaws.com"])
    repo = boto_client(server, region="eu-central-1").create_repository(repositoryName="shaped")[
        "repository"
    ]
    assert repo["repositoryUri"] == "000000000000.dkr.ecr.eu-central-1.amazonaws.com/shaped"
    data = boto_client(server).get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == "https://000000000000.dkr.ecr.us-east-1.amazonaws.com"


def test_registry_host_from_env_with_port_placeholder(spawn):
    server = spawn(env={"ECRD_REGISTRY_HOST": "registry.local:{port}"})
    repo = boto_client(server).create_repository(repositoryName="ported")["repository"]
    assert repo["repositoryUri"] == f"registry.local:{server.port}/ported"


def test_permissive_auth_accepts_any_key(spawn):
    server = spawn(args=["--auth", "permissive"])
    anyone = boto_client(server, key="whoever", secret="anything")
    assert anyone.create_repository(repositoryName="loose")["repository"]["registryId"] == (
        DEFAULT_ACCOUNT
    )
    # A 12-digit key names the account, LocalStack style.
    numbered = boto_client(server, key="333333333333", secret="x", region="ap-south-1")
    repo = numbered.create_repository(repositoryName="loose")["repository"]
    assert repo["repositoryArn"] == "arn:aws:ecr:ap-south-1:333333333333:repository/loose"
    # The CLI works with made-up keys too.
    result = run_aws(server, "ecr", "describe-repositories", "--output", "json",
                     key="AKIAMADEUP", secret="madeup")
    assert "loose" in result.stdout


def test_token_secret_makes_passwords_stable(spawn):
    a = spawn(args=["--token-secret", "shared-secret"])
    b = spawn(env={"ECRD_TOKEN_SECRET": "shared-secret"})
    # Two servers with the same secret both issue passwords; the flag and the
    # env var are both accepted. (Verification happens on /v2/, not here.)
    for server in (a, b):
        token = boto_client(server).get_authorization_token()["authorizationData"][0]
        assert base64.b64decode(token["authorizationToken"]).startswith(b"AWS:")


@pytest.mark.parametrize(
    "args, env, needle",
    [
        (["--credentials", "not-a-triple"], {}, "KEY:SECRET:ACCOUNT"),
        ([], {"ECRD_CREDENTIALS": "k:s:123"}, "12 digits"),
        (["--default-account", "abc"], {}, "--default-account"),
        (["--credentials-file", "/nonexistent/ecrd-creds"], {}, "/nonexistent/ecrd-creds"),
        (["--auth", "sometimes"], {}, "sometimes"),
    ],
)
def test_bad_configuration_fails_fast(args, env, needle):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    clean.update(env)
    result = subprocess.run(
        [str(find_binary()), "serve", "--port", str(free_port()), *args],
        env=clean, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode != 0
    assert needle in result.stderr, result.stderr


def test_port_in_use_is_reported(ecrd):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECRD_")}
    result = subprocess.run(
        [str(find_binary()), "serve", "--host", "127.0.0.1", "--port", str(ecrd.port)],
        env=clean, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode != 0
    assert "cannot listen" in result.stderr, result.stderr


def test_unsigned_request_is_missing_authentication(ecrd):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    client = boto3.client("ecr", endpoint_url=ecrd.url, region_name="us-east-1",
                          config=Config(signature_version=UNSIGNED,
                                        retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        client.describe_repositories()
    assert error_of(e) == ("MissingAuthenticationTokenException", "Missing Authentication Token")


def test_moving_the_clock_does_not_expire_signatures(ecrd):
    """SigV4's 15-minute window is checked against real time: moving ecrd's
    clock (to age images) must not make every SDK call fail."""
    client = boto_client(ecrd)
    client.create_repository(repositoryName="timeless")
    for offset in (b'{"offsetSeconds": 1200}', b'{"offsetSeconds": -2400}'):
        status, _, _ = http("POST", f"{ecrd.url}/_ecrd/clock", body=offset, headers=JSON)
        assert status == 200
        names = [r["repositoryName"] for r in client.describe_repositories()["repositories"]]
        assert names == ["timeless"]
