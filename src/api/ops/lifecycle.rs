//! PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy,
//! StartLifecyclePolicyPreview, GetLifecyclePolicyPreview and
//! UpdateImageStorageClass. The rules live in `ecr::lifecycle` (the engine)
//! and `ecr::lifecycle_runs` (storing, previewing and applying).

use crate::api::model::{
    DeleteLifecyclePolicyRequest, DeleteLifecyclePolicyResponse, GetLifecyclePolicyPreviewRequest,
    GetLifecyclePolicyPreviewResponse, GetLifecyclePolicyRequest, GetLifecyclePolicyResponse,
    ImageIdentifier, LifecyclePolicyPreviewResult, LifecyclePolicyPreviewSummary,
    LifecyclePolicyRuleAction, PutLifecyclePolicyRequest, PutLifecyclePolicyResponse,
    StartLifecyclePolicyPreviewRequest, StartLifecyclePolicyPreviewResponse, Timestamp,
    TransitioningImageTotalCount, UpdateImageStorageClassRequest, UpdateImageStorageClassResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;
use crate::ecr::lifecycle_runs::{PlannedAction, PreviewQuery};

fn timestamp(ms: i64) -> Timestamp {
    Timestamp(ms as f64 / 1000.0)
}

/// The model's counts are 32-bit.
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub async fn put_lifecycle_policy(
    ctx: Ctx,
    input: PutLifecyclePolicyRequest,
) -> EcrResult<PutLifecyclePolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let state = ctx.app.ecr.put_lifecycle_policy(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        input.lifecycle_policy_text.as_deref().unwrap_or_default(),
    )?;
    Ok(PutLifecyclePolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(state.repository),
        lifecycle_policy_text: Some(state.text),
    })
}

pub async fn get_lifecycle_policy(
    ctx: Ctx,
    input: GetLifecyclePolicyRequest,
) -> EcrResult<GetLifecyclePolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let state = ctx
        .app
        .ecr
        .get_lifecycle_policy(&scope, input.repository_name.as_deref().unwrap_or_default())?;
    Ok(GetLifecyclePolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(state.repository),
        lifecycle_policy_text: Some(state.text),
        last_evaluated_at: state.last_evaluated_ms.map(timestamp),
    })
}

pub async fn delete_lifecycle_policy(
    ctx: Ctx,
    input: DeleteLifecyclePolicyRequest,
) -> EcrResult<DeleteLifecyclePolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let state = ctx
        .app
        .ecr
        .delete_lifecycle_policy(&scope, input.repository_name.as_deref().unwrap_or_default())?;
    Ok(DeleteLifecyclePolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(state.repository),
        lifecycle_policy_text: Some(state.text),
        last_evaluated_at: state.last_evaluated_ms.map(timestamp),
    })
}

pub async fn start_lifecycle_policy_preview(
    ctx: Ctx,
    input: StartLifecyclePolicyPreviewRequest,
) -> EcrResult<StartLifecyclePolicyPreviewResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let name = input.repository_name.unwrap_or_default();
    let ecr = ctx.app.ecr.clone();
    let (task_scope, task_name) = (scope.clone(), name.clone());
    // Reads every image of the repository: off the async workers.
    let text = tokio::task::spawn_blocking(move || {
        ecr.start_lifecycle_policy_preview(
            &task_scope,
            &task_name,
            input.lifecycle_policy_text.as_deref(),
        )
    })
    .await
    .map_err(|e| {
        crate::ecr::error::EcrError::new(crate::ecr::error::ErrorKind::Server, e.to_string())
    })??;
    Ok(StartLifecyclePolicyPreviewResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(name),
        lifecycle_policy_text: Some(text),
        status: Some("IN_PROGRESS".to_string()),
    })
}

fn result_shape(result: PlannedAction) -> LifecyclePolicyPreviewResult {
    LifecyclePolicyPreviewResult {
        image_tags: (!result.image_tags.is_empty()).then_some(result.image_tags),
        image_digest: Some(result.image_digest.to_string()),
        image_pushed_at: Some(timestamp(result.image_pushed_at_ms)),
        action: Some(LifecyclePolicyRuleAction {
            r#type: Some(result.action),
            target_storage_class: result.target_storage_class,
        }),
        applied_rule_priority: Some(i32::try_from(result.rule_priority).unwrap_or(i32::MAX)),
        storage_class: Some(result.storage_class),
    }
}

pub async fn get_lifecycle_policy_preview(
    ctx: Ctx,
    input: GetLifecyclePolicyPreviewRequest,
) -> EcrResult<GetLifecyclePolicyPreviewResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let query = PreviewQuery {
        image_ids: input.image_ids.map(|ids| {
            ids.into_iter()
                .map(|id| (id.image_digest, id.image_tag))
                .collect()
        }),
        next_token: input.next_token,
        max_results: input.max_results.map(|m| m.max(1) as usize),
        tag_status: input.filter.and_then(|f| f.tag_status),
    };
    let page = ctx.app.ecr.get_lifecycle_policy_preview(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        query,
    )?;
    Ok(GetLifecyclePolicyPreviewResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(page.repository),
        lifecycle_policy_text: Some(page.policy_text),
        status: Some(page.status.to_string()),
        next_token: page.next_token,
        preview_results: Some(page.results.into_iter().map(result_shape).collect()),
        summary: Some(LifecyclePolicyPreviewSummary {
            expiring_image_total_count: Some(count(page.expiring_count)),
            transitioning_image_total_counts: page.transitioning_count.map(|n| {
                vec![TransitioningImageTotalCount {
                    target_storage_class: Some("ARCHIVE".to_string()),
                    image_total_count: Some(count(n)),
                }]
            }),
        }),
    })
}

pub async fn update_image_storage_class(
    ctx: Ctx,
    input: UpdateImageStorageClassRequest,
) -> EcrResult<UpdateImageStorageClassResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let id = input.image_id.unwrap_or_default();
    let image = ctx.app.ecr.update_image_storage_class(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        id.image_digest.as_deref(),
        id.image_tag.as_deref(),
        input.target_storage_class.as_deref().unwrap_or_default(),
    )?;
    Ok(UpdateImageStorageClassResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: input.repository_name,
        image_id: Some(ImageIdentifier {
            image_digest: Some(image.digest.to_string()),
            image_tag: id.image_tag,
        }),
        image_status: Some(image.status),
    })
}
