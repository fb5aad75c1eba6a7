//! Managed signing and pull-time update exclusions through real clients,
//! on both backends: the signing configuration's CRUD and errors, images
//! signed on push with a Notary Project signature that verifies against the
//! profile's exposed certificate (and keeps verifying across a restart on
//! disk); the exclusion list's CRUD, limits and pagination, and pulls on
//! both planes by an excluded principal leaving lastRecordedPullTime alone.

#![allow(clippy::unwrap_used)]

mod common;

use common::{err_code, push_image, Backend, TestServer, BACKENDS};

const SCANNER: &str = "arn:aws:iam::111111111111:role/scanners/trivy";
const CREDENTIALS: &str = "AKIACI:cisecret:111111111111:arn:aws:iam::111111111111:user/ci,\
AKIASCAN:scansecret:111111111111:arn:aws:iam::111111111111:role/scanners/trivy";

async fn two_principals(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.credentials = Some(CREDENTIALS.into())).await
}

async fn last_pull(ecr: &aws_sdk_ecr::Client, repo: &str) -> Option<f64> {
    let out = ecr
        .describe_images()
        .repository_name(repo)
        .send()
        .await
        .unwrap();
    out.image_details()[0]
        .last_recorded_pull_time()
        .map(|t| t.as_secs_f64())
}

async fn password(ecr: &aws_sdk_ecr::Client) -> String {
    let out = ecr.get_authorization_token().send().await.unwrap();
    out.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string()
}

/// `GET /v2/<repo>/manifests/<reference>` with a registry password.
async fn registry_get(server: &TestServer, token: &str, path: &str) -> reqwest::Response {
    let account = "000000000000";
    server
        .http()
        .get(format!("{}{path}", server.url))
        .header("authorization", format!("Basic {token}"))
        .header(
            "host",
            format!("{account}.dkr.ecr.us-east-1.localhost:{}", server.port),
        )
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn exclusions_register_list_and_deregister_with_ecrs_errors() {
    for &backend in BACKENDS {
        let server = two_principals(backend).await;
        let ecr = server.ecr_as("AKIACI", "cisecret", "us-east-1");

        let out = ecr
            .register_pull_time_update_exclusion()
            .principal_arn(SCANNER)
            .send()
            .await
            .unwrap();
        assert_eq!(out.principal_arn(), Some(SCANNER));
        assert!(out.created_at().is_some());

        let e = ecr
            .register_pull_time_update_exclusion()
            .principal_arn(SCANNER)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "ExclusionAlreadyExistsException");

        // The model's PrincipalArn pattern: IAM users and roles only.
        for bad in [
            "arn:aws:iam::111111111111:root",
            "arn:aws:sts::111111111111:assumed-role/r/s",
            "not-an-arn",
        ] {
            let e = ecr
                .register_pull_time_update_exclusion()
                .principal_arn(bad)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err_code(&e).0, "InvalidParameterException", "{bad}");
        }

        let e = ecr
            .deregister_pull_time_update_exclusion()
            .principal_arn("arn:aws:iam::111111111111:user/nobody")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "ExclusionNotFoundException");

        // Up to 100 exclusions; the 101st is over the limit.
        for i in 1..100 {
            ecr.register_pull_time_update_exclusion()
                .principal_arn(format!("arn:aws:iam::111111111111:user/u{i:03}"))
                .send()
                .await
                .unwrap();
        }
        let e = ecr
            .register_pull_time_update_exclusion()
            .principal_arn("arn:aws:iam::111111111111:user/one-too-many")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "LimitExceededException");

        // Pages of 40 walk all 100 in ARN order.
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = ecr
                .list_pull_time_update_exclusions()
                .max_results(40)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            assert!(page.pull_time_update_exclusions().len() <= 40);
            seen.extend(page.pull_time_update_exclusions().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted);
        assert!(seen.contains(&SCANNER.to_string()));

        let out = ecr
            .deregister_pull_time_update_exclusion()
            .principal_arn(SCANNER)
            .send()
            .await
            .unwrap();
        assert_eq!(out.principal_arn(), Some(SCANNER));
        let all = ecr.list_pull_time_update_exclusions().send().await.unwrap();
        assert_eq!(all.pull_time_update_exclusions().len(), 99);
        assert!(all.next_token().is_none());
        assert!(!all
            .pull_time_update_exclusions()
            .contains(&SCANNER.to_string()));
    }
}

#[tokio::test]
async fn an_excluded_principal_pulls_without_moving_the_pull_time() {
    for &backend in BACKENDS {
        let server = two_principals(backend).await;
        let ci = server.ecr_as("AKIACI", "cisecret", "us-east-1");
        let scanner = server.ecr_as("AKIASCAN", "scansecret", "us-east-1");
        ci.create_repository()
            .repository_name("app")
            .send()
            .await
            .unwrap();
        let (_, digest) = push_image(&ci, "app", "a", "v1").await;
        ci.register_pull_time_update_exclusion()
            .principal_arn(SCANNER)
            .send()
            .await
            .unwrap();

        // The excluded scanner pulls on both planes: no pull is recorded.
        let images = scanner
            .batch_get_image()
            .repository_name("app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(images.images().len(), 1);
        assert_eq!(last_pull(&ci, "app").await, None, "{backend:?}");

        // CI is not excluded: its pull is recorded, and a later pull by the
        // scanner does not move it.
        ci.batch_get_image()
            .repository_name("app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let recorded = last_pull(&ci, "app").await.expect("CI's pull is recorded");
        server.state.ecr.clock.advance(time::Duration::days(3));
        scanner
            .batch_get_image()
            .repository_name("app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(&digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(last_pull(&ci, "app").await, Some(recorded));

        // Once deregistered, the scanner's pulls count again.
        ci.deregister_pull_time_update_exclusion()
            .principal_arn(SCANNER)
            .send()
            .await
            .unwrap();
        scanner
            .batch_get_image()
            .repository_name("app")
            .image_ids(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let moved = last_pull(&ci, "app").await.unwrap();
        assert!(
            moved >= recorded + 3.0 * 86400.0 - 1.0,
            "{moved} vs {recorded}"
        );
    }
}

const PROFILE: &str = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/prod_signer";
const SIGNATURE_TYPE: &str = "application/vnd.cncf.notary.signature";

fn rule(profile: &str, filters: &[&str]) -> aws_sdk_ecr::types::SigningRule {
    let mut rule = aws_sdk_ecr::types::SigningRule::builder().signing_profile_arn(profile);
    for f in filters {
        rule = rule.repository_filters(
            aws_sdk_ecr::types::SigningRepositoryFilter::builder()
                .filter(*f)
                .filter_type(aws_sdk_ecr::types::SigningRepositoryFilterType::WildcardMatch)
                .build()
                .unwrap(),
        );
    }
    rule.build().unwrap()
}

async fn put_rules(ecr: &aws_sdk_ecr::Client, rules: Vec<aws_sdk_ecr::types::SigningRule>) {
    ecr.put_signing_configuration()
        .signing_configuration(
            aws_sdk_ecr::types::SigningConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn signing_configuration_put_get_delete_with_ecrs_errors() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        let e = ecr.get_signing_configuration().send().await.unwrap_err();
        assert_eq!(err_code(&e).0, "SigningConfigurationNotFoundException");
        let e = ecr.delete_signing_configuration().send().await.unwrap_err();
        assert_eq!(err_code(&e).0, "SigningConfigurationNotFoundException");

        // The model's SigningProfileArn pattern and filter grammar.
        for bad in [
            rule(
                "arn:aws:signer:us-east-1:000000000000:/signing-profiles/x",
                &[],
            ),
            rule("arn:aws:iam::000000000000:role/signer", &[]),
            rule(PROFILE, &["Not/Lower"]),
        ] {
            let e = ecr
                .put_signing_configuration()
                .signing_configuration(
                    aws_sdk_ecr::types::SigningConfiguration::builder()
                        .rules(bad)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap_err();
            assert_eq!(err_code(&e).0, "InvalidParameterException");
        }
        // At most 10 rules.
        let e = ecr
            .put_signing_configuration()
            .signing_configuration(
                aws_sdk_ecr::types::SigningConfiguration::builder()
                    .set_rules(Some(vec![rule(PROFILE, &[]); 11]))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "InvalidParameterException");

        let out = ecr
            .put_signing_configuration()
            .signing_configuration(
                aws_sdk_ecr::types::SigningConfiguration::builder()
                    .rules(rule(PROFILE, &["prod/*", "*-release"]))
                    .rules(rule(
                        "arn:aws:signer:us-east-1:000000000000:/signing-profiles/all_images",
                        &[],
                    ))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let rules = out.signing_configuration().unwrap().rules();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].repository_filters().len(), 2);
        // A rule put without filters comes back without them.
        assert!(rules[1].repository_filters.is_none());

        let got = ecr.get_signing_configuration().send().await.unwrap();
        assert_eq!(got.registry_id(), Some("000000000000"));
        assert_eq!(got.signing_configuration(), out.signing_configuration());
        let deleted = ecr.delete_signing_configuration().send().await.unwrap();
        assert_eq!(deleted.signing_configuration(), out.signing_configuration());
        let e = ecr.get_signing_configuration().send().await.unwrap_err();
        assert_eq!(err_code(&e).0, "SigningConfigurationNotFoundException");
    }
}

/// Polls DescribeImageSigningStatus until no profile is IN_PROGRESS.
async fn signing_statuses(
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
) -> Vec<aws_sdk_ecr::types::ImageSigningStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = ecr
            .describe_image_signing_status()
            .repository_name(repo)
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(digest)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let statuses = out.signing_statuses().to_vec();
        if statuses
            .iter()
            .all(|s| s.status() != Some(&aws_sdk_ecr::types::SigningStatus::InProgress))
        {
            return statuses;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "signing still in progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The certificate ecrd exposes for a profile, as DER.
async fn certificate(server: &TestServer, profile: &str) -> Vec<u8> {
    let r = server
        .http()
        .get(format!("{}/_ecrd/signing/certificate", server.url))
        .query(&[("signingProfileArn", profile)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pem = r.text().await.unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
}

/// The P-256 public key (uncompressed point) of a certificate: the bytes
/// after the SubjectPublicKeyInfo header of an id-ecPublicKey/prime256v1 key.
fn p256_public_key(der: &[u8]) -> &[u8] {
    const SPKI_HEADER: &[u8] = &[
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let at = der
        .windows(SPKI_HEADER.len())
        .position(|w| w == SPKI_HEADER)
        .expect("a P-256 key in the certificate");
    &der[at + SPKI_HEADER.len()..at + SPKI_HEADER.len() + 65]
}

/// Finds the image's Notary signature, checks its manifest and envelope,
/// and verifies the JWS with `certificate`; returns the envelope.
async fn verify_signature(
    server: &TestServer,
    ecr: &aws_sdk_ecr::Client,
    repo: &str,
    digest: &str,
    certificate: &[u8],
) -> serde_json::Value {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let referrers = ecr
        .list_image_referrers()
        .repository_name(repo)
        .subject_id(
            aws_sdk_ecr::types::SubjectIdentifier::builder()
                .image_digest(digest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let signatures: Vec<_> = referrers
        .referrers()
        .iter()
        .filter(|r| r.artifact_type() == Some(SIGNATURE_TYPE))
        .collect();
    assert_eq!(signatures.len(), 1, "one signature of {digest}");
    let signature_digest = signatures[0].digest().to_string();

    // The registry's referrers API lists the same manifest.
    let token = password(ecr).await;
    let r = registry_get(server, &token, &format!("/v2/{repo}/referrers/{digest}")).await;
    assert_eq!(r.status(), 200);
    let index: serde_json::Value = r.json().await.unwrap();
    assert!(index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["digest"] == signature_digest.as_str() && m["artifactType"] == SIGNATURE_TYPE));

    let images = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&signature_digest)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(images.images()[0].image_manifest().unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["artifactType"], SIGNATURE_TYPE);
    assert_eq!(manifest["subject"]["digest"], digest);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/jose+json");
    let envelope_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(envelope_digest)
        .send()
        .await
        .unwrap();
    let envelope = server
        .http()
        .get(url.download_url().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(common::sha256_digest(&envelope), envelope_digest);
    let envelope: serde_json::Value = serde_json::from_slice(&envelope).unwrap();

    let protected = envelope["protected"].as_str().unwrap();
    let payload = envelope["payload"].as_str().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["cty"], "application/vnd.cncf.notary.payload.v1+json");
    assert_eq!(header["io.cncf.notary.signingScheme"], "notary.x509");
    assert_eq!(
        header["crit"],
        serde_json::json!(["io.cncf.notary.signingScheme"])
    );
    assert!(header["io.cncf.notary.signingTime"].is_string());
    assert_eq!(
        envelope["header"]["x5c"][0].as_str().unwrap(),
        STANDARD.encode(certificate)
    );
    let payload_json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(payload_json["targetArtifact"]["digest"], digest);

    let signature = URL_SAFE_NO_PAD
        .decode(envelope["signature"].as_str().unwrap())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        p256_public_key(certificate),
    )
    .verify(format!("{protected}.{payload}").as_bytes(), &signature)
    .expect("the signature verifies with the exposed certificate");
    envelope
}

#[tokio::test]
async fn pushed_images_get_a_notary_signature_that_verifies() {
    for &backend in BACKENDS {
        let server = TestServer::start(backend).await;
        let ecr = server.ecr();
        put_rules(&ecr, vec![rule(PROFILE, &["prod/*"])]).await;
        for repo in ["prod/api", "dev/api"] {
            ecr.create_repository()
                .repository_name(repo)
                .send()
                .await
                .unwrap();
        }
        let (_, signed) = push_image(&ecr, "prod/api", "a", "v1").await;
        let (_, unsigned) = push_image(&ecr, "dev/api", "b", "v1").await;

        let statuses = signing_statuses(&ecr, "prod/api", &signed).await;
        assert_eq!(statuses.len(), 1, "{backend:?}");
        assert_eq!(statuses[0].signing_profile_arn(), Some(PROFILE));
        assert_eq!(
            statuses[0].status(),
            Some(&aws_sdk_ecr::types::SigningStatus::Complete)
        );
        assert!(statuses[0].failure_code().is_none());
        assert!(signing_statuses(&ecr, "dev/api", &unsigned)
            .await
            .is_empty());

        let cert = certificate(&server, PROFILE).await;
        verify_signature(&server, &ecr, "prod/api", &signed, &cert).await;

        // A tag is as good as a digest; an unknown image is ECR's error.
        let by_tag = ecr
            .describe_image_signing_status()
            .repository_name("prod/api")
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("v1")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            by_tag.image_id().unwrap().image_digest(),
            Some(signed.as_str())
        );
        let e = ecr
            .describe_image_signing_status()
            .repository_name("prod/api")
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_tag("nope")
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(err_code(&e).0, "ImageNotFoundException");

        // The signature itself is not signed again; the image has exactly
        // one signature once the queue is empty.
        let r = server
            .http()
            .post(format!("{}/_ecrd/signing/run", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let listed = ecr
            .describe_images()
            .repository_name("prod/api")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.image_details().len(), 2);
    }
}

#[tokio::test]
async fn the_key_survives_a_restart_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let first = {
        let p = path.clone();
        TestServer::start_with(Backend::Disk, move |c| c.data_dir = Some(p)).await
    };
    let ecr = first.ecr();
    put_rules(&ecr, vec![rule(PROFILE, &[])]).await;
    ecr.create_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    let (_, before) = push_image(&ecr, "app", "a", "v1").await;
    signing_statuses(&ecr, "app", &before).await;
    let cert = certificate(&first, PROFILE).await;
    verify_signature(&first, &ecr, "app", &before, &cert).await;
    drop(ecr);
    first.stop().await;

    let second = TestServer::start_with(Backend::Disk, move |c| c.data_dir = Some(path)).await;
    let ecr = second.ecr();
    assert_eq!(certificate(&second, PROFILE).await, cert);
    let (_, after) = push_image(&ecr, "app", "b", "v2").await;
    let statuses = signing_statuses(&ecr, "app", &after).await;
    assert_eq!(
        statuses[0].status(),
        Some(&aws_sdk_ecr::types::SigningStatus::Complete)
    );
    verify_signature(&second, &ecr, "app", &after, &cert).await;
    verify_signature(&second, &ecr, "app", &before, &cert).await;
    second.stop().await;
}
