//! PutRegistryScanningConfiguration, GetRegistryScanningConfiguration,
//! BatchGetRepositoryScanningConfiguration: wire shapes to the domain's
//! `ecr::scanning` and back.

use crate::api::model::{
    BatchGetRepositoryScanningConfigurationRequest,
    BatchGetRepositoryScanningConfigurationResponse, GetRegistryScanningConfigurationRequest,
    GetRegistryScanningConfigurationResponse, PutRegistryScanningConfigurationRequest,
    PutRegistryScanningConfigurationResponse, RegistryScanningConfiguration, RegistryScanningRule,
    RepositoryScanningConfiguration, RepositoryScanningConfigurationFailure,
    ScanningRepositoryFilter,
};
use crate::api::Ctx;
use crate::ecr::arn::repository_arn;
use crate::ecr::error::EcrResult;
use crate::ecr::names::{RepositoryName, Scope};
use crate::ecr::scanning::{
    RepositoryFilter, RepositoryScanningResult, RuleInput, ScanningConfiguration,
};

fn filter_shapes(filters: &[RepositoryFilter]) -> Vec<ScanningRepositoryFilter> {
    filters
        .iter()
        .map(|f| ScanningRepositoryFilter {
            filter: Some(f.filter.clone()),
            filter_type: Some(f.filter_type.clone()),
        })
        .collect()
}

/// The wire form; `rules` is always present (`[]` by default), as ECR
/// answers it.
fn configuration_shape(configuration: &ScanningConfiguration) -> RegistryScanningConfiguration {
    RegistryScanningConfiguration {
        scan_type: Some(configuration.scan_type.as_str().to_string()),
        rules: Some(
            configuration
                .rules
                .iter()
                .map(|rule| RegistryScanningRule {
                    scan_frequency: Some(rule.scan_frequency.as_str().to_string()),
                    repository_filters: Some(filter_shapes(&rule.repository_filters)),
                })
                .collect(),
        ),
    }
}

pub async fn put_registry_scanning_configuration(
    ctx: Ctx,
    input: PutRegistryScanningConfigurationRequest,
) -> EcrResult<PutRegistryScanningConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let rules: Vec<RuleInput> = input
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|rule| RuleInput {
            scan_frequency: rule.scan_frequency.unwrap_or_default(),
            repository_filters: rule
                .repository_filters
                .unwrap_or_default()
                .into_iter()
                .map(|f| {
                    (
                        f.filter.unwrap_or_default(),
                        f.filter_type.unwrap_or_default(),
                    )
                })
                .collect(),
        })
        .collect();
    let configuration = ScanningConfiguration::parse(input.scan_type.as_deref(), &rules)?;
    let stored = ctx
        .app
        .ecr
        .put_registry_scanning_configuration(&scope, configuration)?;
    Ok(PutRegistryScanningConfigurationResponse {
        registry_scanning_configuration: Some(configuration_shape(&stored)),
    })
}

pub async fn get_registry_scanning_configuration(
    ctx: Ctx,
    _input: GetRegistryScanningConfigurationRequest,
) -> EcrResult<GetRegistryScanningConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let configuration = ctx.app.ecr.get_registry_scanning_configuration(&scope)?;
    Ok(GetRegistryScanningConfigurationResponse {
        registry_id: Some(scope.account.to_string()),
        scanning_configuration: Some(configuration_shape(&configuration)),
    })
}

pub async fn batch_get_repository_scanning_configuration(
    ctx: Ctx,
    input: BatchGetRepositoryScanningConfigurationRequest,
) -> EcrResult<BatchGetRepositoryScanningConfigurationResponse> {
    let names = input.repository_names.unwrap_or_default();
    // The operation has no registryId: it reads the caller's registry, and
    // each repository named is a resource the caller must be allowed on.
    let mut scope: Option<Scope> = None;
    for name in &names {
        scope = Some(ctx.repository(None, Some(name))?);
    }
    let scope = scope.unwrap_or_else(|| ctx.target(None));
    let results = ctx
        .app
        .ecr
        .batch_get_repository_scanning_configuration(&scope, &names)?;
    let mut configurations = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            RepositoryScanningResult::Found { record, scanning } => {
                let arn = RepositoryName::parse(&record.name)
                    .ok()
                    .map(|n| repository_arn(&scope, &n));
                configurations.push(RepositoryScanningConfiguration {
                    repository_arn: arn,
                    repository_name: Some(record.name),
                    scan_on_push: Some(scanning.scan_on_push),
                    scan_frequency: Some(scanning.scan_frequency.as_str().to_string()),
                    applied_scan_filters: Some(filter_shapes(&scanning.applied_filters)),
                });
            }
            RepositoryScanningResult::NotFound { name, reason } => {
                failures.push(RepositoryScanningConfigurationFailure {
                    repository_name: Some(name),
                    failure_code: Some("REPOSITORY_NOT_FOUND".to_string()),
                    failure_reason: Some(reason),
                });
            }
        }
    }
    Ok(BatchGetRepositoryScanningConfigurationResponse {
        scanning_configurations: Some(configurations),
        failures: Some(failures),
    })
}
