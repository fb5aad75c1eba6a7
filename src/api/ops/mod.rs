//! Operation handlers, one file per resource family. Each handler maps the
//! wire shapes to a domain call and back; `dispatch` routes an operation to
//! its handler.

pub mod account;
pub mod auth;
pub mod repositories;

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
        other => Err(ApiError::not_implemented(other.name())),
    }
}
