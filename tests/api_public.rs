//! Amazon ECR Public: the `ecr-public` API through the AWS SDK for Rust
//! (`aws-sdk-ecrpublic`) and the public registry's `/v2/` (anonymous
//! pulls through the bearer token flow, pushes with the public password),
//! on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use aws_sdk_ecrpublic::error::ProvideErrorMetadata;
use aws_sdk_ecrpublic::primitives::Blob;
use aws_sdk_ecrpublic::types::{ImageIdentifier, RepositoryCatalogDataInput, Tag};
use base64::Engine as _;
use common::{sha256_digest, Backend, TestServer, BACKENDS};

const OTHER: &str = "AKIAOTHER:othersecret:111111111111";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really a picture";

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.public_port = Some(0);
        c.credentials = Some(OTHER.into());
    })
    .await
}

fn code<E: ProvideErrorMetadata, R>(err: &aws_sdk_ecrpublic::error::SdkError<E, R>) -> String {
    err.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("not a service error")
        .to_string()
}

fn alias_of(uri: &str) -> String {
    uri.split('/').nth(1).unwrap().to_string()
}

/// Uploads `data` as a layer through the API, naming the registry by `registry`.
async fn upload(
    client: &aws_sdk_ecrpublic::Client,
    registry: &str,
    repo: &str,
    data: &[u8],
) -> String {
    let id = client
        .initiate_layer_upload()
        .registry_id(registry)
        .repository_name(repo)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    client
        .upload_layer_part()
        .registry_id(registry)
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(data.len() as i64 - 1)
        .layer_part_blob(Blob::new(data.to_vec()))
        .send()
        .await
        .unwrap();
    let digest = sha256_digest(data);
    client
        .complete_layer_upload()
        .registry_id(registry)
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    digest
}

/// Pushes a small image tagged `tag` through the API; its manifest.
async fn push(client: &aws_sdk_ecrpublic::Client, registry: &str, repo: &str, tag: &str) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#);
    let layer = format!("public layer {tag}").repeat(20);
    let c = upload(client, registry, repo, config.as_bytes()).await;
    let l = upload(client, registry, repo, layer.as_bytes()).await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{c}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{l}"}}]}}"#,
        config.len(),
        layer.len()
    );
    client
        .put_image()
        .registry_id(registry)
        .repository_name(repo)
        .image_manifest(&manifest)
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    manifest
}

#[tokio::test]
async fn repositories_catalog_data_registries_and_tags() {
    for &backend in BACKENDS {
        let server = start(backend).await;
        let public = server.ecr_public_as("test", "test");
        let created = public
            .create_repository()
            .repository_name("team/app")
            .catalog_data(
                RepositoryCatalogDataInput::builder()
                    .description("an app")
                    .architectures("x86-64")
                    .operating_systems("Linux")
                    .about_text("# About")
                    .usage_text("docker pull it")
                    .logo_image_blob(Blob::new(PNG))
                    .build(),
            )
            .tags(Tag::builder().key("team").value("web").build())
            .send()
            .await
            .unwrap();
        let repository = created.repository().unwrap();
        assert_eq!(
            repository.repository_arn(),
            Some("arn:aws:ecr-public::000000000000:repository/team/app")
        );
        let uri = repository.repository_uri().unwrap().to_string();
        let public_port = server
            .public_url
            .as_deref()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        assert!(
            uri.starts_with(&format!("localhost:{public_port}/")),
            "{uri}"
        );
        assert!(uri.ends_with("/team/app"), "{uri}");
        let catalog = created.catalog_data().unwrap();
        assert_eq!(catalog.description(), Some("an app"));
        assert_eq!(catalog.architectures(), ["x86-64"]);
        let logo_url = catalog.logo_url().unwrap().to_string();
        let logo = reqwest::get(&logo_url).await.unwrap();
        assert_eq!(logo.status(), 200, "{logo_url}");
        assert_eq!(logo.headers()["content-type"], "image/png");
        assert_eq!(logo.bytes().await.unwrap().as_ref(), PNG);

        let err = public
            .create_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RepositoryAlreadyExistsException");

        // The registry, its alias and the URIs agree.
        let registries = public.describe_registries().send().await.unwrap();
        let registry = &registries.registries()[0];
        assert_eq!(registry.registry_id(), "000000000000");
        assert_eq!(registry.aliases()[0].name(), alias_of(&uri));
        assert!(registry.aliases()[0].primary_registry_alias());
        assert!(!registry.verified());
        assert!(uri.starts_with(registry.registry_uri()));

        // Registry catalog data.
        let put = public
            .put_registry_catalog_data()
            .display_name("Team")
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.registry_catalog_data().unwrap().display_name(),
            Some("Team")
        );
        let got = public.get_registry_catalog_data().send().await.unwrap();
        assert_eq!(
            got.registry_catalog_data().unwrap().display_name(),
            Some("Team")
        );

        // Repository catalog data: replaced by a put.
        public
            .put_repository_catalog_data()
            .repository_name("team/app")
            .catalog_data(
                RepositoryCatalogDataInput::builder()
                    .description("v2")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let got = public
            .get_repository_catalog_data()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();
        let catalog = got.catalog_data().unwrap();
        assert_eq!(catalog.description(), Some("v2"));
        assert!(catalog.logo_url().is_none());
        let err = public
            .get_repository_catalog_data()
            .repository_name("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RepositoryNotFoundException");

        // Pagination over DescribeRepositories.
        for name in ["a1", "b2"] {
            public
                .create_repository()
                .repository_name(name)
                .send()
                .await
                .unwrap();
        }
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = public
                .describe_repositories()
                .max_results(1)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            assert!(page.repositories().len() <= 1);
            names.extend(
                page.repositories()
                    .iter()
                    .map(|r| r.repository_name().unwrap().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(names, ["a1", "b2", "team/app"]);
        let err = public
            .describe_repositories()
            .repository_names("missing")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RepositoryNotFoundException");

        // Public and private registries are separate namespaces.
        let private = server.ecr();
        let listed = private.describe_repositories().send().await.unwrap();
        assert!(listed.repositories().is_empty());
        private
            .create_repository()
            .repository_name("team/app")
            .send()
            .await
            .unwrap();

        // Tags on the public ARN; a private ARN is not ECR Public's.
        let arn = repository.repository_arn().unwrap();
        public
            .tag_resource()
            .resource_arn(arn)
            .tags(Tag::builder().key("env").value("prod").build())
            .send()
            .await
            .unwrap();
        public
            .untag_resource()
            .resource_arn(arn)
            .tag_keys("team")
            .send()
            .await
            .unwrap();
        let tags = public
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = tags.tags().iter().filter_map(|t| t.key()).collect();
        assert_eq!(keys, ["env"]);
        let err = public
            .list_tags_for_resource()
            .resource_arn("arn:aws:ecr:us-east-1:000000000000:repository/team/app")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterException");

        // Only us-east-1 serves ECR Public.
        let elsewhere = server.ecr_public_in("test", "test", "eu-west-1");
        let err = elsewhere.describe_repositories().send().await.unwrap_err();
        assert_eq!(code(&err), "UnsupportedCommandException");

        public
            .delete_repository()
            .repository_name("a1")
            .send()
            .await
            .unwrap();
        server.stop().await;
    }
}

#[tokio::test]
async fn images_pushed_through_the_api_are_pulled_anonymously() {
    for &backend in BACKENDS {
        let server = start(backend).await;
        let public = server.ecr_public_as("test", "test");
        let created = public
            .create_repository()
            .repository_name("tool")
            .send()
            .await
            .unwrap();
        let uri = created
            .repository()
            .unwrap()
            .repository_uri()
            .unwrap()
            .to_string();
        let alias = alias_of(&uri);
        // The registry is named by its alias (RegistryIdOrAlias) here.
        let v1 = push(&public, &alias, "tool", "v1").await;
        let v2 = push(&public, &alias, "tool", "v2").await;
        let err = public
            .initiate_layer_upload()
            .registry_id("nosuchalias")
            .repository_name("tool")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RegistryNotFoundException");

        let described = public
            .describe_images()
            .repository_name("tool")
            .send()
            .await
            .unwrap();
        assert_eq!(described.image_details().len(), 2);
        let mut tags = Vec::new();
        let mut token = None;
        loop {
            let page = public
                .describe_image_tags()
                .repository_name("tool")
                .max_results(1)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for detail in page.image_tag_details() {
                let digest = detail.image_detail().unwrap().image_digest().unwrap();
                tags.push((detail.image_tag().unwrap().to_string(), digest.to_string()));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(
            tags,
            [
                ("v1".to_string(), sha256_digest(v1.as_bytes())),
                ("v2".to_string(), sha256_digest(v2.as_bytes()))
            ]
        );
        let checked = public
            .batch_check_layer_availability()
            .repository_name("tool")
            .layer_digests(sha256_digest(b"never pushed"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            checked.layers()[0].layer_availability().map(|a| a.as_str()),
            Some("UNAVAILABLE")
        );

        // Anonymous pull: challenge, token, manifest, blob.
        let base = server.public_url.clone().unwrap();
        let http = reqwest::Client::new();
        let manifest_url = format!("{base}/v2/{alias}/tool/manifests/v1");
        let challenged = http.get(&manifest_url).send().await.unwrap();
        assert_eq!(challenged.status(), 401);
        let challenge = challenged.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
        let realm = challenge.split('"').nth(1).unwrap().to_string();
        let token: serde_json::Value = http
            .get(format!(
                "{realm}?service=public.ecr.aws&scope=repository:{alias}/tool:pull"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
        let pulled = http
            .get(&manifest_url)
            .header("authorization", &bearer)
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), 200);
        assert_eq!(pulled.text().await.unwrap(), v1);
        let manifest: serde_json::Value = serde_json::from_str(&v1).unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let blob = send(
            http.get(format!("{base}/v2/{alias}/tool/blobs/{layer}")),
            &bearer,
        )
        .await;
        assert_eq!(blob.status(), 200);
        assert_eq!(sha256_digest(&blob.bytes().await.unwrap()), layer);
        let tags_list: serde_json::Value = send(
            http.get(format!("{base}/v2/{alias}/tool/tags/list")),
            &bearer,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(tags_list["tags"], serde_json::json!(["v1", "v2"]));
        // The main port serves the public registry to the host `public.ecr.aws`
        // (behind /etc/hosts and --tls, say); other hosts get the private one.
        let by_host = http
            .get(format!("{}/v2/{alias}/tool/manifests/v1", server.url))
            .header("host", "public.ecr.aws")
            .header("authorization", &bearer)
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(by_host.status(), 200);
        assert_eq!(by_host.text().await.unwrap(), v1);
        let private = send(
            http.get(format!("{}/v2/{alias}/tool/manifests/v1", server.url)),
            &bearer,
        )
        .await;
        assert_eq!(private.status(), 401);

        // An anonymous token does not push.
        let refused = send(
            http.post(format!("{base}/v2/{alias}/tool/blobs/uploads/")),
            &bearer,
        )
        .await;
        assert_eq!(refused.status(), 401);
        // Unknown aliases and repositories are unknown names.
        let unknown = send(
            http.get(format!("{base}/v2/nosuchalias/tool/manifests/v1")),
            &bearer,
        )
        .await;
        assert_eq!(unknown.status(), 404);

        let deleted = public
            .batch_delete_image()
            .repository_name("tool")
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.image_ids().len(), 1);
        let gone = send(http.get(&manifest_url), &bearer).await;
        assert_eq!(gone.status(), 404);
        let err = public
            .delete_repository()
            .repository_name("tool")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RepositoryNotEmptyException");
        public
            .delete_repository()
            .repository_name("tool")
            .force(true)
            .send()
            .await
            .unwrap();
        server.stop().await;
    }
}

/// Sends a request with an `Authorization` header.
async fn send(request: reqwest::RequestBuilder, authorization: &str) -> reqwest::Response {
    request
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

/// The Basic header of an ECR Public or ECR password.
fn basic(authorization_token: &str) -> String {
    format!("Basic {authorization_token}")
}

#[tokio::test]
async fn passwords_open_their_own_plane_and_other_accounts_only_pull() {
    for &backend in BACKENDS {
        let server = start(backend).await;
        let owner = server.ecr_public_as("test", "test");
        let uri = owner
            .create_repository()
            .repository_name("shared")
            .send()
            .await
            .unwrap()
            .repository()
            .unwrap()
            .repository_uri()
            .unwrap()
            .to_string();
        let alias = alias_of(&uri);
        push(&owner, &alias, "shared", "v1").await;
        let base = server.public_url.clone().unwrap();
        let http = reqwest::Client::new();

        let public_token = owner.get_authorization_token().send().await.unwrap();
        let data = public_token.authorization_data().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.authorization_token().unwrap())
            .unwrap();
        assert!(decoded.starts_with(b"AWS:"));
        let public_basic = basic(data.authorization_token().unwrap());
        let private_basic = common::registry_authorization(&server.ecr()).await;

        // The public password pushes on the public registry (a token
        // endpoint exchange, as docker does it) ...
        let token: serde_json::Value = http
            .get(format!(
                "{base}/token?service=public.ecr.aws&scope=repository:{alias}/shared:push,pull"
            ))
            .header("authorization", &public_basic)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let owner_bearer = format!("Bearer {}", token["token"].as_str().unwrap());
        let started = send(
            http.post(format!("{base}/v2/{alias}/shared/blobs/uploads/")),
            &owner_bearer,
        )
        .await;
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("/v2/{alias}/shared/blobs/uploads/")),
            "{location}"
        );
        // ... and opens nothing on the private one; a private password
        // opens nothing on the public one.
        let private_plane = send(http.get(format!("{}/v2/", server.url)), &public_basic).await;
        assert_eq!(private_plane.status(), 401);
        let wrong_plane = send(http.get(format!("{base}/token")), &private_basic).await;
        assert_eq!(wrong_plane.status(), 401);

        // Another account pulls (it is public) but may not push.
        let other = server.ecr_public_as("AKIAOTHER", "othersecret");
        let other_token = other.get_authorization_token().send().await.unwrap();
        let other_basic = basic(
            other_token
                .authorization_data()
                .unwrap()
                .authorization_token()
                .unwrap(),
        );
        let pulled = send(
            http.get(format!("{base}/v2/{alias}/shared/manifests/v1")),
            &other_basic,
        )
        .await;
        assert_eq!(pulled.status(), 200);
        let pushed = send(
            http.post(format!("{base}/v2/{alias}/shared/blobs/uploads/")),
            &other_basic,
        )
        .await;
        assert_eq!(pushed.status(), 403);
        let err = other
            .initiate_layer_upload()
            .registry_id("000000000000")
            .repository_name("shared")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "AccessDeniedException");

        // A repository policy with ECR Public's actions lets it push.
        let err = owner
            .set_repository_policy()
            .repository_name("shared")
            .policy_text(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"ecr:PutImage"}]}"#)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidParameterException");
        owner
            .set_repository_policy()
            .repository_name("shared")
            .policy_text(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"ecr-public:*"}]}"#)
            .send()
            .await
            .unwrap();
        let pushed = send(
            http.post(format!("{base}/v2/{alias}/shared/blobs/uploads/")),
            &other_basic,
        )
        .await;
        assert_eq!(pushed.status(), 202);
        let policy = owner
            .get_repository_policy()
            .repository_name("shared")
            .send()
            .await
            .unwrap();
        assert!(policy.policy_text().unwrap().contains("ecr-public:*"));
        owner
            .delete_repository_policy()
            .repository_name("shared")
            .send()
            .await
            .unwrap();
        let err = owner
            .get_repository_policy()
            .repository_name("shared")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "RepositoryPolicyNotFoundException");
        server.stop().await;
    }
}
