//! SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy,
//! PutRegistryPolicy, GetRegistryPolicy, DeleteRegistryPolicy.

use crate::api::model::{
    DeleteRegistryPolicyRequest, DeleteRegistryPolicyResponse, DeleteRepositoryPolicyRequest,
    DeleteRepositoryPolicyResponse, GetRegistryPolicyRequest, GetRegistryPolicyResponse,
    GetRepositoryPolicyRequest, GetRepositoryPolicyResponse, PutRegistryPolicyRequest,
    PutRegistryPolicyResponse, SetRepositoryPolicyRequest, SetRepositoryPolicyResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;

pub async fn set_repository_policy(
    ctx: Ctx,
    input: SetRepositoryPolicyRequest,
) -> EcrResult<SetRepositoryPolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let set = ctx.app.ecr.set_repository_policy(
        &ctx.caller,
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        input.policy_text.as_deref().unwrap_or_default(),
        input.force.unwrap_or(false),
    )?;
    Ok(SetRepositoryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(set.repository_name),
        policy_text: Some(set.policy_text),
    })
}

pub async fn get_repository_policy(
    ctx: Ctx,
    input: GetRepositoryPolicyRequest,
) -> EcrResult<GetRepositoryPolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let policy = ctx
        .app
        .ecr
        .get_repository_policy(&scope, input.repository_name.as_deref().unwrap_or_default())?;
    Ok(GetRepositoryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(policy.repository_name),
        policy_text: Some(policy.policy_text),
    })
}

pub async fn delete_repository_policy(
    ctx: Ctx,
    input: DeleteRepositoryPolicyRequest,
) -> EcrResult<DeleteRepositoryPolicyResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let policy = ctx
        .app
        .ecr
        .delete_repository_policy(&scope, input.repository_name.as_deref().unwrap_or_default())?;
    Ok(DeleteRepositoryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(policy.repository_name),
        policy_text: Some(policy.policy_text),
    })
}

pub async fn put_registry_policy(
    ctx: Ctx,
    input: PutRegistryPolicyRequest,
) -> EcrResult<PutRegistryPolicyResponse> {
    let scope = ctx.registry(None)?;
    let text = ctx
        .app
        .ecr
        .put_registry_policy(&scope, input.policy_text.as_deref().unwrap_or_default())?;
    Ok(PutRegistryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        policy_text: Some(text),
    })
}

pub async fn get_registry_policy(
    ctx: Ctx,
    _input: GetRegistryPolicyRequest,
) -> EcrResult<GetRegistryPolicyResponse> {
    let scope = ctx.registry(None)?;
    let text = ctx.app.ecr.get_registry_policy(&scope)?;
    Ok(GetRegistryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        policy_text: Some(text),
    })
}

pub async fn delete_registry_policy(
    ctx: Ctx,
    _input: DeleteRegistryPolicyRequest,
) -> EcrResult<DeleteRegistryPolicyResponse> {
    let scope = ctx.registry(None)?;
    let text = ctx.app.ecr.delete_registry_policy(&scope)?;
    Ok(DeleteRegistryPolicyResponse {
        registry_id: Some(scope.account.to_string()),
        policy_text: Some(text),
    })
}
