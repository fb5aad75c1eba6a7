"""The awsJson1_1 wire protocol, with raw requests signed by botocore's SigV4Auth."""

import json

import pytest

from conftest import http, signed_call

# Payloads for operations whose minimal well-formed request is not `{}` (the
# test below sends `{}` to every other operation of the model).
SAMPLE_PAYLOADS = {
    "DescribePullThroughCacheRules": {},
    "GetRegistryPolicy": {},
    "DescribeRepositoryCreationTemplates": {},
    "GetRegistryScanningConfiguration": {},
    "GetLifecyclePolicy": {"repositoryName": "proto"},
    "GetRepositoryPolicy": {"repositoryName": "proto"},
}


def test_success_shape(ecrd):
    status, headers, body = signed_call(ecrd, "DescribeRepositories", b"{}")
    assert status == 200
    assert body == {"repositories": []}
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-requestid"]) == 36


def test_error_shape(ecrd):
    status, headers, body = signed_call(
        ecrd, "DescribeRepositories", b'{"repositoryNames":["nope"]}'
    )
    assert status == 400
    assert body["__type"] == "RepositoryNotFoundException"
    assert "nope" in body["message"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert "x-amzn-requestid" in headers


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1,2]", b'"x"', b'{"repositoryName": 5}', b"\x00", b'{"repositoryName":"a",}'],
)
def test_malformed_json_is_a_serialization_exception(ecrd, body):
    status, _, parsed = signed_call(ecrd, "CreateRepository", body)
    assert status == 400
    assert parsed["__type"] == "SerializationException", parsed
    assert parsed["message"]


def test_missing_required_member(ecrd):
    status, _, body = signed_call(ecrd, "CreateRepository", b"{}")
    assert status == 400
    assert body == {
        "__type": "InvalidParameterException",
        "message": "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'must not be null'",
    }


def test_empty_body_is_an_empty_input(ecrd):
    status, _, body = signed_call(ecrd, "DescribeRepositories", b"")
    assert (status, body) == (200, {"repositories": []})


def test_unknown_members_are_ignored(ecrd):
    status, _, body = signed_call(
        ecrd, "CreateRepository", json.dumps({"repositoryName": "proto", "extra": 1}).encode()
    )
    assert status == 200
    assert body["repository"]["repositoryName"] == "proto"


def test_unknown_operation(ecrd):
    status, _, body = signed_call(ecrd, "FlyToTheMoon", b"{}")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    status, _, body = signed_call(ecrd, None, b"{}")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"


def test_every_operation_of_the_model_is_implemented(ecrd):
    """Every operation botocore's ECR model lists answers JSON with real
    behaviour: a result or an ECR error, never a 501."""
    import boto3

    operations = boto3.client("ecr", region_name="us-east-1").meta.service_model.operation_names
    assert len(operations) >= 58
    signed_call(ecrd, "CreateRepository", b'{"repositoryName":"proto"}')
    for operation in operations:
        payload = SAMPLE_PAYLOADS.get(operation, {})
        status, headers, body = signed_call(ecrd, operation, json.dumps(payload).encode())
        assert headers["content-type"] == "application/x-amz-json-1.1", operation
        assert isinstance(body, dict), operation
        assert status != 501, (operation, body)
        assert body.get("__type") not in ("NotImplementedException", "UnknownOperationException"), (
            operation, body)
        if status >= 400:
            assert body.get("__type"), (operation, body)


def test_unsigned_request(ecrd):
    status, _, raw = http(
        "POST",
        f"{ecrd.url}/",
        body=b"{}",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert status == 400
    assert json.loads(raw) == {
        "__type": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
    }


def test_tampered_body_breaks_the_signature(ecrd):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
        "Content-Type": "application/x-amz-json-1.1",
    }
    request = AWSRequest(method="POST", url=f"{ecrd.url}/", data=b'{"repositoryName":"signed"}',
                         headers=headers)
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    status, _, raw = http("POST", f"{ecrd.url}/", body=b'{"repositoryName":"forged"}',
                          headers=dict(request.headers.items()))
    assert status == 400
    assert json.loads(raw)["__type"] == "InvalidSignatureException"


def test_a_signed_request_can_be_replayed(ecrd):
    """ecrd does no replay protection (neither does AWS within 15 minutes);
    the benchmark relies on it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST", url=f"{ecrd.url}/", data=b"{}",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials("test", "test"), "ecr", "us-east-1").add_auth(request)
    for _ in range(3):
        status, _, _ = http("POST", f"{ecrd.url}/", body=b"{}",
                            headers=dict(request.headers.items()))
        assert status == 200


def test_unknown_path_is_json_404(ecrd):
    status, _, raw = http("GET", f"{ecrd.url}/no/such/path")
    assert status == 404
    assert json.loads(raw)["__type"]
