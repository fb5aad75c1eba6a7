//! Serving a pull through the cache. A pull (on either plane) of a
//! repository under a rule's prefix that the cache cannot answer fetches the
//! manifest from the rule's upstream, verifies its digest (against the
//! digest asked for, and the upstream's `Docker-Content-Digest`), fetches
//! and verifies every blob an image manifest needs, creates the repository
//! (from the registry's matching PULL_THROUGH_CACHE creation template, or
//! with ECR's defaults) and stores manifest and blobs; the pull is then
//! served from the cache. An index is stored on its own: the child a client
//! then asks for (by digest) is fetched the same way when asked for.
//!
//! Later pulls come from the cache. A tag is checked against the upstream
//! at most once per [`TAG_RECHECK_MS`] (the user guide: ECR "checks the
//! upstream registry for a new version of the image with that specific tag
//! ... at least once every 24 hours"), on ecrd's clock; a changed tag is
//! imported again. An upstream that is down or refuses leaves cached
//! content served; content not cached then fails with
//! UnableToGetUpstreamImageException (or ...LayerException for a blob).
//!
//! Access (user guide, "IAM permissions required to sync an upstream
//! registry"): importing needs `ecr:BatchImportUpstreamImage` on the
//! repository, and `ecr:CreateRepository` when the repository does not
//! exist yet, besides the pull's own actions.
//!
//! Blobs are streamed from the upstream into the blob store (hashed as
//! they arrive, never buffered whole) and verified before anything refers
//! to them; a digest mismatch stores nothing. A blob a client GETs on
//! `/v2/` that is not cached yet is served while it arrives
//! ([`Ecr::stream_blob_through`]): each chunk goes to the client and to the
//! blob store, and the response ends only once the store has verified the
//! whole blob; a mismatch ends it with an error instead (the client sees a
//! broken transfer, never a wrong blob that looks complete), and nothing is
//! kept.
//!
//! A manifest is answered as soon as it is fetched and verified: its
//! image's blobs are imported by a background task (four at a time), and
//! the image record and tag are committed once every blob is stored, so an
//! image never refers to a missing blob. Until then the import is in
//! flight ([`super::in_flight`]): pulls of the same reference or digest are
//! answered with its manifest and start nothing, and a blob the import is
//! fetching is not fetched again: a client's GET of it waits until the
//! import has stored it, then is served from the cache (a blob GET that
//! comes first streams it through, and the import then uses what the GET
//! stored). An import that fails (the upstream drops, a digest mismatch)
//! commits nothing, no repository or layer link; the next pull starts
//! again. The first pull of an image is recorded (lastRecordedPullTime)
//! when its import commits.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::in_flight::BlobClaim;
use super::{RuleRecord, ROOT};
use crate::digest::Digest;
use crate::ecr::caller::Caller;
use crate::ecr::error::{EcrError, EcrResult, ErrorKind};
use crate::ecr::images::{image_key, layer_key, tag_key, Origin, Reference};
use crate::ecr::manifest;
use crate::ecr::names::{RepositoryName, Scope};
use crate::ecr::repositories::get_repository;
use crate::ecr::templates::PULL_THROUGH_CACHE;
use crate::ecr::{load, save, Ecr};
use crate::store::blobs::{BlobError, ByteStream};
use crate::store::Table;
use crate::upstream::{RegistryClient, UpstreamError};

/// How many blobs of one image are fetched from the upstream at once.
const PARALLEL_BLOB_FETCHES: usize = 4;

/// Chunks in flight between the client's response and the blob store.
const TEE_DEPTH: usize = 8;

/// A blob served while it is fetched from the upstream and cached.
pub struct StreamedBlob {
    /// The upstream's `Content-Length`, when it sent one.
    pub length: Option<u64>,
    pub body: ByteStream,
}

/// A manifest fetched from the upstream and verified: what a pull is
/// answered with while its image is imported.
#[derive(Debug, Clone)]
pub struct FetchedImage {
    pub digest: Digest,
    pub media_type: String,
    pub manifest: Bytes,
}

/// A background import: what it needs once the pull has been answered.
struct Import {
    client: RegistryClient,
    upstream_repo: String,
    scope: Scope,
    repo: RepositoryName,
    tag: Option<String>,
    fetched: FetchedImage,
    blobs: Vec<Digest>,
    /// The principal whose pull (a GET, not a HEAD) started the import.
    pulled_by: Option<String>,
    /// When the tag was checked upstream.
    checked_at_ms: i64,
}

/// The in-flight key of `reference` (a tag or a digest) in `repo`.
fn in_flight_key(scope: &Scope, repo: &RepositoryName, reference: &str) -> String {
    format!("{}{repo}\n{reference}", scope.key_prefix())
}

/// An upload of a blob streamed through, with what it holds until the blob
/// is linked: `collection` shared and the blob's claim.
struct StreamedUpload {
    id: String,
    scope: Scope,
    repo: RepositoryName,
    digest: Digest,
    _publishing: crate::ecr::collection_lock::CollectionGuard,
    _claim: super::in_flight::BlobGuard,
}

/// How long a cached tag is served before the upstream is asked again.
pub const TAG_RECHECK_MS: i64 = 24 * 60 * 60 * 1000;

/// The upstream repository a cache repository stands for: the name
/// without the rule's prefix, under the rule's upstream repository prefix
/// when it has one; Docker Hub's official images live under `library/`.
pub fn upstream_repository(rule: &RuleRecord, name: &str) -> String {
    let rest = if rule.prefix == ROOT {
        name
    } else {
        let namespace = super::canonical_prefix(&rule.prefix);
        name.strip_prefix(namespace)
            .and_then(|r| r.strip_prefix('/'))
            .unwrap_or(name)
    };
    let mapped = match rule.upstream_repository_prefix.as_deref() {
        Some(p) if p != ROOT => format!("{}/{rest}", p.trim_end_matches('/')),
        _ => rest.to_string(),
    };
    if rule.upstream_registry == "docker-hub" && !mapped.contains('/') {
        format!("library/{mapped}")
    } else {
        mapped
    }
}

fn image_unavailable(repo: &RepositoryName, reference: &str, why: &UpstreamError) -> EcrError {
    EcrError::new(
        ErrorKind::UnableToGetUpstreamImage,
        format!("Unable to get the image '{reference}' of the repository '{repo}' from the upstream registry: {why}"),
    )
}

fn layer_unavailable(digest: &Digest, why: &str) -> EcrError {
    EcrError::new(
        ErrorKind::UnableToGetUpstreamLayer,
        format!("Unable to get the layer '{digest}' from the upstream registry: {why}"),
    )
}

/// What the cache holds for a manifest reference.
enum Cached {
    /// Nothing: fetch it.
    Missing,
    /// Served as is.
    Fresh,
    /// A tag whose check is due; its current digest.
    Stale(Digest),
}

impl Ecr {
    /// Makes sure a manifest pull of `repo` by `reference` can be
    /// answered, fetching from the upstream when a rule covers `repo` and
    /// the cache does not hold it. `None`: answer from the cache (for a
    /// repository no rule covers, always). `Some`: answer with this
    /// manifest, whose image is being imported. `pulled_by` is the puller
    /// to record once the import commits (`None` for a HEAD).
    pub async fn pull_through_manifest(
        self: &Arc<Self>,
        caller: &Caller,
        scope: &Scope,
        repo: &RepositoryName,
        reference: &Reference,
        pulled_by: Option<&str>,
    ) -> EcrResult<Option<FetchedImage>> {
        let now = self.clock.now_ms();
        let (rule, cached, repo_exists) = {
            let tx = self.store.read()?;
            let Some(rule) = self.rule_for(&*tx, scope, repo.as_str())? else {
                return Ok(None);
            };
            let repo_exists = get_repository(&*tx, scope, repo).is_ok();
            let cached = match reference {
                Reference::Digest(d) => {
                    if tx
                        .get(Table::Images, &image_key(scope, repo.as_str(), d))?
                        .is_some()
                    {
                        Cached::Fresh
                    } else {
                        Cached::Missing
                    }
                }
                Reference::Tag(t) => {
                    let key = tag_key(scope, repo.as_str(), t);
                    match load::<Digest>(&*tx, Table::Tags, &key)? {
                        None => Cached::Missing,
                        Some(d) => {
                            let checked: Option<i64> = load(&*tx, Table::UpstreamTagChecks, &key)?;
                            if checked.is_some_and(|c| now - c < TAG_RECHECK_MS) {
                                Cached::Fresh
                            } else {
                                Cached::Stale(d)
                            }
                        }
                    }
                }
            };
            (rule, cached, repo_exists)
        };
        if matches!(cached, Cached::Fresh) {
            return Ok(None);
        }
        let have_cached = matches!(cached, Cached::Stale(_));
        let mut actions = vec!["ecr:BatchImportUpstreamImage"];
        if !repo_exists {
            actions.push("ecr:CreateRepository");
        }
        if let Err(e) = self.authorize_all(caller, &actions, scope, Some(repo.as_str())) {
            // A caller who may not import still gets what is cached.
            return if have_cached { Ok(None) } else { Err(e) };
        }
        let reference_text = match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(d) => d.to_string(),
        };
        let key = in_flight_key(scope, repo, &reference_text);
        if let Some(importing) = self.in_flight.image(&key) {
            return Ok(Some(importing));
        }
        let client = match self.upstream_client(scope, &rule) {
            Ok(c) => c,
            Err(e) => return if have_cached { Ok(None) } else { Err(e) },
        };
        let upstream_repo = upstream_repository(&rule, repo.as_str());
        if let Cached::Stale(current) = &cached {
            match client
                .manifest_digest(&upstream_repo, &reference_text)
                .await
            {
                Ok(Some(d)) if d == current.to_string() => {
                    self.record_tag_check(scope, repo, &reference_text, now)?;
                    return Ok(None);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(repository = %repo, error = %e, "upstream unavailable; serving the cached tag");
                    return Ok(None);
                }
            }
        }
        let fetched = match self
            .fetch_manifest(&client, &upstream_repo, repo, reference)
            .await
        {
            Ok(f) => f,
            Err(e) if have_cached => {
                tracing::info!(repository = %repo, error = %e, "upstream refresh failed; serving the cached tag");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let tag = match reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let parsed = manifest::parse(&fetched.manifest, Some(&fetched.media_type))?;
        let mut blobs: Vec<Digest> = parsed
            .required_blobs()
            .into_iter()
            .map(|b| b.digest.clone())
            .collect();
        blobs.sort();
        blobs.dedup();
        let import = Import {
            client,
            upstream_repo,
            scope: scope.clone(),
            repo: repo.clone(),
            tag,
            fetched: fetched.clone(),
            blobs,
            pulled_by: pulled_by.map(str::to_string),
            checked_at_ms: now,
        };
        if import.blobs.is_empty() {
            // An index (or an artifact without blobs): nothing to wait for,
            // so stored before the pull is answered.
            self.import_blobs(&import).await?;
            if let Some(t) = &import.tag {
                self.record_tag_check(scope, repo, t, now)?;
            }
            return Ok(None);
        }
        let mut keys = vec![key];
        let digest_key = in_flight_key(scope, repo, &fetched.digest.to_string());
        if !keys.contains(&digest_key) {
            keys.push(digest_key);
        }
        let registered = match self.in_flight.begin_image(keys, &fetched, &import.blobs) {
            Ok(guard) => guard,
            // A concurrent pull fetched the same image first: share it.
            Err(importing) => return Ok(Some(importing)),
        };
        let ecr = self.clone();
        tokio::spawn(async move {
            ecr.run_import(import).await;
            // Only now, with the image committed (or given up), may a pull
            // find neither the import nor the image and start again.
            drop(registered);
        });
        Ok(Some(fetched))
    }

    /// Pull through imports whose manifest has been answered and whose
    /// image is not committed yet.
    pub fn pull_through_imports(&self) -> usize {
        self.in_flight.images_in_flight()
    }

    /// A background import: its blobs, then its image; logged either way.
    async fn run_import(&self, import: Import) {
        let repo = &import.repo;
        let digest = &import.fetched.digest;
        if let Err(e) = self.import_blobs(&import).await {
            tracing::warn!(repository = %repo, %digest, error = %e.message, "pull through import failed; the next pull tries again");
            return;
        }
        if let Some(tag) = &import.tag {
            if let Err(e) = self.record_tag_check(&import.scope, repo, tag, import.checked_at_ms) {
                tracing::warn!(repository = %repo, error = %e.message, "recording the upstream tag check failed");
            }
        }
        if let Some(puller) = &import.pulled_by {
            let pulled = Reference::Digest(digest.clone());
            if let Err(e) = self.get_image(&import.scope, repo, &pulled, Some(puller)) {
                tracing::warn!(repository = %repo, error = %e.message, "recording the pull failed");
            }
        }
        tracing::info!(repository = %repo, %digest, blobs = import.blobs.len(), "image imported through the cache");
    }

    /// Makes sure the cache holds a blob a pull of `repo` asks for, fetching
    /// it from the upstream when a rule covers `repo`.
    pub async fn pull_through_blob(
        &self,
        caller: &Caller,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<()> {
        let Some(rule) = self.blob_to_import(caller, scope, repo, digest)? else {
            return Ok(());
        };
        let client = self.upstream_client(scope, &rule)?;
        let upstream_repo = upstream_repository(&rule, repo.as_str());
        let _publishing = self.collection.read().await?;
        let size = self.fetch_blob(&client, &upstream_repo, digest).await?;
        let mut tx = self.store.write()?;
        self.ensure_cache_repository(&mut *tx, scope, repo)?;
        self.link_layer(&mut *tx, scope, repo, digest, size)?;
        tx.commit()?;
        Ok(())
    }

    /// [`Ecr::pull_through_blob`] for GetDownloadUrlForLayer, which hands
    /// out URLs only for layers an image uses: also waits until the imports
    /// in flight in `repo` that need the layer have committed their image.
    pub async fn pull_through_layer(
        &self,
        caller: &Caller,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<()> {
        self.pull_through_blob(caller, scope, repo, digest).await?;
        self.in_flight
            .wait_for_images_needing(&in_flight_key(scope, repo, ""), digest)
            .await;
        Ok(())
    }

    /// The rule a blob pull of `repo` must import `digest` through: `None`
    /// when no rule covers `repo` or the blob is already linked into it.
    /// Importing needs `ecr:BatchImportUpstreamImage` (and
    /// `ecr:CreateRepository` for a repository not made yet).
    fn blob_to_import(
        &self,
        caller: &Caller,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<Option<RuleRecord>> {
        let (rule, repo_exists) = {
            let tx = self.store.read()?;
            let Some(rule) = self.rule_for(&*tx, scope, repo.as_str())? else {
                return Ok(None);
            };
            if tx
                .get(Table::Layers, &layer_key(scope, repo.as_str(), digest))?
                .is_some()
            {
                return Ok(None);
            }
            (rule, get_repository(&*tx, scope, repo).is_ok())
        };
        let mut actions = vec!["ecr:BatchImportUpstreamImage"];
        if !repo_exists {
            actions.push("ecr:CreateRepository");
        }
        self.authorize_all(caller, &actions, scope, Some(repo.as_str()))?;
        Ok(Some(rule))
    }

    /// Finishes an upload of fetched bytes: the blob's size once verified
    /// against `digest`, else the upload is dropped and the layer is
    /// unavailable.
    async fn finish_fetched(&self, id: &str, digest: &Digest) -> EcrResult<u64> {
        match self.blobs.finish_upload(id, digest).await {
            Ok(size) => Ok(size),
            Err(BlobError::DigestMismatch { computed }) => {
                let _ = self.blobs.cancel_upload(id).await;
                Err(layer_unavailable(
                    digest,
                    &format!("the upstream's content has the digest '{computed}'"),
                ))
            }
            Err(e) => {
                let _ = self.blobs.cancel_upload(id).await;
                Err(layer_unavailable(digest, &e.to_string()))
            }
        }
    }

    /// A `/v2/` blob GET of `repo` that the cache cannot answer yet, when a
    /// rule covers it: the upstream's blob, streamed to the caller while it
    /// is written to the blob store; linked into the repository once
    /// verified. `None` when there is nothing to fetch (no rule, or cached:
    /// serve from the cache).
    pub async fn stream_blob_through(
        self: &Arc<Self>,
        caller: &Caller,
        scope: &Scope,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> EcrResult<Option<StreamedBlob>> {
        let Some(rule) = self.blob_to_import(caller, scope, repo, digest)? else {
            return Ok(None);
        };
        loop {
            if self.blobs.size(digest).await?.is_some() {
                // Stored (for another repository, or by the fetch waited
                // for below): only the link is missing.
                self.pull_through_blob(caller, scope, repo, digest).await?;
                return Ok(None);
            }
            // Taken before the claim (the lock order of `in_flight`).
            let publishing = self.collection.read().await?;
            let claim = match self.in_flight.claim_blob(digest) {
                BlobClaim::Mine(claim) => claim,
                theirs => {
                    // An import is fetching it: wait, then serve the cache.
                    drop(publishing);
                    theirs.wait().await;
                    continue;
                }
            };
            if self.blobs.size(digest).await?.is_some() {
                continue;
            }
            let client = self.upstream_client(scope, &rule)?;
            let upstream_repo = upstream_repository(&rule, repo.as_str());
            let fetched = client
                .blob(&upstream_repo, &digest.to_string())
                .await
                .map_err(|e| layer_unavailable(digest, &e.to_string()))?;
            let id = self.blobs.create_upload().await?;
            let (to_store, from_client) =
                tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(TEE_DEPTH);
            let stored = tokio::spawn(self.clone().store_streamed_blob(
                StreamedUpload {
                    id,
                    scope: scope.clone(),
                    repo: repo.clone(),
                    digest: digest.clone(),
                    _publishing: publishing,
                    _claim: claim,
                },
                from_client,
            ));
            return Ok(Some(StreamedBlob {
                length: fetched.length,
                body: tee(fetched.body, to_store, stored),
            }));
        }
    }

    /// The blob store's side of [`Ecr::stream_blob_through`]: writes what
    /// the response passes on, verifies it and links it into the cache
    /// repository. Holds `collection` and the blob's claim until the blob
    /// is linked (or refused).
    async fn store_streamed_blob(
        self: Arc<Self>,
        upload: StreamedUpload,
        mut chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    ) -> EcrResult<()> {
        let StreamedUpload {
            id,
            scope,
            repo,
            digest,
            ..
        } = &upload;
        let body: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| {
            chunks.poll_recv(cx)
        }));
        if let Err(e) = self.blobs.append_upload(id, body).await {
            let _ = self.blobs.cancel_upload(id).await;
            return Err(layer_unavailable(digest, &e.to_string()));
        }
        let size = self.finish_fetched(id, digest).await?;
        let mut tx = self.store.write()?;
        self.ensure_cache_repository(&mut *tx, scope, repo)?;
        self.link_layer(&mut *tx, scope, repo, digest, size)?;
        tx.commit()?;
        tracing::info!(repository = %repo, %digest, size, "blob cached while it was served");
        Ok(())
    }

    fn record_tag_check(
        &self,
        scope: &Scope,
        repo: &RepositoryName,
        tag: &str,
        now: i64,
    ) -> EcrResult<()> {
        let mut tx = self.store.write()?;
        save(
            &mut *tx,
            Table::UpstreamTagChecks,
            &tag_key(scope, repo.as_str(), tag),
            &now,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Creates the cache repository inside `tx` if it is missing: from the
    /// matching PULL_THROUGH_CACHE template, or with ECR's defaults.
    fn ensure_cache_repository(
        &self,
        tx: &mut dyn crate::store::WriteTxn,
        scope: &Scope,
        repo: &RepositoryName,
    ) -> EcrResult<()> {
        if get_repository(&*tx, scope, repo).is_ok() {
            return Ok(());
        }
        let template = self.matching_template(&*tx, scope, repo.as_str(), PULL_THROUGH_CACHE)?;
        self.create_repository_in(tx, scope, repo, template.as_ref())?;
        tracing::info!(repository = %repo, "repository created by a pull through the cache");
        Ok(())
    }

    /// Streams one blob from the upstream into the blob store, verified
    /// against its digest; returns its size. Already stored: nothing
    /// fetched. Being fetched by someone else (a client's GET streamed
    /// through, another import): waits for that fetch instead of starting
    /// another. The caller holds `collection` (taken before this claims the
    /// blob) until the blob is linked.
    async fn fetch_blob(
        &self,
        client: &RegistryClient,
        upstream_repo: &str,
        digest: &Digest,
    ) -> EcrResult<u64> {
        loop {
            if let Some(size) = self.blobs.size(digest).await? {
                return Ok(size);
            }
            let _claim = match self.in_flight.claim_blob(digest) {
                BlobClaim::Mine(claim) => claim,
                theirs => {
                    // Stored when it ends, or failed: look again.
                    theirs.wait().await;
                    continue;
                }
            };
            // Stored by a fetch that ended just before the claim.
            if let Some(size) = self.blobs.size(digest).await? {
                return Ok(size);
            }
            let fetched = client
                .blob(upstream_repo, &digest.to_string())
                .await
                .map_err(|e| layer_unavailable(digest, &e.to_string()))?;
            let id = self.blobs.create_upload().await?;
            if let Err(e) = self.blobs.append_upload(&id, fetched.body).await {
                let _ = self.blobs.cancel_upload(&id).await;
                return Err(layer_unavailable(digest, &e.to_string()));
            }
            return self.finish_fetched(&id, digest).await;
        }
    }

    /// Fetches a manifest and verifies its digest (against the digest asked
    /// for and the upstream's `Docker-Content-Digest`).
    async fn fetch_manifest(
        &self,
        client: &RegistryClient,
        upstream_repo: &str,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> EcrResult<FetchedImage> {
        let reference_text = match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(d) => d.to_string(),
        };
        let fetched = client
            .manifest(upstream_repo, &reference_text)
            .await
            .map_err(|e| image_unavailable(repo, &reference_text, &e))?;
        let mismatch = |expected: &Digest, computed: &Digest| {
            image_unavailable(
                repo,
                &reference_text,
                &UpstreamError::Protocol(format!(
                    "the upstream's manifest has the digest '{computed}', not '{expected}'"
                )),
            )
        };
        let digest = match reference {
            Reference::Digest(expected) => {
                let computed = Digest::of(expected.algorithm(), &fetched.bytes);
                if &computed != expected {
                    return Err(mismatch(expected, &computed));
                }
                computed
            }
            Reference::Tag(_) => Digest::sha256_of(&fetched.bytes),
        };
        if let Some(announced) = fetched
            .digest
            .as_deref()
            .and_then(|d| Digest::parse(d).ok())
        {
            let computed = Digest::of(announced.algorithm(), &fetched.bytes);
            if computed != announced {
                return Err(mismatch(&announced, &computed));
            }
        }
        let parsed = manifest::parse(&fetched.bytes, fetched.media_type.as_deref())?;
        Ok(FetchedImage {
            digest,
            media_type: parsed.media_type,
            manifest: fetched.bytes,
        })
    }

    /// Fetches an import's blobs (four at a time), then stores, in this
    /// order, the repository and layer links and the image with its tag.
    async fn import_blobs(&self, import: &Import) -> EcrResult<()> {
        let Import {
            client,
            upstream_repo,
            scope,
            repo,
            ..
        } = import;
        {
            let _publishing = self.collection.read().await?;
            type Fetch<'a> = std::pin::Pin<
                Box<dyn std::future::Future<Output = EcrResult<(Digest, u64)>> + Send + 'a>,
            >;
            let fetches: Vec<Fetch<'_>> = import
                .blobs
                .iter()
                .map(|digest| -> Fetch<'_> {
                    Box::pin(async move {
                        let size = self.fetch_blob(client, upstream_repo, digest).await?;
                        Ok((digest.clone(), size))
                    })
                })
                .collect();
            let sizes: Vec<(Digest, u64)> = futures_util::stream::iter(fetches)
                .buffer_unordered(PARALLEL_BLOB_FETCHES)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<EcrResult<_>>()?;
            let mut tx = self.store.write()?;
            self.ensure_cache_repository(&mut *tx, scope, repo)?;
            for (d, size) in &sizes {
                self.link_layer(&mut *tx, scope, repo, d, *size)?;
            }
            tx.commit()?;
        }
        // `collection` is released first: storing the image does not need
        // it (its blobs are linked), and waiting for it here could stall.
        self.put_manifest_as(
            scope,
            repo,
            import.tag.as_deref(),
            Some(&import.fetched.digest),
            &import.fetched.manifest,
            Some(&import.fetched.media_type),
            Origin::PullThroughCache,
        )?;
        Ok(())
    }
}

/// The response body of a streamed blob: the upstream's chunks, each
/// passed to the blob store as it arrives and to the client one chunk
/// later. The last chunk is held back until the store has verified and kept
/// the whole blob; when it has not (bytes that do not match the digest, an
/// upstream that breaks off, a failed write) the body ends with an error
/// instead, short of its length, so no client mistakes it for complete.
fn tee(
    upstream: ByteStream,
    to_store: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    stored: tokio::task::JoinHandle<EcrResult<()>>,
) -> ByteStream {
    struct Tee {
        upstream: ByteStream,
        to_store: Option<tokio::sync::mpsc::Sender<std::io::Result<Bytes>>>,
        stored: Option<tokio::task::JoinHandle<EcrResult<()>>>,
        /// Received and passed to the store, not yet to the client.
        pending: Option<Bytes>,
        /// The body has ended (an error was yielded, or the last chunk).
        done: bool,
    }
    async fn verdict(stored: Option<tokio::task::JoinHandle<EcrResult<()>>>) -> Result<(), String> {
        match stored {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.message),
                Err(e) => Err(e.to_string()),
            },
            None => Err("the blob store stopped".to_string()),
        }
    }
    let state = Tee {
        upstream,
        to_store: Some(to_store),
        stored: Some(stored),
        pending: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            loop {
                if state.done {
                    return None;
                }
                match state.upstream.next().await {
                    Some(Ok(chunk)) => {
                        let sent = match &state.to_store {
                            Some(tx) => tx.send(Ok(chunk.clone())).await.is_ok(),
                            None => false,
                        };
                        if !sent {
                            // The store gave up: what it would keep is unknown.
                            state.to_store = None;
                            state.done = true;
                            let why = verdict(state.stored.take()).await.err().unwrap_or_default();
                            return Some((Err(std::io::Error::other(why)), state));
                        }
                        if let Some(previous) = state.pending.replace(chunk) {
                            return Some((Ok(previous), state));
                        }
                    }
                    Some(Err(e)) => {
                        // Tell the store the body is broken, so it keeps nothing.
                        if let Some(tx) = state.to_store.take() {
                            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        }
                        state.stored = None;
                        state.done = true;
                        let error = std::io::Error::other(format!("the upstream broke off: {e}"));
                        return Some((Err(error), state));
                    }
                    None => {
                        state.to_store = None;
                        state.done = true;
                        return match verdict(state.stored.take()).await {
                            Ok(()) => state.pending.take().map(|last| (Ok(last), state)),
                            Err(why) => Some((Err(std::io::Error::other(why)), state)),
                        };
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, kind: &str, upstream_prefix: Option<&str>) -> RuleRecord {
        RuleRecord {
            prefix: prefix.into(),
            upstream_registry_url: String::new(),
            upstream_registry: kind.into(),
            credential_arn: None,
            custom_role_arn: None,
            upstream_repository_prefix: upstream_prefix.map(str::to_string),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn upstream_names() {
        let hub = rule("hub", "docker-hub", None);
        assert_eq!(upstream_repository(&hub, "hub/busybox"), "library/busybox");
        assert_eq!(
            upstream_repository(&hub, "hub/bitnami/redis"),
            "bitnami/redis"
        );
        let quay = rule("q/", "quay", None);
        assert_eq!(upstream_repository(&quay, "q/a/b"), "a/b");
        let root = rule("ROOT", "ecr", None);
        assert_eq!(upstream_repository(&root, "my-app/image1"), "my-app/image1");
        let mapped = rule("my-app", "ecr", Some("upstream-app"));
        assert_eq!(
            upstream_repository(&mapped, "my-app/image1"),
            "upstream-app/image1"
        );
        let same = rule("team-a", "ecr", Some("team-a"));
        assert_eq!(
            upstream_repository(&same, "team-a/myapp/image1"),
            "team-a/myapp/image1"
        );
    }
}
