//! DescribeRegistry, GetAccountSetting, PutAccountSetting.

use crate::api::model::{
    DescribeRegistryRequest, DescribeRegistryResponse, GetAccountSettingRequest,
    GetAccountSettingResponse, PutAccountSettingRequest, PutAccountSettingResponse,
    ReplicationConfiguration,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;

pub async fn describe_registry(
    ctx: Ctx,
    _input: DescribeRegistryRequest,
) -> EcrResult<DescribeRegistryResponse> {
    let scope = &ctx.registry(None)?;
    let record = ctx.app.ecr.registry_record(scope)?;
    let replication = record
        .replication_configuration
        .and_then(|v| serde_json::from_value::<ReplicationConfiguration>(v).ok())
        .unwrap_or(ReplicationConfiguration {
            rules: Some(Vec::new()),
        });
    Ok(DescribeRegistryResponse {
        registry_id: Some(scope.account.to_string()),
        replication_configuration: Some(replication),
    })
}

pub async fn get_account_setting(
    ctx: Ctx,
    input: GetAccountSettingRequest,
) -> EcrResult<GetAccountSettingResponse> {
    let scope = ctx.registry(None)?;
    let (name, value) = ctx
        .app
        .ecr
        .get_account_setting(&scope, input.name.as_deref().unwrap_or_default())?;
    Ok(GetAccountSettingResponse {
        name: Some(name),
        value: Some(value),
    })
}

pub async fn put_account_setting(
    ctx: Ctx,
    input: PutAccountSettingRequest,
) -> EcrResult<PutAccountSettingResponse> {
    let scope = ctx.registry(None)?;
    let (name, value) = ctx.app.ecr.put_account_setting(
        &scope,
        input.name.as_deref().unwrap_or_default(),
        input.value.as_deref().unwrap_or_default(),
    )?;
    Ok(PutAccountSettingResponse {
        name: Some(name),
        value: Some(value),
    })
}
