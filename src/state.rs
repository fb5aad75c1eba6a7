//! The state every request handler shares: configuration, the domain
//! service, the credential table and the token signer. It sits below both
//! protocol adapters (`api/`, `oci/`, `sts/`) and the server that routes to
//! them, so none of them imports another.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::credentials::{root_arn, user_id, CredentialError, CredentialTable};
use crate::auth::token::{TokenClaims, TokenSigner};
use crate::budget::ByteBudget;
use crate::config::ServeConfig;
use crate::ecr::caller::Caller;
use crate::ecr::clock::Clock;
use crate::ecr::names::{AccountId, Region};
use crate::ecr::upload_limits::UploadLimits;
use crate::ecr::Ecr;
use crate::listener::Transport;
use crate::store::blobs::BlobStore;
use crate::store::disk::{DataDir, DiskStore};
use crate::store::disk_blobs::DiskBlobStore;
use crate::store::memory::MemoryStore;
use crate::store::memory_blobs::MemoryBlobStore;
use crate::store::postgres::PostgresStore;
use crate::store::s3_blobs::S3BlobStore;
use crate::store::{MetadataStore, StoreError};

/// Everything a request handler can reach.
pub struct AppState {
    pub config: ServeConfig,
    pub ecr: Arc<Ecr>,
    pub credentials: CredentialTable,
    pub default_account: AccountId,
    pub tokens: TokenSigner,
    pub started: Instant,
    /// Bytes of control-plane bodies buffered at once (`--api-body-budget`).
    pub api_bodies: ByteBudget,
    /// What `GET /_ecrd/metrics` reports.
    pub metrics: crate::metrics::Metrics,
}

/// A configuration that cannot start a server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--default-account: {0}")]
    DefaultAccount(String),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The data directory cannot be opened (locked, unreadable, corrupt,
    /// or of an unknown version); the message names the path.
    #[error("{}", .0.0)]
    Store(#[from] StoreError),
    /// `--secrets-file` or `--upstream` cannot be used.
    #[error("{0}")]
    Upstreams(String),
    /// The seed file (`--init`) does not parse or was refused; the message
    /// names the file, line and field.
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),
    #[error("--vuln-db: {0}")]
    VulnDb(String),
    #[error("--tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("--public-alias: {0}")]
    PublicAlias(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl AppState {
    /// Builds the state for a configuration. `port` is the port actually
    /// bound, for the default registry host.
    pub fn new(config: ServeConfig, port: u16) -> Result<Self, StartError> {
        let default_account =
            AccountId::parse(&config.default_account).map_err(StartError::DefaultAccount)?;
        let mut credentials = CredentialTable::with_default(default_account.clone());
        if let Some(list) = &config.credentials {
            credentials.add_list(list)?;
        }
        if let Some(path) = &config.credentials_file {
            credentials.add_file(path)?;
        }
        if let Some(path) = &config.init {
            for credential in crate::seed::Seed::load(path)?.credentials()? {
                credentials.insert(credential);
            }
        }
        let data_dir = match &config.data_dir {
            Some(path) => Some(DataDir::open(path)?),
            None => None,
        };
        let shared_metadata = match &config.metadata_url {
            Some(url) => {
                if data_dir.is_none() && config.blobs_url.is_none() {
                    return Err(StartError::Store(StoreError(
                        "--metadata keeps only the metadata: give --blobs (or --data-dir) for the blobs"
                            .to_string(),
                    )));
                }
                Some(Arc::new(PostgresStore::open(url)?))
            }
            None => None,
        };
        // Replicas on one database sign with the secret kept in it, so a
        // registry password or layer URL from one is good on the others.
        let tokens = match (&config.token_secret, &shared_metadata, &data_dir) {
            (Some(secret), _, _) => TokenSigner::new(secret.as_bytes().to_vec()),
            (None, Some(store), _) => TokenSigner::new(store.token_secret()?),
            (None, None, Some(dir)) => TokenSigner::new(dir.token_secret()?),
            (None, None, None) => TokenSigner::random(),
        };
        let registry_host = config
            .registry_host
            .clone()
            .unwrap_or_else(|| "localhost:{port}".to_string())
            .replace("{port}", &port.to_string());
        let store: Arc<dyn MetadataStore> = match (shared_metadata, &data_dir) {
            (Some(postgres), _) => postgres,
            (None, Some(dir)) => Arc::new(DiskStore::open(dir.clone())?),
            (None, None) => Arc::new(MemoryStore::new()),
        };
        // `--blobs s3://...` keeps blobs in a bucket whatever keeps metadata.
        let blobs: Arc<dyn BlobStore> = match (&config.blobs_url, data_dir) {
            (Some(url), _) => {
                S3BlobStore::from_config(url, config.s3_endpoint.as_deref())?.shared()
            }
            (None, Some(dir)) => Arc::new(DiskBlobStore::open(dir)?),
            (None, None) => Arc::new(MemoryBlobStore::new()),
        };
        let public_host = match (&config.public_host, config.public_port) {
            (Some(host), _) => host.clone(),
            (None, Some(public_port)) => format!("localhost:{public_port}"),
            (None, None) => "public.ecr.aws".to_string(),
        };
        let ecr = Arc::new(
            Ecr::new(store, blobs, Arc::new(Clock::default()), registry_host)
                .with_upload_limits(UploadLimits {
                    per_repository: config.max_uploads_per_repository as usize,
                    per_registry: config.max_uploads_per_registry as usize,
                    idle: std::time::Duration::from_secs(config.upload_idle_timeout),
                })
                .with_public_host(public_host),
        );
        for entry in config.public_alias.iter().filter(|e| !e.trim().is_empty()) {
            let (account, alias) = entry.split_once('=').ok_or_else(|| {
                StartError::PublicAlias(format!("'{entry}' is not ACCOUNT=ALIAS"))
            })?;
            let account = AccountId::parse(account.trim()).map_err(StartError::PublicAlias)?;
            ecr.set_public_alias(&account, alias.trim())
                .map_err(|e| StartError::PublicAlias(format!("'{entry}': {}", e.message)))?;
        }
        let mut upstreams = crate::ecr::pull_through::UpstreamSettings::from_config(
            config.secrets_file.as_deref(),
            &config.upstreams,
        )
        .map_err(StartError::Upstreams)?;
        // An `ecr` upstream of another account or region is this ecrd itself.
        let loopback = match config.host {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        upstreams.local = Some(crate::ecr::pull_through::LocalRegistry {
            addr: SocketAddr::new(loopback, port),
            signer: tokens.clone(),
        });
        ecr.set_upstreams(upstreams);
        if let Some(path) = &config.vuln_db {
            if !path.exists() {
                return Err(StartError::VulnDb(format!(
                    "{}: no such file or directory",
                    path.display()
                )));
            }
            ecr.scanner.set_source(path.clone());
        }
        let config_budget = config.api_body_budget;
        let metrics = crate::metrics::Metrics::new(ecr.clone());
        Ok(AppState {
            config,
            ecr,
            credentials,
            default_account,
            tokens,
            started: Instant::now(),
            api_bodies: ByteBudget::new(config_budget),
            metrics,
        })
    }
}

impl AppState {
    /// The caller behind an access key whose signature was verified (or, in
    /// permissive mode, merely claimed): the configured credential's
    /// principal, tags and identity policy; for a key the table does not
    /// know (permissive mode only), the root of the account a 12-digit key
    /// names, else of the default account.
    pub fn caller_for_key(
        &self,
        access_key_id: &str,
        region: Region,
        transport: Transport,
    ) -> Caller {
        match self.credentials.get(access_key_id) {
            Some(c) => Caller {
                account: c.account.clone(),
                region,
                principal_arn: c.principal_arn.clone(),
                user_id: c.user_id(),
                access_key_id: access_key_id.to_string(),
                source_ip: transport.source_ip,
                secure_transport: transport.secure,
                tags: c.tags.clone(),
                identity_policy: c.identity_policy.clone(),
            },
            None => {
                let account = AccountId::parse(access_key_id)
                    .unwrap_or_else(|_| self.default_account.clone());
                Caller {
                    principal_arn: root_arn(&account),
                    user_id: account.to_string(),
                    account,
                    region,
                    access_key_id: access_key_id.to_string(),
                    source_ip: transport.source_ip,
                    secure_transport: transport.secure,
                    tags: Default::default(),
                    identity_policy: None,
                }
            }
        }
    }

    /// The caller a verified registry password names: its principal, with
    /// the tags and identity policy its credential carries now.
    pub fn caller_for_token(&self, claims: &TokenClaims, transport: Transport) -> Caller {
        let principal_arn = claims
            .principal_arn
            .clone()
            .unwrap_or_else(|| root_arn(&claims.account));
        let credential = self
            .credentials
            .get(&claims.access_key_id)
            .filter(|c| c.account == claims.account && c.principal_arn == principal_arn);
        Caller {
            account: claims.account.clone(),
            region: claims.region.clone(),
            user_id: user_id(&principal_arn, &claims.account),
            principal_arn,
            access_key_id: claims.access_key_id.clone(),
            source_ip: transport.source_ip,
            secure_transport: transport.secure,
            tags: credential.map(|c| c.tags.clone()).unwrap_or_default(),
            identity_policy: credential.and_then(|c| c.identity_policy.clone()),
        }
    }
}
