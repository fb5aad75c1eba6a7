//! ECR Public's control plane: the `ecr-public` API (awsJson1_1, target
//! prefix `SpencerFrontendService.`, SigV4 signing name `ecr-public`) on
//! `POST /`, next to ECR's (`api/` routes a call here by its target).
//!
//! The wire types are generated from botocore's `ecr-public` model
//! (`model.rs`, `tools/gen_model.py --service ecr-public`). Operations whose
//! shapes are a subset of ECR's (layers, images, policies, tags, deleting
//! a repository) run ECR's own handler on the caller's public registry
//! ([`crate::ecr::names::Scope::public`]): their input is re-read as ECR's
//! input shape and ECR's output as ECR Public's, so every image rule stays
//! in one place. The rest (catalog data, registries, image tags, tokens)
//! are in `ops.rs`. As in AWS, ECR Public is served in `us-east-1` only.

pub mod model;
pub mod ops;

use crate::api::error::ApiError;
use crate::api::{call, Ctx};
use crate::ecr::error::{EcrError, ErrorKind};
use model::Operation;

/// The `X-Amz-Target` prefix of every ECR Public operation.
pub const TARGET_PREFIX: &str = "SpencerFrontendService.";

/// The one region ECR Public's API is served in.
pub const REGION: &str = "us-east-1";

/// Runs `operation` with the JSON `body`.
pub async fn dispatch(operation: Operation, ctx: Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    if ctx.caller.region.as_str() != REGION {
        return Err(EcrError::new(
            ErrorKind::UnsupportedCommand,
            format!(
                "Amazon ECR Public is available in {REGION} only; the request was signed for {}",
                ctx.caller.region
            ),
        )
        .into());
    }
    use Operation as Op;
    match operation {
        Op::CreateRepository => call(ctx, body, ops::create_repository).await,
        Op::DescribeRepositories => call(ctx, body, ops::describe_repositories).await,
        Op::DeleteRepository => call(ctx, body, ops::delete_repository).await,
        Op::DescribeRegistries => call(ctx, body, ops::describe_registries).await,
        Op::GetRegistryCatalogData => call(ctx, body, ops::get_registry_catalog_data).await,
        Op::PutRegistryCatalogData => call(ctx, body, ops::put_registry_catalog_data).await,
        Op::GetRepositoryCatalogData => call(ctx, body, ops::get_repository_catalog_data).await,
        Op::PutRepositoryCatalogData => call(ctx, body, ops::put_repository_catalog_data).await,
        Op::DescribeImageTags => call(ctx, body, ops::describe_image_tags).await,
        Op::GetAuthorizationToken => call(ctx, body, ops::get_authorization_token).await,
        Op::DescribeImages => call(ctx, body, ops::describe_images).await,
        Op::BatchDeleteImage => call(ctx, body, ops::batch_delete_image).await,
        Op::PutImage => call(ctx, body, ops::put_image).await,
        Op::BatchCheckLayerAvailability => {
            call(ctx, body, ops::batch_check_layer_availability).await
        }
        Op::InitiateLayerUpload => call(ctx, body, ops::initiate_layer_upload).await,
        Op::UploadLayerPart => call(ctx, body, ops::upload_layer_part).await,
        Op::CompleteLayerUpload => call(ctx, body, ops::complete_layer_upload).await,
        Op::SetRepositoryPolicy => call(ctx, body, ops::set_repository_policy).await,
        Op::GetRepositoryPolicy => call(ctx, body, ops::get_repository_policy).await,
        Op::DeleteRepositoryPolicy => call(ctx, body, ops::delete_repository_policy).await,
        Op::TagResource => call(ctx, body, ops::tag_resource).await,
        Op::UntagResource => call(ctx, body, ops::untag_resource).await,
        Op::ListTagsForResource => call(ctx, body, ops::list_tags_for_resource).await,
    }
}
