//! CreateRepository, DescribeRepositories, DeleteRepository,
//! PutImageTagMutability, PutImageScanningConfiguration, TagResource,
//! UntagResource, ListTagsForResource.

use crate::api::model::{
    CreateRepositoryRequest, CreateRepositoryResponse, DeleteRepositoryRequest,
    DeleteRepositoryResponse, DescribeRepositoriesRequest, DescribeRepositoriesResponse,
    EncryptionConfiguration, ImageScanningConfiguration, ImageTagMutabilityExclusionFilter,
    ListTagsForResourceRequest, ListTagsForResourceResponse, PutImageScanningConfigurationRequest,
    PutImageScanningConfigurationResponse, PutImageTagMutabilityRequest,
    PutImageTagMutabilityResponse, Repository, Tag, TagResourceRequest, TagResourceResponse,
    Timestamp, UntagResourceRequest, UntagResourceResponse,
};
use crate::api::Ctx;
use crate::ecr::arn::{parse_public_repository_arn, parse_repository_arn, repository_arn};
use crate::ecr::error::EcrResult;
use crate::ecr::names::{RepositoryName, Scope};
use crate::ecr::records::{RepositoryRecord, ResourceTag, TagFilter};
use crate::ecr::repositories::NewRepository;

/// The wire form of a repository.
pub fn repository_shape(ctx: &Ctx, scope: &Scope, record: &RepositoryRecord) -> Repository {
    // Stored names were validated when the repository was created.
    let name = RepositoryName::parse(&record.name).ok();
    Repository {
        repository_arn: name.as_ref().map(|n| repository_arn(scope, n)),
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(record.name.clone()),
        repository_uri: name.as_ref().map(|n| ctx.app.ecr.repository_uri(scope, n)),
        created_at: Some(Timestamp(record.created_at_ms as f64 / 1000.0)),
        image_tag_mutability: Some(record.tag_mutability.clone()),
        image_tag_mutability_exclusion_filters: exclusion_shapes(&record.tag_mutability_exclusions),
        image_scanning_configuration: Some(ImageScanningConfiguration {
            scan_on_push: Some(record.scan_on_push),
        }),
        encryption_configuration: Some(EncryptionConfiguration {
            encryption_type: Some(record.encryption_type.clone()),
            kms_key: record.kms_key.clone(),
        }),
    }
}

pub(crate) fn exclusion_shapes(
    filters: &[TagFilter],
) -> Option<Vec<ImageTagMutabilityExclusionFilter>> {
    if filters.is_empty() {
        return None;
    }
    Some(
        filters
            .iter()
            .map(|f| ImageTagMutabilityExclusionFilter {
                filter_type: Some(f.filter_type.clone()),
                filter: Some(f.filter.clone()),
            })
            .collect(),
    )
}

pub(crate) fn exclusion_records(
    filters: Option<Vec<ImageTagMutabilityExclusionFilter>>,
) -> Option<Vec<TagFilter>> {
    filters.map(|fs| {
        fs.into_iter()
            .map(|f| TagFilter {
                filter_type: f.filter_type.unwrap_or_default(),
                filter: f.filter.unwrap_or_default(),
            })
            .collect()
    })
}

pub(crate) fn tag_records(tags: Option<Vec<Tag>>) -> Vec<ResourceTag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| ResourceTag {
            key: t.key.unwrap_or_default(),
            value: t.value.unwrap_or_default(),
        })
        .collect()
}

pub async fn create_repository(
    ctx: Ctx,
    input: CreateRepositoryRequest,
) -> EcrResult<CreateRepositoryResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let encryption = input.encryption_configuration.unwrap_or_default();
    let record = ctx.app.ecr.create_repository(
        &scope,
        NewRepository {
            name: input.repository_name.unwrap_or_default(),
            tag_mutability: input.image_tag_mutability,
            tag_mutability_exclusions: exclusion_records(
                input.image_tag_mutability_exclusion_filters,
            ),
            scan_on_push: input
                .image_scanning_configuration
                .and_then(|c| c.scan_on_push),
            encryption_type: encryption.encryption_type,
            kms_key: encryption.kms_key,
            tags: tag_records(input.tags),
        },
    )?;
    Ok(CreateRepositoryResponse {
        repository: Some(repository_shape(&ctx, &scope, &record)),
    })
}

pub async fn describe_repositories(
    ctx: Ctx,
    input: DescribeRepositoriesRequest,
) -> EcrResult<DescribeRepositoriesResponse> {
    let scope = ctx.target(input.registry_id.as_ref());
    let named = input.repository_names.is_some();
    for name in input.repository_names.iter().flatten() {
        ctx.app
            .ecr
            .authorize(&ctx.caller, &ctx.action, &scope, Some(name))?;
    }
    let page = ctx.app.ecr.describe_repositories(
        &scope,
        input.repository_names,
        input.next_token,
        input.max_results.map(|m| m.max(1) as usize),
    )?;
    // A listing shows the repositories the caller may describe.
    let visible = if named {
        vec![true; page.repositories.len()]
    } else {
        ctx.app
            .ecr
            .may_see(&ctx.caller, &ctx.action, &scope, &page.repositories)?
    };
    Ok(DescribeRepositoriesResponse {
        repositories: Some(
            page.repositories
                .iter()
                .zip(visible)
                .filter(|(_, visible)| *visible)
                .map(|(r, _)| repository_shape(&ctx, &scope, r))
                .collect(),
        ),
        next_token: page.next_token,
    })
}

pub async fn delete_repository(
    ctx: Ctx,
    input: DeleteRepositoryRequest,
) -> EcrResult<DeleteRepositoryResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let record = ctx.app.ecr.delete_repository(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        input.force.unwrap_or(false),
    )?;
    Ok(DeleteRepositoryResponse {
        repository: Some(repository_shape(&ctx, &scope, &record)),
    })
}

pub async fn put_image_tag_mutability(
    ctx: Ctx,
    input: PutImageTagMutabilityRequest,
) -> EcrResult<PutImageTagMutabilityResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let record = ctx.app.ecr.put_image_tag_mutability(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        input.image_tag_mutability.unwrap_or_default(),
        exclusion_records(input.image_tag_mutability_exclusion_filters),
    )?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(record.name.clone()),
        image_tag_mutability: Some(record.tag_mutability.clone()),
        image_tag_mutability_exclusion_filters: exclusion_shapes(&record.tag_mutability_exclusions),
    })
}

pub async fn put_image_scanning_configuration(
    ctx: Ctx,
    input: PutImageScanningConfigurationRequest,
) -> EcrResult<PutImageScanningConfigurationResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let scan_on_push = input
        .image_scanning_configuration
        .and_then(|c| c.scan_on_push)
        .unwrap_or(false);
    let record = ctx.app.ecr.put_image_scanning_configuration(
        &scope,
        input.repository_name.as_deref().unwrap_or_default(),
        scan_on_push,
    )?;
    Ok(PutImageScanningConfigurationResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(record.name.clone()),
        image_scanning_configuration: Some(ImageScanningConfiguration {
            scan_on_push: Some(record.scan_on_push),
        }),
    })
}

/// Authorizes an operation on the repository a resource ARN names (an ARN
/// that names none is the domain's to refuse).
fn authorize_arn(ctx: &Ctx, arn: Option<&str>) -> EcrResult<()> {
    let arn = arn.unwrap_or_default();
    let parsed = if ctx.public {
        parse_public_repository_arn(arn, "resourceArn")
    } else {
        parse_repository_arn(arn, "resourceArn")
    };
    if let Ok((scope, name)) = parsed {
        ctx.app
            .ecr
            .authorize(&ctx.caller, &ctx.action, &scope, Some(name.as_str()))?;
    }
    Ok(())
}

pub async fn tag_resource(ctx: Ctx, input: TagResourceRequest) -> EcrResult<TagResourceResponse> {
    authorize_arn(&ctx, input.resource_arn.as_deref())?;
    ctx.app.ecr.tag_resource(
        &ctx.own(),
        input.resource_arn.as_deref().unwrap_or_default(),
        tag_records(input.tags),
    )?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(
    ctx: Ctx,
    input: UntagResourceRequest,
) -> EcrResult<UntagResourceResponse> {
    authorize_arn(&ctx, input.resource_arn.as_deref())?;
    ctx.app.ecr.untag_resource(
        &ctx.own(),
        input.resource_arn.as_deref().unwrap_or_default(),
        input.tag_keys.unwrap_or_default(),
    )?;
    Ok(UntagResourceResponse {})
}

pub async fn list_tags_for_resource(
    ctx: Ctx,
    input: ListTagsForResourceRequest,
) -> EcrResult<ListTagsForResourceResponse> {
    authorize_arn(&ctx, input.resource_arn.as_deref())?;
    let tags = ctx.app.ecr.list_tags_for_resource(
        &ctx.own(),
        input.resource_arn.as_deref().unwrap_or_default(),
    )?;
    Ok(ListTagsForResourceResponse {
        tags: Some(
            tags.into_iter()
                .map(|t| Tag {
                    key: Some(t.key),
                    value: Some(t.value),
                })
                .collect(),
        ),
    })
}
