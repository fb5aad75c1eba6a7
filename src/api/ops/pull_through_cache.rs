//! CreatePullThroughCacheRule, DescribePullThroughCacheRules,
//! UpdatePullThroughCacheRule, DeletePullThroughCacheRule,
//! ValidatePullThroughCacheRule. The rules live in `ecr::pull_through`;
//! answers carry only what ECR returns and what the user set.

use crate::api::model::{
    CreatePullThroughCacheRuleRequest, CreatePullThroughCacheRuleResponse,
    DeletePullThroughCacheRuleRequest, DeletePullThroughCacheRuleResponse,
    DescribePullThroughCacheRulesRequest, DescribePullThroughCacheRulesResponse,
    PullThroughCacheRule, Timestamp, UpdatePullThroughCacheRuleRequest,
    UpdatePullThroughCacheRuleResponse, ValidatePullThroughCacheRuleRequest,
    ValidatePullThroughCacheRuleResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;
use crate::ecr::pull_through::{NewRule, RuleRecord};

fn time(ms: i64) -> Option<Timestamp> {
    Some(Timestamp(ms as f64 / 1000.0))
}

fn rule_shape(registry_id: &str, r: RuleRecord) -> PullThroughCacheRule {
    PullThroughCacheRule {
        ecr_repository_prefix: Some(r.prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: time(r.created_at_ms),
        registry_id: Some(registry_id.to_string()),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: r.upstream_repository_prefix,
        upstream_registry: Some(r.upstream_registry),
        updated_at: time(r.updated_at_ms),
    }
}

pub async fn create_pull_through_cache_rule(
    ctx: Ctx,
    input: CreatePullThroughCacheRuleRequest,
) -> EcrResult<CreatePullThroughCacheRuleResponse> {
    let scope = ctx.registry(input.registry_id.as_ref())?;
    let r = ctx.app.ecr.create_pull_through_rule(
        &scope,
        NewRule {
            prefix: input.ecr_repository_prefix.unwrap_or_default(),
            upstream_registry_url: input.upstream_registry_url.unwrap_or_default(),
            upstream_registry: input.upstream_registry,
            credential_arn: input.credential_arn,
            custom_role_arn: input.custom_role_arn,
            upstream_repository_prefix: input.upstream_repository_prefix,
        },
    )?;
    Ok(CreatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: time(r.created_at_ms),
        registry_id: Some(scope.account.to_string()),
        upstream_registry: Some(r.upstream_registry),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: r.upstream_repository_prefix,
    })
}

pub async fn describe_pull_through_cache_rules(
    ctx: Ctx,
    input: DescribePullThroughCacheRulesRequest,
) -> EcrResult<DescribePullThroughCacheRulesResponse> {
    let scope = ctx.registry(input.registry_id.as_ref())?;
    let page = ctx.app.ecr.describe_pull_through_rules(
        &scope,
        input.ecr_repository_prefixes,
        input.next_token,
        input.max_results.map(|m| m.max(1) as usize),
    )?;
    let registry_id = scope.account.to_string();
    Ok(DescribePullThroughCacheRulesResponse {
        pull_through_cache_rules: Some(
            page.rules
                .into_iter()
                .map(|r| rule_shape(&registry_id, r))
                .collect(),
        ),
        next_token: page.next_token,
    })
}

pub async fn update_pull_through_cache_rule(
    ctx: Ctx,
    input: UpdatePullThroughCacheRuleRequest,
) -> EcrResult<UpdatePullThroughCacheRuleResponse> {
    let scope = ctx.registry(input.registry_id.as_ref())?;
    let r = ctx.app.ecr.update_pull_through_rule(
        &scope,
        input.ecr_repository_prefix.as_deref().unwrap_or_default(),
        input.credential_arn,
        input.custom_role_arn,
    )?;
    Ok(UpdatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.prefix),
        registry_id: Some(scope.account.to_string()),
        updated_at: time(r.updated_at_ms),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: r.upstream_repository_prefix,
    })
}

pub async fn delete_pull_through_cache_rule(
    ctx: Ctx,
    input: DeletePullThroughCacheRuleRequest,
) -> EcrResult<DeletePullThroughCacheRuleResponse> {
    let scope = ctx.registry(input.registry_id.as_ref())?;
    let r = ctx.app.ecr.delete_pull_through_rule(
        &scope,
        input.ecr_repository_prefix.as_deref().unwrap_or_default(),
    )?;
    Ok(DeletePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(r.prefix),
        upstream_registry_url: Some(r.upstream_registry_url),
        created_at: time(r.created_at_ms),
        registry_id: Some(scope.account.to_string()),
        credential_arn: r.credential_arn,
        custom_role_arn: r.custom_role_arn,
        upstream_repository_prefix: r.upstream_repository_prefix,
    })
}

pub async fn validate_pull_through_cache_rule(
    ctx: Ctx,
    input: ValidatePullThroughCacheRuleRequest,
) -> EcrResult<ValidatePullThroughCacheRuleResponse> {
    let scope = ctx.registry(input.registry_id.as_ref())?;
    let v = ctx
        .app
        .ecr
        .validate_pull_through_rule(
            &scope,
            input.ecr_repository_prefix.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok(ValidatePullThroughCacheRuleResponse {
        ecr_repository_prefix: Some(v.rule.prefix),
        registry_id: Some(scope.account.to_string()),
        upstream_registry_url: Some(v.rule.upstream_registry_url),
        credential_arn: v.rule.credential_arn,
        custom_role_arn: v.rule.custom_role_arn,
        upstream_repository_prefix: v.rule.upstream_repository_prefix,
        is_valid: Some(v.is_valid),
        failure: v.failure,
    })
}
