//! Runtime configuration: the flags and environment variables of `ecrd serve`.
//!
//! Every flag has an `ECRD_*` environment equivalent (clap's `env`), so the
//! same binary can be configured from a shell, a CI job or a compose file.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// How control-plane requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AuthMode {
    /// Verify every SigV4 signature against the configured credentials.
    #[default]
    Strict,
    /// Accept any access key without checking the signature. A configured
    /// key is its configured principal; otherwise a 12-digit access key id
    /// names the account (LocalStack's convention) and any other key maps to
    /// the default account, as that account's root. Policies are still
    /// evaluated for the principal so resolved. The region still comes from
    /// the signature's credential scope.
    Permissive,
}

/// Flags of `ecrd serve`.
///
/// `ECRD_LOG` is read by the logger, not by clap, so `--help` names it in
/// its epilogue; the README's configuration table lists the same variables
/// (tests/e2e/test_examples.py compares the two).
#[derive(Debug, Clone, Args)]
#[command(after_long_help = SERVE_ENVIRONMENT, after_help = SERVE_ENVIRONMENT)]
pub struct ServeConfig {
    /// Address to listen on (`0.0.0.0` for every interface, as in a
    /// container).
    #[arg(long, env = "ECRD_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port for both planes (the ECR API on `POST /`, the registry on `/v2/`).
    #[arg(long, env = "ECRD_PORT", default_value_t = 4566)]
    pub port: u16,

    /// Keep all state (metadata, blobs, uploads, the token secret) in this
    /// directory, so it survives restarts. Default: in memory, gone on exit.
    /// One ecrd process at a time may use a directory.
    #[arg(long, env = "ECRD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Keep the metadata (repositories, images, tags, policies: every
    /// record but blob bytes) in this PostgreSQL database instead,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, so several ecrd
    /// replicas can share it. Blobs then need `--data-dir` (or a shared
    /// blob store); the token secret is kept in the database.
    #[arg(long = "metadata", env = "ECRD_METADATA_URL", value_name = "URL")]
    pub metadata_url: Option<String>,
    /// Keep blobs (layers, configs, manifests' bytes) in an S3-compatible
    /// bucket, `s3://BUCKET[/PREFIX]`, whatever keeps the metadata; several
    /// ecrd replicas can share it, and blob GETs redirect to presigned URLs
    /// of the bucket (which clients must be able to reach). Region and
    /// credentials come from the standard AWS variables (`AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`). Replicas that share a bucket must share their
    /// metadata too: each one's garbage collection removes the blobs its
    /// own metadata does not reference. Default: with the metadata.
    #[arg(long = "blobs", env = "ECRD_BLOBS_URL")]
    pub blobs_url: Option<String>,

    /// The S3 endpoint for `--blobs` (MinIO, Ceph, moto, ...), such as
    /// `http://127.0.0.1:9000`; path-style requests. Default: AWS's S3
    /// endpoint of the region.
    #[arg(long, env = "ECRD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Host (and port) that repository URIs and `proxyEndpoint` name.
    /// `{account}`, `{region}` and `{port}` are replaced, so
    /// `{account}.dkr.ecr.{region}.amazonaws.com` gives AWS-shaped URIs.
    /// Default: `localhost:<port>`.
    #[arg(long, env = "ECRD_REGISTRY_HOST")]
    pub registry_host: Option<String>,

    /// Also serve the ECR Public registry (`<alias>/<repository>` images,
    /// anonymous pulls) on this port of `--host`. Default: off; the
    /// `ecr-public` API is served on `--port` either way.
    #[arg(long, env = "ECRD_PUBLIC_PORT")]
    pub public_port: Option<u16>,

    /// Host (and port) that ECR Public's registry and repository URIs name,
    /// as `docker push <host>/<alias>/<repository>` takes them. A request on
    /// `--port` whose Host is this (or `public.ecr.aws`) reaches the public
    /// registry too. Default: `localhost:<public port>`, or `public.ecr.aws`
    /// without `--public-port`.
    #[arg(long, env = "ECRD_PUBLIC_HOST")]
    pub public_host: Option<String>,

    /// The alias of an account's public registry, `ACCOUNT=ALIAS[,...]`
    /// (repeatable). Default: a stable alias derived from the account id
    /// (`DescribeRegistries` shows it).
    #[arg(long, env = "ECRD_PUBLIC_ALIASES", value_delimiter = ',')]
    pub public_alias: Vec<String>,

    /// Account that the built-in `test`/`test` credentials belong to.
    #[arg(long, env = "ECRD_DEFAULT_ACCOUNT", default_value = "000000000000")]
    pub default_account: String,

    /// Extra credentials, `KEY:SECRET:ACCOUNT[:PRINCIPAL_ARN][,...]`; the
    /// principal (everything after the third colon) defaults to the
    /// account's root, `arn:aws:iam::ACCOUNT:root`.
    #[arg(long, env = "ECRD_CREDENTIALS")]
    pub credentials: Option<String>,

    /// A file of credentials, one per line:
    /// `KEY SECRET ACCOUNT [SESSION_TOKEN] [PRINCIPAL_ARN] [tag:K=V ...] [policy=FILE|policy={json}]`
    /// (`#` starts a comment; `policy=` is the principal's IAM identity
    /// policy, a path relative to this file or inline JSON to the end of
    /// the line).
    #[arg(long = "credentials-file", env = "ECRD_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,

    /// `strict` checks every SigV4 signature; `permissive` accepts any key.
    #[arg(long, env = "ECRD_AUTH", value_enum, default_value_t = AuthMode::Strict)]
    pub auth: AuthMode,

    /// Answer registry blob GETs with a 307 redirect to a short-lived signed
    /// URL served by ecrd (as ECR redirects to presigned S3 URLs). With
    /// `--blob-redirect=false`, serve the bytes directly on `/v2/`.
    #[arg(long, env = "ECRD_BLOB_REDIRECT", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub blob_redirect: bool,

    /// Largest control-plane request body accepted, in bytes.
    #[arg(long, env = "ECRD_MAX_API_BODY", default_value_t = 64 * 1024 * 1024)]
    pub max_api_body: usize,

    /// Bytes of control-plane request bodies held in memory at once, over
    /// all connections; a request that would go over it is answered
    /// `ThrottlingException` (which SDKs retry with backoff).
    #[arg(long, env = "ECRD_API_BODY_BUDGET", default_value_t = 256 * 1024 * 1024)]
    pub api_body_budget: usize,

    /// Secret that signs registry passwords (hex or any string). Default:
    /// with `--data-dir`, a random secret kept in `DIR/token-secret`, so
    /// passwords survive restarts; without, a random secret per process.
    #[arg(long, env = "ECRD_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// Seconds between background runs of every repository's lifecycle
    /// policy (by ecrd's clock's ages); 0 disables them. `POST
    /// /_ecrd/lifecycle/evaluate` runs them on demand either way.
    #[arg(long, env = "ECRD_LIFECYCLE_INTERVAL", default_value_t = 300)]
    pub lifecycle_interval: u64,

    /// Seconds between background garbage collections (blobs no image or
    /// recent layer upload references, abandoned uploads); 0 disables them.
    /// `POST /_ecrd/gc` collects on demand either way.
    #[arg(long, env = "ECRD_GC_INTERVAL", default_value_t = 600)]
    pub gc_interval: u64,

    /// Seconds between background scrubs of the disk blob store (every
    /// blob re-hashed against its digest; a corrupt one is set aside); 0
    /// disables them. With `--blobs`, a scrub downloads every blob: run it
    /// on one replica only. `POST /_ecrd/scrub` scrubs on demand either way.
    #[arg(long, env = "ECRD_SCRUB_INTERVAL", default_value_t = 86_400)]
    pub scrub_interval: u64,

    /// Vulnerability data for image scans: a directory of OSV JSON records
    /// and/or OSV's per-ecosystem `all.zip` files (or one such file).
    /// Without it, scans complete with no findings and a
    /// `vulnerabilitySourceUpdatedAt` of 1970-01-01 (no data).
    #[arg(long, env = "ECRD_VULN_DB")]
    pub vuln_db: Option<PathBuf>,

    /// Seconds between checks of `--vuln-db` for changed data; changed
    /// data is loaded and images under ENHANCED continuous scanning are
    /// matched again. 0 disables the checks (`POST /_ecrd/vuln-db/reload`
    /// checks on demand either way).
    #[arg(long, env = "ECRD_VULN_DB_REFRESH", default_value_t = 300)]
    pub vuln_db_refresh: u64,

    /// Seconds for which garbage collection leaves new things alone: blobs,
    /// layer uploads whose image is not pushed yet, and upload sessions
    /// younger than this (by ecrd's clock) are never collected.
    #[arg(long, env = "ECRD_GC_GRACE", default_value_t = 3600)]
    pub gc_grace: u64,

    /// Layer uploads (both planes) open at once in one repository; one more
    /// is LimitExceededException (429 TOOMANYREQUESTS on `/v2/`) once idle
    /// ones have been ended.
    #[arg(long, env = "ECRD_MAX_UPLOADS_PER_REPOSITORY", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_uploads_per_repository: u32,

    /// Layer uploads open at once in one registry (account and region).
    #[arg(long, env = "ECRD_MAX_UPLOADS_PER_REGISTRY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_uploads_per_registry: u32,

    /// Seconds (by ecrd's clock) after its last byte that an upload session
    /// stops counting against those limits: it is ended, and its bytes
    /// released, when a new upload needs the room.
    #[arg(long, env = "ECRD_UPLOAD_IDLE_TIMEOUT", default_value_t = 3600)]
    pub upload_idle_timeout: u64,

    /// Copy pushed images to the destinations of the registry's replication
    /// configuration in the background. With `--replication=false` pushes
    /// still queue their copies (durably) but nothing runs them until
    /// `POST /_ecrd/replication/run` or a restart with replication on.
    #[arg(long, env = "ECRD_REPLICATION", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub replication: bool,

    /// Bearer token the operator endpoints (`/_ecrd/reset`, `/_ecrd/clock`,
    /// `/_ecrd/lifecycle/evaluate`, `/_ecrd/gc`, `/_ecrd/replication/run`,
    /// `/_ecrd/metrics`, `/moto-api/reset`, ...) require
    /// as `Authorization: Bearer <token>`. Default: none (health stays open
    /// either way).
    #[arg(long, env = "ECRD_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// A host name the operator endpoints and the console answer for, as
    /// the request's `Host` names it (without the port); repeatable, or
    /// comma-separated in the variable. IP literals, `localhost`,
    /// `*.localhost`, `*.amazonaws.com` and the `--registry-host` are
    /// always allowed; any other `Host` gets 403, so a web page whose name
    /// was rebound to this address (DNS rebinding) cannot use them.
    #[arg(
        long = "allowed-host",
        env = "ECRD_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Seconds a connection has to send a complete request header (also
    /// while a kept-alive connection waits for its next request); it is
    /// closed after that. 0 disables the limit. Bodies are held to
    /// `--body-timeout` and `--min-body-rate` instead.
    #[arg(long, env = "ECRD_HEADER_TIMEOUT", default_value_t = 30)]
    pub header_timeout: u64,

    /// Seconds a connection may go without traffic and without a request in
    /// progress before it is closed. 0 disables the limit.
    #[arg(long, env = "ECRD_IDLE_TIMEOUT", default_value_t = 75)]
    pub idle_timeout: u64,

    /// Seconds a request body may keep ecrd waiting before it has sent
    /// anything; every `--min-body-rate` bytes it sends buys one more
    /// second. A body that falls behind is cut off and its connection
    /// closed. Time ecrd spends working between reads does not count.
    /// 0 disables the rule.
    #[arg(long, env = "ECRD_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,

    /// Bytes per second a request body must average, after the grace of
    /// `--body-timeout`, to keep its connection (1024: a body of 10 GB may
    /// take up to four months). 0 disables the rule, as `--body-timeout 0`
    /// does.
    #[arg(long, env = "ECRD_MIN_BODY_RATE", default_value_t = 1024)]
    pub min_body_rate: u64,

    /// Connections served at once; further ones wait (unaccepted) until one
    /// closes, and a warning is logged.
    #[arg(long, env = "ECRD_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Credentials for pull through cache upstreams: a JSON object mapping
    /// a Secrets Manager secret ARN (a rule's `credentialArn`) to the
    /// secret's value, `{"username": "...", "accessToken": "..."}`, as
    /// ECR's pull through cache secrets hold them. Read at start.
    #[arg(long = "secrets-file", env = "ECRD_SECRETS_FILE")]
    pub secrets_file: Option<PathBuf>,

    /// Where an upstream registry kind of the pull through cache is
    /// reached, `KIND=URL` (e.g. `docker-hub=http://127.0.0.1:5000`);
    /// repeatable, or comma-separated in the variable. Without one, a
    /// rule's upstream is reached at `https://<upstreamRegistryUrl>`.
    #[arg(long = "upstream", env = "ECRD_UPSTREAMS", value_delimiter = ',')]
    pub upstreams: Vec<String>,

    /// A seed file (YAML or JSON) declaring accounts' credentials, registry
    /// settings and repositories with images from local OCI layouts or
    /// archives, applied at startup before the first request is served (see
    /// the README's "Seeding and snapshots"). Applied whole or not at all; a
    /// second start with the same file over `--data-dir` changes nothing.
    #[arg(long, env = "ECRD_INIT")]
    pub init: Option<PathBuf>,

    /// Log format: `text` (coloured only when standard output, where logs
    /// go, is a terminal) or `json` (one object per line, never coloured).
    /// Every line of a request carries its id, the `x-amzn-RequestId` of
    /// its answer.
    #[arg(long, env = "ECRD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Also serve HTTPS on the same port (plain HTTP keeps working: the
    /// first byte of each connection tells them apart). Without
    /// `--tls-cert`, ecrd makes a local CA and a certificate for
    /// `localhost`, `127.0.0.1`, the registry host and ECR's host names,
    /// kept in `DIR/tls/` with `--data-dir` (else in a temporary
    /// directory); the CA's path is printed at start.
    #[arg(long, env = "ECRD_TLS", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub tls: bool,

    /// Serve HTTPS with this PEM certificate chain (leaf first) instead of
    /// a generated one; needs `--tls-key` and implies `--tls`.
    #[arg(long, env = "ECRD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "ECRD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The variables of `ecrd serve` that are not a flag's.
const SERVE_ENVIRONMENT: &str = "Environment (no flag):
  ECRD_LOG  Log filter in `tracing` EnvFilter syntax (`warn`, `ecrd=debug`, ...); at `info` every API request is logged [default: info]";

/// How request logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

impl ServeConfig {
    /// The configuration tests use: loopback, an ephemeral port, strict auth.
    pub fn for_tests() -> Self {
        ServeConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            data_dir: None,
            metadata_url: None,
            blobs_url: None,
            s3_endpoint: None,
            registry_host: None,
            public_port: None,
            public_host: None,
            public_alias: Vec::new(),
            default_account: "000000000000".to_string(),
            credentials: None,
            credentials_file: None,
            auth: AuthMode::Strict,
            max_api_body: 64 * 1024 * 1024,
            api_body_budget: 256 * 1024 * 1024,
            blob_redirect: true,
            token_secret: None,
            operator_token: None,
            allowed_hosts: Vec::new(),
            log_format: LogFormat::Text,
            lifecycle_interval: 0,
            gc_interval: 0,
            scrub_interval: 0,
            gc_grace: 3600,
            replication: true,
            max_uploads_per_repository: 1000,
            max_uploads_per_registry: 10_000,
            upload_idle_timeout: 3600,
            vuln_db: None,
            vuln_db_refresh: 0,
            header_timeout: 30,
            idle_timeout: 75,
            max_connections: 1024,
            body_timeout: 60,
            min_body_rate: 1024,
            secrets_file: None,
            upstreams: Vec::new(),
            tls: false,
            tls_cert: None,
            tls_key: None,
            init: None,
        }
    }
}
