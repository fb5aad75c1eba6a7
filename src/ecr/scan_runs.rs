//! The scanner: the queue of scans waiting, the vulnerability data they
//! are matched against, and the task that works through them off the
//! request path (so a push never waits for its scan).
//!
//! A scan reads the image's layers once, streaming (`scan::inventory`),
//! keeps the package inventory with the scan, and matches it against the
//! OSV data (`scan::osv`). When the data at `--vuln-db` changes, images of
//! repositories under ENHANCED continuous scanning are matched again from
//! their kept inventories, without reading a layer. Scans still in progress
//! when ecrd stopped are queued again when it starts.
//!
//! Scans give way to uploads: while any blob upload is receiving or being
//! verified, the scanner pauses between reads of a few MiB (for at most
//! `MAX_YIELD` per pause, so a steady stream of pushes cannot starve it).
//! On a small machine a scan would otherwise take CPU from the next push of
//! a pipeline; measured by `benches/scan_bench.py`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::sync::mpsc;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::manifest;
use super::names::{RepositoryName, Scope};
use super::records::ImageRecord;
use super::scan::cvss::{self, Severity};
use super::scan::inventory::inventory;
use super::scan::osv::{Match, VulnDb};
use super::scan::package::{Inventory, Package, PackageKind};
use super::scanning::{ScanFrequency, ScanType, ScanningConfiguration};
use super::scans::{
    scan_key, severity_counts, InjectedFinding, ScanJob, ScanRecord, StoredFinding, ACTIVE,
    COMPLETE, COMPLETE_DESCRIPTION, CONTINUOUS_DESCRIPTION, FAILED, IN_PROGRESS,
    UNSUPPORTED_DESCRIPTION,
};
use super::{load, save, Ecr};
use crate::store::Table;

/// How many scan records a recovery or rescan pass reads at a time.
const SCAN_PAGE: usize = 256;
/// Bytes a scan reads between looks at whether uploads are running.
const YIELD_EVERY: u64 = 4 * 1024 * 1024;
/// The longest a scan waits for uploads at one pause.
const MAX_YIELD: Duration = Duration::from_secs(2);

/// Counts uploads in flight while alive (`Scanner::upload_guard`).
pub struct UploadGuard<'a>(&'a AtomicUsize);

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A layer reader that pauses while uploads are in flight.
struct Yielding<'a, R> {
    inner: R,
    uploads: &'a AtomicUsize,
    since_check: u64,
}

impl<R: std::io::Read> std::io::Read for Yielding<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.since_check >= YIELD_EVERY {
            self.since_check = 0;
            let started = std::time::Instant::now();
            while self.uploads.load(Ordering::Relaxed) > 0 && started.elapsed() < MAX_YIELD {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let n = self.inner.read(buf)?;
        self.since_check += n as u64;
        Ok(n)
    }
}

/// The scan queue and the vulnerability data, shared by the request path
/// (which queues) and the scan task (which works).
pub struct Scanner {
    jobs: mpsc::UnboundedSender<ScanJob>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<ScanJob>>>,
    db: RwLock<Arc<VulnDb>>,
    /// `--vuln-db`, and the fingerprint of what was last loaded from it.
    source: Mutex<Option<(PathBuf, Option<String>)>>,
    /// Scans finished so far (tests and benchmarks wait on it).
    finished: tokio::sync::watch::Sender<u64>,
    /// Blob uploads receiving or being verified right now.
    uploads: AtomicUsize,
}

impl Default for Scanner {
    fn default() -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        Scanner {
            jobs,
            receiver: Mutex::new(Some(receiver)),
            db: RwLock::new(Arc::new(VulnDb::empty())),
            source: Mutex::new(None),
            finished: tokio::sync::watch::channel(0).0,
            uploads: AtomicUsize::new(0),
        }
    }
}

impl Scanner {
    /// Queues a scan. The task takes it when it is free; with no task
    /// running (a bare `Ecr` in a unit test) it waits in the queue.
    pub fn enqueue(&self, job: ScanJob) {
        // Sending fails only when the receiver is gone, i.e. the process is
        // shutting down; the scan stays IN_PROGRESS and restarts with ecrd.
        let _ = self.jobs.send(job);
    }

    /// Marks an upload in flight until the guard is dropped; scans pause
    /// meanwhile.
    pub fn upload_guard(&self) -> UploadGuard<'_> {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        UploadGuard(&self.uploads)
    }

    /// How many uploads are receiving or being verified right now.
    pub fn uploads_in_flight(&self) -> usize {
        self.uploads.load(Ordering::Relaxed)
    }

    /// Where the vulnerability data comes from (read when the task starts).
    pub fn set_source(&self, path: PathBuf) {
        if let Ok(mut source) = self.source.lock() {
            *source = Some((path, None));
        }
    }

    /// The vulnerability data in use.
    pub fn db(&self) -> Arc<VulnDb> {
        match self.db.read() {
            Ok(db) => db.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The fingerprint of the data in use (None without `--vuln-db`).
    fn stamp(&self) -> Option<String> {
        self.source
            .lock()
            .ok()
            .and_then(|s| s.as_ref().and_then(|(_, stamp)| stamp.clone()))
    }

    /// A receiver that sees the count of finished scans.
    pub fn finished(&self) -> tokio::sync::watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// Loads the data again if it changed since the last load; returns
    /// whether it did. A load that fails keeps the data in use.
    fn reload_if_changed(&self) -> Result<bool, String> {
        let (path, last) = match self.source.lock() {
            Ok(source) => match source.as_ref() {
                Some((path, last)) => (path.clone(), last.clone()),
                None => return Ok(false),
            },
            Err(_) => return Ok(false),
        };
        let stamp = VulnDb::source_stamp(&path);
        if stamp.is_some() && stamp == last {
            return Ok(false);
        }
        let db = VulnDb::load(&path)?;
        tracing::info!(
            path = %path.display(),
            records = db.len(),
            "vulnerability data loaded"
        );
        if let Ok(mut current) = self.db.write() {
            *current = Arc::new(db);
        }
        if let Ok(mut source) = self.source.lock() {
            *source = Some((path, stamp));
        }
        Ok(true)
    }
}

/// The scan task: loads the vulnerability data, queues the scans a
/// previous run left unfinished, then scans what is queued and reloads the
/// data every `refresh` (never when zero), rescanning continuous images
/// when it changed. Runs until `stop` turns true (or its sender is gone),
/// finishing the step in hand first: so once it returns nothing it started
/// still holds the domain (a data directory's lock included).
pub async fn run(ecr: Arc<Ecr>, refresh: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(mut receiver) = ecr.scanner.receiver.lock().ok().and_then(|mut r| r.take()) else {
        tracing::error!("the scan task is already running");
        return;
    };
    reload(&ecr).await;
    match recover(&ecr) {
        Ok(0) => {}
        Ok(n) => tracing::info!(scans = n, "unfinished scans queued again"),
        Err(e) => tracing::warn!(error = %e, "could not queue unfinished scans"),
    }
    let mut ticker = tokio::time::interval(if refresh.is_zero() {
        Duration::from_secs(24 * 60 * 60)
    } else {
        refresh
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            job = receiver.recv() => {
                let Some(job) = job else { return };
                let ecr2 = ecr.clone();
                let started_ms = ecr.clock.now_ms();
                // Each scan is its own task: one that panics fails that
                // image's scan, never the scanner.
                let outcome = tokio::spawn(async move { scan_one(&ecr2, &job).await.map_err(|e| (job, e)) }).await;
                let (outcome, failed) = match outcome {
                    Ok(Ok(())) => ("scan finished".to_string(), false),
                    Ok(Err((job, e))) => {
                        tracing::warn!(repository = %job.repository, digest = %job.digest, error = %e, "scan could not be recorded");
                        (format!("scan could not be recorded: {e}"), true)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "scan panicked");
                        (format!("scan panicked: {e}"), true)
                    }
                };
                ecr.record_task_run("scanning", started_ms, outcome, failed);
                ecr.scanner.finished.send_modify(|n| *n += 1);
            }
            _ = ticker.tick(), if !refresh.is_zero() => {
                reload(&ecr).await;
            }
        }
    }
}

/// Reloads the data if it changed and, if so, rescans continuous images.
pub async fn reload(ecr: &Arc<Ecr>) {
    let scanner_ecr = ecr.clone();
    let changed =
        tokio::task::spawn_blocking(move || scanner_ecr.scanner.reload_if_changed()).await;
    match changed {
        Ok(Ok(true)) => {
            let ecr = ecr.clone();
            match tokio::task::spawn_blocking(move || rescan_continuous(&ecr)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(images = n, "continuous scans matched again"),
                Ok(Err(e)) => tracing::warn!(error = %e, "continuous rescans failed"),
                Err(e) => tracing::error!(error = %e, "continuous rescans panicked"),
            }
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "vulnerability data not reloaded; keeping the data in use")
        }
        Err(e) => tracing::error!(error = %e, "vulnerability data reload panicked"),
    }
}

/// Queues every scan recorded IN_PROGRESS (a restart after a stop or a
/// crash mid-scan). Returns how many.
fn recover(ecr: &Ecr) -> EcrResult<usize> {
    let mut queued = 0;
    let mut after: Option<String> = None;
    loop {
        let tx = ecr.store.read()?;
        let batch = tx.scan(Table::ImageScans, "", after.as_deref(), SCAN_PAGE)?;
        drop(tx);
        for (key, value) in &batch {
            let record: ScanRecord = serde_json::from_slice(value)?;
            if record.status == IN_PROGRESS {
                if let Some(job) = job_for_key(key) {
                    ecr.scanner.enqueue(job);
                    queued += 1;
                }
            }
        }
        if batch.len() < SCAN_PAGE {
            return Ok(queued);
        }
        after = batch.last().map(|(k, _)| k.clone());
    }
}

/// The image a scan key names (`<account>/<region>/<repository>@<digest>`).
fn job_for_key(key: &str) -> Option<ScanJob> {
    let (account, rest) = key.split_once('/')?;
    let (region, rest) = rest.split_once('/')?;
    let (repository, digest) = rest.rsplit_once('@')?;
    Some(ScanJob {
        scope: Scope::new(
            super::names::AccountId::parse(account).ok()?,
            super::names::Region::parse(region).ok()?,
        ),
        repository: RepositoryName::parse(repository).ok()?,
        digest: crate::digest::Digest::parse(digest).ok()?,
    })
}

/// Scans one image and records the outcome. An error here means the
/// outcome could not be stored; a scan that fails is recorded FAILED.
async fn scan_one(ecr: &Arc<Ecr>, job: &ScanJob) -> EcrResult<()> {
    let key = scan_key(&job.scope, job.repository.as_str(), &job.digest);
    let (image, record, kept) = {
        let tx = ecr.store.read()?;
        let image: Option<ImageRecord> = load(&*tx, Table::Images, &key)?;
        let record: Option<ScanRecord> = load(&*tx, Table::ImageScans, &key)?;
        let kept = Ecr::inventory_of(&*tx, &key)?;
        (image, record, kept)
    };
    let (Some(image), Some(record)) = (image, record) else {
        return Ok(()); // deleted meanwhile
    };
    if record.status != IN_PROGRESS {
        return Ok(());
    }
    let inventory = match kept {
        Some(inventory) => Ok(inventory),
        None => read_inventory(ecr, &image).await,
    };
    let ecr2 = ecr.clone();
    let job2 = job.clone();
    tokio::task::spawn_blocking(move || finish(&ecr2, &job2, record.started_ms, inventory))
        .await
        .map_err(|e| EcrError::new(ErrorKind::Server, format!("scan panicked: {e}")))?
}

/// Reads the packages installed in an image, streaming its layers in order.
async fn read_inventory(ecr: &Arc<Ecr>, image: &ImageRecord) -> Result<Inventory, String> {
    let parsed = manifest::parse(image.manifest.as_bytes(), Some(&image.media_type))
        .map_err(|e| format!("the manifest cannot be read: {}", e.message))?;
    let layers: Vec<crate::digest::Digest> = parsed
        .layers
        .iter()
        .filter(|l| l.urls.as_ref().is_none_or(|u| u.is_empty()))
        .map(|l| l.digest.clone())
        .collect();
    let blobs = ecr.blobs.clone();
    let handle = tokio::runtime::Handle::current();
    let ecr = ecr.clone();
    tokio::task::spawn_blocking(move || {
        let uploads = &ecr.scanner.uploads;
        let readers = layers.into_iter().map(move |digest| {
            let stream = handle
                .block_on(blobs.read(&digest, 0, None))
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("layer {digest} is not stored"),
                    )
                })?;
            let reader = tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other));
            Ok(Yielding {
                inner: tokio_util::io::SyncIoBridge::new_with_handle(reader, handle.clone()),
                uploads,
                since_check: 0,
            })
        });
        inventory(readers).map_err(|e| e.message)
    })
    .await
    .map_err(|e| format!("the scan stopped: {e}"))?
}

/// What one image's packages match, under a scan type: BASIC reports
/// operating-system packages only, ENHANCED every ecosystem.
fn matches_for(db: &VulnDb, inventory: &Inventory, scan_type: ScanType) -> Vec<Match> {
    let mut found = db.matches(inventory);
    if scan_type == ScanType::Basic {
        found.retain(|m| is_os_package(m.package.kind));
    }
    found
}

/// The operating systems whose package data ecrd matches (by `ID`, or an
/// `ID_LIKE` naming one of them).
fn os_supported(os: &super::scan::package::OsRelease) -> bool {
    const KNOWN: &[&str] = &["debian", "ubuntu", "alpine", "rhel", "rocky", "almalinux"];
    KNOWN.contains(&os.id.as_str()) || os.id_like.iter().any(|l| KNOWN.contains(&l.as_str()))
}

fn is_os_package(kind: PackageKind) -> bool {
    matches!(
        kind,
        PackageKind::Dpkg | PackageKind::Apk | PackageKind::Rpm
    )
}

/// Orders findings as DescribeImageScanFindings pages them: most severe
/// first, then by name and package.
pub(crate) fn sort_findings(findings: &mut [StoredFinding]) {
    fn rank(severity: Severity) -> u8 {
        match severity {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Informational => 4,
            Severity::Undefined => 5,
        }
    }
    findings.sort_by(|a, b| {
        let (a, b) = (&a.finding, &b.finding);
        rank(a.severity)
            .cmp(&rank(b.severity))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.package.name.cmp(&b.package.name))
            .then_with(|| a.package.version.cmp(&b.package.version))
            .then_with(|| a.package.path.cmp(&b.package.path))
    });
}

/// Keeps the first-observed time of findings seen before.
fn carry_over(previous: &[StoredFinding], found: Vec<Match>, now: i64) -> Vec<StoredFinding> {
    let seen: HashMap<(&str, &str, &str, &str), i64> = previous
        .iter()
        .map(|s| {
            (
                (
                    s.finding.name.as_str(),
                    s.finding.package.name.as_str(),
                    s.finding.package.version.as_str(),
                    s.finding.package.path.as_str(),
                ),
                s.first_observed_ms,
            )
        })
        .collect();
    let mut out: Vec<StoredFinding> = found
        .into_iter()
        .map(|finding| {
            let first = seen
                .get(&(
                    finding.name.as_str(),
                    finding.package.name.as_str(),
                    finding.package.version.as_str(),
                    finding.package.path.as_str(),
                ))
                .copied()
                .unwrap_or(now);
            StoredFinding {
                finding,
                first_observed_ms: first,
                updated_ms: now,
            }
        })
        .collect();
    sort_findings(&mut out);
    out
}

fn frequency_of(ecr: &Ecr, job: &ScanJob) -> EcrResult<(ScanningConfiguration, ScanFrequency)> {
    let tx = ecr.store.read()?;
    let configuration: ScanningConfiguration =
        load(&*tx, Table::ScanningConfigurations, &job.scope.key_prefix())?.unwrap_or_default();
    let repository: Option<super::records::RepositoryRecord> = load(
        &*tx,
        Table::Repositories,
        &super::repositories::repository_key(&job.scope, job.repository.as_str()),
    )?;
    let frequency = match repository {
        Some(r) => {
            configuration
                .applied_to(&r.name, r.scan_on_push)
                .scan_frequency
        }
        None => ScanFrequency::Manual,
    };
    Ok((configuration, frequency))
}

/// Records a scan's outcome, if the scan is still the image's latest.
fn finish(
    ecr: &Ecr,
    job: &ScanJob,
    started_ms: i64,
    inventory: Result<Inventory, String>,
) -> EcrResult<()> {
    let key = scan_key(&job.scope, job.repository.as_str(), &job.digest);
    let now = ecr.clock.now_ms();
    let (_, frequency) = frequency_of(ecr, job)?;
    let db = ecr.scanner.db();
    let stamp = ecr.scanner.stamp();
    let mut tx = ecr.store.write()?;
    let Some(mut record) = load::<ScanRecord>(&*tx, Table::ImageScans, &key)? else {
        return Ok(());
    };
    if record.status != IN_PROGRESS || record.started_ms != started_ms {
        return Ok(());
    }
    record.completed_ms = Some(now);
    match inventory {
        Err(message) => {
            record.status = FAILED.to_string();
            record.description = Some(format!("ScanFailedError: {message}"));
            save(&mut *tx, Table::ImageScans, &key, &record)?;
            save::<Vec<StoredFinding>>(&mut *tx, Table::ScanFindings, &key, &Vec::new())?;
        }
        Ok(inventory) => {
            let supported = inventory.os.as_ref().is_some_and(os_supported)
                || (record.scan_type == ScanType::Enhanced
                    && inventory.packages.iter().any(|p| !is_os_package(p.kind)));
            if !supported {
                record.status = FAILED.to_string();
                record.description = Some(UNSUPPORTED_DESCRIPTION.to_string());
                save(&mut *tx, Table::ImageScans, &key, &record)?;
                save::<Vec<StoredFinding>>(&mut *tx, Table::ScanFindings, &key, &Vec::new())?;
            } else {
                let previous: Vec<StoredFinding> =
                    load(&*tx, Table::ScanFindings, &key)?.unwrap_or_default();
                let found = matches_for(&db, &inventory, record.scan_type);
                let stored = carry_over(&previous, found, now);
                let continuous = record.scan_type == ScanType::Enhanced
                    && frequency == ScanFrequency::ContinuousScan;
                record.status = if continuous { ACTIVE } else { COMPLETE }.to_string();
                record.description = Some(
                    if continuous {
                        CONTINUOUS_DESCRIPTION
                    } else {
                        COMPLETE_DESCRIPTION
                    }
                    .to_string(),
                );
                record.counts = severity_counts(stored.iter().map(|s| &s.finding));
                record.source_updated_ms = Some(db.updated_at().map(|s| s * 1000).unwrap_or(0));
                record.source_stamp = stamp;
                save(&mut *tx, Table::ImageScans, &key, &record)?;
                save(&mut *tx, Table::ScanFindings, &key, &stored)?;
            }
            save(&mut *tx, Table::ImageInventories, &key, &inventory)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Matches every image under ENHANCED continuous scanning again, from its
/// kept inventory. Returns how many images were matched.
fn rescan_continuous(ecr: &Ecr) -> EcrResult<usize> {
    let db = ecr.scanner.db();
    let stamp = ecr.scanner.stamp();
    let now = ecr.clock.now_ms();
    let mut rescanned = 0;
    let mut after: Option<String> = None;
    loop {
        let batch = {
            let tx = ecr.store.read()?;
            tx.scan(Table::ImageScans, "", after.as_deref(), SCAN_PAGE)?
        };
        for (key, value) in &batch {
            let record: ScanRecord = serde_json::from_slice(value)?;
            if record.injected
                || record.scan_type != ScanType::Enhanced
                || record.status != ACTIVE
                || (record.source_stamp.is_some() && record.source_stamp == stamp)
            {
                continue;
            }
            let Some(job) = job_for_key(key) else {
                continue;
            };
            let (configuration, frequency) = frequency_of(ecr, &job)?;
            if configuration.scan_type != ScanType::Enhanced
                || frequency != ScanFrequency::ContinuousScan
            {
                continue;
            }
            let mut tx = ecr.store.write()?;
            let Some(inventory) = Ecr::inventory_of(&*tx, key)? else {
                continue;
            };
            let Some(mut current) = load::<ScanRecord>(&*tx, Table::ImageScans, key)? else {
                continue;
            };
            if current.status != ACTIVE {
                continue;
            }
            let previous: Vec<StoredFinding> =
                load(&*tx, Table::ScanFindings, key)?.unwrap_or_default();
            let stored = carry_over(
                &previous,
                matches_for(&db, &inventory, ScanType::Enhanced),
                now,
            );
            current.counts = severity_counts(stored.iter().map(|s| &s.finding));
            current.completed_ms = Some(now);
            current.source_updated_ms = Some(db.updated_at().map(|s| s * 1000).unwrap_or(0));
            current.source_stamp = stamp.clone();
            save(&mut *tx, Table::ImageScans, key, &current)?;
            save(&mut *tx, Table::ScanFindings, key, &stored)?;
            tx.commit()?;
            rescanned += 1;
        }
        if batch.len() < SCAN_PAGE {
            return Ok(rescanned);
        }
        after = batch.last().map(|(k, _)| k.clone());
    }
}

/// A finding given to the operator endpoint, in the form the scanner
/// keeps. Its source says it was injected.
pub(crate) fn injected_match(given: InjectedFinding, index: usize) -> EcrResult<Match> {
    let severity = Severity::from_name(&given.severity);
    if severity == Severity::Undefined && !given.severity.eq_ignore_ascii_case("UNDEFINED") {
        return Err(EcrError::invalid_parameter(
            &format!("findings[{index}].severity"),
            "must satisfy enum value set: [INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, UNDEFINED]",
        ));
    }
    if given.name.trim().is_empty() {
        return Err(EcrError::invalid_parameter(
            &format!("findings[{index}].name"),
            "must not be empty",
        ));
    }
    let cvss = match &given.cvss_vector {
        Some(vector) => vec![cvss::score(vector).ok_or_else(|| {
            EcrError::invalid_parameter(
                &format!("findings[{index}].cvssVector"),
                "must be a valid CVSS v2, v3.x or v4.0 vector",
            )
        })?],
        None => Vec::new(),
    };
    let uri = given
        .uri
        .clone()
        .unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", given.name));
    Ok(Match {
        id: given.name.clone(),
        name: given.name.clone(),
        aliases: Vec::new(),
        related: Vec::new(),
        summary: given.description.clone(),
        details: given.description.clone(),
        package: Package {
            kind: PackageKind::Dpkg,
            name: given.package_name.clone().unwrap_or_default(),
            version: given.package_version.clone().unwrap_or_default(),
            source_name: None,
            source_version: None,
            arch: None,
            path: String::new(),
            layer: 0,
        },
        ecosystem: "injected".to_string(),
        fixed_version: given.fixed_in_version.clone(),
        severity,
        cvss,
        vendor_severity: Some(given.severity.to_ascii_uppercase()),
        references: given.uri.into_iter().collect(),
        published: None,
        modified: None,
        uri,
        source: "ECRD_INJECTED".to_string(),
    })
}
