//! InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
//! BatchCheckLayerAvailability, GetDownloadUrlForLayer.

use bytes::Bytes;

use crate::api::model::{
    BatchCheckLayerAvailabilityRequest, BatchCheckLayerAvailabilityResponse,
    CompleteLayerUploadRequest, CompleteLayerUploadResponse, GetDownloadUrlForLayerRequest,
    GetDownloadUrlForLayerResponse, InitiateLayerUploadRequest, InitiateLayerUploadResponse, Layer,
    LayerFailure, UploadLayerPartRequest, UploadLayerPartResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;
use crate::ecr::image_queries::{LayerCheck, PART_SIZE};
use crate::ecr::repositories::parse_name;
use crate::store::blobs::BlobUrl;

pub async fn initiate_layer_upload(
    ctx: Ctx,
    input: InitiateLayerUploadRequest,
) -> EcrResult<InitiateLayerUploadResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let upload_id = ctx.app.ecr.start_upload(&scope, &repo).await?;
    Ok(InitiateLayerUploadResponse {
        upload_id: Some(upload_id),
        part_size: Some(PART_SIZE),
    })
}

pub async fn upload_layer_part(
    ctx: Ctx,
    input: UploadLayerPartRequest,
) -> EcrResult<UploadLayerPartResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let upload_id = input.upload_id.unwrap_or_default();
    // The model's constraints have made both non-negative.
    let first = input.part_first_byte.unwrap_or_default().max(0) as u64;
    let last = input.part_last_byte.unwrap_or_default().max(0) as u64;
    let blob = input.layer_part_blob.unwrap_or_default();
    let last_byte = ctx
        .app
        .ecr
        .upload_layer_part(&scope, &repo, &upload_id, first, last, Bytes::from(blob.0))
        .await?;
    Ok(UploadLayerPartResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        upload_id: Some(upload_id),
        last_byte_received: Some(last_byte as i64),
    })
}

pub async fn complete_layer_upload(
    ctx: Ctx,
    input: CompleteLayerUploadRequest,
) -> EcrResult<CompleteLayerUploadResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let upload_id = input.upload_id.unwrap_or_default();
    let digest = ctx
        .app
        .ecr
        .complete_layer_upload(
            &scope,
            &repo,
            &upload_id,
            &input.layer_digests.unwrap_or_default(),
        )
        .await?;
    Ok(CompleteLayerUploadResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        upload_id: Some(upload_id),
        layer_digest: Some(digest.to_string()),
    })
}

pub async fn batch_check_layer_availability(
    ctx: Ctx,
    input: BatchCheckLayerAvailabilityRequest,
) -> EcrResult<BatchCheckLayerAvailabilityResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let checks = ctx
        .app
        .ecr
        .check_layers(&scope, &repo, &input.layer_digests.unwrap_or_default())
        .await?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for check in checks {
        match check {
            LayerCheck::Available { digest, size } => layers.push(Layer {
                layer_digest: Some(digest),
                layer_availability: Some("AVAILABLE".to_string()),
                layer_size: Some(size as i64),
                media_type: None,
            }),
            LayerCheck::Unavailable { digest } => layers.push(Layer {
                layer_digest: Some(digest),
                layer_availability: Some("UNAVAILABLE".to_string()),
                layer_size: None,
                media_type: None,
            }),
            LayerCheck::Failed {
                digest,
                code,
                reason,
            } => failures.push(LayerFailure {
                layer_digest: Some(digest),
                failure_code: Some(code.to_string()),
                failure_reason: Some(reason),
            }),
        }
    }
    Ok(BatchCheckLayerAvailabilityResponse {
        layers: Some(layers),
        failures: Some(failures),
    })
}

pub async fn get_download_url_for_layer(
    ctx: Ctx,
    input: GetDownloadUrlForLayerRequest,
) -> EcrResult<GetDownloadUrlForLayerResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let ecr = &ctx.app.ecr;
    if let Ok(wanted) =
        crate::digest::Digest::parse(input.layer_digest.as_deref().unwrap_or_default())
    {
        ecr.pull_through_layer(&ctx.caller, &scope, &repo, &wanted)
            .await?;
    }
    let (digest, url) = ecr
        .layer_for_download(
            &scope,
            &repo,
            input.layer_digest.as_deref().unwrap_or_default(),
        )
        .await?;
    let download_url = match url {
        // S3 blobs: the bucket's presigned URL, as ECR hands out.
        BlobUrl::Presigned(url) => url,
        // `layer_for_download` answers LayersNotFound for these.
        BlobUrl::Ecrd | BlobUrl::Missing => {
            let path = ctx.app.tokens.download_path(
                &scope,
                repo.as_str(),
                &digest.to_string(),
                ecr.clock.now(),
            );
            format!(
                "{}{path}",
                ecr.fetch_base_url(&scope, ctx.caller.secure_transport)
            )
        }
    };
    Ok(GetDownloadUrlForLayerResponse {
        download_url: Some(download_url),
        layer_digest: Some(digest.to_string()),
    })
}
