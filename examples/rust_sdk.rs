//! The AWS SDK for Rust (`aws-sdk-ecr`) against ecrd.
//!
//! ```sh
//! ecrd serve &
//! cargo run --release --example rust_sdk          # or ECRD_ENDPOINT=http://host:port
//! ```
//!
//! Creates `quickstart/rust` (tags, scan on push, immutable tags), reads it
//! back, puts and reads a lifecycle policy, gets a registry login from
//! `GetAuthorizationToken`, then deletes the repository and shows the
//! `RepositoryNotFoundException` a second look answers. The only ecrd-specific
//! line is `endpoint_url`: the rest is what runs against ECR.

use aws_sdk_ecr::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use base64::Engine;

const REPO: &str = "quickstart/rust";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let endpoint =
        std::env::var("ECRD_ENDPOINT").unwrap_or_else(|_| "http://localhost:4566".to_string());
    // ecrd's built-in credentials; any region works (each is its own namespace).
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "example"))
        .build();
    let ecr = aws_sdk_ecr::Client::from_conf(config);

    let created = ecr
        .create_repository()
        .repository_name(REPO)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .tags(Tag::builder().key("team").value("platform").build()?)
        .send()
        .await?;
    let repo = created
        .repository()
        .ok_or("CreateRepository answered no repository")?;
    println!(
        "created {} ({})",
        repo.repository_uri().unwrap_or_default(),
        repo.repository_arn().unwrap_or_default()
    );

    // Read it back: what was set, and nothing else.
    let described = ecr
        .describe_repositories()
        .repository_names(REPO)
        .send()
        .await?;
    let [repo] = described.repositories() else {
        return Err("DescribeRepositories did not answer exactly one repository".into());
    };
    check(
        repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        "tag mutability",
    )?;
    check(
        repo.image_scanning_configuration()
            .map(|c| c.scan_on_push())
            .unwrap_or(false),
        "scan on push",
    )?;
    let arn = repo.repository_arn().ok_or("no repositoryArn")?;
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await?;
    let tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    check(tags == [("team", "platform")], "tags")?;
    println!("described {REPO}: IMMUTABLE, scan on push, tags {tags:?}");

    let policy = r#"{"rules":[{"rulePriority":1,"description":"keep 10 images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;
    ecr.put_lifecycle_policy()
        .repository_name(REPO)
        .lifecycle_policy_text(policy)
        .send()
        .await?;
    let read = ecr
        .get_lifecycle_policy()
        .repository_name(REPO)
        .send()
        .await?;
    let same =
        serde_json::from_str::<serde_json::Value>(read.lifecycle_policy_text().unwrap_or(""))?
            == serde_json::from_str::<serde_json::Value>(policy)?;
    check(same, "lifecycle policy round trip")?;
    println!("lifecycle policy stored");

    // The registry login: base64("AWS:<password>"), as `docker login` wants it.
    let token = ecr.get_authorization_token().send().await?;
    let data = token
        .authorization_data()
        .first()
        .ok_or("no authorizationData")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap_or_default())?;
    let decoded = String::from_utf8(decoded)?;
    check(decoded.starts_with("AWS:"), "token form AWS:<password>")?;
    println!(
        "docker login --username AWS for {} (expires {:?})",
        data.proxy_endpoint().unwrap_or_default(),
        data.expires_at().map(|t| t.to_string())
    );

    ecr.delete_repository()
        .repository_name(REPO)
        .force(true)
        .send()
        .await?;
    match ecr
        .describe_repositories()
        .repository_names(REPO)
        .send()
        .await
    {
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            println!("deleted; describing it again: {}", e.into_service_error());
        }
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("the deleted repository is still described".into()),
    }
    println!("done");
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected answer: {what}").into())
    }
}
