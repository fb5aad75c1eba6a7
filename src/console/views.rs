//! The console's views: for each URL, the domain reads it makes and the
//! page it fills in. Pages are `askama` templates under
//! `templates/console/`; every string they print is escaped by the template
//! except the SVG pictures, which `svg` escapes itself.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::format::{self, link};
use super::svg::{self, Bar};
use super::{blocking, html, query, repository_of, scope_of, Page, ViewError, Q};
use crate::ecr::image_queries::{ImageFilter, ImageId, TagStatus};
use crate::ecr::images::Reference;
use crate::ecr::names::Scope;
use crate::ecr::scans::preferred_cvss;
use crate::ecr::Ecr;
use crate::state::AppState;

/// Images per page of a repository, as DescribeImages' largest page.
const IMAGES_PER_PAGE: usize = 100;
/// Repositories per page of a registry.
const REPOSITORIES_PER_PAGE: usize = 100;
/// Bars drawn in a storage picture.
const MOST_BARS: usize = 15;
/// The largest config blob shown inline.
const MOST_CONFIG_BYTES: u64 = 1 << 20;
/// Findings read per page while collecting an image's findings.
const FINDINGS_PAGE: usize = 1000;

const SEVERITIES: [&str; 6] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNDEFINED",
];

// ------------------------------------------------------------- templates

#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

pub struct RegistryRow {
    account: String,
    region: String,
    repositories: usize,
    stored: String,
    link: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    backend: &'static str,
    now: String,
    total_repositories: usize,
    rows: Vec<RegistryRow>,
    chart: String,
}

struct RepositoryRow {
    name: String,
    link: String,
    mutability: String,
    scan_on_push: bool,
    encryption: String,
    has_policy: bool,
    images: usize,
    stored: String,
}

#[derive(Template)]
#[template(path = "console/registry.html")]
struct RegistryPage {
    account: String,
    region: String,
    prefix: String,
    rows: Vec<RepositoryRow>,
    next_link: Option<String>,
    chart: String,
}

struct Badge {
    severity: String,
    count: i32,
}

struct ImageRow {
    short: String,
    link: String,
    tags: Vec<String>,
    media_type: String,
    size: String,
    pushed: String,
    pulled: String,
    status: &'static str,
    scan_status: String,
    badges: Vec<Badge>,
}

#[derive(Template)]
#[template(path = "console/repository.html")]
struct RepositoryPage {
    account: String,
    region: String,
    name: String,
    registry_link: String,
    lifecycle_link: String,
    uri: String,
    created: String,
    mutability: String,
    mutability_exclusions: String,
    scan_on_push: bool,
    encryption: String,
    tags: String,
    has_lifecycle: bool,
    replication: String,
    policy: Option<String>,
    images: Vec<ImageRow>,
    after_given: bool,
    next_link: Option<String>,
}

struct ActionRow {
    short: String,
    link: String,
    tags: Vec<String>,
    pushed: String,
    action: String,
    rule: i64,
}

#[derive(Template)]
#[template(path = "console/lifecycle.html")]
struct LifecyclePage {
    account: String,
    region: String,
    name: String,
    registry_link: String,
    repository_link: String,
    now: String,
    policy: Option<String>,
    actions: Vec<ActionRow>,
    chart: String,
}

struct LayerRow {
    digest: String,
    media_type: String,
    size: String,
}

struct PlatformRow {
    short: String,
    link: Option<String>,
    platform: String,
    media_type: String,
    size: String,
}

struct ReferrerRow {
    short: String,
    link: String,
    artifact_type: String,
    media_type: String,
    size: String,
}

struct ReplicationRow {
    destination: String,
    status: String,
    failure: String,
}

struct ScanSummary {
    status: String,
    description: String,
    completed: String,
}

struct SeverityLink {
    severity: String,
    count: usize,
    link: String,
    current: bool,
}

struct FindingRow {
    name: String,
    uri: String,
    summary: String,
    severity: String,
    score: String,
    package: String,
    version: String,
    fixed: String,
}

struct SortLinks {
    name: String,
    severity: String,
    score: String,
    package: String,
}

#[derive(Template)]
#[template(path = "console/image.html")]
struct ImagePage {
    account: String,
    region: String,
    name: String,
    registry_link: String,
    repository_link: String,
    digest: String,
    short: String,
    tags: Vec<String>,
    media_type: String,
    artifact_type: Option<String>,
    size: String,
    pushed: String,
    pulled: String,
    status: &'static str,
    subject_link: Option<String>,
    pull_ref: String,
    platforms: Vec<PlatformRow>,
    layers: Vec<LayerRow>,
    layers_total: String,
    referrers: Vec<ReferrerRow>,
    replication: Vec<ReplicationRow>,
    scan: Option<ScanSummary>,
    severity_chart: String,
    severity: String,
    severity_links: Vec<SeverityLink>,
    all_link: String,
    findings_total: usize,
    findings: Vec<FindingRow>,
    sort: &'static str,
    sort_links: SortLinks,
    manifest: String,
    config: Option<String>,
}

struct UploadRow {
    id: String,
    account: String,
    region: String,
    repository: String,
    link: String,
    started: String,
    bytes: String,
}

#[derive(Template)]
#[template(path = "console/uploads.html")]
struct UploadsPage {
    rows: Vec<UploadRow>,
}

struct TaskRow {
    name: String,
    runs: u64,
    failures: u64,
    started: String,
    finished: String,
    outcome: String,
    failed: bool,
}

#[derive(Template)]
#[template(path = "console/tasks.html")]
struct TasksPage {
    rows: Vec<TaskRow>,
    scan_queue: String,
}

// ------------------------------------------------------------------ links

fn registry_link(scope: &Scope) -> String {
    link(
        "registry",
        &[
            ("account", scope.account.as_str()),
            ("region", scope.region.as_str()),
        ],
    )
}

fn repository_link(scope: &Scope, name: &str) -> String {
    link(
        "repository",
        &[
            ("account", scope.account.as_str()),
            ("region", scope.region.as_str()),
            ("name", name),
        ],
    )
}

fn lifecycle_link(scope: &Scope, name: &str) -> String {
    link(
        "lifecycle",
        &[
            ("account", scope.account.as_str()),
            ("region", scope.region.as_str()),
            ("name", name),
        ],
    )
}

fn image_link(scope: &Scope, name: &str, digest: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("account", scope.account.as_str()),
        ("region", scope.region.as_str()),
        ("name", name),
        ("digest", digest),
    ];
    pairs.extend_from_slice(extra);
    link("image", &pairs)
}

// ------------------------------------------------------------------ views

/// `/`: every registry with its repository count and stored bytes.
pub async fn overview(State(app): State<Arc<AppState>>) -> Page {
    let summaries = blocking(&app, |ecr| Ok(ecr.registry_summaries()?)).await?;
    let total_repositories = summaries.iter().map(|s| s.repositories).sum();
    let mut bars: Vec<Bar> = summaries
        .iter()
        .map(|s| Bar {
            label: format!("{} {}", s.scope.account, s.scope.region),
            value: s.stored_bytes,
            shown: format::bytes(s.stored_bytes),
            href: Some(registry_link(&s.scope)),
            fill: "#0b5cad",
        })
        .collect();
    bars.sort_by_key(|b| std::cmp::Reverse(b.value));
    bars.truncate(MOST_BARS);
    let rows = summaries
        .iter()
        .map(|s| RegistryRow {
            account: s.scope.account.as_str().to_string(),
            region: s.scope.region.as_str().to_string(),
            repositories: s.repositories,
            stored: format::bytes(s.stored_bytes),
            link: registry_link(&s.scope),
        })
        .collect();
    Ok(html(&OverviewPage {
        backend: app.ecr.store.backend(),
        now: format::time_ms(app.ecr.clock.now_ms()),
        total_repositories,
        rows,
        chart: svg::bars("Stored bytes by registry", &bars),
    }))
}

#[derive(Deserialize)]
pub struct RegistryQuery {
    account: String,
    region: String,
    #[serde(default)]
    prefix: String,
    after: Option<String>,
}

/// `registry`: a page of a registry's repositories, by name prefix.
pub async fn registry(State(app): State<Arc<AppState>>, q: Q<RegistryQuery>) -> Page {
    let q = query(q)?;
    let scope = scope_of(&q.account, &q.region)?;
    let prefix = q.prefix.trim().to_string();
    let (read_scope, read_prefix, after) = (scope.clone(), prefix.clone(), q.after.clone());
    let page = blocking(&app, move |ecr| {
        Ok(ecr.repository_summaries(
            &read_scope,
            &read_prefix,
            after.as_deref(),
            REPOSITORIES_PER_PAGE,
        )?)
    })
    .await?;
    let mut bars: Vec<Bar> = page
        .repositories
        .iter()
        .map(|r| Bar {
            label: r.record.name.clone(),
            value: r.stored_bytes,
            shown: format::bytes(r.stored_bytes),
            href: Some(repository_link(&scope, &r.record.name)),
            fill: "#0b5cad",
        })
        .collect();
    bars.sort_by_key(|b| std::cmp::Reverse(b.value));
    bars.truncate(MOST_BARS);
    let rows = page
        .repositories
        .iter()
        .map(|r| RepositoryRow {
            name: r.record.name.clone(),
            link: repository_link(&scope, &r.record.name),
            mutability: r.record.tag_mutability.clone(),
            scan_on_push: r.record.scan_on_push,
            encryption: r.record.encryption_type.clone(),
            has_policy: r.has_policy,
            images: r.images,
            stored: format::bytes(r.stored_bytes),
        })
        .collect();
    let next_link = page.next_after.as_deref().map(|after| {
        link(
            "registry",
            &[
                ("account", scope.account.as_str()),
                ("region", scope.region.as_str()),
                ("prefix", &prefix),
                ("after", after),
            ],
        )
    });
    Ok(html(&RegistryPage {
        account: q.account,
        region: q.region,
        prefix,
        rows,
        next_link,
        chart: svg::bars("Stored bytes by repository", &bars),
    }))
}

#[derive(Deserialize)]
pub struct RepositoryQuery {
    account: String,
    region: String,
    name: String,
    after: Option<String>,
}

/// `repository`: settings, policy and a page of images, from the same
/// DescribeImages query the API answers.
pub async fn repository(State(app): State<Arc<AppState>>, q: Q<RepositoryQuery>) -> Page {
    let q = query(q)?;
    let scope = scope_of(&q.account, &q.region)?;
    let name = repository_of(&q.name)?;
    let (s, n, after) = (scope.clone(), name.clone(), q.after.clone());
    let (record, page, policy, destinations) = blocking(&app, move |ecr| {
        let record = ecr.repository(&s, &n)?;
        let filter = ImageFilter {
            tag_status: TagStatus::Any,
            image_status: Some("ANY".to_string()),
        };
        let page = ecr.describe_images(
            &s,
            &n,
            None,
            &filter,
            after.as_deref(),
            Some(IMAGES_PER_PAGE),
        )?;
        let policy = match ecr.get_repository_policy(&s, n.as_str()) {
            Ok(p) => Some(p.policy_text),
            Err(e) if e.kind == crate::ecr::error::ErrorKind::RepositoryPolicyNotFound => None,
            Err(e) => return Err(e.into()),
        };
        let destinations = ecr.replication_destinations(&s, &n)?;
        Ok((record, page, policy, destinations))
    })
    .await?;
    let images = page
        .items
        .iter()
        .map(|d| {
            let digest = d.image.digest.to_string();
            ImageRow {
                short: format::short_digest(&digest),
                link: image_link(&scope, name.as_str(), &digest, &[]),
                tags: d.image.tags.clone(),
                media_type: d.image.media_type.clone(),
                size: format::bytes(u64::try_from(d.size_in_bytes).unwrap_or(0)),
                pushed: format::time_ms(d.image.pushed_at_ms),
                pulled: format::maybe_time_ms(d.image.last_pulled_ms),
                status: d.status,
                scan_status: d
                    .scan
                    .as_ref()
                    .map(|s| s.status.clone())
                    .unwrap_or_default(),
                badges: d
                    .scan
                    .as_ref()
                    .map(|s| {
                        SEVERITIES
                            .iter()
                            .filter_map(|sev| {
                                s.counts.get(*sev).map(|c| Badge {
                                    severity: (*sev).to_string(),
                                    count: *c,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let next_link = page.next_token.as_deref().map(|token| {
        link(
            "repository",
            &[
                ("account", scope.account.as_str()),
                ("region", scope.region.as_str()),
                ("name", name.as_str()),
                ("after", token),
            ],
        )
    });
    let exclusions: Vec<String> = record
        .tag_mutability_exclusions
        .iter()
        .map(|f| f.filter.clone())
        .collect();
    let tags: Vec<String> = record
        .tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect();
    let replication: Vec<String> = destinations
        .iter()
        .map(|d| format!("{} {}", d.account, d.region))
        .collect();
    let encryption = match &record.kms_key {
        Some(key) => format!("{} ({key})", record.encryption_type),
        None => record.encryption_type.clone(),
    };
    Ok(html(&RepositoryPage {
        registry_link: registry_link(&scope),
        lifecycle_link: lifecycle_link(&scope, name.as_str()),
        uri: app.ecr.repository_uri(&scope, &name),
        created: format::time_ms(record.created_at_ms),
        mutability: record.tag_mutability.clone(),
        mutability_exclusions: exclusions.join(", "),
        scan_on_push: record.scan_on_push,
        encryption,
        tags: tags.join(", "),
        has_lifecycle: record.lifecycle_policy.is_some(),
        replication: replication.join(", "),
        policy: policy.as_deref().map(format::pretty_json),
        images,
        after_given: q.after.is_some(),
        next_link,
        account: q.account,
        region: q.region,
        name: q.name,
    }))
}

/// `lifecycle`: the policy, what a run would do now, and image sizes over
/// push time.
pub async fn lifecycle(State(app): State<Arc<AppState>>, q: Q<RepositoryQuery>) -> Page {
    let q = query(q)?;
    let scope = scope_of(&q.account, &q.region)?;
    let name = repository_of(&q.name)?;
    let (s, n) = (scope.clone(), name.clone());
    let (outlook, images) = blocking(&app, move |ecr| {
        let outlook = ecr.lifecycle_outlook(&s, &n)?;
        let images = ecr.all_images(&s, &n)?;
        Ok((outlook, images))
    })
    .await?;
    let points: Vec<(i64, u64)> = images
        .iter()
        .map(|i| (i.pushed_at_ms, u64::try_from(i.size_in_bytes).unwrap_or(0)))
        .collect();
    let (policy, actions) = match outlook {
        Some(o) => {
            let actions = o
                .actions
                .iter()
                .map(|a| {
                    let digest = a.image_digest.to_string();
                    ActionRow {
                        short: format::short_digest(&digest),
                        link: image_link(&scope, name.as_str(), &digest, &[]),
                        tags: a.image_tags.clone(),
                        pushed: format::time_ms(a.image_pushed_at_ms),
                        action: match &a.target_storage_class {
                            Some(class) => format!("{} to {class}", a.action),
                            None => a.action.clone(),
                        },
                        rule: a.rule_priority,
                    }
                })
                .collect();
            (Some(format::pretty_json(&o.policy_text)), actions)
        }
        None => (None, Vec::new()),
    };
    Ok(html(&LifecyclePage {
        registry_link: registry_link(&scope),
        repository_link: repository_link(&scope, name.as_str()),
        now: format::time_ms(app.ecr.clock.now_ms()),
        policy,
        actions,
        chart: svg::sizes_over_time("Image sizes over push time", &points),
        account: q.account,
        region: q.region,
        name: q.name,
    }))
}

#[derive(Deserialize)]
pub struct ImageQuery {
    account: String,
    region: String,
    name: String,
    digest: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    sort: String,
}

/// A text field of a JSON value, or empty.
fn text(value: &serde_json::Value, field: &str) -> String {
    value
        .get(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn size_of(value: &serde_json::Value) -> String {
    format::bytes(value.get("size").and_then(|v| v.as_u64()).unwrap_or(0))
}

/// `image`: everything about one image.
pub async fn image(State(app): State<Arc<AppState>>, q: Q<ImageQuery>) -> Page {
    let q = query(q)?;
    let scope = scope_of(&q.account, &q.region)?;
    let name = repository_of(&q.name)?;
    let reference = Reference::parse(&q.digest)?;
    let Reference::Digest(digest) = reference.clone() else {
        return Err(ViewError::bad_request(format!(
            "'{}' is not an image digest",
            q.digest
        )));
    };
    let (s, n, d) = (scope.clone(), name.clone(), digest.clone());
    let read = blocking(&app, move |ecr| image_facts(ecr, &s, &n, &d)).await?;
    let ImageFacts {
        described,
        manifest,
        referrers,
        children_stored,
        replication,
        findings,
    } = read;
    let image = &described.image;
    let manifest_json: serde_json::Value =
        serde_json::from_str(&image.manifest).unwrap_or(serde_json::Value::Null);

    let mut config = None;
    if let Some(descriptor) = manifest_json.get("config") {
        let size = descriptor.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
        if let Ok(config_digest) = text(descriptor, "digest").parse::<crate::digest::Digest>() {
            if size <= MOST_CONFIG_BYTES {
                if let Ok(Some(bytes)) =
                    crate::store::blobs::read_all(&*app.ecr.blobs, &config_digest).await
                {
                    config = Some(format::pretty_json(&String::from_utf8_lossy(&bytes)));
                }
            }
        }
    }

    let layers_json = manifest_json
        .get("layers")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let layers_total: u64 = layers_json
        .iter()
        .filter_map(|l| l.get("size").and_then(|v| v.as_u64()))
        .sum();
    let layers = layers_json
        .iter()
        .map(|l| LayerRow {
            digest: text(l, "digest"),
            media_type: text(l, "mediaType"),
            size: size_of(l),
        })
        .collect();
    let platforms = manifest_json
        .get("manifests")
        .and_then(|v| v.as_array())
        .map(|children| {
            children
                .iter()
                .map(|c| {
                    let child = text(c, "digest");
                    let platform = c.get("platform").map_or_else(
                        || "unknown".to_string(),
                        |p| {
                            let mut parts = vec![text(p, "os"), text(p, "architecture")];
                            let variant = text(p, "variant");
                            if !variant.is_empty() {
                                parts.push(variant);
                            }
                            parts.join("/")
                        },
                    );
                    PlatformRow {
                        short: format::short_digest(&child),
                        link: children_stored
                            .contains(&child)
                            .then(|| image_link(&scope, name.as_str(), &child, &[])),
                        platform,
                        media_type: text(c, "mediaType"),
                        size: size_of(c),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let referrers = referrers
        .iter()
        .map(|r| {
            let d = r.digest.to_string();
            ReferrerRow {
                short: format::short_digest(&d),
                link: image_link(&scope, name.as_str(), &d, &[]),
                artifact_type: r.artifact_type.clone().unwrap_or_default(),
                media_type: r.media_type.clone(),
                size: format::bytes(u64::try_from(r.size).unwrap_or(0)),
            }
        })
        .collect();
    let replication = replication
        .iter()
        .map(|r| ReplicationRow {
            destination: format!("{} {}", r.destination.account, r.destination.region),
            status: r.status.clone(),
            failure: r.failure_code.clone().unwrap_or_default(),
        })
        .collect();

    // Findings: counts per severity, then the chosen severity and order.
    let digest_text = digest.to_string();
    let severity = q.severity.trim().to_ascii_uppercase();
    let sort: &'static str = match q.sort.as_str() {
        "name" => "name",
        "score" => "score",
        "package" => "package",
        _ => "severity",
    };
    let filter_link = |sev: &str| {
        image_link(
            &scope,
            name.as_str(),
            &digest_text,
            &[
                ("severity", sev),
                ("sort", if sort == "severity" { "" } else { sort }),
            ],
        )
    };
    let sort_link = |by: &str| {
        image_link(
            &scope,
            name.as_str(),
            &digest_text,
            &[("severity", &severity), ("sort", by)],
        )
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    for sev in SEVERITIES {
        let n = findings
            .iter()
            .filter(|f| f.finding.severity.as_str() == sev)
            .count();
        if n > 0 {
            counts.push((sev.to_string(), n));
        }
    }
    let severity_links = counts
        .iter()
        .map(|(sev, count)| SeverityLink {
            severity: sev.clone(),
            count: *count,
            link: filter_link(sev),
            current: *sev == severity,
        })
        .collect();
    let bars: Vec<Bar> = counts
        .iter()
        .map(|(sev, count)| Bar {
            label: sev.clone(),
            value: *count as u64,
            shown: count.to_string(),
            href: Some(filter_link(sev)),
            fill: svg::severity_fill(sev),
        })
        .collect();
    let mut shown: Vec<&crate::ecr::scans::StoredFinding> = findings
        .iter()
        .filter(|f| severity.is_empty() || f.finding.severity.as_str() == severity)
        .collect();
    let score = |f: &crate::ecr::scans::StoredFinding| {
        preferred_cvss(&f.finding.cvss).map_or(-1.0, |c| c.base_score)
    };
    match sort {
        "name" => shown.sort_by(|a, b| a.finding.name.cmp(&b.finding.name)),
        "package" => shown.sort_by(|a, b| {
            (&a.finding.package.name, &a.finding.name)
                .cmp(&(&b.finding.package.name, &b.finding.name))
        }),
        "score" => shown.sort_by(|a, b| score(b).total_cmp(&score(a))),
        // The scanner's own order: severity, then name.
        _ => {}
    }
    let finding_rows = shown
        .iter()
        .map(|f| FindingRow {
            name: f.finding.name.clone(),
            uri: f.finding.uri.clone(),
            summary: f.finding.summary.clone().unwrap_or_default(),
            severity: f.finding.severity.as_str().to_string(),
            score: preferred_cvss(&f.finding.cvss)
                .map(|c| format!("{:.1}", c.base_score))
                .unwrap_or_else(|| "—".to_string()),
            package: f.finding.package.name.clone(),
            version: f.finding.package.version.clone(),
            fixed: f.finding.fixed_version.clone().unwrap_or_default(),
        })
        .collect();
    let scan = described.scan.as_ref().map(|s| ScanSummary {
        status: s.status.clone(),
        description: s.description.clone().unwrap_or_default(),
        completed: format::maybe_time_ms(s.completed_ms),
    });
    let subject_link = image
        .subject
        .as_ref()
        .map(|s| image_link(&scope, name.as_str(), &s.to_string(), &[]));
    let pull_ref = match image.tags.first() {
        Some(tag) => format!("{}:{tag}", app.ecr.repository_uri(&scope, &name)),
        None => format!("{}@{digest_text}", app.ecr.repository_uri(&scope, &name)),
    };
    let page = ImagePage {
        registry_link: registry_link(&scope),
        repository_link: repository_link(&scope, name.as_str()),
        short: format::short_digest(&digest_text),
        tags: image.tags.clone(),
        media_type: image.media_type.clone(),
        artifact_type: image.artifact_type.clone(),
        size: format::bytes(u64::try_from(described.size_in_bytes).unwrap_or(0)),
        pushed: format::time_ms(image.pushed_at_ms),
        pulled: format::maybe_time_ms(image.last_pulled_ms),
        status: described.status,
        subject_link,
        pull_ref,
        platforms,
        layers,
        layers_total: format::bytes(layers_total),
        referrers,
        replication,
        scan,
        severity_chart: svg::bars("Findings by severity", &bars),
        severity_links,
        all_link: filter_link(""),
        findings_total: findings.len(),
        findings: finding_rows,
        sort,
        sort_links: SortLinks {
            name: sort_link("name"),
            severity: sort_link(""),
            score: sort_link("score"),
            package: sort_link("package"),
        },
        manifest: format::pretty_json(&manifest),
        config,
        severity,
        digest: digest_text,
        account: q.account,
        region: q.region,
        name: q.name,
    };
    Ok(html(&page))
}

/// What the image view reads from the store in one go.
struct ImageFacts {
    described: crate::ecr::image_queries::DescribedImage,
    manifest: String,
    referrers: Vec<crate::ecr::manifest::Descriptor>,
    /// Digests of the index's children that the repository holds.
    children_stored: Vec<String>,
    replication: Vec<crate::ecr::records::DestinationStatus>,
    findings: Vec<crate::ecr::scans::StoredFinding>,
}

fn image_facts(
    ecr: &Ecr,
    scope: &Scope,
    name: &crate::ecr::names::RepositoryName,
    digest: &crate::digest::Digest,
) -> Result<ImageFacts, ViewError> {
    let id = ImageId::of(digest, None);
    let mut page = ecr.describe_images(
        scope,
        name,
        Some(std::slice::from_ref(&id)),
        &ImageFilter::default(),
        None,
        None,
    )?;
    let described = page
        .items
        .pop()
        .ok_or_else(|| ViewError::bad_request("the image is gone"))?;
    let manifest = described.image.manifest.clone();
    let referrers = ecr.referrers(scope, name, digest, None)?;
    let mut children_stored = Vec::new();
    for child in &described.image.children {
        if ecr
            .get_image(scope, name, &Reference::Digest(child.clone()), None)
            .is_ok()
        {
            children_stored.push(child.to_string());
        }
    }
    let (_, replication) =
        ecr.image_replication_status(scope, name, &Reference::Digest(digest.clone()))?;
    let mut findings = Vec::new();
    if described.scan.is_some() {
        let mut token: Option<String> = None;
        loop {
            match ecr.describe_image_scan_findings(
                scope,
                name,
                &id,
                token.as_deref(),
                Some(FINDINGS_PAGE),
            ) {
                Ok(page) => {
                    findings.extend(page.findings);
                    match page.next_token {
                        Some(next) => token = Some(next),
                        None => break,
                    }
                }
                Err(e) if e.kind == crate::ecr::error::ErrorKind::ScanNotFound => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ImageFacts {
        described,
        manifest,
        referrers,
        children_stored,
        replication,
        findings,
    })
}

/// `uploads`: every upload session in progress.
pub async fn uploads(State(app): State<Arc<AppState>>) -> Page {
    let open = app.ecr.open_uploads().await?;
    let rows = open
        .iter()
        .map(|u| UploadRow {
            id: u.record.id.clone(),
            account: u.record.scope.account.as_str().to_string(),
            region: u.record.scope.region.as_str().to_string(),
            link: repository_link(&u.record.scope, &u.record.repository),
            repository: u.record.repository.clone(),
            started: format::time_ms(u.record.started_at_ms),
            bytes: format::bytes(u.bytes),
        })
        .collect();
    Ok(html(&UploadsPage { rows }))
}

/// `tasks`: the last run of each background task.
pub async fn tasks(State(app): State<Arc<AppState>>) -> Page {
    let rows = app
        .ecr
        .tasks
        .snapshot()
        .into_iter()
        .map(|(name, status)| {
            let last = status.last.clone();
            TaskRow {
                name: name.to_string(),
                runs: status.runs,
                failures: status.failures,
                started: format::maybe_time_ms(last.as_ref().map(|l| l.started_ms)),
                finished: format::maybe_time_ms(last.as_ref().map(|l| l.finished_ms)),
                outcome: last.as_ref().map(|l| l.outcome.clone()).unwrap_or_default(),
                failed: last.is_some_and(|l| l.failed),
            }
        })
        .collect();
    let finished = *app.ecr.scanner.finished().borrow();
    Ok(html(&TasksPage {
        rows,
        scan_queue: format!("{finished} scans finished since this process started."),
    }))
}
