"""Amazon ECR Public end to end: `aws ecr-public`, boto3's `ecr-public`
client, docker and skopeo against ecrd's public registry (`--public-port`).

A release pipeline written for ECR Public (create the repository with its
catalog data, `get-login-password | docker login`, push) runs unchanged
apart from the endpoint and host; anyone pulls what it published without
logging in; another account pulls too but cannot push.
"""

import json
import subprocess

import pytest

from conftest import EcrdServer, aws_json, docker, free_port, run_aws, skopeo

OTHER = "AKIAOTHER:othersecret:111111111111"


@pytest.fixture(scope="module")
def public():
    port = free_port()
    server = EcrdServer(["--public-port", str(port), "--credentials", OTHER]).start()
    server.public_port = port
    yield server
    server.close()


def public_client(server, key="test", secret="test"):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecr-public",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def registry_alias(server) -> str:
    registries = aws_json(server, "ecr-public", "describe-registries")["registries"]
    return registries[0]["aliases"][0]["name"]


def test_aws_cli_pipeline_then_anonymous_docker_pull(public, docker_env, tmp_path):
    created = aws_json(public, "ecr-public", "create-repository", "--repository-name", "cli/app",
                       "--catalog-data", "description=the app,architectures=x86-64,operatingSystems=Linux")
    uri = created["repository"]["repositoryUri"]
    alias = registry_alias(public)
    assert uri == f"localhost:{public.public_port}/{alias}/cli/app"
    assert created["repository"]["repositoryArn"] == "arn:aws:ecr-public::000000000000:repository/cli/app"
    assert created["catalogData"]["architectures"] == ["x86-64"]

    password = run_aws(public, "ecr-public", "get-login-password").stdout.strip()
    host = f"localhost:{public.public_port}"
    login = docker(docker_env, "login", "--username", "AWS", "--password-stdin", host, stdin=password)
    assert "Login Succeeded" in login.stdout
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", f"{uri}:v1")
    docker(docker_env, "push", f"{uri}:v1")
    tags = aws_json(public, "ecr-public", "describe-image-tags", "--repository-name", "cli/app")
    assert [t["imageTag"] for t in tags["imageTagDetails"]] == ["v1"]
    images = aws_json(public, "ecr-public", "describe-images", "--repository-name", "cli/app")
    assert images["imageDetails"][0]["imageTags"] == ["v1"]

    # Logged out, with the local copy gone: anyone pulls.
    docker(docker_env, "logout", host)
    docker(docker_env, "image", "rm", "-f", f"{uri}:v1")
    pulled = docker(docker_env, "pull", f"{uri}:v1")
    assert "Downloaded newer image" in pulled.stdout or "Image is up to date" in pulled.stdout
    inspect = skopeo("inspect", "--tls-verify=false", f"docker://{uri}:v1")
    assert json.loads(inspect.stdout)["Name"] == f"{host}/{alias}/cli/app"
    # ... but nobody pushes without logging in.
    docker(docker_env, "tag", "ecrd-e2e/hello:v1", f"{uri}:anonymous")
    refused = docker(docker_env, "push", f"{uri}:anonymous", check=False)
    assert refused.returncode != 0
    assert "authentication required" in (refused.stdout + refused.stderr).lower() or \
        "unauthorized" in (refused.stdout + refused.stderr).lower()


def test_boto3_operations_and_errors(public):
    client = public_client(public)
    client.create_repository(repositoryName="boto/one", tags=[{"Key": "team", "Value": "a"}])
    client.create_repository(repositoryName="boto/two")
    with pytest.raises(client.exceptions.RepositoryAlreadyExistsException):
        client.create_repository(repositoryName="boto/one")
    names = [r["repositoryName"]
             for page in client.get_paginator("describe_repositories").paginate(
                 PaginationConfig={"PageSize": 1})
             for r in page["repositories"]]
    assert {"boto/one", "boto/two"} <= set(names)
    assert names == sorted(names)
    with pytest.raises(client.exceptions.RepositoryNotFoundException):
        client.describe_repositories(repositoryNames=["boto/missing"])

    put = client.put_repository_catalog_data(
        repositoryName="boto/one",
        catalogData={"description": "one", "aboutText": "# One", "usageText": "pull it",
                     "logoImageBlob": b"\x89PNG\r\n\x1a\nlogo"})
    logo_url = put["catalogData"]["logoUrl"]
    got = client.get_repository_catalog_data(repositoryName="boto/one")["catalogData"]
    assert got["description"] == "one" and got["aboutText"] == "# One"
    import urllib.request
    with urllib.request.urlopen(logo_url) as answer:
        assert answer.read() == b"\x89PNG\r\n\x1a\nlogo"
        assert answer.headers["Content-Type"] == "image/png"

    client.put_registry_catalog_data(displayName="Boto")
    assert client.get_registry_catalog_data()["registryCatalogData"]["displayName"] == "Boto"

    arn = client.describe_repositories(repositoryNames=["boto/one"])["repositories"][0]["repositoryArn"]
    assert arn == "arn:aws:ecr-public::000000000000:repository/boto/one"
    client.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "ci"}])
    tags = client.list_tags_for_resource(resourceArn=arn)["tags"]
    assert {t["Key"] for t in tags} == {"team", "env"}

    with pytest.raises(client.exceptions.InvalidParameterException):
        client.set_repository_policy(repositoryName="boto/one", policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}))
    token = client.get_authorization_token()["authorizationData"]
    assert token["authorizationToken"] and token["expiresAt"]
    client.delete_repository(repositoryName="boto/two")


def test_skopeo_push_and_other_accounts(public, tmp_path):
    client = public_client(public)
    client.create_repository(repositoryName="skopeo/tool")
    alias = registry_alias(public)
    ref = f"docker://localhost:{public.public_port}/{alias}/skopeo/tool"
    layout = tmp_path / "layout"
    subprocess.run(["python3", "fixtures/images.py", "layout", str(layout), "--tag", "v1"],
                   check=True, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    password = run_aws(public, "ecr-public", "get-login-password").stdout.strip()
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"AWS:{password}",
           f"oci:{layout}:v1", f"{ref}:v1")

    # Anyone pulls; another account pulls with its own password too.
    skopeo("copy", "--src-tls-verify=false", f"{ref}:v1", f"oci:{tmp_path / 'anon'}:v1")
    other_password = run_aws(public, "ecr-public", "get-login-password",
                             key="AKIAOTHER", secret="othersecret").stdout.strip()
    skopeo("copy", "--src-tls-verify=false", "--src-creds", f"AWS:{other_password}",
           f"{ref}:v1", f"oci:{tmp_path / 'other'}:v1")
    # ... but it cannot push to a registry that is not its own.
    refused = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"AWS:{other_password}",
                     f"oci:{layout}:v1", f"{ref}:v2", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower()
    # A private registry password is no public one.
    private = run_aws(public, "ecr", "get-login-password").stdout.strip()
    refused = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"AWS:{private}",
                     f"oci:{layout}:v1", f"{ref}:v3", check=False)
    assert refused.returncode != 0
    tags = client.describe_image_tags(repositoryName="skopeo/tool")["imageTagDetails"]
    assert [t["imageTag"] for t in tags] == ["v1"]
