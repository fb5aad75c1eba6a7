//! The image and layer operations of the ECR API over the one image model:
//! layer uploads in parts, layer availability and download checks, PutImage,
//! BatchGetImage, BatchDeleteImage, ListImages, DescribeImages and
//! ListImageReferrers, with ECR's batch failures, filters and paging.
//!
//! Implements the Amazon ECR API reference for those operations. Where the
//! reference is silent, the behaviour follows what ECR's own clients rely on
//! (the AWS CLI examples, `amazon-ecr-containerd-resolver`):
//! - `partSize` is 10485760 bytes and `partLastByte` is inclusive, so
//!   `lastByteReceived` is the index of the last byte held;
//! - a part below 5 MiB that is followed by another part makes
//!   CompleteLayerUpload fail with LayerPartTooSmallException (the model lists
//!   that error under CompleteLayerUpload, not UploadLayerPart);
//! - BatchCheckLayerAvailability reports a layer the repository lacks as
//!   `UNAVAILABLE`; `failures` are for digests that are missing or malformed;
//! - CompleteLayerUpload verifies the content first, then answers
//!   LayerAlreadyExistsException when the repository already held the layer;
//! - removing an image's last tag with BatchDeleteImage deletes the image
//!   ("When you remove the last tag from an image, the image is deleted from
//!   your repository"), and an image an index of the repository still lists
//!   is not deleted (`ImageReferencedByManifestList`);
//! - BatchGetImage counts as a pull ("When an image is pulled, the
//!   BatchGetImage API is called once to retrieve the image manifest") and
//!   sets lastRecordedPullTime; an image in the archive (or still being
//!   restored) is not pulled but answered as `ImageInaccessible`;
//! - without an `imageStatus` filter, ListImages and DescribeImages show
//!   `ACTIVE` images only ("If not specified, only images with ACTIVE status
//!   are returned");
//! - ListImages and DescribeImages page by digest order from a start key, so
//!   a page costs the same however many images the repository holds.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use regex::Regex;

use super::error::{EcrError, EcrResult, ErrorKind};
use super::images::{delete_image_in, image_key, tag_key};
use super::lifecycle_runs::{effective_status, last_activated_at, ACTIVE};
use super::manifest::{Descriptor, DOCKER_LIST, OCI_INDEX};
use super::names::{RepositoryName, Scope};
use super::records::{ImageRecord, UploadRecord};
use super::repositories::get_repository;
use super::{load, save, Ecr};
use crate::digest::Digest;
use crate::store::blobs::{BlobUrl, ByteStream};
use crate::store::{ReadTxn, Table};

/// The part size InitiateLayerUpload reports (what ECR answers).
pub const PART_SIZE: i64 = 10 * 1024 * 1024;
/// The smallest part that may be followed by another ("Layer parts must be
/// at least 5 MiB in size").
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// ListImages and DescribeImages page size when `maxResults` is absent.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// ListImageReferrers page size when `maxResults` is absent.
pub const DEFAULT_REFERRERS_PAGE_SIZE: usize = 20;
/// Images read per store scan at most while filling a page.
const SCAN_CHUNK: usize = 256;
/// Images a page may skip (filtered out) beyond its size before it returns
/// early with a `nextToken`, so no request scans a whole repository.
const SCAN_BUDGET: usize = 1000;

/// How many images a page's next store scan reads: what the page still
/// lacks plus one (to know whether more follow), within [`SCAN_CHUNK`] and
/// the scan budget. Reading a whole chunk of 256 for a page of 100 decoded
/// 2.5 times the records a page needs as soon as a repository held more
/// than a page (the cost measured by `benches/scale_bench.py`).
fn chunk_size(limit: usize, filled: usize, scanned: usize) -> usize {
    let wanted = limit.saturating_sub(filled).saturating_add(1);
    let budget = limit.saturating_add(SCAN_BUDGET).saturating_sub(scanned);
    wanted.min(SCAN_CHUNK).min(budget).max(1)
}

/// The digest pattern ECR quotes in failure reasons.
const DIGEST_PATTERN: &str = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+";
static DIGEST_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{DIGEST_PATTERN}$")).expect("digest pattern compiles"));

/// An image as a request names it: by digest, by tag, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageId {
    pub digest: Option<String>,
    pub tag: Option<String>,
}

impl ImageId {
    pub fn of(digest: &Digest, tag: Option<&str>) -> Self {
        ImageId {
            digest: Some(digest.to_string()),
            tag: tag.map(str::to_string),
        }
    }
}

/// One entry of a batch that failed: ECR's `failureCode` and `failureReason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFailure {
    pub id: ImageId,
    pub code: &'static str,
    pub reason: String,
}

/// `tagStatus` of the ListImages and DescribeImages filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagStatus {
    Tagged,
    Untagged,
    #[default]
    Any,
}

impl TagStatus {
    /// The wire value (already checked against the model's enum).
    pub fn parse(value: Option<&str>) -> TagStatus {
        match value {
            Some("TAGGED") => TagStatus::Tagged,
            Some("UNTAGGED") => TagStatus::Untagged,
            _ => TagStatus::Any,
        }
    }
}

/// The filter of ListImages and DescribeImages.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub tag_status: TagStatus,
    /// `ACTIVE`, `ARCHIVED`, `ACTIVATING` or `ANY`; absent means `ACTIVE`.
    pub image_status: Option<String>,
}

impl ImageFilter {
    /// Whether the filter lets `image` through at `now_ms` (an image's
    /// status is its storage state at that moment).
    fn admits(&self, image: &ImageRecord, now_ms: i64) -> bool {
        let status = effective_status(image, now_ms);
        let status_ok = match self.image_status.as_deref() {
            Some("ANY") => true,
            Some(wanted) => status == wanted,
            None => status == ACTIVE,
        };
        let tags_ok = match self.tag_status {
            TagStatus::Tagged => !image.tags.is_empty(),
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Any => true,
        };
        status_ok && tags_ok
    }
}

/// A page of results and the token for the next one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// One answer of BatchCheckLayerAvailability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerCheck {
    Available {
        digest: String,
        size: u64,
    },
    Unavailable {
        digest: String,
    },
    Failed {
        digest: String,
        code: &'static str,
        reason: String,
    },
}

/// An image found by BatchGetImage, with the identifier to answer with.
#[derive(Debug, Clone)]
pub struct FoundImage {
    pub id: ImageId,
    pub image: ImageRecord,
}

/// What ListImageReferrers asks for.
#[derive(Debug, Clone, Copy)]
pub struct ReferrerQuery<'a> {
    /// The subject's digest.
    pub subject: &'a str,
    /// Only these artifact types, when not empty.
    pub artifact_types: &'a [String],
    /// `ACTIVE` (the default), `ARCHIVED`, `ACTIVATING` or `ANY`.
    pub artifact_status: Option<&'a str>,
    pub next_token: Option<&'a str>,
    pub max_results: Option<usize>,
}

/// An image as DescribeImages shows it.
#[derive(Debug, Clone)]
pub struct DescribedImage {
    pub image: ImageRecord,
    /// imageSizeInBytes: for an index, the largest of its manifests.
    pub size_in_bytes: i64,
    /// imageStatus now: `ACTIVE`, `ARCHIVED` or `ACTIVATING`.
    pub status: &'static str,
    /// lastActivatedAt, once a restore has completed.
    pub last_activated_ms: Option<i64>,
    /// The image's latest scan (imageScanStatus, imageScanFindingsSummary).
    pub scan: Option<super::scans::ScanRecord>,
}

impl DescribedImage {
    fn new(
        image: ImageRecord,
        size_in_bytes: i64,
        now_ms: i64,
        scan: Option<super::scans::ScanRecord>,
    ) -> Self {
        DescribedImage {
            status: effective_status(&image, now_ms),
            last_activated_ms: last_activated_at(&image, now_ms),
            image,
            size_in_bytes,
            scan,
        }
    }
}

fn now_ms(ecr: &Ecr) -> i64 {
    ecr.clock.now_ms()
}

/// The key prefix of a repository's images (see `Table::Images`).
fn images_prefix(scope: &Scope, repo: &RepositoryName) -> String {
    format!("{}{}@", scope.key_prefix(), repo)
}

fn is_index(image: &ImageRecord) -> bool {
    image.media_type == OCI_INDEX || image.media_type == DOCKER_LIST
}

fn invalid_part(message: String) -> EcrError {
    EcrError::new(ErrorKind::InvalidLayerPart, message)
}

/// DescribeImages' answer for an image that is not there.
pub(crate) fn image_not_found(id: &ImageId, repo: &RepositoryName, scope: &Scope) -> EcrError {
    EcrError::new(
        ErrorKind::ImageNotFound,
        format!(
            "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{}' in the registry with id '{}'",
            id.digest.as_deref().unwrap_or("null"),
            id.tag.as_deref().unwrap_or("null"),
            repo,
            scope.account
        ),
    )
}

fn bad_token() -> EcrError {
    EcrError::invalid_parameter(
        "nextToken",
        "must be a nextToken returned by an earlier call",
    )
}

/// Tokens are opaque to clients: `<kind>:<digest>` and, for a position
/// inside an image's tags, `\n<tag>` (tags cannot hold a newline).
fn encode_token(kind: &str, digest: &Digest, tag: Option<&str>) -> String {
    let text = match tag {
        Some(tag) => format!("{kind}:{digest}\n{tag}"),
        None => format!("{kind}:{digest}"),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_token(kind: &str, token: &str) -> EcrResult<(Digest, Option<String>)> {
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(bad_token)?;
    let rest = text
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(bad_token)?;
    let (digest, tag) = match rest.split_once('\n') {
        Some((d, t)) => (d, Some(t.to_string())),
        None => (rest, None),
    };
    Ok((Digest::parse(digest).map_err(|_| bad_token())?, tag))
}

/// Resolves an identifier against the repository's tags and images, or says
/// why it cannot be, as a BatchGetImage/BatchDeleteImage failure.
pub(crate) fn resolve(
    tx: &(impl ReadTxn + ?Sized),
    scope: &Scope,
    repo: &RepositoryName,
    id: &ImageId,
) -> EcrResult<Result<ImageRecord, (&'static str, String)>> {
    const NOT_FOUND: &str = "Requested image not found";
    let not_found = || Ok(Err(("ImageNotFound", NOT_FOUND.to_string())));
    let digest = match id.digest.as_deref() {
        None => None,
        Some(d) if !DIGEST_SHAPE.is_match(d) => {
            return Ok(Err((
                "InvalidImageDigest",
                format!("Invalid request parameters: image digest should satisfy the regex '{DIGEST_PATTERN}'"),
            )))
        }
        Some(d) => match Digest::parse(d) {
            Ok(d) => Some(d),
            // Of the digest's shape, but of no algorithm or length a
            // manifest could have been stored under.
            Err(_) => return not_found(),
        },
    };
    let target = match (id.tag.as_deref(), digest) {
        (None, None) => {
            return Ok(Err((
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null".to_string(),
            )))
        }
        (Some(tag), digest) => {
            let Some(tagged) =
                load::<Digest>(tx, Table::Tags, &tag_key(scope, repo.as_str(), tag))?
            else {
                return not_found();
            };
            if digest.as_ref().is_some_and(|d| *d != tagged) {
                return Ok(Err((
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: given tag does not map to the given digest"
                        .to_string(),
                )));
            }
            tagged
        }
        (None, Some(digest)) => digest,
    };
    match load::<ImageRecord>(tx, Table::Images, &image_key(scope, repo.as_str(), &target))? {
        Some(image) => Ok(Ok(image)),
        None => not_found(),
    }
}

/// imageSizeInBytes: "If the image is a manifest list, this will be the max
/// size of all manifests in the list."
fn displayed_size(
    tx: &(impl ReadTxn + ?Sized),
    scope: &Scope,
    repo: &RepositoryName,
    image: &ImageRecord,
) -> EcrResult<i64> {
    if !is_index(image) || image.children.is_empty() {
        return Ok(image.size_in_bytes);
    }
    let mut largest = None;
    for child in &image.children {
        if let Some(c) =
            load::<ImageRecord>(tx, Table::Images, &image_key(scope, repo.as_str(), child))?
        {
            largest = largest.max(Some(c.size_in_bytes));
        }
    }
    Ok(largest.unwrap_or(image.size_in_bytes))
}

/// The ListImages entries of one image: one per tag, or one without a tag.
fn list_entries(image: &ImageRecord) -> Vec<Option<String>> {
    if image.tags.is_empty() {
        return vec![None];
    }
    let mut tags = image.tags.clone();
    tags.sort();
    tags.into_iter().map(Some).collect()
}

impl Ecr {
    // ------------------------------------------------------------ layers

    /// UploadLayerPart: appends one part. Parts must follow each other
    /// without gap or overlap and carry exactly `partLastByte -
    /// partFirstByte + 1` bytes. Returns `lastByteReceived`.
    pub async fn upload_layer_part(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        upload_id: &str,
        first_byte: u64,
        last_byte: u64,
        part: Bytes,
    ) -> EcrResult<u64> {
        let received = self.upload_size(scope, repo, upload_id).await?;
        // InvalidLayerPartException names the upload and where it stands.
        let refuse = |message: String, received: u64| {
            invalid_part(message)
                .with_field("registryId", scope.account.as_str())
                .with_field("repositoryName", repo.as_str())
                .with_field("uploadId", upload_id)
                .with_field("lastValidByteReceived", received.saturating_sub(1))
        };
        if first_byte != received {
            return Err(refuse(
                format!(
                    "The part's first byte {first_byte} is not consecutive to the last byte received {} for upload '{upload_id}'; the next part must start at byte {received} (lastValidByteReceived: {})",
                    received as i64 - 1,
                    received as i64 - 1
                ),
                received,
            ));
        }
        let length = part.len() as u64;
        if length == 0 {
            return Err(refuse(
                format!("The layer part for upload '{upload_id}' is empty"),
                received,
            ));
        }
        let span = (last_byte + 1).checked_sub(first_byte);
        if span != Some(length) {
            return Err(refuse(
                format!(
                    "The part from byte {first_byte} to byte {last_byte} does not match the {length} bytes of the layer part blob (lastValidByteReceived: {})",
                    received as i64 - 1
                ),
                received,
            ));
        }
        let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(part) }));
        let size = match self
            .append_upload(scope, repo, upload_id, Some(first_byte), body)
            .await
        {
            Ok(size) => size,
            Err(e) if e.kind == ErrorKind::InvalidLayerPart => {
                let now = self
                    .upload_size(scope, repo, upload_id)
                    .await
                    .unwrap_or(received);
                return Err(refuse(e.message, now));
            }
            Err(e) => return Err(e),
        };
        // A part is "last" only once no other follows, so a small one is
        // held against the upload when the next one arrives.
        let mut tx = self.store.write()?;
        if let Some(mut record) = load::<UploadRecord>(&*tx, Table::Uploads, upload_id)? {
            if let Some(previous) = record.last_part_size {
                if previous < MIN_PART_SIZE && record.undersized_part.is_none() {
                    record.undersized_part = Some(previous);
                }
            }
            record.last_part_size = Some(length);
            save(&mut *tx, Table::Uploads, upload_id, &record)?;
            tx.commit()?;
        }
        Ok(size.saturating_sub(1))
    }

    /// CompleteLayerUpload: checks the upload holds something and that its
    /// parts were large enough, verifies the content against the digest,
    /// and links the layer. A layer the repository already held is
    /// LayerAlreadyExistsException, after verification.
    pub async fn complete_layer_upload(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        upload_id: &str,
        layer_digests: &[String],
    ) -> EcrResult<Digest> {
        let size = self.upload_size(scope, repo, upload_id).await?;
        let digest = match layer_digests {
            [one] => Digest::parse(one)
                .map_err(|e| EcrError::invalid_parameter("layerDigests", &e.to_string()))?,
            _ => {
                return Err(EcrError::invalid_parameter(
                    "layerDigests",
                    "must contain exactly one digest",
                ))
            }
        };
        if size == 0 {
            return Err(EcrError::new(
                ErrorKind::EmptyUpload,
                format!("The upload with id '{upload_id}' does not contain any layer parts"),
            ));
        }
        let undersized = {
            let tx = self.store.read()?;
            load::<UploadRecord>(&*tx, Table::Uploads, upload_id)?.and_then(|r| r.undersized_part)
        };
        if let Some(part) = undersized {
            self.cancel_upload(scope, repo, upload_id).await?;
            return Err(EcrError::new(
                ErrorKind::LayerPartTooSmall,
                format!("Layer parts must be at least {MIN_PART_SIZE} bytes (5 MiB) in size, except the last: upload '{upload_id}' has a part of {part} bytes followed by another part"),
            ));
        }
        let existed = self.layer_size(scope, repo, &digest).await?.is_some();
        self.complete_upload(scope, repo, upload_id, &digest)
            .await?;
        if existed {
            return Err(EcrError::new(
                ErrorKind::LayerAlreadyExists,
                format!("Layer with digest '{digest}' already exists in the repository with name '{repo}' in registry with id '{}'", scope.account),
            ));
        }
        Ok(digest)
    }

    /// BatchCheckLayerAvailability, one answer per digest asked for.
    pub async fn check_layers(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digests: &[String],
    ) -> EcrResult<Vec<LayerCheck>> {
        self.repository(scope, repo)?;
        let mut out = Vec::with_capacity(digests.len());
        for text in digests {
            if text.is_empty() {
                out.push(LayerCheck::Failed {
                    digest: text.clone(),
                    code: "MissingLayerDigest",
                    reason: "Invalid request parameters: layer digest cannot be null or empty"
                        .to_string(),
                });
                continue;
            }
            let Ok(digest) = Digest::parse(text) else {
                out.push(LayerCheck::Failed {
                    digest: text.clone(),
                    code: "InvalidLayerDigest",
                    reason: format!("Invalid request parameters: layer digest should satisfy the regex '{DIGEST_PATTERN}' and name a sha256 or sha512 digest"),
                });
                continue;
            };
            out.push(match self.layer_size(scope, repo, &digest).await? {
                Some(size) => LayerCheck::Available {
                    digest: text.clone(),
                    size,
                },
                None => LayerCheck::Unavailable {
                    digest: text.clone(),
                },
            });
        }
        Ok(out)
    }

    /// GetDownloadUrlForLayer's checks: the layer is in the repository
    /// (LayersNotFoundException) and an image of it references the layer
    /// ("You can only get URLs for image layers that are referenced in an
    /// image": LayerInaccessibleException). Also where the layer is fetched
    /// from (`Ecr::blob_url`); a blob the store lost is LayersNotFound too.
    pub async fn layer_for_download(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &str,
    ) -> EcrResult<(Digest, BlobUrl)> {
        let digest = Digest::parse(digest)
            .map_err(|e| EcrError::invalid_parameter("layerDigest", &e.to_string()))?;
        let not_found = |digest: &Digest| {
            EcrError::new(
                ErrorKind::LayersNotFound,
                format!("The layer with digest '{digest}' does not exist in the repository with name '{repo}' in the registry with id '{}'", scope.account),
            )
        };
        let Some(size) = self.layer_size(scope, repo, &digest).await? else {
            return Err(not_found(&digest));
        };
        if !self.layer_is_referenced(scope, repo, &digest)? {
            return Err(EcrError::new(
                ErrorKind::LayerInaccessible,
                format!("The layer with digest '{digest}' in the repository with name '{repo}' in the registry with id '{}' is not associated with an image", scope.account),
            ));
        }
        match self.blob_url(&digest, size).await? {
            BlobUrl::Missing => Err(not_found(&digest)),
            url => Ok((digest, url)),
        }
    }

    /// Whether any image of the repository references the blob. Scans the
    /// repository's images until one does.
    fn layer_is_referenced(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<bool> {
        let mut after: Option<Digest> = None;
        loop {
            let batch = self.scan_images(scope, repo, after.as_ref(), SCAN_CHUNK)?;
            if batch.iter().any(|i| i.blobs.contains(digest)) {
                return Ok(true);
            }
            if batch.len() < SCAN_CHUNK {
                return Ok(false);
            }
            after = batch.last().map(|i| i.digest.clone());
        }
    }

    // ------------------------------------------------------------ images

    /// PutImage: pushes a manifest, optionally tagged, optionally checked
    /// against `imageDigest`. Pushing what is already there (same manifest,
    /// and same tag or none) is ImageAlreadyExistsException.
    pub fn put_image(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        manifest: &str,
        media_type: Option<&str>,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> EcrResult<ImageRecord> {
        let expected = digest
            .map(|d| {
                Digest::parse(d)
                    .map_err(|e| EcrError::invalid_parameter("imageDigest", &e.to_string()))
            })
            .transpose()?;
        // "If you push an image manifest that does not contain the mediaType
        // field, you must specify the imageManifestMediaType in the request."
        // ECR words the refusal as below, and clients (containers/image)
        // recognise it.
        let declares_type = serde_json::from_str::<serde_json::Value>(manifest)
            .ok()
            .is_some_and(|v| v.get("mediaType").is_some_and(|m| m.is_string()));
        if media_type.is_none() && !declares_type {
            return Err(EcrError::new(
                ErrorKind::InvalidParameter,
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
            ));
        }
        let pushed = self.put_manifest(
            scope,
            repo,
            tag,
            expected.as_ref(),
            &Bytes::copy_from_slice(manifest.as_bytes()),
            media_type,
        )?;
        if !pushed.changed {
            let digest = &pushed.image.digest;
            let message = match tag {
                Some(tag) => format!("Image with digest '{digest}' and tag '{tag}' already exists in the repository with name '{repo}' in registry with id '{}'", scope.account),
                None => format!("Image with digest '{digest}' already exists in the repository with name '{repo}' in registry with id '{}'", scope.account),
            };
            return Err(EcrError::new(ErrorKind::ImageAlreadyExists, message));
        }
        Ok(pushed.image)
    }

    /// BatchGetImage: the images named, and a failure for each that cannot
    /// be resolved. Records a pull of every image returned, unless the
    /// registry excludes `puller` from pull-time updates (`exclusions`).
    pub fn batch_get_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: &[ImageId],
        puller: &str,
    ) -> EcrResult<(Vec<FoundImage>, Vec<ImageFailure>)> {
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let now = now_ms(self);
        let records_pull = !super::exclusions::is_excluded(&*tx, scope, puller)?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        let mut pulled: HashSet<Digest> = HashSet::new();
        for id in ids {
            match resolve(&*tx, scope, repo, id)? {
                Err((code, reason)) => failures.push(ImageFailure {
                    id: id.clone(),
                    code,
                    reason,
                }),
                // Archived images (and those still being restored) cannot
                // be pulled.
                Ok(image) if effective_status(&image, now) != ACTIVE => {
                    failures.push(ImageFailure {
                        id: id.clone(),
                        code: "ImageInaccessible",
                        reason: format!(
                            "The image is {} and cannot be pulled; restore it to the STANDARD storage class with UpdateImageStorageClass",
                            effective_status(&image, now).to_ascii_lowercase()
                        ),
                    })
                }
                Ok(mut image) => {
                    if records_pull && pulled.insert(image.digest.clone()) {
                        image.last_pulled_ms = Some(now);
                        save(
                            &mut *tx,
                            Table::Images,
                            &image_key(scope, repo.as_str(), &image.digest),
                            &image,
                        )?;
                    }
                    found.push(FoundImage {
                        id: ImageId::of(&image.digest, id.tag.as_deref()),
                        image,
                    });
                }
            }
        }
        if !pulled.is_empty() {
            tx.commit()?;
        }
        Ok((found, failures))
    }

    /// BatchDeleteImage. Every identifier is resolved against the
    /// repository as it was before the call. A digest deletes the image and
    /// all its tags; a tag (with or without its digest) removes the tag, and
    /// removing an image's last tag deletes the image. Answers what was
    /// deleted, one identifier per tag removed (an untagged image by its
    /// digest alone), and the failures.
    pub fn batch_delete_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: &[ImageId],
    ) -> EcrResult<(Vec<ImageId>, Vec<ImageFailure>)> {
        struct Plan {
            image: ImageRecord,
            whole: bool,
            tags: Vec<String>,
            requests: Vec<usize>,
            blocked: bool,
        }
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, repo)?;
        let mut plans: Vec<Plan> = Vec::new();
        let mut failures: Vec<(usize, ImageFailure)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let image = match resolve(&*tx, scope, repo, id)? {
                Ok(image) => image,
                Err((code, reason)) => {
                    failures.push((
                        i,
                        ImageFailure {
                            id: id.clone(),
                            code,
                            reason,
                        },
                    ));
                    continue;
                }
            };
            let at = match plans.iter().position(|p| p.image.digest == image.digest) {
                Some(at) => at,
                None => {
                    plans.push(Plan {
                        image,
                        whole: false,
                        tags: Vec::new(),
                        requests: Vec::new(),
                        blocked: false,
                    });
                    plans.len() - 1
                }
            };
            let plan = &mut plans[at];
            plan.requests.push(i);
            match &id.tag {
                Some(tag) if !plan.tags.contains(tag) => plan.tags.push(tag.clone()),
                Some(_) => {}
                None => plan.whole = true,
            }
        }
        for plan in &mut plans {
            if plan.image.tags.iter().all(|t| plan.tags.contains(t)) {
                plan.whole = true;
            }
        }

        let doomed: HashSet<Digest> = plans
            .iter()
            .filter(|p| p.whole)
            .map(|p| p.image.digest.clone())
            .collect();
        if !doomed.is_empty() {
            let parents = self.indexes_listing(&*tx, scope, repo, &doomed)?;
            for plan in plans.iter_mut().filter(|p| p.whole) {
                if let Some(list) = parents.get(&plan.image.digest) {
                    plan.blocked = true;
                    let refused = EcrError::referenced_by_manifest_list(list);
                    for &i in &plan.requests {
                        failures.push((
                            i,
                            ImageFailure {
                                id: ids[i].clone(),
                                code: refused.kind.code(),
                                reason: refused.message.clone(),
                            },
                        ));
                    }
                }
            }
        }

        let mut deleted = Vec::new();
        for plan in plans.iter().filter(|p| !p.blocked) {
            let digest = &plan.image.digest;
            if plan.whole {
                delete_image_in(&mut *tx, scope, repo, digest)?;
                if plan.image.tags.is_empty() {
                    deleted.push(ImageId::of(digest, None));
                }
                for tag in &plan.image.tags {
                    deleted.push(ImageId::of(digest, Some(tag)));
                }
            } else {
                let mut image = plan.image.clone();
                for tag in &plan.tags {
                    tx.delete(Table::Tags, &tag_key(scope, repo.as_str(), tag))?;
                    deleted.push(ImageId::of(digest, Some(tag)));
                }
                image.tags.retain(|t| !plan.tags.contains(t));
                save(
                    &mut *tx,
                    Table::Images,
                    &image_key(scope, repo.as_str(), digest),
                    &image,
                )?;
            }
        }
        tx.commit()?;
        failures.sort_by_key(|(i, _)| *i);
        Ok((deleted, failures.into_iter().map(|(_, f)| f).collect()))
    }

    /// For each image of `children`, the indexes of the repository (other
    /// than those in `children`) that list it. Reads every image of the
    /// repository: there is no reverse index from a manifest to the indexes
    /// that list it.
    pub(crate) fn indexes_listing(
        &self,
        tx: &(impl ReadTxn + ?Sized),
        scope: &Scope,
        repo: &RepositoryName,
        children: &HashSet<Digest>,
    ) -> EcrResult<HashMap<Digest, Vec<Digest>>> {
        let prefix = images_prefix(scope, repo);
        let mut parents: HashMap<Digest, Vec<Digest>> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = tx.scan(Table::Images, &prefix, after.as_deref(), 1000)?;
            let full = page.len() == 1000;
            after = page.last().map(|(k, _)| k.clone());
            for (_, bytes) in page {
                let image: ImageRecord = serde_json::from_slice(&bytes)?;
                if image.children.is_empty() || children.contains(&image.digest) {
                    continue;
                }
                for child in image.children.iter().filter(|c| children.contains(*c)) {
                    parents
                        .entry(child.clone())
                        .or_default()
                        .push(image.digest.clone());
                }
            }
            if !full {
                return Ok(parents);
            }
        }
    }

    /// ListImages: one identifier per tag, and one (digest only) per
    /// untagged image, in digest order then tag order.
    pub fn list_image_ids(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        filter: &ImageFilter,
        next_token: Option<&str>,
        max_results: Option<usize>,
    ) -> EcrResult<Page<ImageId>> {
        const KIND: &str = "image-ids";
        let now = now_ms(self);
        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let (mut after, resume_tag) = match next_token {
            Some(token) => {
                let (digest, tag) = decode_token(KIND, token)?;
                (Some(digest), tag)
            }
            None => (None, None),
        };
        let mut items: Vec<ImageId> = Vec::new();
        let mut last: Option<(Digest, Option<String>)> = None;

        // Finish the image the previous page stopped inside of.
        if let (Some(digest), Some(tag)) = (&after, &resume_tag) {
            let image: Option<ImageRecord> = {
                let tx = self.store.read()?;
                get_repository(&*tx, scope, repo)?;
                load(
                    &*tx,
                    Table::Images,
                    &image_key(scope, repo.as_str(), digest),
                )?
            };
            if let Some(image) = image.filter(|i| filter.admits(i, now)) {
                for entry in list_entries(&image)
                    .into_iter()
                    .filter(|t| t.as_deref() > Some(tag.as_str()))
                {
                    if items.len() == limit {
                        let (d, t) = last.unwrap_or((digest.clone(), Some(tag.clone())));
                        return Ok(Page {
                            items,
                            next_token: Some(encode_token(KIND, &d, t.as_deref())),
                        });
                    }
                    items.push(ImageId::of(digest, entry.as_deref()));
                    last = Some((digest.clone(), entry));
                }
            }
        }

        let mut scanned = 0;
        loop {
            let chunk = chunk_size(limit, items.len(), scanned);
            let batch = self.scan_images(scope, repo, after.as_ref(), chunk)?;
            let exhausted = batch.len() < chunk;
            for image in batch {
                scanned += 1;
                if filter.admits(&image, now) {
                    for entry in list_entries(&image) {
                        if items.len() == limit {
                            let token = last
                                .as_ref()
                                .map(|(d, t)| encode_token(KIND, d, t.as_deref()));
                            return Ok(Page {
                                items,
                                next_token: token,
                            });
                        }
                        items.push(ImageId::of(&image.digest, entry.as_deref()));
                        last = Some((image.digest.clone(), entry));
                    }
                }
                after = Some(image.digest);
            }
            if exhausted {
                return Ok(Page {
                    items,
                    next_token: None,
                });
            }
            if scanned >= limit + SCAN_BUDGET {
                // Return what there is; the token resumes after the last
                // image read, whether or not it was listed.
                let token = after.as_ref().map(|d| encode_token(KIND, d, None));
                return Ok(Page {
                    items,
                    next_token: token,
                });
            }
        }
    }

    /// DescribeImages: the images named (each must exist), or a page of the
    /// repository's images in digest order.
    pub fn describe_images(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        ids: Option<&[ImageId]>,
        filter: &ImageFilter,
        next_token: Option<&str>,
        max_results: Option<usize>,
    ) -> EcrResult<Page<DescribedImage>> {
        const KIND: &str = "image-details";
        let now = now_ms(self);
        if let Some(ids) = ids {
            if max_results.is_some() || next_token.is_some() {
                return Err(EcrError::invalid_parameter(
                    if max_results.is_some() {
                        "maxResults"
                    } else {
                        "nextToken"
                    },
                    "cannot be specified together with imageIds",
                ));
            }
            let tx = self.store.read()?;
            get_repository(&*tx, scope, repo)?;
            let mut items: Vec<DescribedImage> = Vec::new();
            for id in ids {
                let image = match resolve(&*tx, scope, repo, id)? {
                    Ok(image) => image,
                    Err(("MissingDigestAndTag" | "InvalidImageDigest", reason)) => {
                        return Err(EcrError::new(ErrorKind::InvalidParameter, reason))
                    }
                    Err(_) => return Err(image_not_found(id, repo, scope)),
                };
                if items.iter().all(|d| d.image.digest != image.digest) {
                    let size_in_bytes = displayed_size(&*tx, scope, repo, &image)?;
                    let scan = Ecr::scan_of(&*tx, scope, repo.as_str(), &image.digest)?;
                    items.push(DescribedImage::new(image, size_in_bytes, now, scan));
                }
            }
            return Ok(Page {
                items,
                next_token: None,
            });
        }

        let limit = max_results.unwrap_or(DEFAULT_PAGE_SIZE).max(1);
        let mut after = match next_token {
            Some(token) => Some(decode_token(KIND, token)?.0),
            None => None,
        };
        let mut images: Vec<ImageRecord> = Vec::new();
        let mut scanned = 0;
        let next_token = loop {
            let chunk = chunk_size(limit, images.len(), scanned);
            let batch = self.scan_images(scope, repo, after.as_ref(), chunk)?;
            let exhausted = batch.len() < chunk;
            let mut full = false;
            for image in batch {
                if filter.admits(&image, now) {
                    if images.len() == limit {
                        full = true;
                        break;
                    }
                    after = Some(image.digest.clone());
                    images.push(image);
                } else {
                    after = Some(image.digest);
                }
                scanned += 1;
            }
            if full {
                break images.last().map(|i| encode_token(KIND, &i.digest, None));
            }
            if exhausted {
                break None;
            }
            if scanned >= limit + SCAN_BUDGET {
                break after.as_ref().map(|d| encode_token(KIND, d, None));
            }
        };
        let tx = self.store.read()?;
        let digests: Vec<_> = images.iter().map(|i| i.digest.clone()).collect();
        let mut scans = Ecr::scans_of_page(&*tx, scope, repo.as_str(), &digests)?;
        let items = images
            .into_iter()
            .map(|image| {
                let size_in_bytes = displayed_size(&*tx, scope, repo, &image)?;
                let scan = scans.remove(&image.digest);
                Ok(DescribedImage::new(image, size_in_bytes, now, scan))
            })
            .collect::<EcrResult<Vec<_>>>()?;
        Ok(Page { items, next_token })
    }

    /// ListImageReferrers: the manifests whose `subject` is the image, in
    /// digest order, optionally of some artifact types only.
    pub fn list_image_referrers(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        query: &ReferrerQuery<'_>,
    ) -> EcrResult<Page<Descriptor>> {
        const KIND: &str = "referrers";
        let ReferrerQuery {
            subject,
            artifact_types,
            artifact_status,
            next_token,
            max_results,
        } = *query;
        let subject = Digest::parse(subject)
            .map_err(|e| EcrError::invalid_parameter("subjectId.imageDigest", &e.to_string()))?;
        let after = match next_token {
            Some(token) => Some(decode_token(KIND, token)?.0),
            None => None,
        };
        let limit = max_results.unwrap_or(DEFAULT_REFERRERS_PAGE_SIZE).max(1);
        // Every stored artifact is ACTIVE; archival is not modelled.
        let active_wanted = matches!(artifact_status, None | Some("ACTIVE") | Some("ANY"));
        let all = self.referrers(scope, repo, &subject, None)?;
        let mut matching = all.into_iter().filter(|d| {
            active_wanted
                && after.as_ref().is_none_or(|a| d.digest > *a)
                && (artifact_types.is_empty()
                    || d.artifact_type
                        .as_ref()
                        .is_some_and(|t| artifact_types.contains(t)))
        });
        let items: Vec<Descriptor> = matching.by_ref().take(limit).collect();
        let next_token = match (items.last(), matching.next()) {
            (Some(last), Some(_)) => Some(encode_token(KIND, &last.digest, None)),
            _ => None,
        };
        Ok(Page { items, next_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let d = Digest::sha256_of(b"x");
        let t = encode_token("image-ids", &d, Some("v1"));
        assert_eq!(
            decode_token("image-ids", &t).expect("token decodes"),
            (d.clone(), Some("v1".to_string()))
        );
        let t = encode_token("image-details", &d, None);
        assert_eq!(
            decode_token("image-details", &t).expect("token decodes"),
            (d, None)
        );
        assert!(decode_token("image-ids", &t).is_err());
        assert!(decode_token("image-ids", "!!").is_err());
    }

    #[test]
    fn filters() {
        let image = |tags: &[&str]| ImageRecord {
            digest: Digest::sha256_of(b"m"),
            manifest: String::new(),
            media_type: String::new(),
            artifact_type: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            size_in_bytes: 0,
            pushed_at_ms: 0,
            last_pulled_ms: None,
            subject: None,
            children: Vec::new(),
            blobs: Vec::new(),
            status: "ACTIVE".into(),
            last_archived_ms: None,
            last_activated_ms: None,
        };
        let tagged = ImageFilter {
            tag_status: TagStatus::Tagged,
            image_status: None,
        };
        assert!(tagged.admits(&image(&["a"]), 0));
        assert!(!tagged.admits(&image(&[]), 0));
        let archived = ImageFilter {
            tag_status: TagStatus::Any,
            image_status: Some("ARCHIVED".into()),
        };
        assert!(!archived.admits(&image(&["a"]), 0));
        assert_eq!(
            list_entries(&image(&["b", "a"])),
            vec![Some("a".to_string()), Some("b".to_string())]
        );
        assert_eq!(list_entries(&image(&[])), vec![None]);
    }
}
