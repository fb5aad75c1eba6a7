//! An S3-compatible server for tests, shared by the unit tests of
//! `s3_blobs` and the integration tests (`tests/`), so both start it the
//! same way. Not part of ecrd's interface.
//!
//! With `ECRD_TEST_S3_ENDPOINT` set, that server is used (it must accept
//! unsigned bucket creation, as moto's does); otherwise `moto_server` (from
//! `pip install 'moto[server]'`, found on `PATH`) is started on a free
//! loopback port and stopped when the handle is dropped. Every call of
//! [`S3TestServer::bucket`] makes a new bucket, so tests never share one.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long moto's server may take to answer (it starts in about a second).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many ports moto is tried on before the tests give up.
const START_ATTEMPTS: usize = 3;

/// A running S3-compatible endpoint.
pub struct S3TestServer {
    endpoint: String,
    /// The moto server this handle started, if it started one.
    child: Option<Child>,
}

impl S3TestServer {
    /// Connects to `ECRD_TEST_S3_ENDPOINT`, or starts a moto server.
    /// Panics (this is test code) when neither can be had.
    pub fn start() -> S3TestServer {
        if let Ok(endpoint) = std::env::var("ECRD_TEST_S3_ENDPOINT") {
            if !endpoint.is_empty() {
                return S3TestServer {
                    endpoint: endpoint.trim_end_matches('/').to_string(),
                    child: None,
                };
            }
        }
        // Another process may take the port before moto binds it (moto then
        // exits): a few tries, each on a new port.
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = super::ports::for_child_server();
            let mut server = S3TestServer {
                endpoint: format!("http://127.0.0.1:{port}"),
                child: Some(spawn_moto(port)),
            };
            match server.wait_until_answering(port) {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("moto_server did not start: {last_failure}");
    }

    /// Waits until moto itself answers on `port`: something else answering
    /// there (a server that took the port first) is a failure, as is moto
    /// exiting.
    fn wait_until_answering(&mut self, port: u16) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("moto_server exited before it answered: {status}"));
                }
            }
            if let Some(answer) = list_buckets(addr) {
                return if answer.contains("ListAllMyBucketsResult") {
                    Ok(())
                } else {
                    Err(format!("{addr} is not moto's: it answered {answer:.200}"))
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto_server did not answer on {addr} within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The endpoint URL, `http://host:port`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client of `bucket` on this server, with the fixed credentials
    /// moto accepts.
    pub fn builder(&self, bucket: &str) -> object_store::aws::AmazonS3Builder {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
    }

    /// Makes a new, empty bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("ecrd-test-{}", uuid::Uuid::new_v4().simple());
        let response = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot create bucket {name}: {e}"));
        assert!(
            response.status().is_success(),
            "creating bucket {name}: {}",
            response.status()
        );
        name
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // End of file on the shell's stdin stops moto.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// One server for the whole test process (the `shared` test backend's).
pub fn shared() -> &'static S3TestServer {
    static SHARED: std::sync::OnceLock<S3TestServer> = std::sync::OnceLock::new();
    SHARED.get_or_init(S3TestServer::start)
}

/// Starts moto on `port` under a shell that stops it when its stdin
/// reaches end of file: when the handle is dropped, or when this process
/// ends however it ends (a handle in a static is never dropped).
fn spawn_moto(port: u16) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(
            r#"moto_server -H 127.0.0.1 -p "$1" >/dev/null 2>&1 &
            pid=$!
            read _ignored
            kill "$pid" 2>/dev/null
            wait "$pid""#,
        )
        .arg("sh")
        .arg(port.to_string())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto_server (pip install 'moto[server]'), or set ECRD_TEST_S3_ENDPOINT: {e}")
        })
}

/// The answer to an unsigned `GET /` (S3's ListBuckets, which moto
/// answers without credentials), or `None` while nothing listens.
fn list_buckets(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    // A connection reset mid-answer (a server still starting) reads as
    // whatever arrived; an empty answer is "not yet".
    let _ = stream.read_to_end(&mut answer);
    if answer.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// Gives the process the keys moto takes, where the environment has none:
/// the S3 store reads its credentials from the standard AWS variables, and
/// without any it would ask the instance-metadata address, which tests must
/// not contact. Set once, before any server starts.
pub fn use_test_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ] {
            if std::env::var_os(name).is_none() {
                std::env::set_var(name, value);
            }
        }
    });
}
