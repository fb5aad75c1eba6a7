//! CreateRepositoryCreationTemplate, DescribeRepositoryCreationTemplates,
//! UpdateRepositoryCreationTemplate, DeleteRepositoryCreationTemplate.

use super::repositories::{exclusion_records, exclusion_shapes, tag_records};
use crate::api::model::{
    CreateRepositoryCreationTemplateRequest, CreateRepositoryCreationTemplateResponse,
    DeleteRepositoryCreationTemplateRequest, DeleteRepositoryCreationTemplateResponse,
    DescribeRepositoryCreationTemplatesRequest, DescribeRepositoryCreationTemplatesResponse,
    EncryptionConfigurationForRepositoryCreationTemplate, RepositoryCreationTemplate, Tag,
    Timestamp, UpdateRepositoryCreationTemplateRequest, UpdateRepositoryCreationTemplateResponse,
};
use crate::api::Ctx;
use crate::ecr::error::EcrResult;
use crate::ecr::records::TemplateRecord;
use crate::ecr::templates::TemplateSettings;

/// The wire form of a template.
fn template_shape(t: TemplateRecord) -> RepositoryCreationTemplate {
    RepositoryCreationTemplate {
        prefix: Some(t.prefix),
        description: t.description,
        encryption_configuration: Some(EncryptionConfigurationForRepositoryCreationTemplate {
            encryption_type: Some(t.encryption_type),
            kms_key: t.kms_key,
        }),
        resource_tags: Some(
            t.resource_tags
                .into_iter()
                .map(|r| Tag {
                    key: Some(r.key),
                    value: Some(r.value),
                })
                .collect(),
        ),
        image_tag_mutability: Some(t.tag_mutability),
        image_tag_mutability_exclusion_filters: exclusion_shapes(&t.tag_mutability_exclusions),
        repository_policy: t.repository_policy,
        lifecycle_policy: t.lifecycle_policy,
        applied_for: Some(t.applied_for),
        custom_role_arn: t.custom_role_arn,
        created_at: Some(Timestamp(t.created_at_ms as f64 / 1000.0)),
        updated_at: Some(Timestamp(t.updated_at_ms as f64 / 1000.0)),
    }
}

/// The fields a Create or Update request sets.
#[allow(clippy::too_many_arguments)]
fn settings(
    description: Option<String>,
    encryption: Option<EncryptionConfigurationForRepositoryCreationTemplate>,
    resource_tags: Option<Vec<Tag>>,
    tag_mutability: Option<String>,
    exclusions: Option<Vec<crate::api::model::ImageTagMutabilityExclusionFilter>>,
    repository_policy: Option<String>,
    lifecycle_policy: Option<String>,
    applied_for: Option<Vec<String>>,
    custom_role_arn: Option<String>,
) -> TemplateSettings {
    TemplateSettings {
        description,
        encryption: encryption.map(|e| (e.encryption_type.unwrap_or_default(), e.kms_key)),
        resource_tags: resource_tags.map(|t| tag_records(Some(t))),
        tag_mutability,
        tag_mutability_exclusions: exclusion_records(exclusions),
        repository_policy,
        lifecycle_policy,
        applied_for,
        custom_role_arn,
    }
}

pub async fn create_repository_creation_template(
    ctx: Ctx,
    input: CreateRepositoryCreationTemplateRequest,
) -> EcrResult<CreateRepositoryCreationTemplateResponse> {
    let scope = ctx.registry(None)?;
    let template = ctx.app.ecr.create_template(
        &scope,
        input.prefix.as_deref().unwrap_or_default(),
        settings(
            input.description,
            input.encryption_configuration,
            input.resource_tags,
            input.image_tag_mutability,
            input.image_tag_mutability_exclusion_filters,
            input.repository_policy,
            input.lifecycle_policy,
            input.applied_for,
            input.custom_role_arn,
        ),
    )?;
    Ok(CreateRepositoryCreationTemplateResponse {
        registry_id: Some(scope.account.to_string()),
        repository_creation_template: Some(template_shape(template)),
    })
}

pub async fn update_repository_creation_template(
    ctx: Ctx,
    input: UpdateRepositoryCreationTemplateRequest,
) -> EcrResult<UpdateRepositoryCreationTemplateResponse> {
    let scope = ctx.registry(None)?;
    let template = ctx.app.ecr.update_template(
        &scope,
        input.prefix.as_deref().unwrap_or_default(),
        settings(
            input.description,
            input.encryption_configuration,
            input.resource_tags,
            input.image_tag_mutability,
            input.image_tag_mutability_exclusion_filters,
            input.repository_policy,
            input.lifecycle_policy,
            input.applied_for,
            input.custom_role_arn,
        ),
    )?;
    Ok(UpdateRepositoryCreationTemplateResponse {
        registry_id: Some(scope.account.to_string()),
        repository_creation_template: Some(template_shape(template)),
    })
}

pub async fn delete_repository_creation_template(
    ctx: Ctx,
    input: DeleteRepositoryCreationTemplateRequest,
) -> EcrResult<DeleteRepositoryCreationTemplateResponse> {
    let scope = ctx.registry(None)?;
    let template = ctx
        .app
        .ecr
        .delete_template(&scope, input.prefix.as_deref().unwrap_or_default())?;
    Ok(DeleteRepositoryCreationTemplateResponse {
        registry_id: Some(scope.account.to_string()),
        repository_creation_template: Some(template_shape(template)),
    })
}

pub async fn describe_repository_creation_templates(
    ctx: Ctx,
    input: DescribeRepositoryCreationTemplatesRequest,
) -> EcrResult<DescribeRepositoryCreationTemplatesResponse> {
    let scope = ctx.registry(None)?;
    let page = ctx.app.ecr.describe_templates(
        &scope,
        input.prefixes,
        input.next_token,
        input.max_results.map(|m| m.max(1) as usize),
    )?;
    Ok(DescribeRepositoryCreationTemplatesResponse {
        registry_id: Some(scope.account.to_string()),
        repository_creation_templates: Some(
            page.templates.into_iter().map(template_shape).collect(),
        ),
        next_token: page.next_token,
    })
}
