//! Managed signing: PutSigningConfiguration, GetSigningConfiguration,
//! DeleteSigningConfiguration, DescribeImageSigningStatus, and the signing
//! of pushed images.
//!
//! From the ECR API reference: a registry's signing configuration is a
//! list of up to 10 rules, each naming an AWS Signer signing profile and
//! optional repository filters (`WILDCARD_MATCH`, `*` matching any run of
//! characters); an image pushed to a repository a rule matches (every
//! repository when the rule has no filter) is signed with the rule's
//! profile, and DescribeImageSigningStatus reports, per profile,
//! `IN_PROGRESS`, `COMPLETE` or `FAILED` (with `failureCode` and
//! `failureReason`).
//!
//! A push (either plane) queues its signing in the push's own transaction
//! (`Table::SigningQueue`), with an `IN_PROGRESS` status per profile; the
//! worker ([`run_worker`]) signs in the background: it makes the Notary
//! Project signature (`notary`) with the profile's local key, stores the
//! envelope and an empty config as blobs of the repository and puts the
//! signature manifest (its `subject` the signed image) through the same
//! image model, so ListImageReferrers and `/v2/<name>/referrers/<digest>`
//! show it; then the status becomes `COMPLETE` (or `FAILED`). Signature
//! manifests, and any manifest with a `subject`, are not signed again.

pub mod notary;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::images::{image_key, wildcard_match, Origin, Reference};
use super::names::{RepositoryName, Scope};
use super::records::ImageRecord;
use super::{load, save, Ecr};
use crate::digest::Digest;
use crate::store::{Table, WriteTxn};
use notary::{ProfileKey, ENVELOPE_MEDIA_TYPE, SIGNATURE_ARTIFACT_TYPE};

pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETE: &str = "COMPLETE";
pub const FAILED: &str = "FAILED";
/// The model's `SigningProfileArn` pattern.
static PROFILE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[a-zA-Z0-9_]{2,}$",
    )
    .expect("signing profile ARN pattern compiles")
});
/// How often the worker looks at the queue without being woken.
const POLL: Duration = Duration::from_secs(1);
/// The OCI empty descriptor's content (the signature manifest's config).
const EMPTY_JSON: &[u8] = b"{}";

/// One repository filter of a rule (`filterType` is always `WILDCARD_MATCH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningFilter {
    pub filter: String,
    pub filter_type: String,
}

/// One signing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningRule {
    pub signing_profile_arn: String,
    /// `None` when the rule was put without filters (it signs everything).
    #[serde(default)]
    pub repository_filters: Option<Vec<SigningFilter>>,
}

impl SigningRule {
    fn matches(&self, repository: &str) -> bool {
        match &self.repository_filters {
            None => true,
            Some(filters) => filters
                .iter()
                .any(|f| wildcard_match(&f.filter, repository)),
        }
    }
}

/// A registry's signing configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningConfiguration {
    pub rules: Vec<SigningRule>,
}

/// An image's signing status for one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStatus {
    pub signing_profile_arn: String,
    pub status: String,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// A queued signing of one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SigningJob {
    scope: Scope,
    repository: String,
    digest: Digest,
    profiles: Vec<String>,
}

fn registry_key(scope: &Scope) -> String {
    format!("{}/{}", scope.account, scope.region)
}

fn not_found(scope: &Scope) -> EcrError {
    EcrError::new(
        ErrorKind::SigningConfigurationNotFound,
        format!(
            "Signing configuration does not exist in the registry with id '{}'",
            scope.account
        ),
    )
}

impl Ecr {
    /// PutSigningConfiguration: replaces the registry's configuration.
    pub fn put_signing_configuration(
        &self,
        scope: &Scope,
        configuration: SigningConfiguration,
    ) -> EcrResult<SigningConfiguration> {
        for rule in &configuration.rules {
            for filter in rule.repository_filters.iter().flatten() {
                if filter.filter_type != "WILDCARD_MATCH" {
                    return Err(EcrError::invalid_parameter(
                        "signingConfiguration.rules.repositoryFilters.filterType",
                        "Member must satisfy enum value set: [WILDCARD_MATCH]",
                    ));
                }
            }
        }
        let mut tx = self.store.write()?;
        save(
            &mut *tx,
            Table::SigningConfigurations,
            &registry_key(scope),
            &configuration,
        )?;
        tx.commit()?;
        Ok(configuration)
    }

    /// GetSigningConfiguration.
    pub fn signing_configuration(&self, scope: &Scope) -> EcrResult<SigningConfiguration> {
        let tx = self.store.read()?;
        load(&*tx, Table::SigningConfigurations, &registry_key(scope))?
            .ok_or_else(|| not_found(scope))
    }

    /// DeleteSigningConfiguration: answers the configuration deleted.
    pub fn delete_signing_configuration(&self, scope: &Scope) -> EcrResult<SigningConfiguration> {
        let key = registry_key(scope);
        let mut tx = self.store.write()?;
        let current: SigningConfiguration =
            load(&*tx, Table::SigningConfigurations, &key)?.ok_or_else(|| not_found(scope))?;
        tx.delete(Table::SigningConfigurations, &key)?;
        tx.commit()?;
        Ok(current)
    }

    /// DescribeImageSigningStatus: the image and its status per profile
    /// (none for an image no rule matched when it was pushed).
    pub fn image_signing_status(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> EcrResult<(ImageRecord, Vec<ProfileStatus>)> {
        let image = self.get_image(scope, repo, reference, None)?;
        let tx = self.store.read()?;
        let statuses: Vec<ProfileStatus> = load(
            &*tx,
            Table::SigningStatuses,
            &image_key(scope, repo.as_str(), &image.digest),
        )?
        .unwrap_or_default();
        Ok((image, statuses))
    }

    /// The PEM certificate of a signing profile's key (made on first use),
    /// for the operator endpoint `/_ecrd/signing/certificate`.
    pub fn signing_certificate(&self, profile_arn: &str) -> EcrResult<String> {
        if !PROFILE_ARN.is_match(profile_arn) || profile_arn.len() > 200 {
            return Err(EcrError::invalid_parameter(
                "signingProfileArn",
                "must be a signing profile ARN, arn:aws:signer:<region>:<account>:/signing-profiles/<name>",
            ));
        }
        Ok(self.signing_key(profile_arn)?.certificate_pem())
    }

    /// The profile's key and certificate, made on first use.
    pub fn signing_key(&self, profile_arn: &str) -> EcrResult<ProfileKey> {
        if let Some(key) = load(&*self.store.read()?, Table::SigningKeys, profile_arn)? {
            return Ok(key);
        }
        let mut tx = self.store.write()?;
        // Another caller may have made it between the read and the write.
        if let Some(key) = load(&*tx, Table::SigningKeys, profile_arn)? {
            return Ok(key);
        }
        let key = ProfileKey::generate(profile_arn, self.clock.now())?;
        save(&mut *tx, Table::SigningKeys, profile_arn, &key)?;
        tx.commit()?;
        Ok(key)
    }

    /// Called in a push's transaction for a new image: queues its signing
    /// with every profile whose rule matches the repository, marking each
    /// `IN_PROGRESS`.
    pub(crate) fn enqueue_signing(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        repo: &RepositoryName,
        image: &ImageRecord,
    ) -> EcrResult<()> {
        if image.subject.is_some()
            || image.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE)
        {
            return Ok(());
        }
        let Some(configuration) =
            load::<SigningConfiguration>(tx, Table::SigningConfigurations, &registry_key(scope))?
        else {
            return Ok(());
        };
        let mut profiles: Vec<String> = Vec::new();
        for rule in configuration
            .rules
            .iter()
            .filter(|r| r.matches(repo.as_str()))
        {
            if !profiles.contains(&rule.signing_profile_arn) {
                profiles.push(rule.signing_profile_arn.clone());
            }
        }
        if profiles.is_empty() {
            return Ok(());
        }
        let statuses: Vec<ProfileStatus> = profiles
            .iter()
            .map(|p| ProfileStatus {
                signing_profile_arn: p.clone(),
                status: IN_PROGRESS.to_string(),
                failure_code: None,
                failure_reason: None,
            })
            .collect();
        save(
            tx,
            Table::SigningStatuses,
            &image_key(scope, repo.as_str(), &image.digest),
            &statuses,
        )?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let job = SigningJob {
            scope: scope.clone(),
            repository: repo.to_string(),
            digest: image.digest.clone(),
            profiles,
        };
        save(
            tx,
            Table::SigningQueue,
            &format!("{nanos:032x}-{}", uuid::Uuid::new_v4()),
            &job,
        )?;
        self.signing_wakeup.notify_one();
        Ok(())
    }

    /// Signs every queued image, oldest first, until the queue is empty.
    /// Returns how many images were signed (or failed).
    /// A run that found images (or failed) is recorded in the task log.
    pub async fn run_signing(&self) -> EcrResult<usize> {
        let _one_run = self.signing_run.lock().await;
        let started_ms = self.clock.now_ms();
        let mut failed_signatures = 0usize;
        let result = self.sign_queue(&mut failed_signatures).await;
        let (outcome, failed) = match &result {
            Ok(0) => return result,
            Ok(images) => (
                format!("{images} images signed, {failed_signatures} signatures failed"),
                failed_signatures > 0,
            ),
            Err(e) => (e.to_string(), true),
        };
        self.record_task_run("signing", started_ms, outcome, failed);
        result
    }

    async fn sign_queue(&self, failed_signatures: &mut usize) -> EcrResult<usize> {
        let mut done = 0;
        loop {
            let page = self.store.read()?.scan(Table::SigningQueue, "", None, 16)?;
            if page.is_empty() {
                return Ok(done);
            }
            for (key, bytes) in page {
                let job: SigningJob = serde_json::from_slice(&bytes)?;
                let mut outcomes = Vec::new();
                for profile in &job.profiles {
                    let outcome = self.sign_image(&job, profile).await;
                    if let Err(e) = &outcome {
                        *failed_signatures += 1;
                        tracing::warn!(profile = %profile, digest = %job.digest, error = %e, "signing failed");
                    }
                    outcomes.push((profile.clone(), outcome));
                }
                self.finish_signing_job(&key, &job, outcomes)?;
                done += 1;
            }
        }
    }

    /// Makes and stores one profile's signature of the job's image.
    async fn sign_image(&self, job: &SigningJob, profile: &str) -> EcrResult<()> {
        let scope = &job.scope;
        let repo = super::repositories::parse_name(&job.repository)?;
        let image = self.get_image(scope, &repo, &Reference::Digest(job.digest.clone()), None)?;
        let key = self.signing_key(profile)?;
        let target = json!({
            "mediaType": image.media_type,
            "digest": image.digest.to_string(),
            "size": image.manifest.len(),
        });
        let envelope = key.sign(&target, self.clock.now())?;
        let envelope_len = envelope.len();
        let envelope_digest = self.store_blob(scope, &repo, Bytes::from(envelope)).await?;
        let empty_digest = self
            .store_blob(scope, &repo, Bytes::from_static(EMPTY_JSON))
            .await?;
        let signing_time = self
            .clock
            .now()
            .replace_nanosecond(0)
            .unwrap_or(self.clock.now())
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| EcrError::new(ErrorKind::Server, e.to_string()))?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": super::manifest::OCI_MANIFEST,
            "artifactType": SIGNATURE_ARTIFACT_TYPE,
            "config": {
                "mediaType": super::manifest::OCI_EMPTY,
                "digest": empty_digest.to_string(),
                "size": EMPTY_JSON.len(),
            },
            "layers": [{
                "mediaType": ENVELOPE_MEDIA_TYPE,
                "digest": envelope_digest.to_string(),
                "size": envelope_len,
            }],
            "subject": {
                "mediaType": image.media_type,
                "digest": image.digest.to_string(),
                "size": image.manifest.len(),
            },
            "annotations": {
                "io.cncf.notary.x509chain.thumbprint#S256":
                    serde_json::to_string(&[key.thumbprint()?])?,
                "org.opencontainers.image.created": signing_time,
            },
        });
        let bytes = Bytes::from(serde_json::to_vec(&manifest)?);
        self.put_manifest_as(
            scope,
            &repo,
            None,
            None,
            &bytes,
            Some(super::manifest::OCI_MANIFEST),
            Origin::Signing,
        )?;
        Ok(())
    }

    /// Stores a small blob and links it into the repository.
    async fn store_blob(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        data: Bytes,
    ) -> EcrResult<Digest> {
        let size = data.len() as u64;
        // Nothing refers to the blob until its link commits: garbage
        // collection waits for it (see `gc`).
        let _publishing = self.collection.read().await?;
        let digest = self.blobs.put(data).await?;
        let mut tx = self.store.write()?;
        self.link_layer(&mut *tx, scope, repo, &digest, size)?;
        tx.commit()?;
        Ok(digest)
    }

    /// Records the job's outcomes and takes it off the queue, in one
    /// transaction.
    fn finish_signing_job(
        &self,
        queue_key: &str,
        job: &SigningJob,
        outcomes: Vec<(String, EcrResult<()>)>,
    ) -> EcrResult<()> {
        let key = image_key(&job.scope, &job.repository, &job.digest);
        let mut tx = self.store.write()?;
        let mut statuses: Vec<ProfileStatus> =
            load(&*tx, Table::SigningStatuses, &key)?.unwrap_or_default();
        for (profile, outcome) in outcomes {
            let status = match outcome {
                Ok(()) => ProfileStatus {
                    signing_profile_arn: profile.clone(),
                    status: COMPLETE.to_string(),
                    failure_code: None,
                    failure_reason: None,
                },
                Err(e) => ProfileStatus {
                    signing_profile_arn: profile.clone(),
                    status: FAILED.to_string(),
                    failure_code: Some(e.kind.code().to_string()),
                    failure_reason: Some(e.message),
                },
            };
            match statuses
                .iter_mut()
                .find(|s| s.signing_profile_arn == profile)
            {
                Some(current) => *current = status,
                None => statuses.push(status),
            }
        }
        // The image may be gone (deleted while queued): keep no status then.
        if load::<ImageRecord>(&*tx, Table::Images, &key)?.is_some() {
            save(&mut *tx, Table::SigningStatuses, &key, &statuses)?;
        } else {
            tx.delete(Table::SigningStatuses, &key)?;
        }
        tx.delete(Table::SigningQueue, queue_key)?;
        tx.commit()?;
        Ok(())
    }
}

/// Signs queued images whenever a push wakes it (and every second, for
/// what a restart left queued), until `stop` says so. A run that fails is
/// logged and retried on the next wake.
pub async fn run_worker(ecr: Arc<Ecr>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let run = {
            let ecr = ecr.clone();
            tokio::spawn(async move {
                crate::ecr::background::if_leading(
                    &ecr,
                    crate::store::fleet::FleetTask::Signing,
                    ecr.run_signing(),
                )
                .await
            })
        };
        // Awaited to the end even when stopping: a run never outlives the
        // worker (it holds the domain, and so a data directory's lock).
        match run.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "signing run failed; it runs again"),
            Err(e) => tracing::error!(error = %e, "signing run panicked; it runs again"),
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::timeout(POLL, ecr.signing_wakeup.notified()) => {}
        }
        // A push wakes the worker from inside its transaction: give the
        // commit a moment to land before looking.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
