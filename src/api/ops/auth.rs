//! GetAuthorizationToken: a registry password for `docker login`.

use crate::api::model::{
    AuthorizationData, GetAuthorizationTokenRequest, GetAuthorizationTokenResponse, Timestamp,
};
use crate::api::Ctx;
use crate::auth::token::authorization_token;
use crate::ecr::clock::epoch_seconds;
use crate::ecr::error::EcrResult;
use crate::ecr::names::{AccountId, Scope};

pub async fn get_authorization_token(
    ctx: Ctx,
    input: GetAuthorizationTokenRequest,
) -> EcrResult<GetAuthorizationTokenResponse> {
    // `registryIds` is deprecated but still honoured: one entry per registry.
    let registries: Vec<Scope> = match input.registry_ids {
        Some(ids) if !ids.is_empty() => ids
            .iter()
            .filter_map(|id| AccountId::parse(id).ok())
            .map(|account| Scope::new(account, ctx.caller.region.clone()))
            .collect(),
        _ => vec![ctx.caller.scope()],
    };
    // A registry-level action: only an identity policy can refuse it.
    ctx.registry(None)?;
    let now = ctx.app.ecr.clock.now();
    let authorization_data = registries
        .iter()
        .map(|scope| {
            // The password proves the caller's own identity (its account
            // and principal); `proxyEndpoint` names the registry asked for.
            // Reaching another account's registry needs that registry's
            // policies to allow the principal, checked on every request.
            let (password, expires_at) = ctx.app.tokens.issue_to(
                &ctx.caller.scope(),
                &ctx.caller.access_key_id,
                Some(&ctx.caller.principal_arn),
                now,
            );
            AuthorizationData {
                authorization_token: Some(authorization_token(&password)),
                expires_at: Some(Timestamp(epoch_seconds(expires_at))),
                proxy_endpoint: Some(ctx.app.ecr.proxy_endpoint(scope)),
            }
        })
        .collect();
    Ok(GetAuthorizationTokenResponse {
        authorization_data: Some(authorization_data),
    })
}
