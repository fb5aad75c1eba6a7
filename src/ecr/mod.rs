//! The ECR domain: every rule of registries, repositories, images and their
//! settings, in one place, over the storage traits. Both protocol adapters
//! (`api/` for the JSON control plane, `oci/` for `/v2/`) call into here and
//! hold no rule of their own.

pub mod access;
pub mod arn;
pub mod authorize;
pub(crate) mod background;
pub mod bulk;
pub mod caller;
pub mod clock;
pub(crate) mod collection_lock;
pub mod error;
pub mod exclusions;
pub mod gc;
pub mod image_queries;
pub mod images;
pub mod lifecycle;
pub mod lifecycle_runs;
mod lifecycle_view;
pub mod manifest;
pub mod names;
pub mod overview;
pub mod policies;
pub mod public;
pub mod pull_through;
pub mod records;
pub mod replication;
pub mod repositories;
pub mod scan;
pub mod scan_runs;
pub mod scanning;
pub mod scans;
pub mod scrub;
pub mod settings;
pub mod signing;
pub mod templates;
pub mod upload_limits;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::blobs::BlobStore;
use crate::store::{MetadataStore, ReadTxn, Table, WriteTxn};
use clock::Clock;
use error::EcrResult;
use names::{RepositoryName, Scope};

/// The domain service: state plus the few settings rules depend on.
pub struct Ecr {
    pub store: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<Clock>,
    /// Orders garbage collection against the steps that make or use blobs
    /// before a record refers to them (see `gc`).
    pub(crate) collection: collection_lock::CollectionLock,
    /// One collection at a time (they share `gc_watch`).
    pub(crate) collecting: tokio::sync::Mutex<()>,
    /// What was written to images, layer links and upload sessions while a
    /// collection planned (`gc`).
    pub(crate) gc_watch: crate::store::watched::Watch,
    /// Stored repository and registry policies, parsed.
    pub(crate) policies: authorize::PolicyCache,
    /// Wakes the replication worker when a push queues work.
    pub(crate) replication_wakeup: tokio::sync::Notify,
    /// Wakes the signing worker when a push queues work.
    pub(crate) signing_wakeup: tokio::sync::Notify,
    /// One signing run at a time (the worker, or `/_ecrd/signing/run`), so
    /// no queued image is signed twice.
    pub(crate) signing_run: tokio::sync::Mutex<()>,
    /// The scan queue and the vulnerability data (`scan_runs`).
    pub scanner: scan_runs::Scanner,
    /// What the background tasks last did (for the console).
    pub tasks: overview::TaskLog,
    /// Upstream endpoints and secrets of the pull through cache.
    pub(crate) upstreams: std::sync::RwLock<pull_through::UpstreamSettings>,
    /// Registry passwords of remote `ecr` upstreams, until they expire.
    pub(crate) ecr_logins: crate::upstream::ecr_login::LoginCache,
    /// Pull through imports and blob fetches in flight.
    pub(crate) in_flight: pull_through::in_flight::InFlight,
    /// Host template for repository URIs (`{account}`, `{region}`, `{port}`).
    registry_host: String,
    /// How many upload sessions may be open (`upload_limits`).
    pub(crate) upload_limits: upload_limits::UploadLimits,
    /// The host ECR Public's URIs name (`--public-host`).
    public_host: String,
}

impl Ecr {
    /// How long steps that publish a blob waited for garbage collection's
    /// lock, in seconds (for `/metrics`).
    pub fn gc_lock_waits(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.collection.step_waits()
    }

    pub fn new(
        store: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<Clock>,
        registry_host: String,
    ) -> Self {
        let collection = collection_lock::CollectionLock::new(store.clone());
        let watched = crate::store::watched::WatchedStore::new(store, gc::WATCHED_TABLES);
        let gc_watch = watched.watch();
        Ecr {
            store: Arc::new(watched),
            blobs,
            clock,
            collection,
            collecting: tokio::sync::Mutex::new(()),
            gc_watch,
            policies: authorize::PolicyCache::default(),
            replication_wakeup: tokio::sync::Notify::new(),
            signing_wakeup: tokio::sync::Notify::new(),
            signing_run: tokio::sync::Mutex::new(()),
            scanner: scan_runs::Scanner::default(),
            tasks: overview::TaskLog::default(),
            upstreams: Default::default(),
            ecr_logins: Default::default(),
            in_flight: Default::default(),
            registry_host,
            upload_limits: upload_limits::UploadLimits::default(),
            public_host: "public.ecr.aws".to_string(),
        }
    }

    /// The same service naming `host` in ECR Public's URIs.
    pub fn with_public_host(mut self, host: String) -> Self {
        self.public_host = host;
        self
    }

    /// The host of ECR Public's URIs, e.g. `localhost:4567` or `public.ecr.aws`.
    pub fn public_host(&self) -> &str {
        &self.public_host
    }

    /// The same service with other bounds on open upload sessions.
    pub fn with_upload_limits(mut self, limits: upload_limits::UploadLimits) -> Self {
        self.upload_limits = limits;
        self
    }

    /// A domain over another metadata store, with the same blobs, clock and
    /// registry host: a staging area whose records can be looked at, and
    /// kept or dropped whole (seeding stages its work in one).
    pub fn staging(&self, store: Arc<dyn MetadataStore>) -> Ecr {
        Ecr::new(
            store,
            self.blobs.clone(),
            self.clock.clone(),
            self.registry_host.clone(),
        )
    }

    /// The registry host for a scope, e.g. `localhost:4566` or
    /// `000000000000.dkr.ecr.us-east-1.amazonaws.com`.
    pub fn registry_host(&self, scope: &Scope) -> String {
        self.registry_host
            .replace("{account}", scope.account.as_str())
            .replace("{region}", scope.region.as_str())
    }

    pub fn repository_uri(&self, scope: &Scope, name: &RepositoryName) -> String {
        format!("{}/{}", self.registry_host(scope), name)
    }

    /// The registry's `proxyEndpoint`, as `docker login` takes it. ECR
    /// always answers `https://<host>`, and clients depend on that form
    /// (`docker-credential-ecr-login` rejects any other), whichever scheme
    /// the call itself came in on.
    pub fn proxy_endpoint(&self, scope: &Scope) -> String {
        format!("https://{}", self.registry_host(scope))
    }

    /// The registry's base URL for something a client must fetch itself
    /// (a layer download URL): the scheme ecrd serves on the caller's own
    /// connection, so the URL works on the transport the client already
    /// reached ecrd on.
    pub fn fetch_base_url(&self, scope: &Scope, secure_transport: bool) -> String {
        let scheme = if secure_transport { "https" } else { "http" };
        format!("{scheme}://{}", self.registry_host(scope))
    }
}

/// Reads and decodes one record.
pub(crate) fn load<T: DeserializeOwned>(
    tx: &(impl ReadTxn + ?Sized),
    table: Table,
    key: &str,
) -> EcrResult<Option<T>> {
    match tx.get(table, key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Encodes and writes one record.
pub(crate) fn save<T: Serialize>(
    tx: &mut (impl WriteTxn + ?Sized),
    table: Table,
    key: &str,
    value: &T,
) -> EcrResult<()> {
    tx.put(table, key, serde_json::to_vec(value)?)?;
    Ok(())
}
