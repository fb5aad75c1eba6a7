//! A PostgreSQL server for tests, and a fresh database on it per caller.
//!
//! `ECRD_TEST_POSTGRES_URL` names a server to use (a URL whose user may
//! create databases, e.g. `postgres://postgres@127.0.0.1:5432/postgres`;
//! `.ci/run` starts one). Without it, the first caller in a test process
//! makes a throwaway cluster with Debian's `initdb` and `postgres` (as the
//! `postgres` user when running as root, since PostgreSQL refuses root),
//! listening on a free loopback port with `fsync=off`. It is stopped and
//! deleted when the test process exits: it runs under a shell that waits
//! on a pipe from this process, whose end closes with the process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The server every test of this process shares.
struct Server {
    admin_url: String,
    /// Keeps the shell's stdin (the pipe whose end stops the server) open.
    _child: Option<Mutex<Child>>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The URL of a new, empty database. Panics with a message saying what to
/// install or set when no server can be had.
pub fn fresh_database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!(
            "no PostgreSQL for the tests: {e}. Install Debian's postgresql package \
             or set ECRD_TEST_POSTGRES_URL to a server whose user may create databases"
        ),
    };
    let name = format!(
        "ecrd_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    admin(&server.admin_url, &format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    with_database(&server.admin_url, &name)
}

/// `url` naming database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..authority_end])
}

/// Runs one statement on `url`, retrying while the server starts up.
fn admin(url: &str, sql: &str) -> Result<(), String> {
    let url = url.to_string();
    let sql = sql.to_string();
    // A runtime of its own on a thread of its own: callers may be inside
    // a runtime already.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let attempt = async {
                    let (client, connection) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                    let driver = tokio::spawn(connection);
                    let result = client.batch_execute(&sql).await;
                    drop(client);
                    let _ = driver.await;
                    result
                };
                match attempt.await {
                    Ok(()) => return Ok(()),
                    Err(e) if Instant::now() < deadline && e.as_db_error().is_none() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) if Instant::now() < deadline && starting_up(&e) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_string())?
}

fn starting_up(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW)
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("ECRD_TEST_POSTGRES_URL") {
        if !url.trim().is_empty() {
            return Ok(Server {
                admin_url: url,
                _child: None,
            });
        }
    }
    let bin = binaries()?;
    let root = std::env::temp_dir().join(format!(
        "ecrd-test-postgres-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let as_root = is_root();
    if as_root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&root)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err(format!("chown postgres {} failed", root.display()));
        }
    }
    let data = root.join("data");
    let initdb = run_as_postgres(as_root, &bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = super::ports::for_child_server();
    // The shell stops the server and deletes the cluster when its stdin
    // reaches end of file, which happens when this process exits.
    let script = r#"
        "$1" -D "$2" -p "$3" -k "$4" -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             >"$4/postgres.log" 2>&1 &
        pid=$!
        read _ignored
        kill -INT "$pid"
        wait "$pid"
        rm -rf "$4"
    "#;
    let mut child = run_as_postgres(as_root, Path::new("sh"))
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    // Nothing is ever written: the pipe only has to stay open.
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.flush();
    }
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    admin(&admin_url, "SELECT 1").map_err(|e| {
        let log = std::fs::read_to_string(root.join("postgres.log")).unwrap_or_default();
        format!("the test server on port {port} did not answer: {e}\n{log}")
    })?;
    Ok(Server {
        admin_url,
        _child: Some(Mutex::new(child)),
    })
}

fn run_as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory of `initdb` and `postgres`: on PATH, else Debian's
/// versioned directory (newest first).
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    }) {
        return Ok(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "initdb is not on PATH and /usr/lib/postgresql does not exist".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".to_string())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
