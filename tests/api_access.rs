//! Access control through real clients, on both backends: accounts are
//! isolated unless a policy says otherwise, repository and registry policies
//! with ECR's validation, identity policies from the credentials file,
//! conditions on ecrd's clock and the caller's address, the registry plane
//! asking the same evaluator, and STS GetCallerIdentity.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{err_code, push_image, signed_service_post, Backend, TestServer, BACKENDS};
use serde_json::json;

const PROD: &str = "111111111111";
const DEV: &str = "222222222222";
const PROD_USER: &str = "arn:aws:iam::111111111111:user/ci";
const DEV_ROOT: &str = "arn:aws:iam::222222222222:root";
const CREDENTIALS: &str =
    "AKIAPROD:prodsecret:111111111111:arn:aws:iam::111111111111:user/ci,AKIADEV:devsecret:222222222222";

async fn two_accounts(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.credentials = Some(CREDENTIALS.into())).await
}

fn denied(principal: &str, action: &str, resource: &str, why: &str) -> (String, String) {
    let because = match why {
        "resource" => format!("because no resource-based policy allows the ecr:{action} action"),
        "identity" => format!("because no identity-based policy allows the ecr:{action} action"),
        "explicit-resource" => "with an explicit deny in a resource-based policy".to_string(),
        _ => "with an explicit deny in an identity-based policy".to_string(),
    };
    (
        "AccessDeniedException".to_string(),
        format!("User: {principal} is not authorized to perform: ecr:{action} on resource: {resource} {because}"),
    )
}

fn repo_arn(account: &str, name: &str) -> String {
    format!("arn:aws:ecr:us-east-1:{account}:repository/{name}")
}

fn allow_dev_pull() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DevPull",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{DEV}:root")},
            "Action": [
                "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
                "ecr:DescribeImages", "ecr:ListImages", "ecr:DescribeRepositories"
            ]
        }]
    })
    .to_string()
}

#[tokio::test]
async fn another_account_needs_the_repository_policy() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let prod = server.ecr_as("AKIAPROD", "prodsecret", "us-east-1");
        let dev = server.ecr_as("AKIADEV", "devsecret", "us-east-1");
        prod.create_repository()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        let (_, digest) = push_image(&prod, "prod/api", "a", "v1").await;
        let arn = repo_arn(PROD, "prod/api");

        // Every operation on the repository is refused without a policy.
        let e = dev
            .describe_images()
            .registry_id(PROD)
            .repository_name("prod/api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(DEV_ROOT, "DescribeImages", &arn, "resource")
        );
        macro_rules! refused {
            ($action:literal, $call:expr) => {{
                let e = $call.send().await.unwrap_err();
                assert_eq!(
                    err_code(&e),
                    denied(DEV_ROOT, $action, &arn, "resource"),
                    "{}",
                    $action
                );
            }};
        }
        refused!(
            "ListImages",
            dev.list_images()
                .registry_id(PROD)
                .repository_name("prod/api")
        );
        refused!(
            "BatchGetImage",
            dev.batch_get_image()
                .registry_id(PROD)
                .repository_name("prod/api")
                .image_ids(
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_tag("v1")
                        .build()
                )
        );
        refused!(
            "PutLifecyclePolicy",
            dev.put_lifecycle_policy()
                .registry_id(PROD)
                .repository_name("prod/api")
                .lifecycle_policy_text(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#)
        );
        refused!(
            "DeleteRepository",
            dev.delete_repository()
                .registry_id(PROD)
                .repository_name("prod/api")
                .force(true)
        );
        refused!(
            "SetRepositoryPolicy",
            dev.set_repository_policy()
                .registry_id(PROD)
                .repository_name("prod/api")
                .policy_text(allow_dev_pull())
        );
        refused!(
            "GetRepositoryPolicy",
            dev.get_repository_policy()
                .registry_id(PROD)
                .repository_name("prod/api")
        );
        refused!(
            "InitiateLayerUpload",
            dev.initiate_layer_upload()
                .registry_id(PROD)
                .repository_name("prod/api")
        );
        refused!(
            "GetDownloadUrlForLayer",
            dev.get_download_url_for_layer()
                .registry_id(PROD)
                .repository_name("prod/api")
                .layer_digest(&digest)
        );
        refused!(
            "PutImageTagMutability",
            dev.put_image_tag_mutability()
                .registry_id(PROD)
                .repository_name("prod/api")
                .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        );
        refused!(
            "DescribeRepositories",
            dev.describe_repositories()
                .registry_id(PROD)
                .repository_names("prod/api")
        );
        refused!(
            "ListTagsForResource",
            dev.list_tags_for_resource().resource_arn(&arn)
        );
        refused!(
            "TagResource",
            dev.tag_resource().resource_arn(&arn).tags(
                aws_sdk_ecr::types::Tag::builder()
                    .key("k")
                    .value("v")
                    .build()
                    .unwrap()
            )
        );

        // Creating a repository in another account needs its permission.
        let e = dev
            .create_repository()
            .registry_id(PROD)
            .repository_name("sneaky")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                DEV_ROOT,
                "CreateRepository",
                &repo_arn(PROD, "sneaky"),
                "resource"
            )
        );
        // No existence oracle: a missing repository is refused the same way.
        let e = dev
            .describe_images()
            .registry_id(PROD)
            .repository_name("missing")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                DEV_ROOT,
                "DescribeImages",
                &repo_arn(PROD, "missing"),
                "resource"
            )
        );
        // A listing shows nothing the caller may not describe.
        let listed = dev
            .describe_repositories()
            .registry_id(PROD)
            .send()
            .await
            .unwrap();
        assert!(listed.repositories().is_empty());

        // The owner grants pull to the other account.
        let set = prod
            .set_repository_policy()
            .repository_name("prod/api")
            .policy_text(allow_dev_pull())
            .send()
            .await
            .unwrap();
        assert_eq!(set.registry_id(), Some(PROD));
        assert_eq!(set.policy_text(), Some(allow_dev_pull().as_str()));
        let images = dev
            .describe_images()
            .registry_id(PROD)
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        assert_eq!(
            images.image_details()[0].image_digest(),
            Some(digest.as_str())
        );
        let got = dev
            .batch_get_image()
            .registry_id(PROD)
            .repository_name("prod/api")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.images()[0].image_id().unwrap().image_digest(),
            Some(digest.as_str())
        );
        let listed = dev
            .describe_repositories()
            .registry_id(PROD)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.repositories()[0].repository_name(), Some("prod/api"));
        // ...and nothing more.
        let e = dev
            .delete_repository()
            .registry_id(PROD)
            .repository_name("prod/api")
            .force(true)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(DEV_ROOT, "DeleteRepository", &arn, "resource")
        );
        let e = dev
            .get_repository_policy()
            .registry_id(PROD)
            .repository_name("prod/api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(DEV_ROOT, "GetRepositoryPolicy", &arn, "resource")
        );

        // An explicit Deny wins over the Allow.
        let with_deny = json!({
            "Version": "2012-10-17",
            "Statement": [
                serde_json::from_str::<serde_json::Value>(&allow_dev_pull()).unwrap()["Statement"][0].clone(),
                {"Sid": "NoDescribe", "Effect": "Deny", "Principal": {"AWS": DEV}, "Action": "ecr:Describe*"}
            ]
        })
        .to_string();
        prod.set_repository_policy()
            .repository_name("prod/api")
            .policy_text(&with_deny)
            .send()
            .await
            .unwrap();
        let e = dev
            .describe_images()
            .registry_id(PROD)
            .repository_name("prod/api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(DEV_ROOT, "DescribeImages", &arn, "explicit-resource")
        );
        dev.batch_get_image()
            .registry_id(PROD)
            .repository_name("prod/api")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();

        // The owner reads and deletes the policy; then it is gone.
        let got = prod
            .get_repository_policy()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        assert_eq!(got.policy_text(), Some(with_deny.as_str()));
        let deleted = prod
            .delete_repository_policy()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.policy_text(), Some(with_deny.as_str()));
        let e = prod
            .get_repository_policy()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            (
                "RepositoryPolicyNotFoundException".into(),
                "Repository policy does not exist for the repository with name 'prod/api' in the registry with id '111111111111'".into()
            )
        );
        let e = dev
            .list_images()
            .registry_id(PROD)
            .repository_name("prod/api")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(DEV_ROOT, "ListImages", &arn, "resource")
        );
    }
}

const INVALID_REPOSITORY_POLICY: &str =
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'";
const INVALID_REGISTRY_POLICY: &str =
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'";

#[tokio::test]
async fn policy_operations_validate_and_report_absence() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let ecr = server.ecr();
        ecr.create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let statement = |extra: serde_json::Value| {
            let mut s = json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    s.as_object_mut().unwrap().remove(k);
                } else {
                    s[k] = v.clone();
                }
            }
            json!({"Version": "2012-10-17", "Statement": [s]}).to_string()
        };
        for bad in [
            "not json".to_string(),
            "[]".to_string(),
            statement(json!({"Resource": "*"})),
            statement(json!({"Action": "ecr:NoSuchAction"})),
            statement(json!({"Action": "s3:GetObject"})),
            statement(json!({"Effect": "Maybe"})),
            statement(json!({"Principal": null})),
            statement(json!({"Principal": {"AWS": "arn:aws:iam::123456789012:*"}})),
            statement(json!({"Condition": {"StringEqualz": {"aws:PrincipalAccount": "1"}}})),
            json!({"Version": "2010-01-01", "Statement": []}).to_string(),
        ] {
            let e = ecr
                .set_repository_policy()
                .repository_name("app")
                .policy_text(&bad)
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                err_code(&e),
                (
                    "InvalidParameterException".into(),
                    INVALID_REPOSITORY_POLICY.into()
                ),
                "{bad}"
            );
        }
        let e = ecr
            .set_repository_policy()
            .repository_name("nope")
            .policy_text(statement(json!({})))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "RepositoryNotFoundException");
        let e = ecr
            .get_repository_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "RepositoryPolicyNotFoundException");
        let e = ecr
            .delete_repository_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "RepositoryPolicyNotFoundException");

        // A policy goes with its repository.
        ecr.set_repository_policy()
            .repository_name("app")
            .policy_text(statement(json!({})))
            .send()
            .await
            .unwrap();
        ecr.delete_repository()
            .repository_name("app")
            .force(true)
            .send()
            .await
            .unwrap();
        ecr.create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let e = ecr
            .get_repository_policy()
            .repository_name("app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "RepositoryPolicyNotFoundException");

        // Registry policies.
        let e = ecr.get_registry_policy().send().await.unwrap_err();
        assert_eq!(
            err_code(&e),
            (
                "RegistryPolicyNotFoundException".into(),
                "Registry policy does not exist in the registry with id '000000000000'".into()
            )
        );
        let e = ecr.delete_registry_policy().send().await.unwrap_err();
        assert_eq!(err_code(&e).0, "RegistryPolicyNotFoundException");
        let replication = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "ReplicationAccessCrossAccount",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{DEV}:root")},
                "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
                "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/*"
            }]
        })
        .to_string();
        for bad in [
            "{".to_string(),
            // A registry policy must name its resources.
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": DEV}, "Action": "ecr:ReplicateImage"}]}).to_string(),
        ] {
            let e = ecr.put_registry_policy().policy_text(&bad).send().await.unwrap_err();
            assert_eq!(
                err_code(&e),
                ("InvalidParameterException".into(), INVALID_REGISTRY_POLICY.into()),
                "{bad}"
            );
        }
        let put = ecr
            .put_registry_policy()
            .policy_text(&replication)
            .send()
            .await
            .unwrap();
        assert_eq!(put.registry_id(), Some("000000000000"));
        assert_eq!(
            ecr.get_registry_policy()
                .send()
                .await
                .unwrap()
                .policy_text(),
            Some(replication.as_str())
        );
        // Under registry policy scope V1 only the replication and cache
        // actions may be granted.
        ecr.put_account_setting()
            .name("REGISTRY_POLICY_SCOPE")
            .value("V1")
            .send()
            .await
            .unwrap();
        let pull = replication.replace(
            r#"["ecr:CreateRepository","ecr:ReplicateImage"]"#,
            r#""ecr:BatchGetImage""#,
        );
        assert_ne!(pull, replication);
        let e = ecr
            .put_registry_policy()
            .policy_text(&pull)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).1, INVALID_REGISTRY_POLICY);
        let deleted = ecr.delete_registry_policy().send().await.unwrap();
        assert_eq!(deleted.policy_text(), Some(replication.as_str()));
        assert!(ecr.get_registry_policy().send().await.is_err());
    }
}

#[tokio::test]
async fn registry_policy_grants_creation_and_force_guards_lockout() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let prod = server.ecr_as("AKIAPROD", "prodsecret", "us-east-1");
        let dev = server.ecr_as("AKIADEV", "devsecret", "us-east-1");
        let registry_policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": DEV},
                "Action": "ecr:CreateRepository",
                "Resource": format!("arn:aws:ecr:us-east-1:{PROD}:repository/dev/*")
            }]
        })
        .to_string();
        prod.put_registry_policy()
            .policy_text(&registry_policy)
            .send()
            .await
            .unwrap();
        let created = dev
            .create_repository()
            .registry_id(PROD)
            .repository_name("dev/tool")
            .send()
            .await
            .unwrap();
        assert_eq!(
            created.repository().unwrap().repository_arn(),
            Some(repo_arn(PROD, "dev/tool").as_str())
        );
        let e = dev
            .create_repository()
            .registry_id(PROD)
            .repository_name("prod/tool")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                DEV_ROOT,
                "CreateRepository",
                &repo_arn(PROD, "prod/tool"),
                "resource"
            )
        );
        // The creator still may not read what it created there.
        let e = dev
            .describe_images()
            .registry_id(PROD)
            .repository_name("dev/tool")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "AccessDeniedException");

        // A policy that would lock its setter out needs `force`.
        let lockout = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Principal": {"AWS": PROD_USER}, "Action": "ecr:SetRepositoryPolicy"}]
        })
        .to_string();
        let e = prod
            .set_repository_policy()
            .repository_name("dev/tool")
            .policy_text(&lockout)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "InvalidParameterException");
        assert!(prod
            .get_repository_policy()
            .repository_name("dev/tool")
            .send()
            .await
            .is_err());
        prod.set_repository_policy()
            .repository_name("dev/tool")
            .policy_text(&lockout)
            .force(true)
            .send()
            .await
            .unwrap();
        let e = prod
            .set_repository_policy()
            .repository_name("dev/tool")
            .policy_text(&lockout)
            .force(true)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                PROD_USER,
                "SetRepositoryPolicy",
                &repo_arn(PROD, "dev/tool"),
                "explicit-resource"
            )
        );
        // Deleting it is still allowed.
        prod.delete_repository_policy()
            .repository_name("dev/tool")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn identity_policies_limit_the_own_account() {
    for &backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let read_only = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["ecr:Describe*", "ecr:List*", "ecr:Get*", "ecr:BatchGetImage"],
                "Resource": "*"
            }, {
                "Effect": "Deny",
                "Action": "ecr:*",
                "Resource": "arn:aws:ecr:*:*:repository/secret/*"
            }]
        });
        std::fs::write(dir.path().join("read-only.json"), read_only.to_string()).unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "AKIARO rosecret 000000000000 arn:aws:iam::000000000000:user/auditor tag:team=audit policy=read-only.json\n",
        )
        .unwrap();
        let server =
            TestServer::start_with(backend, |c| c.credentials_file = Some(creds.clone())).await;
        let admin = server.ecr();
        admin
            .create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        admin
            .create_repository()
            .repository_name("secret/keys")
            .send()
            .await
            .unwrap();
        let auditor = server.ecr_as("AKIARO", "rosecret", "us-east-1");
        let listed = auditor.describe_repositories().send().await.unwrap();
        let names: Vec<_> = listed
            .repositories()
            .iter()
            .filter_map(|r| r.repository_name())
            .collect();
        assert_eq!(names, ["app"]);
        auditor.get_authorization_token().send().await.unwrap();
        let user = "arn:aws:iam::000000000000:user/auditor";
        let e = auditor
            .create_repository()
            .repository_name("new")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                user,
                "CreateRepository",
                &repo_arn("000000000000", "new"),
                "identity"
            )
        );
        let e = auditor
            .describe_images()
            .repository_name("secret/keys")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            denied(
                user,
                "DescribeImages",
                &repo_arn("000000000000", "secret/keys"),
                "explicit-identity"
            )
        );
        // A repository policy in the same account may grant what the
        // identity policy does not.
        admin
            .set_repository_policy()
            .repository_name("app")
            .policy_text(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": user}, "Action": "ecr:PutImageTagMutability"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        auditor
            .put_image_tag_mutability()
            .repository_name("app")
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn conditions_see_the_caller_and_the_clock() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let prod = server.ecr_as("AKIAPROD", "prodsecret", "us-east-1");
        let dev = server.ecr_as("AKIADEV", "devsecret", "us-east-1");
        prod.create_repository()
            .repository_name("gated")
            .send()
            .await
            .unwrap();
        let policy = |condition: serde_json::Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                "Action": "ecr:ListImages", "Condition": condition}]})
            .to_string()
        };
        let list = || {
            dev.list_images()
                .registry_id(PROD)
                .repository_name("gated")
                .send()
        };
        for (condition, allowed) in [
            (json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), false),
            (
                json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}),
                true,
            ),
            (
                json!({"NotIpAddress": {"aws:SourceIp": "127.0.0.1/32"}}),
                false,
            ),
            (json!({"StringEquals": {"aws:PrincipalAccount": DEV}}), true),
            (
                json!({"StringEquals": {"aws:PrincipalAccount": "333333333333"}}),
                false,
            ),
            (
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::2222*:root"}}),
                true,
            ),
            (json!({"Bool": {"aws:SecureTransport": "true"}}), false),
            (json!({"Null": {"aws:PrincipalTag/team": "true"}}), true),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}),
                false,
            ),
        ] {
            prod.set_repository_policy()
                .repository_name("gated")
                .policy_text(policy(condition.clone()))
                .send()
                .await
                .unwrap();
            assert_eq!(list().await.is_ok(), allowed, "{condition}");
        }
        // aws:CurrentTime is ecrd's clock, which tests can move.
        let now = time::OffsetDateTime::now_utc();
        let later = (now + time::Duration::days(30))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        prod.set_repository_policy()
            .repository_name("gated")
            .policy_text(policy(
                json!({"DateGreaterThan": {"aws:CurrentTime": later}}),
            ))
            .send()
            .await
            .unwrap();
        assert!(list().await.is_err());
        let r = server
            .http()
            .post(format!("{}/_ecrd/clock", server.url))
            .body(json!({"offsetSeconds": 31 * 86400}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        list().await.unwrap();
    }
}

fn basic(token: &str) -> String {
    format!("Basic {token}")
}

async fn password(ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.unwrap();
    out.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_registry_plane_asks_the_same_evaluator() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let prod = server.ecr_as("AKIAPROD", "prodsecret", "us-east-1");
        let dev = server.ecr_as("AKIADEV", "devsecret", "us-east-1");
        prod.create_repository()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        push_image(&prod, "prod/api", "a", "v1").await;
        let dev_auth = basic(&password(&dev).await);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(password(&dev).await)
            .unwrap();
        assert!(decoded.starts_with(b"AWS:"));
        let host = format!("{PROD}.dkr.ecr.us-east-1.localhost:{}", server.port);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let get = |path: &str| {
            http.get(format!("{}{path}", server.url))
                .header("authorization", &dev_auth)
                .header("host", &host)
                .header(
                    "accept",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .send()
        };
        let arn = repo_arn(PROD, "prod/api");
        let r = get("/v2/prod/api/manifests/v1").await.unwrap();
        assert_eq!(r.status(), 403);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "DENIED");
        assert_eq!(
            body["errors"][0]["message"],
            denied(DEV_ROOT, "BatchGetImage", &arn, "resource").1
        );
        prod.set_repository_policy()
            .repository_name("prod/api")
            .policy_text(allow_dev_pull())
            .send()
            .await
            .unwrap();
        let r = get("/v2/prod/api/manifests/v1").await.unwrap();
        assert_eq!(r.status(), 200);
        let tags: serde_json::Value = get("/v2/prod/api/tags/list")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tags["tags"], json!(["v1"]));
        let catalog: serde_json::Value = get("/v2/_catalog").await.unwrap().json().await.unwrap();
        assert_eq!(catalog["repositories"], json!(["prod/api"]));
        // Pushing is still refused.
        let r = http
            .post(format!("{}/v2/prod/api/blobs/uploads/", server.url))
            .header("authorization", &dev_auth)
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["message"],
            denied(DEV_ROOT, "InitiateLayerUpload", &arn, "resource").1
        );
        // Without the account-named host the password opens its own registry.
        let r = http
            .get(format!("{}/v2/prod/api/tags/list", server.url))
            .header("authorization", &dev_auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test]
async fn sts_get_caller_identity() {
    for &backend in BACKENDS {
        let server = two_accounts(backend).await;
        let form = "application/x-www-form-urlencoded; charset=utf-8";
        let body = "Action=GetCallerIdentity&Version=2011-06-15";
        let (status, xml) = signed_service_post(
            &server.url,
            "sts",
            form,
            body,
            "AKIAPROD",
            "prodsecret",
            "us-east-1",
        )
        .await;
        assert_eq!(status, 200, "{xml}");
        assert!(
            xml.contains("<Arn>arn:aws:iam::111111111111:user/ci</Arn>"),
            "{xml}"
        );
        assert!(xml.contains("<Account>111111111111</Account>"), "{xml}");
        assert!(xml.contains("<UserId>AIDA"), "{xml}");
        let (_, xml) =
            signed_service_post(&server.url, "sts", form, body, "test", "test", "us-east-1").await;
        assert!(
            xml.contains("<Arn>arn:aws:iam::000000000000:root</Arn>"),
            "{xml}"
        );
        assert!(xml.contains("<UserId>000000000000</UserId>"), "{xml}");
        let (status, xml) = signed_service_post(
            &server.url,
            "sts",
            form,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=x&RoleSessionName=y",
            "test",
            "test",
            "us-east-1",
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            xml.contains("<Code>InvalidAction</Code>") && xml.contains("AssumeRole"),
            "{xml}"
        );
        let (status, xml) =
            signed_service_post(&server.url, "sts", form, body, "test", "wrong", "us-east-1").await;
        assert_eq!(status, 403);
        assert!(xml.contains("<Code>SignatureDoesNotMatch</Code>"), "{xml}");
        let (status, xml) =
            signed_service_post(&server.url, "sts", form, body, "nobody", "x", "us-east-1").await;
        assert_eq!(status, 403);
        assert!(xml.contains("<Code>InvalidClientTokenId</Code>"), "{xml}");
    }
}
