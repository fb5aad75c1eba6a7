//! The registry scanning configuration through the AWS SDK for Rust, on
//! every backend: GetRegistryScanningConfiguration's default,
//! PutRegistryScanningConfiguration's validation and replacement,
//! BatchGetRepositoryScanningConfiguration's per-repository answer (filters,
//! frequencies, the repository's own scanOnPush, failures), access control,
//! and the disk backend keeping the configuration over a restart; then image
//! scans: scan on push and StartImageScan over images built here layer by
//! layer, matched against OSV records written by the test (synthetic ids, so
//! the expected findings are exact), in the BASIC and ENHANCED shapes, the
//! 24-hour quota, unsupported images, injected findings, continuous rescans
//! when the data changes, and a restart keeping findings.

#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_ecr::types::{
    RegistryScanningRule, ScanFrequency, ScanType, ScanningRepositoryFilter,
    ScanningRepositoryFilterType,
};
use common::{api_call, err_code, push_layered_image, tar_gz_layer, Backend, TestServer, BACKENDS};
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

// ------------------------------------------------------------ image scans

const DEBIAN_12: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";

/// dpkg status of the base layer: a vulnerable zlib1g (source zlib), a
/// vulnerable libssl3 (source openssl), a fixed libc6 and curl (vulnerable,
/// but removed by the next layer).
const BASE_STATUS: &[u8] = b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n";

/// The second layer's status: curl removed.
const UPPER_STATUS: &[u8] = b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n";

const REQUESTS_METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\nSummary: HTTP for Humans.\n\nlong description\n";

fn osv_record(
    id: &str,
    alias: &str,
    ecosystem: &str,
    package: &str,
    fixed: &str,
    vector: &str,
) -> serde_json::Value {
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2024-05-01T00:00:00Z",
        "published": "2024-04-01T00:00:00Z",
        "aliases": [alias],
        "summary": format!("test vulnerability in {package}"),
        "details": format!("A test record: {package} before {fixed} is affected."),
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        }],
        "references": [{"type": "ADVISORY", "url": format!("https://example.test/{id}")}]
    })
}

const CRITICAL_VECTOR: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"; // 9.8
const HIGH_VECTOR: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"; // 7.5
const MEDIUM_VECTOR: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"; // 6.1

/// A vulnerability database directory of synthetic records: what the
/// image above is affected by, and records that must not match it.
fn write_vuln_db(dir: &std::path::Path) {
    let records = [
        osv_record(
            "TEST-DEB-1",
            "CVE-2099-0001",
            "Debian:12",
            "zlib",
            "1:1.2.13.dfsg-2",
            CRITICAL_VECTOR,
        ),
        osv_record(
            "TEST-DEB-2",
            "CVE-2099-0002",
            "Debian:12",
            "openssl",
            "3.0.11-1~deb12u2",
            HIGH_VECTOR,
        ),
        // Fixed in the installed version: no finding.
        osv_record(
            "TEST-DEB-3",
            "CVE-2099-0003",
            "Debian:12",
            "glibc",
            "2.36-9+deb12u4",
            HIGH_VECTOR,
        ),
        // Another Debian release: no finding.
        osv_record(
            "TEST-DEB-4",
            "CVE-2099-0004",
            "Debian:11",
            "zlib",
            "1:1.2.13.dfsg-9",
            HIGH_VECTOR,
        ),
        // curl is removed by the upper layer: no finding.
        osv_record(
            "TEST-DEB-5",
            "CVE-2099-0005",
            "Debian:12",
            "curl",
            "7.88.1-10+deb12u9",
            HIGH_VECTOR,
        ),
        // A language package: ENHANCED only.
        osv_record(
            "TEST-PY-1",
            "CVE-2099-0101",
            "PyPI",
            "requests",
            "2.31.0",
            MEDIUM_VECTOR,
        ),
    ];
    for record in records {
        let id = record["id"].as_str().unwrap().to_string();
        std::fs::write(dir.join(format!("{id}.json")), record.to_string()).unwrap();
    }
}

fn debian_layers() -> Vec<Vec<u8>> {
    vec![
        tar_gz_layer(&[
            ("etc/", b""),
            ("etc/os-release", DEBIAN_12),
            ("var/lib/dpkg/status", BASE_STATUS),
        ]),
        tar_gz_layer(&[
            ("var/lib/dpkg/status", UPPER_STATUS),
            (
                "usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA",
                REQUESTS_METADATA,
            ),
        ]),
    ]
}

fn tag_id(tag: &str) -> aws_sdk_ecr::types::ImageIdentifier {
    aws_sdk_ecr::types::ImageIdentifier::builder()
        .image_tag(tag)
        .build()
}

async fn create_scanned(ecr: &aws_sdk_ecr::Client, name: &str) {
    create(ecr, name, true).await;
}

/// Calls DescribeImageScanFindings until the scan is no longer IN_PROGRESS.
async fn finished_findings(server: &TestServer, repo: &str, tag: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body, _) = api_call(
            &server.url,
            "DescribeImageScanFindings",
            &json!({"repositoryName": repo, "imageId": {"imageTag": tag}}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["imageScanStatus"]["status"] != "IN_PROGRESS" {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "scan still in progress: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn finding_names(body: &serde_json::Value, member: &str) -> Vec<String> {
    body["imageScanFindings"][member]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f.get("name")
                .or_else(|| f["packageVulnerabilityDetails"].get("vulnerabilityId"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn start_with_db(backend: Backend) -> (TestServer, tempfile::TempDir) {
    let db = tempfile::tempdir().unwrap();
    write_vuln_db(db.path());
    let path = db.path().to_path_buf();
    let server = TestServer::start_with(backend, |c| c.vuln_db = Some(path)).await;
    (server, db)
}

#[tokio::test]
async fn scan_on_push_finds_the_vulnerable_os_packages() {
    for &backend in BACKENDS {
        let (server, _db) = start_with_db(backend).await;
        let ecr = server.ecr();
        create_scanned(&ecr, "app").await;
        let digest = push_layered_image(&ecr, "app", "v1", &debian_layers()).await;
        let body = finished_findings(&server, "app", "v1").await;
        assert_eq!(
            body["imageScanStatus"],
            json!({"status": "COMPLETE", "description": "The scan was completed successfully."}),
            "{backend:?}"
        );
        assert_eq!(
            body["imageId"],
            json!({"imageDigest": digest, "imageTag": "v1"})
        );
        let findings = &body["imageScanFindings"];
        assert_eq!(
            findings["findingSeverityCounts"],
            json!({"CRITICAL": 1, "HIGH": 1})
        );
        assert_eq!(
            finding_names(&body, "findings"),
            ["CVE-2099-0001", "CVE-2099-0002"]
        );
        assert!(findings.get("enhancedFindings").is_none(), "{findings}");
        let first = &findings["findings"][0];
        assert_eq!(first["severity"], "CRITICAL");
        assert_eq!(
            first["description"],
            "A test record: zlib before 1:1.2.13.dfsg-2 is affected."
        );
        let attributes: std::collections::HashMap<String, String> = first["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["key"].as_str().unwrap().to_string(),
                    a["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(attributes["package_name"], "zlib1g");
        assert_eq!(attributes["package_version"], "1:1.2.13.dfsg-1");
        assert_eq!(attributes["CVSS3_VECTOR"], CRITICAL_VECTOR);
        assert_eq!(attributes["CVSS3_SCORE"], "9.8");
        // 2024-05-01T00:00:00Z, the newest record's `modified`.
        assert_eq!(
            findings["vulnerabilitySourceUpdatedAt"].as_f64(),
            Some(1714521600.0)
        );
        assert!(findings["imageScanCompletedAt"].as_f64().unwrap() > 0.0);

        // The SDK reads the same answer, and DescribeImages the summary.
        let described = ecr
            .describe_images()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let detail = &described.image_details()[0];
        assert_eq!(
            detail.image_scan_status().unwrap().status(),
            Some(&aws_sdk_ecr::types::ScanStatus::Complete)
        );
        let summary = detail.image_scan_findings_summary().unwrap();
        let counts = summary.finding_severity_counts().unwrap();
        assert_eq!(
            counts.get(&aws_sdk_ecr::types::FindingSeverity::Critical),
            Some(&1)
        );
        assert_eq!(
            counts.get(&aws_sdk_ecr::types::FindingSeverity::High),
            Some(&1)
        );
        assert_eq!(counts.len(), 2);

        // Pages of one finding, in the same order.
        let page = ecr
            .describe_image_scan_findings()
            .repository_name("app")
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .max_results(1)
            .send()
            .await
            .unwrap();
        let first_page = page.image_scan_findings().unwrap().findings();
        assert_eq!(first_page.len(), 1);
        assert_eq!(first_page[0].name(), Some("CVE-2099-0001"));
        let next = page.next_token().expect("a second page").to_string();
        let page = ecr
            .describe_image_scan_findings()
            .repository_name("app")
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .max_results(1)
            .next_token(next)
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.image_scan_findings().unwrap().findings()[0].name(),
            Some("CVE-2099-0002")
        );
        assert_eq!(page.next_token(), None);
        server.stop().await;
    }
}

#[tokio::test]
async fn start_image_scan_quota_errors_and_scan_not_found() {
    for &backend in BACKENDS {
        let (server, _db) = start_with_db(backend).await;
        let ecr = server.ecr();
        create(&ecr, "manual", false).await;
        let digest = push_layered_image(&ecr, "manual", "v1", &debian_layers()).await;
        let id = || tag_id("v1");

        // No scan yet.
        let err = ecr
            .describe_image_scan_findings()
            .repository_name("manual")
            .image_id(id())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "ScanNotFoundException".to_string(),
                format!("Image scan does not exist for the image with '{{imageDigest:'null', imageTag:'v1'}}' in the repository with name 'manual' in the registry with id '{ACCOUNT}'")
            )
        );
        // DescribeImages has no scan status for it.
        let described = ecr
            .describe_images()
            .repository_name("manual")
            .send()
            .await
            .unwrap();
        assert!(described.image_details()[0].image_scan_status().is_none());

        let started = ecr
            .start_image_scan()
            .repository_name("manual")
            .image_id(id())
            .send()
            .await
            .unwrap();
        assert_eq!(started.registry_id(), Some(ACCOUNT));
        assert_eq!(
            started.image_id().unwrap().image_digest(),
            Some(digest.as_str())
        );
        assert_eq!(started.image_id().unwrap().image_tag(), Some("v1"));
        assert_eq!(
            started.image_scan_status().unwrap().status(),
            Some(&aws_sdk_ecr::types::ScanStatus::InProgress)
        );
        let body = finished_findings(&server, "manual", "v1").await;
        assert_eq!(body["imageScanStatus"]["status"], "COMPLETE");
        assert_eq!(
            finding_names(&body, "findings"),
            ["CVE-2099-0001", "CVE-2099-0002"]
        );

        // One scan per image per 24 hours, on ecrd's clock.
        let err = ecr
            .start_image_scan()
            .repository_name("manual")
            .image_id(id())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "LimitExceededException".to_string(),
                "The scan quota per image has been exceeded. Wait and try again.".to_string()
            )
        );
        let r = server
            .http()
            .post(format!("{}/_ecrd/clock", server.url))
            .json(&json!({ "offsetSeconds": 24.0 * 3600.0 + 1.0 }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ecr.start_image_scan()
            .repository_name("manual")
            .image_id(id())
            .send()
            .await
            .unwrap();
        finished_findings(&server, "manual", "v1").await;

        // Missing image and repository.
        let err = ecr
            .start_image_scan()
            .repository_name("manual")
            .image_id(tag_id("nope"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "ImageNotFoundException");
        let err = ecr
            .describe_image_scan_findings()
            .repository_name("missing")
            .image_id(id())
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "RepositoryNotFoundException");
        server.stop().await;
    }
}

#[tokio::test]
async fn indexes_artifacts_and_unknown_systems_are_not_scanned() {
    for &backend in BACKENDS {
        let (server, _db) = start_with_db(backend).await;
        let ecr = server.ecr();
        create_scanned(&ecr, "odd").await;
        // An image without an OS release: BASIC cannot scan it.
        push_layered_image(
            &ecr,
            "odd",
            "scratch",
            &[tar_gz_layer(&[("app/hello", b"hi")])],
        )
        .await;
        let body = finished_findings(&server, "odd", "scratch").await;
        assert_eq!(
            body["imageScanStatus"],
            json!({"status": "FAILED", "description": "UnsupportedImageError: The operating system and/or package manager are not supported."})
        );

        // An index of that image: StartImageScan refuses it, and pushing it
        // started no scan.
        let child = push_layered_image(&ecr, "odd", "child", &debian_layers()).await;
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"{child}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        ecr.put_image()
            .repository_name("odd")
            .image_manifest(&index)
            .image_manifest_media_type("application/vnd.oci.image.index.v1+json")
            .image_tag("multi")
            .send()
            .await
            .unwrap();
        let multi = || tag_id("multi");
        let err = ecr
            .start_image_scan()
            .repository_name("odd")
            .image_id(multi())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err_code(&err),
            (
                "UnsupportedImageTypeException".to_string(),
                "An artifact with media type 'application/vnd.oci.image.index.v1+json' cannot be scanned. For more information, see the Amazon ECR documentation.".to_string()
            )
        );
        let err = ecr
            .describe_image_scan_findings()
            .repository_name("odd")
            .image_id(multi())
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "ScanNotFoundException");
        // The child was scanned when it was pushed.
        let body = finished_findings(&server, "odd", "child").await;
        assert_eq!(body["imageScanStatus"]["status"], "COMPLETE");
        server.stop().await;
    }
}

#[tokio::test]
async fn without_vulnerability_data_scans_find_nothing_and_say_so() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create_scanned(&ecr, "plain").await;
        push_layered_image(&ecr, "plain", "v1", &debian_layers()).await;
        let body = finished_findings(&server, "plain", "v1").await;
        assert_eq!(body["imageScanStatus"]["status"], "COMPLETE");
        let findings = &body["imageScanFindings"];
        assert_eq!(findings["findings"], json!([]));
        assert_eq!(findings["findingSeverityCounts"], json!({}));
        // The epoch: no vulnerability source was ever loaded.
        assert_eq!(findings["vulnerabilitySourceUpdatedAt"].as_f64(), Some(0.0));
        server.stop().await;
    }
}

#[tokio::test]
async fn enhanced_continuous_scanning_reports_inspector_findings_and_rescans() {
    for &backend in BACKENDS {
        let (server, db) = start_with_db(backend).await;
        let ecr = server.ecr();
        ecr.put_registry_scanning_configuration()
            .scan_type(ScanType::Enhanced)
            .rules(rule(ScanFrequency::ContinuousScan, &["*"]))
            .send()
            .await
            .unwrap();
        create(&ecr, "svc", false).await;
        let digest = push_layered_image(&ecr, "svc", "v1", &debian_layers()).await;
        let body = finished_findings(&server, "svc", "v1").await;
        assert_eq!(
            body["imageScanStatus"],
            json!({"status": "ACTIVE", "description": "Continuous scan is selected for image."})
        );
        let findings = &body["imageScanFindings"];
        assert!(findings.get("findings").is_none(), "{findings}");
        assert_eq!(
            finding_names(&body, "enhancedFindings"),
            ["CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0101"]
        );
        assert_eq!(
            findings["findingSeverityCounts"],
            json!({"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1})
        );
        let python = &findings["enhancedFindings"][2];
        assert_eq!(python["status"], "ACTIVE");
        assert_eq!(python["type"], "PACKAGE_VULNERABILITY");
        assert_eq!(python["severity"], "MEDIUM");
        assert_eq!(python["score"], json!(6.1));
        assert_eq!(python["fixAvailable"], "YES");
        assert_eq!(python["awsAccountId"], ACCOUNT);
        let package = &python["packageVulnerabilityDetails"]["vulnerablePackages"][0];
        assert_eq!(package["name"], "requests");
        assert_eq!(package["version"], "2.30.0");
        assert_eq!(package["fixedInVersion"], "2.31.0");
        assert_eq!(package["packageManager"], "PYTHONPKG");
        assert_eq!(
            package["filePath"],
            "/usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA"
        );
        let layers = debian_layers();
        assert_eq!(
            package["sourceLayerHash"],
            common::sha256_digest(&layers[1])
        );
        assert_eq!(
            python["packageVulnerabilityDetails"]["cvss"][0],
            json!({"baseScore": 6.1, "scoringVector": MEDIUM_VECTOR, "source": python["packageVulnerabilityDetails"]["source"], "version": "3.1"})
        );
        let zlib = &findings["enhancedFindings"][0]["packageVulnerabilityDetails"]
            ["vulnerablePackages"][0];
        assert_eq!(zlib["epoch"], 1);
        assert_eq!(zlib["version"], "1.2.13.dfsg");
        assert_eq!(zlib["release"], "1");
        assert_eq!(zlib["packageManager"], "OS");
        assert_eq!(
            findings["enhancedFindings"][0]["resources"][0]["details"]["awsEcrContainerImage"]
                ["imageHash"],
            digest
        );
        // StartImageScan is not how an ENHANCED registry scans.
        let err = ecr
            .start_image_scan()
            .repository_name("svc")
            .image_id(tag_id("v1"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&err).0, "ValidationException");

        // New data: a record for libc6's source appears; a reload matches
        // the kept inventory again.
        let first_observed = findings["enhancedFindings"][0]["firstObservedAt"].clone();
        let record = osv_record(
            "TEST-DEB-9",
            "CVE-2099-0009",
            "Debian:12",
            "glibc",
            "2.36-9+deb12u9",
            CRITICAL_VECTOR,
        );
        std::fs::write(db.path().join("TEST-DEB-9.json"), record.to_string()).unwrap();
        let r = server
            .http()
            .post(format!("{}/_ecrd/vuln-db/reload", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = finished_findings(&server, "svc", "v1").await;
        assert_eq!(
            finding_names(&body, "enhancedFindings"),
            [
                "CVE-2099-0001",
                "CVE-2099-0009",
                "CVE-2099-0002",
                "CVE-2099-0101"
            ]
        );
        assert_eq!(
            body["imageScanFindings"]["findingSeverityCounts"],
            json!({"CRITICAL": 2, "HIGH": 1, "MEDIUM": 1})
        );
        assert_eq!(
            body["imageScanFindings"]["enhancedFindings"][0]["firstObservedAt"],
            first_observed
        );
        drop(db);
        server.stop().await;
    }
}

#[tokio::test]
async fn injected_findings_are_reported_and_marked() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        create(&ecr, "pipeline", false).await;
        push_layered_image(&ecr, "pipeline", "v1", &debian_layers()).await;
        let r = server
            .http()
            .post(format!("{}/_ecrd/scan-findings", server.url))
            .json(&json!({
                "repositoryName": "pipeline",
                "imageTag": "v1",
                "findings": [
                    {"name": "CVE-2024-0001", "severity": "CRITICAL", "packageName": "openssl", "packageVersion": "3.0.0"},
                    {"name": "CVE-2024-0002", "severity": "LOW"}
                ]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let body = finished_findings(&server, "pipeline", "v1").await;
        assert_eq!(body["imageScanStatus"]["status"], "COMPLETE");
        assert!(body["imageScanStatus"]["description"]
            .as_str()
            .unwrap()
            .contains("injected"));
        assert_eq!(
            body["imageScanFindings"]["findingSeverityCounts"],
            json!({"CRITICAL": 1, "LOW": 1})
        );
        assert_eq!(
            finding_names(&body, "findings"),
            ["CVE-2024-0001", "CVE-2024-0002"]
        );
        // Bad severities are refused and change nothing.
        let r = server
            .http()
            .post(format!("{}/_ecrd/scan-findings", server.url))
            .json(&json!({"repositoryName": "pipeline", "imageTag": "v1", "findings": [{"name": "X", "severity": "SEVERE"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let again = finished_findings(&server, "pipeline", "v1").await;
        assert_eq!(
            again["imageScanFindings"]["findingSeverityCounts"],
            json!({"CRITICAL": 1, "LOW": 1})
        );
        // An injected scan does not count against the 24-hour quota.
        ecr.start_image_scan()
            .repository_name("pipeline")
            .image_id(tag_id("v1"))
            .send()
            .await
            .unwrap();
        server.stop().await;
    }
}

#[tokio::test]
async fn a_restart_keeps_scans_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    write_vuln_db(db.path());
    let (data, vulns) = (dir.path().to_path_buf(), db.path().to_path_buf());
    let configure = |c: &mut ecrd::ServeConfig| {
        c.data_dir = Some(data.clone());
        c.vuln_db = Some(vulns.clone());
    };
    let server = TestServer::start_with(Backend::Disk, configure).await;
    let ecr = server.ecr();
    create_scanned(&ecr, "kept").await;
    push_layered_image(&ecr, "kept", "v1", &debian_layers()).await;
    let before = finished_findings(&server, "kept", "v1").await;
    drop(ecr);
    server.stop().await;
    let server = TestServer::start_with(Backend::Disk, configure).await;
    let after = finished_findings(&server, "kept", "v1").await;
    assert_eq!(before, after);
    // Deleting the image deletes its scan, findings and inventory.
    let ecr = server.ecr();
    ecr.batch_delete_image()
        .repository_name("kept")
        .image_ids(tag_id("v1"))
        .send()
        .await
        .unwrap();
    let store = server.state.ecr.store.clone();
    let tx = store.read().unwrap();
    for table in [
        ecrd::store::Table::ImageScans,
        ecrd::store::Table::ScanFindings,
        ecrd::store::Table::ImageInventories,
    ] {
        assert!(
            tx.scan(table, "", None, 10).unwrap().is_empty(),
            "{table:?}"
        );
    }
    drop(tx);
    drop(store);
    drop(ecr);
    server.stop().await;
}
