//! The registry scanning configuration through the AWS SDK for Rust, on
//! every backend: GetRegistryScanningConfiguration's default,
//! PutRegistryScanningConfiguration's validation and replacement,
//! BatchGetRepositoryScanningConfiguration's per-repository answer (filters,
//! frequencies, the repository's own scanOnPush, failures), access control,
//! and the disk backend keeping the configuration over a restart.

#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_ecr::types::{
    RegistryScanningRule, ScanFrequency, ScanType, ScanningRepositoryFilter,
    ScanningRepositoryFilterType,
};
use common::{api_call, err_code, Backend, TestServer, BACKENDS};
use serde_json::json;

const ACCOUNT: &str = "000000000000";
const GET: &str = "GetRegistryScanningConfiguration";
const PUT: &str = "PutRegistryScanningConfiguration";
const BATCH: &str = "BatchGetRepositoryScanningConfiguration";

fn filter(f: &str) -> ScanningRepositoryFilter {
    ScanningRepositoryFilter::builder()
        .filter(f)
        .filter_type(ScanningRepositoryFilterType::Wildcard)
        .build()
        .unwrap()
}

fn rule(frequency: ScanFrequency, filters: &[&str]) -> RegistryScanningRule {
    RegistryScanningRule::builder()
        .scan_frequency(frequency)
        .set_repository_filters(Some(filters.iter().map(|f| filter(f)).collect()))
        .build()
        .unwrap()
}

async fn create(ecr: &aws_sdk_ecr::Client, name: &str, scan_on_push: bool) {
    ecr.create_repository()
        .repository_name(name)
        .image_scanning_configuration(
            aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                .scan_on_push(scan_on_push)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn default_configuration_is_basic_without_rules() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        // The raw answer carries both members, `rules` as an empty list:
        // the Terraform AWS provider reads `scanningConfiguration` blindly.
        let (status, body, _) = api_call(&server.url, GET, "{}").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"registryId": ACCOUNT, "scanningConfiguration": {"scanType": "BASIC", "rules": []}})
        );
        let got = server
            .ecr()
            .get_registry_scanning_configuration()
            .send()
            .await
            .unwrap();
        assert_eq!(got.registry_id(), Some(ACCOUNT));
        let config = got.scanning_configuration().unwrap();
        assert_eq!(config.scan_type(), Some(&ScanType::Basic));
        assert!(config.rules().is_empty());
    }
}

#[tokio::test]
async fn put_replaces_and_get_returns_the_configuration() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let put = ecr
            .put_registry_scanning_configuration()
            .scan_type(ScanType::Enhanced)
            .rules(rule(ScanFrequency::ContinuousScan, &["prod*"]))
            .rules(rule(ScanFrequency::ScanOnPush, &["*"]))
            .send()
            .await
            .unwrap();
        let answered = put.registry_scanning_configuration().unwrap();
        assert_eq!(answered.scan_type(), Some(&ScanType::Enhanced));
        assert_eq!(answered.rules().len(), 2);
        let (_, body, _) = api_call(&server.url, GET, "{}").await;
        assert_eq!(
            body,
            json!({"registryId": ACCOUNT, "scanningConfiguration": {"scanType": "ENHANCED", "rules": [
                {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "prod*", "filterType": "WILDCARD"}]},
                {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
            ]}})
        );
        // Terraform deletes the resource by putting BASIC with no rules.
        let (status, body, _) =
            api_call(&server.url, PUT, r#"{"scanType":"BASIC","rules":[]}"#).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"registryScanningConfiguration": {"scanType": "BASIC", "rules": []}})
        );
        let (_, body, _) = api_call(&server.url, GET, "{}").await;
        assert_eq!(
            body["scanningConfiguration"],
            json!({"scanType": "BASIC", "rules": []})
        );
        // Accounts and regions have their own configuration.
        let other_region = server.ecr_as("test", "test", "eu-west-1");
        ecr.put_registry_scanning_configuration()
            .scan_type(ScanType::Enhanced)
            .send()
            .await
            .unwrap();
        let there = other_region
            .get_registry_scanning_configuration()
            .send()
            .await
            .unwrap();
        assert_eq!(
            there.scanning_configuration().unwrap().scan_type(),
            Some(&ScanType::Basic)
        );
    }
}

#[tokio::test]
async fn put_refuses_what_ecr_refuses() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let cases: &[(&str, &str)] = &[
            // The model's constraints.
            (
                r#"{"scanType":"FULL"}"#,
                "Invalid parameter at 'scanType' failed to satisfy constraint: 'must satisfy enum value set: [BASIC, ENHANCED]'",
            ),
            (
                r#"{"scanType":"ENHANCED","rules":[
                    {"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"a","filterType":"WILDCARD"}]},
                    {"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"b","filterType":"WILDCARD"}]},
                    {"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"c","filterType":"WILDCARD"}]}]}"#,
                "Invalid parameter at 'rules' failed to satisfy constraint: 'must have length less than or equal to 2'",
            ),
            (
                r#"{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH"}]}"#,
                "Invalid parameter at 'rules.1.member.repositoryFilters' failed to satisfy constraint: 'must not be null'",
            ),
            (
                r#"{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"Prod","filterType":"WILDCARD"}]}]}"#,
                "Invalid parameter at 'rules.1.member.repositoryFilters.1.member.filter' failed to satisfy constraint: 'must satisfy regular expression '^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$''",
            ),
            (
                r#"{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"a","filterType":"PREFIX"}]}]}"#,
                "Invalid parameter at 'rules.1.member.repositoryFilters.1.member.filterType' failed to satisfy constraint: 'must satisfy enum value set: [WILDCARD]'",
            ),
            (
                r#"{"scanType":"BASIC","rules":[{"scanFrequency":"DAILY","repositoryFilters":[]}]}"#,
                "Invalid parameter at 'rules.1.member.scanFrequency' failed to satisfy constraint: 'must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]'",
            ),
            // The rules the model cannot express.
            (
                r#"{"scanType":"BASIC","rules":[{"scanFrequency":"CONTINUOUS_SCAN","repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}]}]}"#,
                "Invalid parameter at 'rules.1.member.scanFrequency' failed to satisfy constraint: 'Scan frequency CONTINUOUS_SCAN is not supported for scan type BASIC; supported: [SCAN_ON_PUSH]'",
            ),
            (
                r#"{"scanType":"ENHANCED","rules":[{"scanFrequency":"MANUAL","repositoryFilters":[{"filter":"*","filterType":"WILDCARD"}]}]}"#,
                "Invalid parameter at 'rules.1.member.scanFrequency' failed to satisfy constraint: 'Scan frequency MANUAL is not supported for scan type ENHANCED; supported: [CONTINUOUS_SCAN, SCAN_ON_PUSH]'",
            ),
            (
                r#"{"scanType":"ENHANCED","rules":[
                    {"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"a","filterType":"WILDCARD"}]},
                    {"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"b","filterType":"WILDCARD"}]}]}"#,
                "Invalid parameter at 'rules' failed to satisfy constraint: 'Only one rule per scan frequency is allowed; SCAN_ON_PUSH is given more than once'",
            ),
        ];
        for (body, message) in cases {
            let (status, answer, _) = api_call(&server.url, PUT, body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["__type"], "InvalidParameterException", "{body}");
            assert_eq!(answer["message"], *message, "{body}");
        }
        // A refused put changes nothing.
        let (_, body, _) = api_call(&server.url, GET, "{}").await;
        assert_eq!(
            body["scanningConfiguration"],
            json!({"scanType": "BASIC", "rules": []})
        );
        // 100 filters in a rule are allowed, 101 are not.
        let filters: Vec<_> = (0..101)
            .map(|i| json!({"filter": format!("r{i}"), "filterType": "WILDCARD"}))
            .collect();
        let body = |n: usize| {
            json!({"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": filters[..n]}]})
                .to_string()
        };
        let (status, _, _) = api_call(&server.url, PUT, &body(100)).await;
        assert_eq!(status, 200);
        let (status, answer, _) = api_call(&server.url, PUT, &body(101)).await;
        assert_eq!(status, 400);
        assert_eq!(
            answer["message"],
            "Invalid parameter at 'rules.1.member.repositoryFilters' failed to satisfy constraint: 'must have length less than or equal to 100'"
        );
        // Through the SDK the same refusal is a typed error.
        let e = server
            .ecr()
            .put_registry_scanning_configuration()
            .scan_type(ScanType::Basic)
            .rules(rule(ScanFrequency::ContinuousScan, &["*"]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "InvalidParameterException");
    }
}

#[tokio::test]
async fn batch_get_applies_the_rules_to_each_repository() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create(&ecr, "prod-api", false).await;
        create(&ecr, "team/prod", false).await;
        create(&ecr, "dev-api", true).await;
        create(&ecr, "dev-web", false).await;
        let arn = |name: &str| format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}");

        // With no configuration: MANUAL, unless the repository scans on push.
        let (status, body, _) = api_call(
            &server.url,
            BATCH,
            r#"{"repositoryNames":["dev-api","dev-web","missing"]}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({
                "scanningConfigurations": [
                    {"repositoryArn": arn("dev-api"), "repositoryName": "dev-api", "scanOnPush": true,
                     "scanFrequency": "SCAN_ON_PUSH", "appliedScanFilters": []},
                    {"repositoryArn": arn("dev-web"), "repositoryName": "dev-web", "scanOnPush": false,
                     "scanFrequency": "MANUAL", "appliedScanFilters": []}
                ],
                "failures": [
                    {"repositoryName": "missing", "failureCode": "REPOSITORY_NOT_FOUND",
                     "failureReason": format!("The repository with name 'missing' does not exist in the registry with id '{ACCOUNT}'")}
                ]
            })
        );

        // BASIC scan-on-push filters: a filter without `*` matches names
        // containing it; with `*` it matches whole names.
        ecr.put_registry_scanning_configuration()
            .scan_type(ScanType::Basic)
            .rules(rule(ScanFrequency::ScanOnPush, &["prod-*", "web"]))
            .send()
            .await
            .unwrap();
        let got = ecr
            .batch_get_repository_scanning_configuration()
            .repository_names("prod-api")
            .repository_names("team/prod")
            .repository_names("dev-api")
            .repository_names("dev-web")
            .send()
            .await
            .unwrap();
        assert!(got.failures().is_empty());
        let summary: Vec<(String, bool, String, Vec<String>)> = got
            .scanning_configurations()
            .iter()
            .map(|c| {
                (
                    c.repository_name().unwrap().to_string(),
                    c.scan_on_push(),
                    c.scan_frequency().unwrap().as_str().to_string(),
                    c.applied_scan_filters()
                        .iter()
                        .map(|f| f.filter().to_string())
                        .collect(),
                )
            })
            .collect();
        let row = |n: &str, p: bool, f: &str, fs: &[&str]| {
            (
                n.to_string(),
                p,
                f.to_string(),
                fs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            summary,
            vec![
                row("prod-api", false, "SCAN_ON_PUSH", &["prod-*"]),
                row("team/prod", false, "MANUAL", &[]),
                row("dev-api", true, "SCAN_ON_PUSH", &[]),
                row("dev-web", false, "SCAN_ON_PUSH", &["web"]),
            ]
        );

        // ENHANCED: continuous scanning wins; unmatched repositories are
        // not scanned, whatever their own setting.
        ecr.put_registry_scanning_configuration()
            .scan_type(ScanType::Enhanced)
            .rules(rule(ScanFrequency::ScanOnPush, &["*api"]))
            .rules(rule(ScanFrequency::ContinuousScan, &["prod"]))
            .send()
            .await
            .unwrap();
        let (_, body, _) = api_call(
            &server.url,
            BATCH,
            r#"{"repositoryNames":["prod-api","team/prod","dev-api","dev-web"]}"#,
        )
        .await;
        let rows: Vec<_> = body["scanningConfigurations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["repositoryName"].as_str().unwrap().to_string(),
                    c["scanFrequency"].as_str().unwrap().to_string(),
                    c["appliedScanFilters"].clone(),
                )
            })
            .collect();
        let wild = |f: &str| json!([{"filter": f, "filterType": "WILDCARD"}]);
        assert_eq!(
            rows,
            vec![
                ("prod-api".into(), "CONTINUOUS_SCAN".into(), wild("prod")),
                ("team/prod".into(), "CONTINUOUS_SCAN".into(), wild("prod")),
                ("dev-api".into(), "SCAN_ON_PUSH".into(), wild("*api")),
                ("dev-web".into(), "MANUAL".into(), json!([])),
            ]
        );

        // A repository created after the put is covered too.
        create(&ecr, "prod-new", false).await;
        let got = ecr
            .batch_get_repository_scanning_configuration()
            .repository_names("prod-new")
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.scanning_configurations()[0].scan_frequency(),
            Some(&ScanFrequency::ContinuousScan)
        );
    }
}

#[tokio::test]
async fn batch_get_validates_its_input() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let cases: &[(&str, &str)] = &[
            (
                "{}",
                "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'must not be null'",
            ),
            (
                r#"{"repositoryNames":[]}"#,
                "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'must have length greater than or equal to 1'",
            ),
        ];
        for (body, message) in cases {
            let (status, answer, _) = api_call(&server.url, BATCH, body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(answer["__type"], "InvalidParameterException");
            assert_eq!(answer["message"], *message);
        }
        let names: Vec<String> = (0..26).map(|i| format!("r{i}")).collect();
        let (status, answer, _) = api_call(
            &server.url,
            BATCH,
            &json!({ "repositoryNames": names }).to_string(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            answer["message"],
            "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'must have length less than or equal to 25'"
        );
        let (status, answer, _) =
            api_call(&server.url, BATCH, r#"{"repositoryNames":["Bad_Name"]}"#).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["__type"], "InvalidParameterException");
    }
}

#[tokio::test]
async fn scanning_operations_ask_the_evaluator() {
    for &backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["ecr:GetRegistryScanningConfiguration", "ecr:BatchGetRepositoryScanningConfiguration"],
                "Resource": "*"
            }, {
                "Effect": "Deny",
                "Action": "ecr:*",
                "Resource": "arn:aws:ecr:*:*:repository/secret/*"
            }]
        });
        std::fs::write(dir.path().join("reader.json"), policy.to_string()).unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "AKIAREAD readsecret 000000000000 arn:aws:iam::000000000000:user/reader policy=reader.json\n",
        )
        .unwrap();
        let server =
            TestServer::start_with(backend, |c| c.credentials_file = Some(creds.clone())).await;
        let admin = server.ecr();
        create(&admin, "app", false).await;
        create(&admin, "secret/keys", false).await;
        let reader = server.ecr_as("AKIAREAD", "readsecret", "us-east-1");
        let user = "arn:aws:iam::000000000000:user/reader";

        reader
            .get_registry_scanning_configuration()
            .send()
            .await
            .unwrap();
        let e = reader
            .put_registry_scanning_configuration()
            .scan_type(ScanType::Enhanced)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            (
                "AccessDeniedException".to_string(),
                format!("User: {user} is not authorized to perform: ecr:PutRegistryScanningConfiguration on resource: * because no identity-based policy allows the ecr:PutRegistryScanningConfiguration action")
            )
        );
        reader
            .batch_get_repository_scanning_configuration()
            .repository_names("app")
            .send()
            .await
            .unwrap();
        let e = reader
            .batch_get_repository_scanning_configuration()
            .repository_names("app")
            .repository_names("secret/keys")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&e),
            (
                "AccessDeniedException".to_string(),
                format!("User: {user} is not authorized to perform: ecr:BatchGetRepositoryScanningConfiguration on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/secret/keys with an explicit deny in an identity-based policy")
            )
        );
    }
}

#[tokio::test]
async fn disk_backend_keeps_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let server = TestServer::start_with(Backend::Disk, |c| c.data_dir = Some(path.clone())).await;
    server
        .ecr()
        .put_registry_scanning_configuration()
        .scan_type(ScanType::Enhanced)
        .rules(rule(ScanFrequency::ContinuousScan, &["*"]))
        .send()
        .await
        .unwrap();
    server.stop().await;
    let server = TestServer::start_with(Backend::Disk, |c| c.data_dir = Some(path.clone())).await;
    let (_, body, _) = api_call(&server.url, GET, "{}").await;
    assert_eq!(
        body["scanningConfiguration"],
        json!({"scanType": "ENHANCED", "rules": [
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
        ]})
    );
    server.stop().await;
}
