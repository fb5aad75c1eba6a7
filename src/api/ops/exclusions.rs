//! RegisterPullTimeUpdateExclusion, DeregisterPullTimeUpdateExclusion,
//! ListPullTimeUpdateExclusions (the rule they feed lives in
//! `ecr::exclusions`).

use super::images::timestamp;
use crate::api::model::{
    DeregisterPullTimeUpdateExclusionRequest, DeregisterPullTimeUpdateExclusionResponse,
    ListPullTimeUpdateExclusionsRequest, ListPullTimeUpdateExclusionsResponse,
    RegisterPullTimeUpdateExclusionRequest, RegisterPullTimeUpdateExclusionResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;

pub async fn register_pull_time_update_exclusion(
    ctx: Ctx,
    input: RegisterPullTimeUpdateExclusionRequest,
) -> EcrResult<RegisterPullTimeUpdateExclusionResponse> {
    let scope = ctx.registry(None)?;
    let record = ctx
        .app
        .ecr
        .register_exclusion(&scope, input.principal_arn.as_deref().unwrap_or_default())?;
    Ok(RegisterPullTimeUpdateExclusionResponse {
        principal_arn: Some(record.principal_arn),
        created_at: Some(timestamp(record.created_at_ms)),
    })
}

pub async fn deregister_pull_time_update_exclusion(
    ctx: Ctx,
    input: DeregisterPullTimeUpdateExclusionRequest,
) -> EcrResult<DeregisterPullTimeUpdateExclusionResponse> {
    let scope = ctx.registry(None)?;
    let record = ctx
        .app
        .ecr
        .deregister_exclusion(&scope, input.principal_arn.as_deref().unwrap_or_default())?;
    Ok(DeregisterPullTimeUpdateExclusionResponse {
        principal_arn: Some(record.principal_arn),
    })
}

pub async fn list_pull_time_update_exclusions(
    ctx: Ctx,
    input: ListPullTimeUpdateExclusionsRequest,
) -> EcrResult<ListPullTimeUpdateExclusionsResponse> {
    let scope = ctx.registry(None)?;
    let page = ctx.app.ecr.list_exclusions(
        &scope,
        input.next_token.as_deref(),
        input.max_results.map(|n| n as usize),
    )?;
    Ok(ListPullTimeUpdateExclusionsResponse {
        pull_time_update_exclusions: Some(page.principal_arns),
        next_token: page.next_token,
    })
}
