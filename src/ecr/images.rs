//! Images and the blobs they are made of: upload sessions, blob links per
//! repository, cross-repository mounts, manifest push with ECR's rules
//! (references must exist, immutable tags stay put), pulls, tags, deletes,
//! referrers and the catalog.
//!
//! Both planes call these: `docker push` through `/v2/` and PutImage /
//! CompleteLayerUpload through the API reach the same functions, so an image
//! pushed either way is indistinguishable afterwards.

use std::sync::LazyLock;

use bytes::Bytes;
use regex::Regex;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::manifest::{self, Descriptor, ParsedManifest};
use super::names::{RepositoryName, Scope};
use super::records::{ImageRecord, LayerRecord, RepositoryRecord, UploadRecord};
use super::repositories::get_repository;
use super::{load, save, Ecr};
use crate::digest::Digest;
use crate::store::blobs::{BlobError, BlobUrl, ByteStream};
use crate::store::{ReadTxn, Table, WriteTxn};

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,299}$").expect("tag pattern compiles")
});

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A digest if it has the digest form, else a tag.
    pub fn parse(s: &str) -> EcrResult<Reference> {
        if s.contains(':') {
            Digest::parse(s)
                .map(Reference::Digest)
                .map_err(|e| EcrError::invalid_parameter("imageDigest", &e.to_string()))
        } else {
            check_tag(s)?;
            Ok(Reference::Tag(s.to_string()))
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

pub fn check_tag(tag: &str) -> EcrResult<()> {
    if TAG.is_match(tag) {
        Ok(())
    } else {
        Err(EcrError::invalid_parameter(
            "imageTag",
            "must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,299}'",
        ))
    }
}

fn repo_prefix(scope: &Scope, repo: &str) -> String {
    format!("{}{}", scope.key_prefix(), repo)
}
pub(crate) fn image_key(scope: &Scope, repo: &str, digest: &Digest) -> String {
    format!("{}@{}", repo_prefix(scope, repo), digest)
}
pub(crate) fn tag_key(scope: &Scope, repo: &str, tag: &str) -> String {
    format!("{}:{}", repo_prefix(scope, repo), tag)
}
pub(crate) fn layer_key(scope: &Scope, repo: &str, digest: &Digest) -> String {
    format!("{}@{}", repo_prefix(scope, repo), digest)
}
fn referrer_key(scope: &Scope, repo: &str, subject: &Digest, referrer: &Digest) -> String {
    format!("{}@{}>{}", repo_prefix(scope, repo), subject, referrer)
}

/// Whether a tag may be moved, under the repository's mutability setting.
fn tag_is_immutable(repo: &RepositoryRecord, tag: &str) -> bool {
    let matches_filter = || {
        repo.tag_mutability_exclusions
            .iter()
            .any(|f| wildcard_match(&f.filter, tag))
    };
    match repo.tag_mutability.as_str() {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !matches_filter(),
        "MUTABLE_WITH_EXCLUSION" => matches_filter(),
        _ => false,
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Where a manifest being put comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client's push, on either plane.
    Push,
    /// A copy made by replication.
    Replication,
    /// An image fetched from a pull through cache rule's upstream: not
    /// replicated, and an index may be stored before its children (each
    /// is fetched when a client asks for it).
    PullThroughCache,
    /// A signature made by managed signing (`signing`).
    Signing,
}

/// The outcome of a manifest push.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub image: ImageRecord,
    /// False when the same manifest (and tag, if any) was already there.
    pub changed: bool,
}

fn now_ms(ecr: &Ecr) -> i64 {
    ecr.clock.now_ms()
}

fn blob_error(e: BlobError, upload_id: &str) -> EcrError {
    match e {
        BlobError::UploadUnknown => EcrError::new(
            ErrorKind::UploadNotFound,
            format!("The upload with id '{upload_id}' does not exist"),
        ),
        BlobError::DigestMismatch { computed } => EcrError::new(
            ErrorKind::InvalidLayer,
            format!("The layer digest calculated for the uploaded content is '{computed}', which does not match the digest given"),
        ),
        BlobError::Body(e) => EcrError::new(ErrorKind::InvalidLayerPart, format!("The upload body was not received completely: {e}")),
        BlobError::Store(e) => e.into(),
    }
}

/// A manifest whose bytes passed every check that needs no records: the tag's
/// shape, the manifest's syntax, UTF-8, and the digest the client expected.
pub(crate) struct CheckedManifest {
    parsed: ParsedManifest,
    text: String,
    digest: Digest,
    /// The manifest's length in bytes.
    len: usize,
}

/// Checks a pushed manifest before any transaction opens (see
/// [`CheckedManifest`]).
pub(crate) fn check_manifest(
    tag: Option<&str>,
    expected_digest: Option<&Digest>,
    bytes: &Bytes,
    declared_media_type: Option<&str>,
) -> EcrResult<CheckedManifest> {
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    let parsed = manifest::parse(bytes, declared_media_type)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|_| EcrError::invalid_parameter("imageManifest", "must be UTF-8 JSON"))?
        .to_string();
    let digest = match expected_digest {
        Some(expected) => {
            let computed = Digest::of(expected.algorithm(), bytes);
            if &computed != expected {
                return Err(EcrError::new(
                    ErrorKind::ImageDigestDoesNotMatch,
                    format!("The specified digest '{expected}' does not match the digest '{computed}' calculated for the manifest"),
                ));
            }
            computed
        }
        None => Digest::sha256_of(bytes),
    };
    Ok(CheckedManifest {
        parsed,
        text,
        digest,
        len: bytes.len(),
    })
}

impl Ecr {
    /// The repository, or RepositoryNotFoundException.
    pub fn repository(&self, scope: &Scope, name: &RepositoryName) -> EcrResult<RepositoryRecord> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, name)
    }

    // ----------------------------------------------------------- uploads

    /// Opens an upload session for a layer of `repo`.
    pub async fn start_upload(&self, scope: &Scope, repo: &RepositoryName) -> EcrResult<String> {
        self.repository_for_push(scope, repo)?;
        self.make_room_for_upload(scope, repo).await?;
        // Until its record commits, the new upload's data would look
        // orphaned to garbage collection, which therefore waits (see `gc`).
        let _publishing = self.collection.read().await?;
        let id = self.blobs.create_upload().await?;
        let record = UploadRecord {
            id: id.clone(),
            scope: scope.clone(),
            repository: repo.to_string(),
            started_at_ms: now_ms(self),
            last_part_size: None,
            undersized_part: None,
        };
        let mut tx = self.store.write()?;
        if let Err(full) = self.check_upload_room(&*tx, scope, repo) {
            drop(tx);
            let _ = self.blobs.cancel_upload(&id).await;
            return Err(full);
        }
        save(&mut *tx, Table::Uploads, &id, &record)?;
        tx.commit()?;
        Ok(id)
    }

    /// The session, if it belongs to this repository.
    fn upload_record(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> EcrResult<UploadRecord> {
        let tx = self.store.read()?;
        let record: Option<UploadRecord> = load(&*tx, Table::Uploads, id)?;
        match record {
            Some(r) if &r.scope == scope && r.repository == repo.as_str() => Ok(r),
            _ => Err(blob_error(BlobError::UploadUnknown, id)),
        }
    }

    /// Bytes received so far.
    pub async fn upload_size(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> EcrResult<u64> {
        self.upload_record(scope, repo, id)?;
        self.blobs
            .upload_size(id)
            .await
            .map_err(|e| blob_error(e, id))
    }

    /// Appends a chunk. `expected_offset`, when the client states where its
    /// chunk starts, must equal the bytes received so far; otherwise the
    /// answer is InvalidLayerPartException carrying the current size.
    pub async fn append_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        expected_offset: Option<u64>,
        body: ByteStream,
    ) -> EcrResult<u64> {
        self.upload_record(scope, repo, id)?;
        // Scans give way while bytes are arriving (`scan_runs`).
        let _receiving = self.scanner.upload_guard();
        if let Some(offset) = expected_offset {
            let size = self
                .blobs
                .upload_size(id)
                .await
                .map_err(|e| blob_error(e, id))?;
            if offset != size {
                return Err(EcrError::new(
                    ErrorKind::InvalidLayerPart,
                    format!("The part starts at byte {offset}, but the upload '{id}' holds {size} bytes; the next part must start at byte {size}"),
                ));
            }
        }
        self.blobs
            .append_upload(id, body)
            .await
            .map_err(|e| blob_error(e, id))
    }

    /// Verifies the upload against `digest` and makes it a layer of `repo`.
    pub async fn complete_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
        digest: &Digest,
    ) -> EcrResult<u64> {
        self.upload_record(scope, repo, id)?;
        let _verifying = self.scanner.upload_guard();
        // The slow part (the upload made durable and checked) first: an
        // upload is no blob yet, and its session keeps it from collection.
        let prepared = self.blobs.prepare_finish(id, digest).await;
        // From the blob being stored (or found already stored) until its
        // link commits, nothing refers to it: garbage collection waits until
        // the link is there (see `gc`), and pushes queue behind a waiting
        // collection, so this hold is kept short.
        let _publishing = self.collection.read().await?;
        let result = match prepared {
            Ok(()) => self.blobs.finish_upload(id, digest).await,
            Err(e) => Err(e),
        };
        let mut tx = self.store.write()?;
        tx.delete(Table::Uploads, id)?;
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                tx.commit()?;
                return Err(blob_error(e, id));
            }
        };
        self.link_layer(&mut *tx, scope, repo, digest, size)?;
        tx.commit()?;
        Ok(size)
    }

    /// Ends an upload without keeping anything.
    pub async fn cancel_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        id: &str,
    ) -> EcrResult<()> {
        self.upload_record(scope, repo, id)?;
        let _ = self.blobs.cancel_upload(id).await;
        let mut tx = self.store.write()?;
        tx.delete(Table::Uploads, id)?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn link_layer(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> EcrResult<()> {
        // The repository may have been deleted while the upload streamed.
        get_repository(tx, scope, repo)?;
        // A layer pushed again is as new as a first push: garbage collection
        // gives it the whole grace period to be used by an image.
        let key = layer_key(scope, repo.as_str(), digest);
        save(
            tx,
            Table::Layers,
            &key,
            &LayerRecord {
                size,
                added_at_ms: now_ms(self),
            },
        )?;
        Ok(())
    }

    // ------------------------------------------------------------- blobs

    /// The size of a blob as `repo` sees it: linked into the repository and
    /// present in the blob store.
    pub async fn layer_size(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<Option<u64>> {
        let linked: Option<LayerRecord> = {
            let tx = self.store.read()?;
            get_repository(&*tx, scope, repo)?;
            load(
                &*tx,
                Table::Layers,
                &layer_key(scope, repo.as_str(), digest),
            )?
        };
        match linked {
            Some(_) => Ok(self.blobs.size(digest).await?),
            None => Ok(None),
        }
    }

    /// Where a client fetches a blob of `size` bytes that a repository
    /// holds: the blob store's presigned URL when it makes them (S3, as ECR
    /// itself redirects to S3), `BlobUrl::Ecrd` for ecrd's own signed URL,
    /// or `BlobUrl::Missing` when the store no longer has it.
    pub async fn blob_url(&self, digest: &Digest, size: u64) -> EcrResult<BlobUrl> {
        let lifetime = crate::auth::token::DOWNLOAD_URL_LIFETIME.unsigned_abs();
        Ok(self.blobs.download_url(digest, size, lifetime).await?)
    }

    /// A blob's bytes (a range of them), if `repo` holds it.
    pub async fn read_layer(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        start: u64,
        end: Option<u64>,
    ) -> EcrResult<Option<ByteStream>> {
        if self.layer_size(scope, repo, digest).await?.is_none() {
            return Ok(None);
        }
        Ok(self.blobs.read(digest, start, end).await?)
    }

    /// Links a blob another repository of the same registry holds into
    /// `repo`. With `from`, only that repository is looked at; without it,
    /// any repository of the registry. Returns the size when mounted.
    pub async fn mount_layer(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> EcrResult<Option<u64>> {
        self.repository_for_push(scope, repo)?;
        if self.get_account_setting(scope, "BLOB_MOUNTING")?.1 == "DISABLED" {
            return Ok(None);
        }
        // The blob seen present stays so until the new link commits (see `gc`).
        let _publishing = self.collection.read().await?;
        let Some(size) = self.blobs.size(digest).await? else {
            return Ok(None);
        };
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let found = match from {
            Some(source) => tx
                .get(Table::Layers, &layer_key(scope, source.as_str(), digest))?
                .is_some(),
            None => {
                let suffix = format!("@{digest}");
                let mut after: Option<String> = None;
                let mut found = false;
                loop {
                    let page =
                        tx.scan(Table::Layers, &scope.key_prefix(), after.as_deref(), 1000)?;
                    if page.iter().any(|(k, _)| k.ends_with(&suffix)) {
                        found = true;
                        break;
                    }
                    match page.last() {
                        Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
                        _ => break,
                    }
                }
                found
            }
        };
        if !found {
            return Ok(None);
        }
        self.link_layer(&mut *tx, scope, repo, digest, size)?;
        tx.commit()?;
        Ok(Some(size))
    }

    /// Unlinks a blob from a repository, unless an image of the repository
    /// uses it (as its config or a layer): unlinking that would leave an
    /// acknowledged image unpullable. Reads the repository's images (there
    /// is no reverse index from a blob to them) inside the write
    /// transaction, so no image can start using the blob meanwhile.
    pub fn delete_layer(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<LayerDeletion> {
        /// How many of the images using the blob the refusal names.
        const NAMED: usize = 10;
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let key = layer_key(scope, repo.as_str(), digest);
        if tx.get(Table::Layers, &key)?.is_none() {
            return Ok(LayerDeletion::NotLinked);
        }
        let prefix = format!("{}@", repo_prefix(scope, repo.as_str()));
        let mut users = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = tx.scan(Table::Images, &prefix, after.as_deref(), 1000)?;
            let full = page.len() == 1000;
            after = page.last().map(|(k, _)| k.clone());
            for (_, bytes) in page {
                let image: ImageRecord = serde_json::from_slice(&bytes)?;
                if image_blobs(&image)?.contains(digest) {
                    users.push(image.digest);
                    if users.len() == NAMED {
                        return Ok(LayerDeletion::InUse(users));
                    }
                }
            }
            if !full {
                break;
            }
        }
        if !users.is_empty() {
            return Ok(LayerDeletion::InUse(users));
        }
        tx.delete(Table::Layers, &key)?;
        tx.commit()?;
        Ok(LayerDeletion::Unlinked)
    }

    // --------------------------------------------------------- manifests

    /// Pushes a manifest, optionally under a tag.
    ///
    /// Checks, in ECR's order: the repository exists; the manifest parses;
    /// `expected_digest` (a push by digest, or PutImage's `imageDigest`)
    /// matches the content; every referenced blob is a layer of the
    /// repository (LayersNotFoundException) and every child manifest an
    /// image of it (ReferencedImagesNotFoundException), a `subject` excepted;
    /// an immutable tag is not moved (ImageTagAlreadyExistsException).
    pub fn put_manifest(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: Option<&str>,
        expected_digest: Option<&Digest>,
        bytes: &Bytes,
        declared_media_type: Option<&str>,
    ) -> EcrResult<PushedImage> {
        self.put_manifest_as(
            scope,
            repo,
            tag,
            expected_digest,
            bytes,
            declared_media_type,
            Origin::Push,
        )
    }

    /// [`Ecr::put_manifest`], saying where the manifest comes from: only a
    /// push is replicated (a replicated copy is not replicated again).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put_manifest_as(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: Option<&str>,
        expected_digest: Option<&Digest>,
        bytes: &Bytes,
        declared_media_type: Option<&str>,
        origin: Origin,
    ) -> EcrResult<PushedImage> {
        self.repository_for_push(scope, repo)?;
        let checked = check_manifest(tag, expected_digest, bytes, declared_media_type)?;
        let mut tx = self.store.write()?;
        let (pushed, scan) = self.put_manifest_in(&mut *tx, scope, repo, tag, checked, origin)?;
        if pushed.changed {
            tx.commit()?;
        }
        if let Some(job) = scan {
            self.scanner.enqueue(job);
        }
        Ok(pushed)
    }

    /// The part of a manifest push inside the metadata transaction: every
    /// rule that reads or writes records (references present, immutable
    /// tags, tag moves, referrers, scan on push, replication and signing
    /// queues). The caller commits when the answer says `changed`, then
    /// hands the scan job, if any, to the scanner.
    pub(crate) fn put_manifest_in(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        repo: &RepositoryName,
        tag: Option<&str>,
        checked: CheckedManifest,
        origin: Origin,
    ) -> EcrResult<(PushedImage, Option<super::scans::ScanJob>)> {
        let CheckedManifest {
            parsed,
            text,
            digest,
            len,
        } = checked;
        let repository = get_repository(&*tx, scope, repo)?;
        self.check_references(&*tx, scope, repo, &parsed, origin)?;

        let key = image_key(scope, repo.as_str(), &digest);
        let existing: Option<ImageRecord> = load(&*tx, Table::Images, &key)?;
        let is_new = existing.is_none();
        let mut changed = is_new;
        let mut image = match existing {
            Some(image) => image,
            None => ImageRecord {
                digest: digest.clone(),
                manifest: text,
                media_type: parsed.media_type.clone(),
                artifact_type: parsed.artifact_type.clone(),
                tags: Vec::new(),
                size_in_bytes: if parsed.is_index() {
                    len as i64
                } else {
                    parsed.layer_bytes()
                },
                pushed_at_ms: now_ms(self),
                last_pulled_ms: None,
                subject: parsed.subject.as_ref().map(|s| s.digest.clone()),
                children: parsed.manifests.iter().map(|m| m.digest.clone()).collect(),
                blobs: parsed
                    .required_blobs()
                    .iter()
                    .map(|d| d.digest.clone())
                    .collect(),
                status: "ACTIVE".to_string(),
                last_archived_ms: None,
                last_activated_ms: None,
            },
        };
        if let Some(tag) = tag {
            let tkey = tag_key(scope, repo.as_str(), tag);
            let current: Option<Digest> = load(&*tx, Table::Tags, &tkey)?;
            match current {
                Some(d) if d == digest => {}
                Some(previous) => {
                    if tag_is_immutable(&repository, tag) {
                        return Err(EcrError::new(
                            ErrorKind::ImageTagAlreadyExists,
                            format!("The image tag '{tag}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."),
                        ));
                    }
                    // Move the tag: the previous image keeps existing, untagged if this was its last tag.
                    let pkey = image_key(scope, repo.as_str(), &previous);
                    if let Some(mut old) = load::<ImageRecord>(&*tx, Table::Images, &pkey)? {
                        old.tags.retain(|t| t != tag);
                        save(&mut *tx, Table::Images, &pkey, &old)?;
                    }
                    save(&mut *tx, Table::Tags, &tkey, &digest)?;
                    image.tags.push(tag.to_string());
                    changed = true;
                }
                None => {
                    save(&mut *tx, Table::Tags, &tkey, &digest)?;
                    image.tags.push(tag.to_string());
                    changed = true;
                }
            }
        }
        let mut scan = None;
        if changed {
            save(&mut *tx, Table::Images, &key, &image)?;
            if is_new {
                scan = self.scan_on_push_in(&mut *tx, scope, &repository, &image)?;
                // Managed signing (ecr::signing): queued with the push, so
                // an acknowledged push is always signed.
                if origin == Origin::Push {
                    self.enqueue_signing(&mut *tx, scope, repo, &image)?;
                }
            }
            if let Some(subject) = &parsed.subject {
                let descriptor = Descriptor {
                    media_type: parsed.media_type.clone(),
                    digest: digest.clone(),
                    size: len as i64,
                    artifact_type: parsed.artifact_type.clone(),
                    annotations: parsed.annotations.clone(),
                    urls: None,
                };
                save(
                    &mut *tx,
                    Table::Referrers,
                    &referrer_key(scope, repo.as_str(), &subject.digest, &digest),
                    &descriptor,
                )?;
            }
            // Replication (ecr::replication): queued in the push's own
            // transaction, so an acknowledged push is always replicated.
            if origin == Origin::Push {
                self.enqueue_replication(&mut *tx, scope, repo, &digest, tag)?;
            }
        }
        Ok((PushedImage { image, changed }, scan))
    }

    fn check_references(
        &self,
        tx: &dyn ReadTxn,
        scope: &Scope,
        repo: &RepositoryName,
        parsed: &ParsedManifest,
        origin: Origin,
    ) -> EcrResult<()> {
        let mut missing = Vec::new();
        for blob in parsed.required_blobs() {
            if tx
                .get(
                    Table::Layers,
                    &layer_key(scope, repo.as_str(), &blob.digest),
                )?
                .is_none()
            {
                missing.push(blob.digest.to_string());
            }
        }
        if !missing.is_empty() {
            return Err(EcrError::new(
                ErrorKind::LayersNotFound,
                format!("Layers with digests '[{}]' required for pushing image into repository with name '{}' in the registry with id '{}' do not exist", missing.join(", "), repo, scope.account),
            ));
        }
        let mut missing = Vec::new();
        let children_checked = origin != Origin::PullThroughCache;
        for child in parsed.manifests.iter().filter(|_| children_checked) {
            if tx
                .get(
                    Table::Images,
                    &image_key(scope, repo.as_str(), &child.digest),
                )?
                .is_none()
            {
                missing.push(child.digest.to_string());
            }
        }
        if !missing.is_empty() {
            return Err(EcrError::new(
                ErrorKind::ReferencedImagesNotFound,
                format!("Manifests with digests '[{}]' referenced by the image index do not exist in the repository with name '{}' in the registry with id '{}'", missing.join(", "), repo, scope.account),
            ));
        }
        Ok(())
    }

    /// Resolves a reference to its image. `pulled_by` names the principal
    /// of a pull (a manifest GET, not HEAD), which updates
    /// lastRecordedPullTime unless the registry excludes that principal
    /// (`exclusions`).
    pub fn get_image(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
        pulled_by: Option<&str>,
    ) -> EcrResult<ImageRecord> {
        let not_found = || {
            EcrError::new(
                ErrorKind::ImageNotFound,
                format!("The image with imageId {{{}}} does not exist within the repository with name '{}' in the registry with id '{}'",
                    match reference {
                        Reference::Tag(t) => format!("imageTag:'{t}'"),
                        Reference::Digest(d) => format!("imageDigest:'{d}'"),
                    },
                    repo, scope.account),
            )
        };
        let load_image = |tx: &dyn ReadTxn| -> EcrResult<Option<ImageRecord>> {
            get_repository(tx, scope, repo)?;
            let digest = match reference {
                Reference::Digest(d) => d.clone(),
                Reference::Tag(t) => {
                    match load::<Digest>(tx, Table::Tags, &tag_key(scope, repo.as_str(), t))? {
                        Some(d) => d,
                        None => return Ok(None),
                    }
                }
            };
            load(tx, Table::Images, &image_key(scope, repo.as_str(), &digest))
        };
        let Some(puller) = pulled_by else {
            let tx = self.store.read()?;
            let mut image = load_image(&*tx)?.ok_or_else(not_found)?;
            super::lifecycle_runs::resolve_storage(&mut image, now_ms(self));
            return Ok(image);
        };
        let mut tx = self.store.write()?;
        let mut image = load_image(&*tx)?.ok_or_else(not_found)?;
        // Archived (or still restoring) images cannot be pulled.
        super::lifecycle_runs::ensure_pullable(&mut image, now_ms(self), scope, repo, reference)?;
        if super::exclusions::is_excluded(&*tx, scope, puller)? {
            return Ok(image);
        }
        image.last_pulled_ms = Some(now_ms(self));
        save(
            &mut *tx,
            Table::Images,
            &image_key(scope, repo.as_str(), &image.digest),
            &image,
        )?;
        tx.commit()?;
        Ok(image)
    }

    /// Deletes an image and every tag pointing at it, unless an index of
    /// the repository lists it: refused with BatchDeleteImage's
    /// `ImageReferencedByManifestList` rule (`indexes_listing`).
    pub fn delete_image(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<ImageRecord> {
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let parents = self.indexes_listing(
            &*tx,
            scope,
            repo,
            &std::collections::HashSet::from([digest.clone()]),
        )?;
        if let Some(list) = parents.get(digest) {
            return Err(EcrError::referenced_by_manifest_list(list));
        }
        let image = delete_image_in(&mut *tx, scope, repo, digest)?.ok_or_else(|| {
            EcrError::new(
                ErrorKind::ImageNotFound,
                format!("The image with imageId {{imageDigest:'{digest}'}} does not exist within the repository with name '{repo}' in the registry with id '{}'", scope.account),
            )
        })?;
        tx.commit()?;
        Ok(image)
    }

    /// Removes a tag; the image stays, untagged if it was its last tag.
    pub fn untag(&self, scope: &Scope, repo: &RepositoryName, tag: &str) -> EcrResult<ImageRecord> {
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let tkey = tag_key(scope, repo.as_str(), tag);
        let Some(digest) = load::<Digest>(&*tx, Table::Tags, &tkey)? else {
            return Err(EcrError::new(
                ErrorKind::ImageNotFound,
                format!("The image with imageId {{imageTag:'{tag}'}} does not exist within the repository with name '{repo}' in the registry with id '{}'", scope.account),
            ));
        };
        tx.delete(Table::Tags, &tkey)?;
        let ikey = image_key(scope, repo.as_str(), &digest);
        let mut image: ImageRecord = load(&*tx, Table::Images, &ikey)?.ok_or_else(|| {
            EcrError::new(
                ErrorKind::Server,
                format!("tag '{tag}' points at a missing image {digest}"),
            )
        })?;
        image.tags.retain(|t| t != tag);
        save(&mut *tx, Table::Images, &ikey, &image)?;
        tx.commit()?;
        Ok(image)
    }

    /// Tags of a repository in lexical order, after `last`, at most `limit`.
    /// Returns the tags and whether more follow.
    pub fn list_tags(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        last: Option<&str>,
        limit: usize,
    ) -> EcrResult<(Vec<String>, bool)> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, repo)?;
        let prefix = format!("{}:", repo_prefix(scope, repo.as_str()));
        let after = last.map(|l| format!("{prefix}{l}"));
        let entries = tx.scan(
            Table::Tags,
            &prefix,
            after.as_deref(),
            limit.saturating_add(1),
        )?;
        let more = entries.len() > limit;
        Ok((
            entries
                .into_iter()
                .take(limit)
                .map(|(k, _)| k[prefix.len()..].to_string())
                .collect(),
            more,
        ))
    }

    /// Repository names of a registry in lexical order, after `last`.
    pub fn catalog(
        &self,
        scope: &Scope,
        last: Option<&str>,
        limit: usize,
    ) -> EcrResult<(Vec<String>, bool)> {
        let tx = self.store.read()?;
        let prefix = scope.key_prefix();
        let after = last.map(|l| format!("{prefix}{l}"));
        let entries = tx.scan(
            Table::Repositories,
            &prefix,
            after.as_deref(),
            limit.saturating_add(1),
        )?;
        let more = entries.len() > limit;
        Ok((
            entries
                .into_iter()
                .take(limit)
                .map(|(k, _)| k[prefix.len()..].to_string())
                .collect(),
            more,
        ))
    }

    /// Descriptors of the manifests whose `subject` is `digest`, optionally
    /// only those of one artifact type.
    pub fn referrers(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> EcrResult<Vec<Descriptor>> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, repo)?;
        let prefix = format!("{}@{}>", repo_prefix(scope, repo.as_str()), digest);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = tx.scan(Table::Referrers, &prefix, after.as_deref(), 1000)?;
            let full = page.len() == 1000;
            after = page.last().map(|(k, _)| k.clone());
            for (_, bytes) in page {
                let d: Descriptor = serde_json::from_slice(&bytes)?;
                if artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)) {
                    out.push(d);
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Images of a repository in digest order after `after`, at most `limit`.
    pub fn scan_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        after: Option<&Digest>,
        limit: usize,
    ) -> EcrResult<Vec<ImageRecord>> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, repo)?;
        let prefix = format!("{}@", repo_prefix(scope, repo.as_str()));
        let after = after.map(|d| format!("{prefix}{d}"));
        tx.scan(Table::Images, &prefix, after.as_deref(), limit)?
            .into_iter()
            .map(|(_, bytes)| serde_json::from_slice(&bytes).map_err(EcrError::from))
            .collect()
    }

    /// Whether `repo` holds any image.
    pub(crate) fn repository_has_images(
        &self,
        tx: &dyn ReadTxn,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<bool> {
        let prefix = format!("{}@", repo_prefix(scope, name.as_str()));
        Ok(!tx.scan(Table::Images, &prefix, None, 1)?.is_empty())
    }

    /// Removes images, tags, layer links and referrer entries of a repository.
    pub(crate) fn delete_repository_contents(
        &self,
        tx: &mut dyn WriteTxn,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<()> {
        let base = repo_prefix(scope, name.as_str());
        for (table, prefix) in [
            (Table::Images, format!("{base}@")),
            (Table::Tags, format!("{base}:")),
            (Table::Layers, format!("{base}@")),
            (Table::Referrers, format!("{base}@")),
            (Table::ReplicationStatuses, format!("{base}@")),
            (Table::ImageScans, format!("{base}@")),
            (Table::ScanFindings, format!("{base}@")),
            (Table::ImageInventories, format!("{base}@")),
            (Table::SigningStatuses, format!("{base}@")),
        ] {
            loop {
                let page = tx.scan(table, &prefix, None, 1000)?;
                if page.is_empty() {
                    break;
                }
                for (key, _) in page {
                    tx.delete(table, &key)?;
                }
            }
        }
        Ok(())
    }
}

/// What [`Ecr::delete_layer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerDeletion {
    /// The link is gone; garbage collection frees the blob once nothing
    /// else uses it.
    Unlinked,
    /// The repository had no such blob.
    NotLinked,
    /// Refused: these images of the repository (the first few) use it.
    InUse(Vec<Digest>),
}

/// The blobs (config and layers) an image needs.
pub(crate) fn image_blobs(image: &ImageRecord) -> EcrResult<Vec<Digest>> {
    if !image.blobs.is_empty() {
        return Ok(image.blobs.clone());
    }
    // Records written before `blobs` existed (and indexes, which have none).
    let parsed = manifest::parse(image.manifest.as_bytes(), Some(&image.media_type))?;
    Ok(parsed
        .required_blobs()
        .iter()
        .map(|d| d.digest.clone())
        .collect())
}

/// Deletes one image with its tags and referrer entry, inside a transaction.
pub(crate) fn delete_image_in(
    tx: &mut dyn WriteTxn,
    scope: &Scope,
    repo: &RepositoryName,
    digest: &Digest,
) -> EcrResult<Option<ImageRecord>> {
    let ikey = image_key(scope, repo.as_str(), digest);
    let Some(image) = load::<ImageRecord>(tx, Table::Images, &ikey)? else {
        return Ok(None);
    };
    for tag in &image.tags {
        tx.delete(Table::Tags, &tag_key(scope, repo.as_str(), tag))?;
    }
    if let Some(subject) = &image.subject {
        tx.delete(
            Table::Referrers,
            &referrer_key(scope, repo.as_str(), subject, digest),
        )?;
    }
    tx.delete(Table::Images, &ikey)?;
    super::scans::delete_scan_in(tx, &ikey)?;
    Ok(Some(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("latest", "latest"));
        assert!(wildcard_match("release-*", "release-1.2"));
        assert!(wildcard_match("*-dev", "feature-dev"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match("release-*", "prod"));
    }

    #[test]
    fn references() {
        assert_eq!(Reference::parse("v1").unwrap(), Reference::Tag("v1".into()));
        assert!(matches!(
            Reference::parse(&Digest::sha256_of(b"").to_string()).unwrap(),
            Reference::Digest(_)
        ));
        assert!(Reference::parse("-bad").is_err());
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
