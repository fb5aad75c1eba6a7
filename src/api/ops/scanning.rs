//! PutRegistryScanningConfiguration, GetRegistryScanningConfiguration,
//! BatchGetRepositoryScanningConfiguration, StartImageScan and
//! DescribeImageScanFindings: wire shapes to the domain's `ecr::scanning`
//! and `ecr::scans` and back, including the two shapes of findings (BASIC's
//! `findings`, ENHANCED's Amazon Inspector `enhancedFindings`).

use crate::api::model::{
    Attribute, AwsEcrContainerImageDetails, CvssScore as WireCvss, CvssScoreDetails,
    DescribeImageScanFindingsRequest, DescribeImageScanFindingsResponse, EnhancedImageScanFinding,
    ImageScanFinding, ImageScanFindings, ImageScanFindingsSummary, ImageScanStatus,
    PackageVulnerabilityDetails, Recommendation, Remediation, Resource, ResourceDetails,
    ScoreDetails, StartImageScanRequest, StartImageScanResponse, VulnerablePackage,
};
use crate::api::model::{
    BatchGetRepositoryScanningConfigurationRequest,
    BatchGetRepositoryScanningConfigurationResponse, GetRegistryScanningConfigurationRequest,
    GetRegistryScanningConfigurationResponse, PutRegistryScanningConfigurationRequest,
    PutRegistryScanningConfigurationResponse, RegistryScanningConfiguration, RegistryScanningRule,
    RepositoryScanningConfiguration, RepositoryScanningConfigurationFailure,
    ScanningRepositoryFilter,
};
use crate::api::ops::images::{domain_id, timestamp, wire_id};
use crate::api::Ctx;
use crate::ecr::arn::repository_arn;
use crate::ecr::error::EcrResult;
use crate::ecr::image_queries::ImageId;
use crate::ecr::names::{RepositoryName, Scope};
use crate::ecr::records::ImageRecord;
use crate::ecr::repositories::parse_name;
use crate::ecr::scan::cvss::CvssVersion;
use crate::ecr::scanning::{
    RepositoryFilter, RepositoryScanningResult, RuleInput, ScanningConfiguration,
};
use crate::ecr::scans::{ScanRecord, StoredFinding};

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

/// imageScanStatus.
pub(crate) fn scan_status_shape(scan: &ScanRecord) -> ImageScanStatus {
    ImageScanStatus {
        status: Some(scan.status.clone()),
        description: scan.description.clone(),
    }
}

/// imageScanFindingsSummary (DescribeImages).
pub(crate) fn findings_summary_shape(scan: &ScanRecord) -> ImageScanFindingsSummary {
    ImageScanFindingsSummary {
        image_scan_completed_at: scan.completed_ms.map(timestamp),
        vulnerability_source_updated_at: scan.source_updated_ms.map(timestamp),
        finding_severity_counts: (!scan.counts.is_empty()).then(|| scan.counts.clone()),
    }
}

pub async fn start_image_scan(
    ctx: Ctx,
    input: StartImageScanRequest,
) -> EcrResult<StartImageScanResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let id = domain_id(input.image_id.unwrap_or_default());
    let (image, scan) = ctx.app.ecr.start_image_scan(&scope, &repo, &id)?;
    Ok(StartImageScanResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        image_id: Some(wire_id(ImageId::of(&image.digest, id.tag.as_deref()))),
        image_scan_status: Some(scan_status_shape(&scan)),
    })
}

pub async fn describe_image_scan_findings(
    ctx: Ctx,
    input: DescribeImageScanFindingsRequest,
) -> EcrResult<DescribeImageScanFindingsResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let repo = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let id = domain_id(input.image_id.unwrap_or_default());
    let page = ctx.app.ecr.describe_image_scan_findings(
        &scope,
        &repo,
        &id,
        input.next_token.as_deref(),
        input.max_results.map(|n| n.max(1) as usize),
    )?;
    let scan = &page.scan;
    let enhanced = scan.scan_type == crate::ecr::scanning::ScanType::Enhanced;
    let findings = if !scan.is_finished() {
        ImageScanFindings {
            findings: Some(Vec::new()),
            ..Default::default()
        }
    } else {
        let layers = layer_digests(&page.image);
        let mut shapes = ImageScanFindings {
            image_scan_completed_at: scan.completed_ms.map(timestamp),
            vulnerability_source_updated_at: scan.source_updated_ms.map(timestamp),
            finding_severity_counts: Some(scan.counts.clone()),
            ..Default::default()
        };
        if enhanced {
            shapes.enhanced_findings = Some(
                page.findings
                    .iter()
                    .map(|f| enhanced_shape(&scope, &repo, &page.image, &layers, f))
                    .collect(),
            );
        } else {
            shapes.findings = Some(page.findings.iter().map(basic_shape).collect());
        }
        shapes
    };
    Ok(DescribeImageScanFindingsResponse {
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(repo.to_string()),
        image_id: Some(wire_id(ImageId::of(&page.image.digest, id.tag.as_deref()))),
        image_scan_status: Some(scan_status_shape(scan)),
        image_scan_findings: Some(findings),
        next_token: page.next_token,
    })
}

/// The image's layer digests in manifest order (a finding names the layer
/// its package came from).
fn layer_digests(image: &ImageRecord) -> Vec<String> {
    crate::ecr::manifest::parse(image.manifest.as_bytes(), Some(&image.media_type))
        .map(|parsed| parsed.layers.iter().map(|l| l.digest.to_string()).collect())
        .unwrap_or_default()
}

fn attribute(key: &str, value: impl Into<String>) -> Attribute {
    Attribute {
        key: Some(key.to_string()),
        value: Some(value.into()),
    }
}

/// A BASIC finding: name, description, uri, severity and attributes.
fn basic_shape(stored: &StoredFinding) -> ImageScanFinding {
    let m = &stored.finding;
    let mut attributes = vec![
        attribute("package_version", m.package.version.clone()),
        attribute("package_name", m.package.name.clone()),
    ];
    for score in &m.cvss {
        let prefix = match score.version {
            CvssVersion::V2 => "CVSS2",
            CvssVersion::V3_0 | CvssVersion::V3_1 => "CVSS3",
            CvssVersion::V4_0 => "CVSS4",
        };
        attributes.push(attribute(&format!("{prefix}_VECTOR"), score.vector.clone()));
        attributes.push(attribute(
            &format!("{prefix}_SCORE"),
            format!("{}", score.base_score),
        ));
    }
    ImageScanFinding {
        name: Some(m.name.clone()),
        description: m.details.clone().or_else(|| m.summary.clone()),
        uri: Some(m.uri.clone()),
        severity: Some(m.severity.as_str().to_string()),
        attributes: Some(attributes),
    }
}

/// An ENHANCED finding, in Amazon Inspector's shape.
fn enhanced_shape(
    scope: &Scope,
    repo: &RepositoryName,
    image: &ImageRecord,
    layers: &[String],
    stored: &StoredFinding,
) -> EnhancedImageScanFinding {
    use sha2::Digest as _;
    let m = &stored.finding;
    let (epoch, version, release) =
        crate::ecr::scans::split_os_version(m.package.kind, &m.package.version);
    let preferred = crate::ecr::scans::preferred_cvss(&m.cvss);
    let finding_id = hex::encode(
        &sha2::Sha256::digest(format!(
            "{}|{}|{}|{}|{}",
            image.digest, m.name, m.package.name, m.package.version, m.package.path
        ))[..16],
    );
    let remediation_text = match &m.fixed_version {
        Some(fixed) => format!("Upgrade {} to version {fixed} or later.", m.package.name),
        None => "None Provided".to_string(),
    };
    let title = if m.package.name.is_empty() {
        m.name.clone()
    } else {
        format!("{} - {}", m.name, m.package.name)
    };
    EnhancedImageScanFinding {
        aws_account_id: Some(scope.account.to_string()),
        description: m.details.clone().or_else(|| m.summary.clone()),
        finding_arn: Some(format!(
            "arn:aws:inspector2:{}:{}:finding/{finding_id}",
            scope.region, scope.account
        )),
        first_observed_at: Some(timestamp(stored.first_observed_ms)),
        last_observed_at: Some(timestamp(stored.updated_ms)),
        package_vulnerability_details: Some(PackageVulnerabilityDetails {
            cvss: Some(
                m.cvss
                    .iter()
                    .map(|c| WireCvss {
                        base_score: Some(c.base_score),
                        scoring_vector: Some(c.vector.clone()),
                        source: Some(m.source.clone()),
                        version: Some(c.version.as_str().to_string()),
                    })
                    .collect(),
            ),
            reference_urls: Some(m.references.clone()),
            related_vulnerabilities: Some(m.related.clone()),
            source: Some(m.source.clone()),
            source_url: Some(m.uri.clone()),
            vendor_created_at: m.published.map(|s| timestamp(s * 1000)),
            vendor_severity: m.vendor_severity.clone(),
            vendor_updated_at: m.modified.map(|s| timestamp(s * 1000)),
            vulnerability_id: Some(m.name.clone()),
            vulnerable_packages: Some(vec![VulnerablePackage {
                arch: m.package.arch.clone(),
                epoch,
                file_path: (!m.package.path.is_empty()).then(|| m.package.path.clone()),
                name: Some(m.package.name.clone()),
                package_manager: Some(m.package.kind.package_manager().to_string()),
                release,
                source_layer_hash: layers.get(m.package.layer).cloned(),
                version: Some(version),
                fixed_in_version: Some(
                    m.fixed_version
                        .clone()
                        .unwrap_or_else(|| "NotAvailable".to_string()),
                ),
            }]),
        }),
        remediation: Some(Remediation {
            recommendation: Some(Recommendation {
                url: None,
                text: Some(remediation_text),
            }),
        }),
        resources: Some(vec![Resource {
            details: Some(ResourceDetails {
                aws_ecr_container_image: Some(AwsEcrContainerImageDetails {
                    image_hash: Some(image.digest.to_string()),
                    image_tags: Some(image.tags.clone()),
                    pushed_at: Some(timestamp(image.pushed_at_ms)),
                    registry: Some(scope.account.to_string()),
                    repository_name: Some(repo.to_string()),
                    ..Default::default()
                }),
            }),
            id: Some(format!(
                "arn:aws:ecr:{}:{}:repository/{}/{}",
                scope.region, scope.account, repo, image.digest
            )),
            tags: None,
            r#type: Some("AWS_ECR_CONTAINER_IMAGE".to_string()),
        }]),
        score: preferred.map(|c| c.base_score),
        score_details: preferred.map(|c| ScoreDetails {
            cvss: Some(CvssScoreDetails {
                adjustments: Some(Vec::new()),
                score: Some(c.base_score),
                score_source: Some(m.source.clone()),
                scoring_vector: Some(c.vector.clone()),
                version: Some(c.version.as_str().to_string()),
            }),
        }),
        severity: Some(m.severity.as_str().to_string()),
        status: Some("ACTIVE".to_string()),
        title: Some(title),
        r#type: Some("PACKAGE_VULNERABILITY".to_string()),
        updated_at: Some(timestamp(stored.updated_ms)),
        fix_available: Some(
            if m.fixed_version.is_some() {
                "YES"
            } else {
                "NO"
            }
            .to_string(),
        ),
        exploit_available: None,
    }
}
