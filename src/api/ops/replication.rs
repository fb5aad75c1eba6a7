//! PutReplicationConfiguration, DescribeImageReplicationStatus.

use crate::api::model::{
    DescribeImageReplicationStatusRequest, DescribeImageReplicationStatusResponse, ImageIdentifier,
    ImageReplicationStatus, PutReplicationConfigurationRequest,
    PutReplicationConfigurationResponse, ReplicationConfiguration, ReplicationDestination,
    ReplicationRule, RepositoryFilter,
};
use crate::api::Ctx;
use crate::ecr::error::{EcrError, EcrResult};
use crate::ecr::images::Reference;
use crate::ecr::records::{
    ReplicationDestinationRecord, ReplicationRuleRecord, RepositoryFilterRecord,
};
use crate::ecr::repositories::parse_name;

fn rule_records(rules: Vec<ReplicationRule>) -> Vec<ReplicationRuleRecord> {
    rules
        .into_iter()
        .map(|r| ReplicationRuleRecord {
            destinations: r
                .destinations
                .unwrap_or_default()
                .into_iter()
                .map(|d| ReplicationDestinationRecord {
                    region: d.region.unwrap_or_default(),
                    registry_id: d.registry_id.unwrap_or_default(),
                })
                .collect(),
            repository_filters: r.repository_filters.map(|fs| {
                fs.into_iter()
                    .map(|f| RepositoryFilterRecord {
                        filter: f.filter.unwrap_or_default(),
                        filter_type: f.filter_type.unwrap_or_default(),
                    })
                    .collect()
            }),
        })
        .collect()
}

fn rule_shapes(rules: Vec<ReplicationRuleRecord>) -> Vec<ReplicationRule> {
    rules
        .into_iter()
        .map(|r| ReplicationRule {
            destinations: Some(
                r.destinations
                    .into_iter()
                    .map(|d| ReplicationDestination {
                        region: Some(d.region),
                        registry_id: Some(d.registry_id),
                    })
                    .collect(),
            ),
            repository_filters: r.repository_filters.map(|fs| {
                fs.into_iter()
                    .map(|f| RepositoryFilter {
                        filter: Some(f.filter),
                        filter_type: Some(f.filter_type),
                    })
                    .collect()
            }),
        })
        .collect()
}

pub async fn put_replication_configuration(
    ctx: Ctx,
    input: PutReplicationConfigurationRequest,
) -> EcrResult<PutReplicationConfigurationResponse> {
    let scope = ctx.registry(None)?;
    let rules = input
        .replication_configuration
        .and_then(|c| c.rules)
        .unwrap_or_default();
    let stored = ctx
        .app
        .ecr
        .put_replication_configuration(&scope, rule_records(rules))?;
    Ok(PutReplicationConfigurationResponse {
        replication_configuration: Some(ReplicationConfiguration {
            rules: Some(rule_shapes(stored)),
        }),
    })
}

pub async fn describe_image_replication_status(
    ctx: Ctx,
    input: DescribeImageReplicationStatusRequest,
) -> EcrResult<DescribeImageReplicationStatusResponse> {
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
        .image_replication_status(&scope, &repo, &reference)?;
    Ok(DescribeImageReplicationStatusResponse {
        repository_name: Some(repo.to_string()),
        image_id: Some(ImageIdentifier {
            image_digest: Some(image.digest.to_string()),
            image_tag: id.image_tag,
        }),
        replication_statuses: Some(
            statuses
                .into_iter()
                .map(|s| ImageReplicationStatus {
                    region: Some(s.destination.region.to_string()),
                    registry_id: Some(s.destination.account.to_string()),
                    status: Some(s.status),
                    failure_code: s.failure_code,
                })
                .collect(),
        ),
    })
}
