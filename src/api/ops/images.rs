//! PutImage, BatchGetImage, BatchDeleteImage, ListImages, DescribeImages,
//! ListImageReferrers.

use crate::api::model::{
    BatchDeleteImageRequest, BatchDeleteImageResponse, BatchGetImageRequest, BatchGetImageResponse,
    DescribeImagesRequest, DescribeImagesResponse, Image, ImageDetail, ImageFailure as WireFailure,
    ImageIdentifier, ImageReferrer, ListImageReferrersRequest, ListImageReferrersResponse,
    ListImagesRequest, ListImagesResponse, PutImageRequest, PutImageResponse, Timestamp,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;
use crate::ecr::image_queries::{
    DescribedImage, ImageFailure, ImageFilter, ImageId, ReferrerQuery, TagStatus,
};
use crate::ecr::names::Scope;
use crate::ecr::records::ImageRecord;
use crate::ecr::repositories::parse_name;

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp(ms as f64 / 1000.0)
}

pub(crate) fn domain_id(id: ImageIdentifier) -> ImageId {
    ImageId {
        digest: id.image_digest,
        tag: id.image_tag,
    }
}

pub(crate) fn wire_id(id: ImageId) -> ImageIdentifier {
    ImageIdentifier {
        image_digest: id.digest,
        image_tag: id.tag,
    }
}

fn wire_failures(failures: Vec<ImageFailure>) -> Vec<WireFailure> {
    failures
        .into_iter()
        .map(|f| WireFailure {
            image_id: Some(wire_id(f.id)),
            failure_code: Some(f.code.to_string()),
            failure_reason: Some(f.reason),
        })
        .collect()
}

fn image_shape(scope: &Scope, repo: &str, id: ImageId, image: ImageRecord) -> Image {
    Image {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        image_id: Some(wire_id(id)),
        image_manifest: Some(image.manifest),
        image_manifest_media_type: Some(image.media_type),
    }
}

fn detail_shape(scope: &Scope, repo: &str, described: DescribedImage) -> ImageDetail {
    let image = described.image;
    ImageDetail {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        image_digest: Some(image.digest.to_string()),
        image_tags: (!image.tags.is_empty()).then_some(image.tags),
        image_size_in_bytes: Some(described.size_in_bytes),
        image_pushed_at: Some(timestamp(image.pushed_at_ms)),
        image_manifest_media_type: Some(image.media_type),
        artifact_media_type: image.artifact_type,
        last_recorded_pull_time: image.last_pulled_ms.map(timestamp),
        subject_manifest_digest: image.subject.map(|d| d.to_string()),
        image_status: Some(described.status.to_string()),
        last_archived_at: image.last_archived_ms.map(timestamp),
        last_activated_at: described.last_activated_ms.map(timestamp),
        image_scan_status: described
            .scan
            .as_ref()
            .map(super::scanning::scan_status_shape),
        image_scan_findings_summary: described
            .scan
            .as_ref()
            .filter(|scan| scan.is_finished())
            .map(super::scanning::findings_summary_shape),
    }
}

pub async fn put_image(ctx: Ctx, input: PutImageRequest) -> EcrResult<PutImageResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let image = ctx.app.ecr.put_image(
        &scope,
        &repo,
        input.image_manifest.as_deref().unwrap_or_default(),
        input.image_manifest_media_type.as_deref(),
        input.image_tag.as_deref(),
        input.image_digest.as_deref(),
    )?;
    let id = ImageId::of(&image.digest, input.image_tag.as_deref());
    Ok(PutImageResponse {
        image: Some(image_shape(&scope, repo.as_str(), id, image)),
    })
}

pub async fn batch_get_image(
    ctx: Ctx,
    input: BatchGetImageRequest,
) -> EcrResult<BatchGetImageResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let ids: Vec<ImageId> = input
        .image_ids
        .unwrap_or_default()
        .into_iter()
        .map(domain_id)
        .collect();
    // A repository under a pull through cache rule is filled from its
    // upstream first; what cannot be fetched is reported as not found (or,
    // when the repository itself never came to exist, as the upstream's
    // failure).
    // An image whose manifest was just fetched is answered with it while
    // its blobs are imported (and is not looked up in the cache).
    let mut upstream_failure = None;
    let mut images = Vec::new();
    let mut from_cache = Vec::new();
    for id in ids {
        let reference = match (&id.digest, &id.tag) {
            (Some(d), _) => crate::ecr::images::Reference::parse(d).ok(),
            (None, Some(t)) => Some(crate::ecr::images::Reference::Tag(t.clone())),
            (None, None) => None,
        };
        let Some(reference) = reference else {
            from_cache.push(id);
            continue;
        };
        match ctx
            .app
            .ecr
            .pull_through_manifest(
                &ctx.caller,
                &scope,
                &repo,
                &reference,
                Some(&ctx.caller.principal_arn),
            )
            .await
        {
            Ok(Some(fetched)) => images.push(Image {
                registry_id: Some(scope.account.to_string()),
                repository_name: Some(repo.to_string()),
                image_id: Some(wire_id(ImageId::of(&fetched.digest, id.tag.as_deref()))),
                image_manifest: Some(String::from_utf8_lossy(&fetched.manifest).into_owned()),
                image_manifest_media_type: Some(fetched.media_type),
            }),
            Ok(None) => from_cache.push(id),
            Err(e) => {
                upstream_failure.get_or_insert(e);
                from_cache.push(id);
            }
        }
    }
    // acceptedMediaTypes: ECR answers with the manifest as stored when it
    // cannot convert it to an accepted type, and ecrd never converts.
    let (found, failures) = if from_cache.is_empty() && !images.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        match ctx
            .app
            .ecr
            .batch_get_images(&scope, &repo, &from_cache, &ctx.caller.principal_arn)
        {
            // The repository is made when the first import commits.
            Err(e) if e.kind == crate::ecr::error::ErrorKind::RepositoryNotFound => {
                if images.is_empty() {
                    return Err(upstream_failure.unwrap_or(e));
                }
                let failures = from_cache
                    .into_iter()
                    .map(|id| ImageFailure {
                        id,
                        code: "ImageNotFound",
                        reason: "Requested image not found".to_string(),
                    })
                    .collect();
                (Vec::new(), failures)
            }
            other => other?,
        }
    };
    images.extend(
        found
            .into_iter()
            .map(|f| image_shape(&scope, repo.as_str(), f.id, f.image)),
    );
    Ok(BatchGetImageResponse {
        images: Some(images),
        failures: Some(wire_failures(failures)),
    })
}

pub async fn batch_delete_image(
    ctx: Ctx,
    input: BatchDeleteImageRequest,
) -> EcrResult<BatchDeleteImageResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let ids: Vec<ImageId> = input
        .image_ids
        .unwrap_or_default()
        .into_iter()
        .map(domain_id)
        .collect();
    let (deleted, failures) = ctx.app.ecr.batch_delete_images(&scope, &repo, &ids)?;
    Ok(BatchDeleteImageResponse {
        image_ids: Some(deleted.into_iter().map(wire_id).collect()),
        failures: Some(wire_failures(failures)),
    })
}

pub async fn list_images(ctx: Ctx, input: ListImagesRequest) -> EcrResult<ListImagesResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let filter = input.filter.unwrap_or_default();
    let filter = ImageFilter {
        tag_status: TagStatus::parse(filter.tag_status.as_deref()),
        image_status: filter.image_status,
    };
    let page = ctx.app.ecr.list_image_ids(
        &scope,
        &repo,
        &filter,
        input.next_token.as_deref(),
        input.max_results.map(|m| m.max(1) as usize),
    )?;
    Ok(ListImagesResponse {
        image_ids: Some(page.items.into_iter().map(wire_id).collect()),
        next_token: page.next_token,
    })
}

pub async fn describe_images(
    ctx: Ctx,
    input: DescribeImagesRequest,
) -> EcrResult<DescribeImagesResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let filter = input.filter.unwrap_or_default();
    let filter = ImageFilter {
        tag_status: TagStatus::parse(filter.tag_status.as_deref()),
        image_status: filter.image_status,
    };
    let ids: Option<Vec<ImageId>> = input
        .image_ids
        .map(|ids| ids.into_iter().map(domain_id).collect());
    let page = ctx.app.ecr.describe_images(
        &scope,
        &repo,
        ids.as_deref(),
        &filter,
        input.next_token.as_deref(),
        input.max_results.map(|m| m.max(1) as usize),
    )?;
    Ok(DescribeImagesResponse {
        image_details: Some(
            page.items
                .into_iter()
                .map(|d| detail_shape(&scope, repo.as_str(), d))
                .collect(),
        ),
        next_token: page.next_token,
    })
}

pub async fn list_image_referrers(
    ctx: Ctx,
    input: ListImageReferrersRequest,
) -> EcrResult<ListImageReferrersResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let filter = input.filter.unwrap_or_default();
    let subject = input
        .subject_id
        .and_then(|s| s.image_digest)
        .unwrap_or_default();
    let page = ctx.app.ecr.list_image_referrers(
        &scope,
        &repo,
        &ReferrerQuery {
            subject: &subject,
            artifact_types: filter.artifact_types.as_deref().unwrap_or_default(),
            artifact_status: filter.artifact_status.as_deref(),
            next_token: input.next_token.as_deref(),
            max_results: input.max_results.map(|m| m.max(1) as usize),
        },
    )?;
    Ok(ListImageReferrersResponse {
        referrers: Some(
            page.items
                .into_iter()
                .map(|d| ImageReferrer {
                    digest: Some(d.digest.to_string()),
                    media_type: Some(d.media_type),
                    artifact_type: d.artifact_type,
                    size: Some(d.size),
                    annotations: d.annotations.map(|a| {
                        a.into_iter()
                            .map(|(k, v)| match v {
                                serde_json::Value::String(s) => (k, s),
                                other => (k, other.to_string()),
                            })
                            .collect()
                    }),
                    artifact_status: Some("ACTIVE".to_string()),
                })
                .collect(),
        ),
        next_token: page.next_token,
    })
}
