#!/usr/bin/env python3
"""The API calls the Terraform AWS provider makes for main.tf, replayed with
boto3, so the configuration's life (apply, refresh, change, destroy) is
checked against ecrd without downloading the provider.

    ecrd serve --secrets-file examples/terraform/secrets.json &
    python3 examples/terraform/replay.py          # or ECRD_ENDPOINT=http://host:port

For every resource the replay makes the provider's calls in the provider's
order (read from hashicorp/terraform-provider-aws, internal/service/ecr/*.go)
and checks what Terraform needs to see no diff: a read right after create or
update returns exactly what was set, with nothing defaulted in that the
configuration did not say (Terraform would plan to remove it on every run),
and after destroy the read answers the "not found" error the provider takes
as "gone". Run it on a fresh server: it expects an empty registry and leaves
one behind.
"""

from __future__ import annotations

import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("ECRD_ENDPOINT", "http://localhost:4566")
REGION = "us-east-1"


def client(service: str):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


ecr = client("ecr")


def step(text: str) -> None:
    print(f"  {text}")


def error_code(call, **kwargs) -> str:
    """The error code a call answers; fails when it succeeds."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__}({kwargs}) succeeded, expected an error")


def exactly(got: dict, want: dict, computed: set[str] = frozenset()) -> None:
    """`got` holds `want` and nothing more, apart from computed attributes
    (ARNs, ids, timestamps) that Terraform keeps but never compares with
    the configuration."""
    extra = set(got) - set(want) - set(computed)
    assert not extra, f"fields the configuration did not set: {sorted(extra)} in {got}"
    for key, value in want.items():
        assert got.get(key) == value, f"{key}: read {got.get(key)!r}, set {value!r}"


def normalize_json(text: str) -> str:
    """structure.NormalizeJsonString of the plugin SDK: compact, keys sorted."""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def lifecycle_reduced(text: str) -> dict:
    """equivalentLifecyclePolicyJSON: the provider decodes the policy into its
    own struct (unknown fields dropped, empty tag lists dropped), sorts rules
    by priority and tag lists, then compares."""
    rules = []
    for rule in json.loads(text).get("rules", []):
        selection = {k: v for k, v in rule.get("selection", {}).items()
                     if k in ("tagStatus", "tagPatternList", "tagPrefixList", "countType",
                              "countUnit", "countNumber") and v not in (None, [], "")}
        for key in ("tagPatternList", "tagPrefixList"):
            if key in selection:
                selection[key] = sorted(selection[key])
        rules.append({k: v for k, v in {
            "rulePriority": rule.get("rulePriority"), "description": rule.get("description"),
            "selection": selection, "action": {"type": rule.get("action", {}).get("type")},
        }.items() if v is not None})
    return {"rules": sorted(rules, key=lambda r: r.get("rulePriority", 0))}


# ------------------------------------------------------------------ resources


def provider_configure() -> str:
    """Provider configure: STS GetCallerIdentity names the account
    (skip_requesting_account_id is off), used as the id of the registry-wide
    resources and by data.aws_caller_identity."""
    identity = client("sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{identity['Account']}:root", identity
    step(f"sts:GetCallerIdentity -> account {identity['Account']}")
    return identity["Account"]


def aws_ecr_repository(account: str) -> str:
    """repository.go: create CreateRepository, read DescribeRepositories +
    ListTagsForResource, update PutImageTagMutability /
    PutImageScanningConfiguration / TagResource / UntagResource, delete
    DeleteRepository (force_delete) then DescribeRepositories until
    RepositoryNotFoundException."""
    name = "team/app"
    computed = {"repositoryArn", "registryId", "repositoryName", "repositoryUri", "createdAt"}

    def read() -> tuple[dict, dict]:
        [repo] = ecr.describe_repositories(repositoryNames=[name])["repositories"]
        tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
        return repo, {t["Key"]: t["Value"] for t in tags}

    created = ecr.create_repository(
        repositoryName=name, imageTagMutability="IMMUTABLE",
        encryptionConfiguration={"encryptionType": "AES256"},
        imageScanningConfiguration={"scanOnPush": True},
        tags=[{"Key": "env", "Value": "dev"}])["repository"]
    assert created["registryId"] == account
    repo, tags = read()
    exactly(repo, {"imageTagMutability": "IMMUTABLE",
                   "imageScanningConfiguration": {"scanOnPush": True},
                   "encryptionConfiguration": {"encryptionType": "AES256"}}, computed)
    assert tags == {"env": "dev"}, tags
    assert repo["repositoryUri"].endswith(f"/{name}"), repo
    step("create: CreateRepository, then DescribeRepositories + ListTagsForResource: as set")

    # Change mutability, scanning and tags (env=dev -> env=prod, owner added).
    ecr.put_image_tag_mutability(registryId=account, repositoryName=name,
                                 imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(registryId=account, repositoryName=name,
                                         imageScanningConfiguration={"scanOnPush": False})
    arn = repo["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"},
                                            {"Key": "owner", "Value": "platform"}])
    repo, tags = read()
    exactly(repo, {"imageTagMutability": "MUTABLE",
                   "imageScanningConfiguration": {"scanOnPush": False},
                   "encryptionConfiguration": {"encryptionType": "AES256"}}, computed)
    assert tags == {"env": "prod", "owner": "platform"}, tags
    ecr.untag_resource(resourceArn=arn, tagKeys=["owner"])
    assert read()[1] == {"env": "prod"}
    step("update: PutImageTagMutability, PutImageScanningConfiguration, Tag/UntagResource")
    return name


def aws_ecr_lifecycle_policy(repository: str, account: str) -> None:
    """lifecycle_policy.go: create PutLifecyclePolicy (normalized text; the
    id is the answer's repositoryName), read GetLifecyclePolicy, compared
    with equivalentLifecyclePolicyJSON; no update (ForceNew); delete
    DeleteLifecyclePolicy, LifecyclePolicyNotFoundException is gone."""
    policy = json.dumps({"rules": [{
        "rulePriority": 1, "description": "expire untagged images after 14 days",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                      "countUnit": "days", "countNumber": 14},
        "action": {"type": "expire"}}]})
    out = ecr.put_lifecycle_policy(repositoryName=repository,
                                   lifecyclePolicyText=normalize_json(policy))
    assert (out["repositoryName"], out["registryId"]) == (repository, account)
    read = ecr.get_lifecycle_policy(repositoryName=repository)
    exactly(read, {"registryId": account, "repositoryName": repository},
            {"lifecyclePolicyText", "lastEvaluatedAt", "ResponseMetadata"})
    assert lifecycle_reduced(read["lifecyclePolicyText"]) == lifecycle_reduced(policy)
    # Not only equivalent: the same document, so nothing is defaulted in.
    assert json.loads(read["lifecyclePolicyText"]) == json.loads(policy), read
    step("create: PutLifecyclePolicy, then GetLifecyclePolicy: the same document")
    # Replacing it (ForceNew) is delete + create; destroy is the delete.
    ecr.delete_lifecycle_policy(repositoryName=repository)
    assert error_code(ecr.get_lifecycle_policy, repositoryName=repository) == \
        "LifecyclePolicyNotFoundException"
    assert error_code(ecr.delete_lifecycle_policy, repositoryName=repository) == \
        "LifecyclePolicyNotFoundException"
    step("delete: DeleteLifecyclePolicy; read and delete again: LifecyclePolicyNotFoundException")


def aws_ecr_repository_policy(repository: str, account: str) -> None:
    """repository_policy.go: create/update SetRepositoryPolicy (retried only
    on "Invalid repository policy provided", so a valid document must pass
    at once), read GetRepositoryPolicy, delete DeleteRepositoryPolicy;
    RepositoryPolicyNotFoundException is gone."""
    def document(actions: list[str]) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "AllowPull", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": actions}]})

    for label, policy in (("create", document(["ecr:BatchGetImage",
                                               "ecr:GetDownloadUrlForLayer"])),
                          ("update", document(["ecr:BatchGetImage", "ecr:DescribeImages"]))):
        out = ecr.set_repository_policy(repositoryName=repository,
                                        policyText=normalize_json(policy))
        assert out["repositoryName"] == repository
        read = ecr.get_repository_policy(repositoryName=repository)
        exactly(read, {"registryId": account, "repositoryName": repository},
                {"policyText", "ResponseMetadata"})
        assert json.loads(read["policyText"]) == json.loads(policy), read["policyText"]
        step(f"{label}: SetRepositoryPolicy, then GetRepositoryPolicy: the same document")
    ecr.delete_repository_policy(registryId=account, repositoryName=repository)
    assert error_code(ecr.get_repository_policy, repositoryName=repository) == \
        "RepositoryPolicyNotFoundException"
    step("delete: DeleteRepositoryPolicy; read: RepositoryPolicyNotFoundException")


def aws_ecr_registry_policy(account: str) -> None:
    """registry_policy.go: PutRegistryPolicy (id = the answer's registryId),
    GetRegistryPolicy, DeleteRegistryPolicy; RegistryPolicyNotFoundException
    is gone."""
    def document(actions: list[str]) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "ReplicateIn", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": actions,
            "Resource": f"arn:aws:ecr:{REGION}:{account}:repository/*"}]})

    for label, policy in (("create", document(["ecr:ReplicateImage", "ecr:CreateRepository"])),
                          ("update", document(["ecr:ReplicateImage"]))):
        out = ecr.put_registry_policy(policyText=normalize_json(policy))
        assert out["registryId"] == account
        read = ecr.get_registry_policy()
        exactly(read, {"registryId": account}, {"policyText", "ResponseMetadata"})
        assert json.loads(read["policyText"]) == json.loads(policy), read["policyText"]
        step(f"{label}: PutRegistryPolicy, then GetRegistryPolicy: the same document")
    ecr.delete_registry_policy()
    assert error_code(ecr.get_registry_policy) == "RegistryPolicyNotFoundException"
    assert error_code(ecr.delete_registry_policy) == "RegistryPolicyNotFoundException"
    step("delete: DeleteRegistryPolicy; read and delete again: RegistryPolicyNotFoundException")


def aws_ecr_pull_through_cache_rule(account: str) -> None:
    """pull_through_cache_rule.go: create CreatePullThroughCacheRule
    (credentialArn only when set), read DescribePullThroughCacheRules
    (ecrRepositoryPrefixes=[prefix]; credentialArn, ecrRepositoryPrefix,
    registryId, upstreamRegistryUrl), update UpdatePullThroughCacheRule
    (credentialArn), delete DeletePullThroughCacheRule(prefix, registryId);
    PullThroughCacheRuleNotFoundException is gone."""
    computed = {"registryId", "createdAt", "updatedAt", "upstreamRegistry"}
    secret = f"arn:aws:secretsmanager:{REGION}:{account}:secret:ecr-pullthroughcache/hub"

    def read(prefix: str) -> dict:
        [rule] = ecr.describe_pull_through_cache_rules(
            ecrRepositoryPrefixes=[prefix])["pullThroughCacheRules"]
        assert rule["registryId"] == account
        return rule

    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay",
                                       upstreamRegistryUrl="quay.io")
    exactly(read("quay"), {"ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io"},
            computed)
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub",
                                       upstreamRegistryUrl="registry-1.docker.io",
                                       credentialArn=secret)
    exactly(read("hub"), {"ecrRepositoryPrefix": "hub",
                          "upstreamRegistryUrl": "registry-1.docker.io",
                          "credentialArn": secret}, computed)
    step("create: CreatePullThroughCacheRule x2, then DescribePullThroughCacheRules: as set")

    rotated = secret + "-rotated"
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="hub", credentialArn=rotated)
    exactly(read("hub"), {"ecrRepositoryPrefix": "hub",
                          "upstreamRegistryUrl": "registry-1.docker.io",
                          "credentialArn": rotated}, computed)
    step("update: UpdatePullThroughCacheRule(credentialArn), then Describe: the new ARN")

    for prefix in ("quay", "hub"):
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix, registryId=account)
        assert error_code(ecr.describe_pull_through_cache_rules,
                          ecrRepositoryPrefixes=[prefix]) == \
            "PullThroughCacheRuleNotFoundException"
        assert error_code(ecr.delete_pull_through_cache_rule, ecrRepositoryPrefix=prefix,
                          registryId=account) == "PullThroughCacheRuleNotFoundException"
    step("delete: DeletePullThroughCacheRule; Describe: PullThroughCacheRuleNotFoundException")


def aws_ecr_repository_creation_template(account: str) -> None:
    """repository_creation_template.go: create
    CreateRepositoryCreationTemplate, read DescribeRepositoryCreationTemplates
    (prefixes=[prefix]), update UpdateRepositoryCreationTemplate, delete
    DeleteRepositoryCreationTemplate; TemplateNotFoundException is gone."""
    prefix = "hub"
    lifecycle = json.dumps({"rules": [{
        "rulePriority": 1, "description": "expire untagged images after 14 days",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                      "countUnit": "days", "countNumber": 14},
        "action": {"type": "expire"}}]})
    computed = {"prefix", "createdAt", "updatedAt", "lifecyclePolicy"}

    def read() -> dict:
        out = ecr.describe_repository_creation_templates(prefixes=[prefix])
        assert out["registryId"] == account
        [template] = out["repositoryCreationTemplates"]
        assert template["prefix"] == prefix
        return template

    ecr.create_repository_creation_template(
        prefix=prefix, description="repositories the Docker Hub cache creates",
        appliedFor=["PULL_THROUGH_CACHE"], imageTagMutability="MUTABLE",
        encryptionConfiguration={"encryptionType": "AES256"},
        lifecyclePolicy=normalize_json(lifecycle),
        resourceTags=[{"Key": "source", "Value": "docker-hub"}])
    template = read()
    exactly(template, {"description": "repositories the Docker Hub cache creates",
                       "appliedFor": ["PULL_THROUGH_CACHE"], "imageTagMutability": "MUTABLE",
                       "encryptionConfiguration": {"encryptionType": "AES256"},
                       "resourceTags": [{"Key": "source", "Value": "docker-hub"}]}, computed)
    assert json.loads(template["lifecyclePolicy"]) == json.loads(lifecycle)
    step("create: CreateRepositoryCreationTemplate, then Describe: as set")

    # The provider sends only what changed (d.HasChange); removed tags are an
    # empty list.
    ecr.update_repository_creation_template(
        prefix=prefix, description="cache repositories", imageTagMutability="IMMUTABLE",
        resourceTags=[])
    template = read()
    exactly(template, {"description": "cache repositories", "appliedFor": ["PULL_THROUGH_CACHE"],
                       "imageTagMutability": "IMMUTABLE",
                       "encryptionConfiguration": {"encryptionType": "AES256"},
                       "resourceTags": []}, computed)
    step("update: UpdateRepositoryCreationTemplate, then Describe: the change")

    ecr.delete_repository_creation_template(prefix=prefix)
    assert ecr.describe_repository_creation_templates(
        prefixes=[prefix])["repositoryCreationTemplates"] == []
    assert error_code(ecr.delete_repository_creation_template, prefix=prefix) == \
        "TemplateNotFoundException"
    step("delete: DeleteRepositoryCreationTemplate; again: TemplateNotFoundException")


def aws_ecr_registry_scanning_configuration(account: str) -> None:
    """registry_scanning_configuration.go: create/update
    PutRegistryScanningConfiguration (id = the account), read
    GetRegistryScanningConfiguration (registryId, scanningConfiguration's
    scanType and rules), delete: Put BASIC with no rules."""
    def read() -> dict:
        out = ecr.get_registry_scanning_configuration()
        assert out["registryId"] == account
        return out["scanningConfiguration"]

    configs = [
        ("create", "ENHANCED", [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [
            {"filter": "team/*", "filterType": "WILDCARD"}]}]),
        ("update", "BASIC", [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [
            {"filter": "*", "filterType": "WILDCARD"}]}]),
    ]
    for label, scan_type, rules in configs:
        ecr.put_registry_scanning_configuration(scanType=scan_type, rules=rules)
        exactly(read(), {"scanType": scan_type, "rules": rules})
        step(f"{label}: PutRegistryScanningConfiguration({scan_type}), then Get: as set")
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
    exactly(read(), {"scanType": "BASIC", "rules": []})
    step("delete: PutRegistryScanningConfiguration(BASIC, no rules)")


def aws_ecr_replication_configuration(account: str) -> None:
    """replication_configuration.go: create/update PutReplicationConfiguration
    (id = the account), read DescribeRegistry's replicationConfiguration,
    delete: Put with an empty rule list."""
    configs = [
        ("create", {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": account}],
                               "repositoryFilters": [{"filter": "team",
                                                      "filterType": "PREFIX_MATCH"}]}]}),
        ("update", {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": account},
                                                {"region": "us-west-2", "registryId": account}]}]}),
    ]
    for label, config in configs:
        ecr.put_replication_configuration(replicationConfiguration=config)
        out = ecr.describe_registry()
        assert out["registryId"] == account
        assert out["replicationConfiguration"] == config, out
        step(f"{label}: PutReplicationConfiguration, then DescribeRegistry: as set")
    ecr.put_replication_configuration(replicationConfiguration={"rules": []})
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}
    step("delete: PutReplicationConfiguration(no rules)")


def aws_ecr_account_setting() -> None:
    """account_setting.go: create/update PutAccountSetting(name, value), read
    GetAccountSetting(name); delete does nothing (the setting stays)."""
    for label, value in (("create", "V2"), ("update", "V1"), ("update back", "V2")):
        out = ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value=value)
        assert (out["name"], out["value"]) == ("REGISTRY_POLICY_SCOPE", value)
        read = ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")
        exactly(read, {"name": "REGISTRY_POLICY_SCOPE", "value": value}, {"ResponseMetadata"})
        step(f"{label}: PutAccountSetting(REGISTRY_POLICY_SCOPE={value}), then Get: as set")


def aws_ecr_pull_time_update_exclusion(account: str) -> None:
    """pull_time_update_exclusion.go: create RegisterPullTimeUpdateExclusion,
    read ListPullTimeUpdateExclusions (all pages) holding the ARN, no update,
    delete DeregisterPullTimeUpdateExclusion; ExclusionNotFoundException is
    gone."""
    principal = f"arn:aws:iam::{account}:role/ci"

    def listed() -> list[str]:
        names, token = [], None
        while True:
            page = ecr.list_pull_time_update_exclusions(**({"nextToken": token} if token else {}))
            names += page["pullTimeUpdateExclusions"]
            token = page.get("nextToken")
            if not token:
                return names

    ecr.register_pull_time_update_exclusion(principalArn=principal)
    assert listed() == [principal]
    step("create: RegisterPullTimeUpdateExclusion, then List: holds it")
    ecr.deregister_pull_time_update_exclusion(principalArn=principal)
    assert listed() == []
    assert error_code(ecr.deregister_pull_time_update_exclusion, principalArn=principal) == \
        "ExclusionNotFoundException"
    step("delete: DeregisterPullTimeUpdateExclusion; again: ExclusionNotFoundException")


def aws_ecr_signing_configuration(account: str) -> None:
    """signing_configuration.go: create/update PutSigningConfiguration (id =
    the account), read GetSigningConfiguration (registryId,
    signingConfiguration.rules), delete DeleteSigningConfiguration;
    SigningConfigurationNotFoundException is gone."""
    profile = f"arn:aws:signer:{REGION}:{account}:/signing-profiles/team"
    configs = [
        ("create", [{"signingProfileArn": profile, "repositoryFilters": [
            {"filter": "team/*", "filterType": "WILDCARD_MATCH"}]}]),
        ("update", [{"signingProfileArn": profile}]),
    ]
    for label, rules in configs:
        ecr.put_signing_configuration(signingConfiguration={"rules": rules})
        out = ecr.get_signing_configuration()
        assert out["registryId"] == account
        exactly(out["signingConfiguration"], {"rules": rules})
        step(f"{label}: PutSigningConfiguration, then Get: as set")
    ecr.delete_signing_configuration()
    assert error_code(ecr.get_signing_configuration) == "SigningConfigurationNotFoundException"
    assert error_code(ecr.delete_signing_configuration) == \
        "SigningConfigurationNotFoundException"
    step("delete: DeleteSigningConfiguration; read: SigningConfigurationNotFoundException")


def destroy_repository(name: str, account: str) -> None:
    """The repository goes last, as Terraform orders it after what names it."""
    ecr.delete_repository(registryId=account, repositoryName=name, force=True)
    assert error_code(ecr.describe_repositories, repositoryNames=[name]) == \
        "RepositoryNotFoundException"
    assert error_code(ecr.delete_repository, registryId=account, repositoryName=name,
                      force=True) == "RepositoryNotFoundException"
    step("delete: DeleteRepository(force), then DescribeRepositories: RepositoryNotFoundException")


def main() -> int:
    print(f"replaying the Terraform AWS provider's calls against {ENDPOINT}")
    account = provider_configure()
    print("aws_ecr_repository")
    repository = aws_ecr_repository(account)
    print("aws_ecr_lifecycle_policy")
    aws_ecr_lifecycle_policy(repository, account)
    print("aws_ecr_repository_policy")
    aws_ecr_repository_policy(repository, account)
    print("aws_ecr_registry_policy")
    aws_ecr_registry_policy(account)
    print("aws_ecr_pull_through_cache_rule")
    aws_ecr_pull_through_cache_rule(account)
    print("aws_ecr_repository_creation_template")
    aws_ecr_repository_creation_template(account)
    print("aws_ecr_registry_scanning_configuration")
    aws_ecr_registry_scanning_configuration(account)
    print("aws_ecr_replication_configuration")
    aws_ecr_replication_configuration(account)
    print("aws_ecr_account_setting")
    aws_ecr_account_setting()
    print("aws_ecr_pull_time_update_exclusion")
    aws_ecr_pull_time_update_exclusion(account)
    print("aws_ecr_signing_configuration")
    aws_ecr_signing_configuration(account)
    print("aws_ecr_repository (destroy)")
    destroy_repository(repository, account)
    print("every resource: create, read, update, delete as the provider expects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
