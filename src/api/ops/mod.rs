//! Operation handlers, one file per resource family. Each handler maps the
//! wire shapes to a domain call and back; `dispatch` routes an operation to
//! its handler.

pub mod account;
pub mod auth;
pub mod exclusions;
pub mod images;
pub mod layers;
pub mod lifecycle;
pub mod policies;
pub mod pull_through_cache;
pub mod replication;
pub mod repositories;
pub mod scanning;
pub mod signing;
pub mod templates;

use super::error::ApiError;
use super::model::Operation;
use super::{call, Ctx};

/// Runs `operation` with the JSON `body`.
pub async fn dispatch(operation: Operation, ctx: Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    use Operation as Op;
    match operation {
        Op::CreateRepository => call(ctx, body, repositories::create_repository).await,
        Op::DescribeRepositories => call(ctx, body, repositories::describe_repositories).await,
        Op::DeleteRepository => call(ctx, body, repositories::delete_repository).await,
        Op::PutImageTagMutability => call(ctx, body, repositories::put_image_tag_mutability).await,
        Op::PutImageScanningConfiguration => {
            call(ctx, body, repositories::put_image_scanning_configuration).await
        }
        Op::TagResource => call(ctx, body, repositories::tag_resource).await,
        Op::UntagResource => call(ctx, body, repositories::untag_resource).await,
        Op::ListTagsForResource => call(ctx, body, repositories::list_tags_for_resource).await,
        Op::GetAuthorizationToken => call(ctx, body, auth::get_authorization_token).await,
        Op::DescribeRegistry => call(ctx, body, account::describe_registry).await,
        Op::GetAccountSetting => call(ctx, body, account::get_account_setting).await,
        Op::PutAccountSetting => call(ctx, body, account::put_account_setting).await,
        Op::InitiateLayerUpload => call(ctx, body, layers::initiate_layer_upload).await,
        Op::UploadLayerPart => call(ctx, body, layers::upload_layer_part).await,
        Op::CompleteLayerUpload => call(ctx, body, layers::complete_layer_upload).await,
        Op::BatchCheckLayerAvailability => {
            call(ctx, body, layers::batch_check_layer_availability).await
        }
        Op::GetDownloadUrlForLayer => call(ctx, body, layers::get_download_url_for_layer).await,
        Op::PutImage => call(ctx, body, images::put_image).await,
        Op::BatchGetImage => call(ctx, body, images::batch_get_image).await,
        Op::BatchDeleteImage => call(ctx, body, images::batch_delete_image).await,
        Op::ListImages => call(ctx, body, images::list_images).await,
        Op::DescribeImages => call(ctx, body, images::describe_images).await,
        Op::ListImageReferrers => call(ctx, body, images::list_image_referrers).await,
        Op::PutLifecyclePolicy => call(ctx, body, lifecycle::put_lifecycle_policy).await,
        Op::GetLifecyclePolicy => call(ctx, body, lifecycle::get_lifecycle_policy).await,
        Op::DeleteLifecyclePolicy => call(ctx, body, lifecycle::delete_lifecycle_policy).await,
        Op::StartLifecyclePolicyPreview => {
            call(ctx, body, lifecycle::start_lifecycle_policy_preview).await
        }
        Op::GetLifecyclePolicyPreview => {
            call(ctx, body, lifecycle::get_lifecycle_policy_preview).await
        }
        Op::UpdateImageStorageClass => call(ctx, body, lifecycle::update_image_storage_class).await,
        Op::SetRepositoryPolicy => call(ctx, body, policies::set_repository_policy).await,
        Op::GetRepositoryPolicy => call(ctx, body, policies::get_repository_policy).await,
        Op::DeleteRepositoryPolicy => call(ctx, body, policies::delete_repository_policy).await,
        Op::PutRegistryPolicy => call(ctx, body, policies::put_registry_policy).await,
        Op::GetRegistryPolicy => call(ctx, body, policies::get_registry_policy).await,
        Op::DeleteRegistryPolicy => call(ctx, body, policies::delete_registry_policy).await,
        Op::PutRegistryScanningConfiguration => {
            call(ctx, body, scanning::put_registry_scanning_configuration).await
        }
        Op::GetRegistryScanningConfiguration => {
            call(ctx, body, scanning::get_registry_scanning_configuration).await
        }
        Op::BatchGetRepositoryScanningConfiguration => {
            call(
                ctx,
                body,
                scanning::batch_get_repository_scanning_configuration,
            )
            .await
        }
        Op::PutReplicationConfiguration => {
            call(ctx, body, replication::put_replication_configuration).await
        }
        Op::DescribeImageReplicationStatus => {
            call(ctx, body, replication::describe_image_replication_status).await
        }
        Op::CreateRepositoryCreationTemplate => {
            call(ctx, body, templates::create_repository_creation_template).await
        }
        Op::DescribeRepositoryCreationTemplates => {
            call(ctx, body, templates::describe_repository_creation_templates).await
        }
        Op::UpdateRepositoryCreationTemplate => {
            call(ctx, body, templates::update_repository_creation_template).await
        }
        Op::DeleteRepositoryCreationTemplate => {
            call(ctx, body, templates::delete_repository_creation_template).await
        }
        Op::StartImageScan => call(ctx, body, scanning::start_image_scan).await,
        Op::DescribeImageScanFindings => {
            call(ctx, body, scanning::describe_image_scan_findings).await
        }
        Op::CreatePullThroughCacheRule => {
            call(
                ctx,
                body,
                pull_through_cache::create_pull_through_cache_rule,
            )
            .await
        }
        Op::DescribePullThroughCacheRules => {
            call(
                ctx,
                body,
                pull_through_cache::describe_pull_through_cache_rules,
            )
            .await
        }
        Op::UpdatePullThroughCacheRule => {
            call(
                ctx,
                body,
                pull_through_cache::update_pull_through_cache_rule,
            )
            .await
        }
        Op::DeletePullThroughCacheRule => {
            call(
                ctx,
                body,
                pull_through_cache::delete_pull_through_cache_rule,
            )
            .await
        }
        Op::ValidatePullThroughCacheRule => {
            call(
                ctx,
                body,
                pull_through_cache::validate_pull_through_cache_rule,
            )
            .await
        }
        Op::RegisterPullTimeUpdateExclusion => {
            call(ctx, body, exclusions::register_pull_time_update_exclusion).await
        }
        Op::DeregisterPullTimeUpdateExclusion => {
            call(ctx, body, exclusions::deregister_pull_time_update_exclusion).await
        }
        Op::ListPullTimeUpdateExclusions => {
            call(ctx, body, exclusions::list_pull_time_update_exclusions).await
        }
        Op::PutSigningConfiguration => call(ctx, body, signing::put_signing_configuration).await,
        Op::GetSigningConfiguration => call(ctx, body, signing::get_signing_configuration).await,
        Op::DeleteSigningConfiguration => {
            call(ctx, body, signing::delete_signing_configuration).await
        }
        Op::DescribeImageSigningStatus => {
            call(ctx, body, signing::describe_image_signing_status).await
        }
    }
}
