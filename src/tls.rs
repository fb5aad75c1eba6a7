//! TLS for `--tls`: the server certificate and the rustls configuration the
//! accept loop (`listener`) hands TLS connections to.
//!
//! Two sources of a certificate:
//! - **The user's own** (`--tls-cert`, `--tls-key`): a PEM chain (leaf
//!   first) and its PEM private key (PKCS#8, PKCS#1 or SEC1).
//! - **Generated**: a local CA (`ca.pem`, `ca-key.pem`) and a leaf it signs
//!   (`cert.pem`, `key.pem`) in `DIR/tls/` with `--data-dir`, else in a new
//!   directory under the system's temporary directory. The CA is made once
//!   and reused on every restart, so a client that trusts it keeps trusting
//!   ecrd; the leaf is signed anew at each start for the names the
//!   configuration implies ([`leaf_names`]): `localhost`, `127.0.0.1`, `::1`,
//!   the `--registry-host` (its `{account}`/`{region}` filled in), and ECR's
//!   own host names (`<account>.dkr.ecr.<region>.amazonaws.com`,
//!   `api.ecr.<region>.amazonaws.com`, `ecr.<region>.amazonaws.com`) for the
//!   known accounts and the AWS regions, so clients that insist on talking
//!   to ECR's names (`docker-credential-ecr-login`) verify ecrd when those
//!   names resolve to it.
//!
//! The crypto provider is rustls' `ring`, named explicitly (not the
//! process default), so no other provider in the dependency tree changes it.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The regions whose ECR host names a generated certificate covers (AWS's
/// commercial regions).
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
];

/// The CA's subject; the same on every start, so a leaf signed after a
/// restart names the stored CA as its issuer.
const CA_NAME: &str = "ecrd local CA";

/// Where TLS comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `--tls-cert` and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
    /// A local CA and leaf kept in `dir`; `names` go into the leaf.
    Generated { dir: PathBuf, names: Vec<String> },
}

/// TLS ready to serve.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The generated CA's certificate, for clients to trust; `None` with
    /// the user's own certificate.
    pub ca_path: Option<PathBuf>,
}

/// A TLS setup that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("cannot generate the TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the TLS certificate and key do not fit together or are not usable: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Tls {
    /// Loads or generates the certificate and builds the acceptor.
    pub fn prepare(source: &Source) -> Result<Tls, TlsError> {
        let (chain, key, ca_path) = match source {
            Source::Files { cert, key } => (read_chain(cert)?, read_key(key)?, None),
            Source::Generated { dir, names } => {
                let generated = generate(dir, names)?;
                (
                    read_chain(&generated.cert)?,
                    read_key(&generated.key)?,
                    Some(generated.ca),
                )
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // HTTP/1.1 only: the accept loop serves hyper's http1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_path,
        })
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, &e))
}

fn pem_error(path: &Path, e: &rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::Io(io) => TlsError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io.kind(), io.to_string()),
        },
        other => TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("not a usable PEM file: {other:?}"),
        },
    }
}

/// The files of a generated certificate.
struct Generated {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// The CA's parameters: fixed, so that an issuer rebuilt from them and the
/// stored CA key signs leaves the stored CA certificate verifies.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "ecrd");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Makes the CA on first use, then signs a fresh leaf for `names`.
fn generate(dir: &Path, names: &[String]) -> Result<Generated, TlsError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let now = time::OffsetDateTime::now_utc();
    let ca_key = if ca_path.exists() && ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path).map_err(io_error(&ca_key_path))?;
        KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
            path: ca_key_path.clone(),
            message: format!(
                "not a usable CA key ({e}); delete ca.pem and ca-key.pem to have a new CA made"
            ),
        })?
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(10 * 365);
        let cert = params.self_signed(&key)?;
        write_file(&ca_key_path, key.serialize_pem().as_bytes(), true)?;
        write_file(&ca_path, cert.pem().as_bytes(), false)?;
        key
    };
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(io_error(&ca_path))?;
    let issuer = Issuer::new(ca_params(), ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("localhost"),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - time::Duration::days(1);
    // Within the 398 days browsers and Apple's stores accept for a leaf.
    params.not_after = now + time::Duration::days(397);
    let leaf = params.signed_by(&leaf_key, &issuer)?;

    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    // The chain a client is sent: the leaf, then the CA.
    write_file(
        &cert_path,
        format!("{}{}", leaf.pem(), ca_pem).as_bytes(),
        false,
    )?;
    write_file(&key_path, leaf_key.serialize_pem().as_bytes(), true)?;
    Ok(Generated {
        ca: ca_path,
        cert: cert_path,
        key: key_path,
    })
}

/// Writes through a temporary file and a rename, so a crash never leaves
/// half a key; `secret` files are readable by their owner only.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    use std::io::Write as _;
    let tmp = path.with_extension("pem.tmp");
    let write = || -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let _ = secret;
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(io_error(path))
}

/// The names a generated leaf covers, given the registry host template
/// (`--registry-host`, possibly with `{account}`, `{region}`, a port) and
/// the accounts ecrd knows of.
pub fn leaf_names<'a>(
    registry_host: &str,
    accounts: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let accounts: Vec<&str> = accounts.into_iter().collect();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |name: String| {
        if !name.is_empty() {
            names.insert(name.to_ascii_lowercase());
        }
    };
    for region in REGIONS {
        // A wildcard covers every account's registry in the region.
        add(format!("*.dkr.ecr.{region}.amazonaws.com"));
        add(format!("api.ecr.{region}.amazonaws.com"));
        add(format!("ecr.{region}.amazonaws.com"));
        for account in &accounts {
            add(format!("{account}.dkr.ecr.{region}.amazonaws.com"));
        }
    }
    let host = strip_port(registry_host);
    let regions: &[&str] = if host.contains("{region}") {
        REGIONS
    } else {
        &["us-east-1"]
    };
    let account_list: Vec<&str> = if host.contains("{account}") {
        accounts.clone()
    } else {
        vec![""]
    };
    for region in regions {
        for account in &account_list {
            add(host
                .replace("{region}", region)
                .replace("{account}", account));
        }
    }
    let first = ["localhost", "127.0.0.1", "::1"];
    let mut ordered: Vec<String> = first.iter().map(|n| n.to_string()).collect();
    ordered.extend(names.into_iter().filter(|n| !first.contains(&n.as_str())));
    ordered
}

/// `host:port` → `host`; `[::1]:4566` → `::1`; a bare name stays.
fn strip_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name.to_string()
        }
        _ => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_ecr_hosts_and_the_registry_host() {
        let names = leaf_names(
            "{account}.dkr.ecr.{region}.amazonaws.com:4566",
            ["111122223333"],
        );
        assert_eq!(&names[..3], ["localhost", "127.0.0.1", "::1"]);
        for expected in [
            "api.ecr.us-east-1.amazonaws.com",
            "ecr.eu-west-1.amazonaws.com",
            "*.dkr.ecr.us-east-1.amazonaws.com",
            "111122223333.dkr.ecr.ap-south-1.amazonaws.com",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let names = leaf_names("registry.test:5000", ["000000000000"]);
        assert!(names.iter().any(|n| n == "registry.test"));
        assert!(!names.iter().any(|n| n.contains(':') && n != "::1"));
    }

    #[test]
    fn strip_port_forms() {
        assert_eq!(strip_port("localhost:4566"), "localhost");
        assert_eq!(strip_port("[::1]:4566"), "::1");
        assert_eq!(strip_port("example.test"), "example.test");
    }

    #[test]
    fn generated_ca_is_reused_and_signs_a_new_leaf() {
        let dir = std::env::temp_dir().join(format!("ecrd-tls-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = leaf_names("localhost:4566", ["000000000000"]);
        let first = generate(&dir, &names).expect("generates");
        let ca_before = std::fs::read(&first.ca).expect("ca");
        let leaf_before = std::fs::read(&first.cert).expect("leaf");
        let second = generate(&dir, &names).expect("regenerates");
        assert_eq!(std::fs::read(&second.ca).expect("ca"), ca_before);
        assert_ne!(std::fs::read(&second.cert).expect("leaf"), leaf_before);
        Tls::prepare(&Source::Generated {
            dir: dir.clone(),
            names,
        })
        .expect("acceptor from generated files");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
