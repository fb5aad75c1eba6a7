//! PutSigningConfiguration, GetSigningConfiguration,
//! DeleteSigningConfiguration, DescribeImageSigningStatus (the signing
//! itself lives in `ecr::signing`).

use crate::api::model::{
    DeleteSigningConfigurationRequest, DeleteSigningConfigurationResponse,
    DescribeImageSigningStatusRequest, DescribeImageSigningStatusResponse,
    GetSigningConfigurationRequest, GetSigningConfigurationResponse, ImageIdentifier,
    ImageSigningStatus, PutSigningConfigurationRequest, PutSigningConfigurationResponse,
    SigningConfiguration as WireConfiguration, SigningRepositoryFilter, SigningRule as WireRule,
};
use crate::api::Ctx;
use crate::ecr::error::{EcrError, EcrResult};
use crate::ecr::images::Reference;
use crate::ecr::repositories::parse_name;
use crate::ecr::signing::{SigningConfiguration, SigningFilter, SigningRule};

fn domain_configuration(wire: WireConfiguration) -> SigningConfiguration {
    SigningConfiguration {
        rules: wire
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| SigningRule {
                signing_profile_arn: r.signing_profile_arn.unwrap_or_default(),
                repository_filters: r.repository_filters.map(|filters| {
                    filters
                        .into_iter()
                        .map(|f| SigningFilter {
                            filter: f.filter.unwrap_or_default(),
                            filter_type: f.filter_type.unwrap_or_default(),
                        })
                        .collect()
                }),
            })
            .collect(),
    }
}

/// The wire form: filters only where the user gave them.
fn wire_configuration(configuration: SigningConfiguration) -> WireConfiguration {
    WireConfiguration {
        rules: Some(
            configuration
                .rules
                .into_iter()
                .map(|r| WireRule {
                    signing_profile_arn: Some(r.signing_profile_arn),
                    repository_filters: r.repository_filters.map(|filters| {
                        filters
                            .into_iter()
                            .map(|f| SigningRepositoryFilter {
                                filter: Some(f.filter),
                                filter_type: Some(f.filter_type),
                            })
                            .collect()
                    }),
                })
                .collect(),
        ),
    }
}

pub async fn put_signing_configuration(
    ctx: Ctx,
    input: PutSigningConfigurationRequest,
) -> EcrResult<PutSigningConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let configuration = domain_configuration(input.signing_configuration.unwrap_or_default());
    let stored = ctx
        .app
        .ecr
        .put_signing_configuration(&scope, configuration)?;
    Ok(PutSigningConfigurationResponse {
        signing_configuration: Some(wire_configuration(stored)),
    })
}

pub async fn get_signing_configuration(
    ctx: Ctx,
    _input: GetSigningConfigurationRequest,
) -> EcrResult<GetSigningConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let configuration = ctx.app.ecr.signing_configuration(&scope)?;
    Ok(GetSigningConfigurationResponse {
        registry_id: Some(scope.account.to_string()),
        signing_configuration: Some(wire_configuration(configuration)),
    })
}

pub async fn delete_signing_configuration(
    ctx: Ctx,
    _input: DeleteSigningConfigurationRequest,
) -> EcrResult<DeleteSigningConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let configuration = ctx.app.ecr.delete_signing_configuration(&scope)?;
    Ok(DeleteSigningConfigurationResponse {
        registry_id: Some(scope.account.to_string()),
        signing_configuration: Some(wire_configuration(configuration)),
    })
}

pub async fn describe_image_signing_status(
    ctx: Ctx,
    input: DescribeImageSigningStatusRequest,
) -> EcrResult<DescribeImageSigningStatusResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let id = input.image_id.unwrap_or_default();
    let reference = match (&id.image_digest, &id.image_tag) {
        (Some(d), _) => Reference::parse(d)?,
        (None, Some(t)) => Reference::parse(t)?,
        (None, None) => {
            return Err(EcrError::invalid_parameter(
                "imageId",
                "must specify an imageDigest or an imageTag",
            ))
        }
    };
    let (image, statuses) = ctx
        .app
        .ecr
        .image_signing_status(&scope, &repo, &reference)?;
    Ok(DescribeImageSigningStatusResponse {
        repository_name: Some(repo.to_string()),
        image_id: Some(ImageIdentifier {
            image_digest: Some(image.digest.to_string()),
            image_tag: id.image_tag,
        }),
        registry_id: Some(scope.account.to_string()),
        signing_statuses: Some(
            statuses
                .into_iter()
                .map(|s| ImageSigningStatus {
                    signing_profile_arn: Some(s.signing_profile_arn),
                    failure_code: s.failure_code,
                    failure_reason: s.failure_reason,
                    status: Some(s.status),
                })
                .collect(),
        ),
    })
}
