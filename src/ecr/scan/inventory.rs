//! The package inventory of an image: which OS it is (os-release) and what
//! its package databases and language manifests say is installed in the
//! final file system. Owns the readers of each format: dpkg `status` and
//! distroless `status.d/`, apk `installed`, the rpm database (SQLite, and
//! the BerkeleyDB hash file of older images), Python `METADATA`/`PKG-INFO`,
//! npm `package-lock.json` (lockfile versions 1-3) and installed
//! `node_modules/*/package.json`, `Cargo.lock`, and the module list of Go
//! binaries. The layers themselves are walked by [`super::layers`]; each
//! file is parsed as it streams past and only the packages are kept.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::layers::{FileSystem, GoBuildInfo, LayerError, LayerFailure, Select};
use super::package::{Inventory, OsRelease, Package, PackageKind};

/// Why no inventory could be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryFailure {
    /// A layer failed to read, decompress or parse as tar.
    UnreadableLayer,
    /// The image is in a form a scan does not read (xz or bzip2 layers).
    UnsupportedImage,
}

/// A failed inventory; `message` names the layer index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub failure: InventoryFailure,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InventoryError {}

impl From<LayerError> for InventoryError {
    fn from(e: LayerError) -> Self {
        InventoryError {
            failure: match e.failure {
                LayerFailure::Unreadable => InventoryFailure::UnreadableLayer,
                LayerFailure::Unsupported => InventoryFailure::UnsupportedImage,
            },
            message: e.to_string(),
        }
    }
}

/// Reads the layers in manifest order (index 0 = base) and returns what is
/// installed in the final file system.
pub fn inventory<I, R>(layers: I) -> Result<Inventory, InventoryError>
where
    I: IntoIterator<Item = io::Result<R>>,
    R: Read,
{
    let fs = FileSystem::read_layers(layers, &mut Selector)?;
    Ok(collect(&fs))
}

/// In order of preference (the `/etc` one wins, as systemd reads them).
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "/var/lib/dpkg/status.d/";
const APK_INSTALLED: &str = "/lib/apk/db/installed";
/// Where `/lib/apk/db/installed` really is when `/lib` links to `usr/lib`.
const APK_INSTALLED_USR: &str = "/usr/lib/apk/db/installed";
/// rpm's `%_dbpath`: `/var/lib/rpm` (RHEL, Amazon Linux) or, on newer
/// Fedora and SUSE, `/usr/lib/sysimage/rpm`. SQLite first (rpm 4.16+).
const RPM_DATABASES: [(&str, Source); 4] = [
    ("/var/lib/rpm/rpmdb.sqlite", Source::RpmSqlite),
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", Source::RpmSqlite),
    ("/var/lib/rpm/Packages", Source::RpmBdb),
    ("/usr/lib/sysimage/rpm/Packages", Source::RpmBdb),
];

/// The files found at fixed places, whose parents may be symlinks.
const FIXED_PATHS: [&str; 8] = [
    OS_RELEASE[0],
    OS_RELEASE[1],
    DPKG_STATUS,
    APK_INSTALLED,
    RPM_DATABASES[0].0,
    RPM_DATABASES[1].0,
    RPM_DATABASES[2].0,
    RPM_DATABASES[3].0,
];

/// What kind of file a path holds, by where it is and what it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    OsRelease,
    Dpkg,
    DpkgStatusD,
    Apk,
    RpmSqlite,
    RpmBdb,
    Python,
    NpmLock,
    NpmPackage,
    CargoLock,
}

fn classify(path: &str) -> Option<Source> {
    if OS_RELEASE.contains(&path) {
        return Some(Source::OsRelease);
    }
    if path == DPKG_STATUS {
        return Some(Source::Dpkg);
    }
    if path == APK_INSTALLED || path == APK_INSTALLED_USR {
        return Some(Source::Apk);
    }
    if let Some((_, source)) = RPM_DATABASES.iter().find(|(p, _)| *p == path) {
        return Some(*source);
    }
    if let Some(name) = path.strip_prefix(DPKG_STATUS_D) {
        // One stanza file per package; `*.md5sums` sit beside them.
        return (!name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums"))
            .then_some(Source::DpkgStatusD);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "package-lock.json" => Some(Source::NpmLock),
        "Cargo.lock" => Some(Source::CargoLock),
        "package.json" if is_installed_node_module(path) => Some(Source::NpmPackage),
        _ if path.ends_with(".dist-info/METADATA")
            || path.ends_with(".egg-info/PKG-INFO")
            || name.ends_with(".egg-info") =>
        {
            Some(Source::Python)
        }
        _ => None,
    }
}

/// `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/
/// package.json`: a package's own manifest, not one of its test fixtures.
fn is_installed_node_module(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some((parent, name)) = dir.rsplit_once('/') else {
        return false;
    };
    if name.is_empty() || name.starts_with('.') {
        return false;
    }
    if parent.ends_with("/node_modules") {
        return !name.starts_with('@');
    }
    match parent.rsplit_once('/') {
        Some((grandparent, scope)) => {
            scope.len() > 1 && scope.starts_with('@') && grandparent.ends_with("/node_modules")
        }
        None => false,
    }
}

/// What is kept of a file.
#[derive(Debug, Clone)]
enum Found {
    Os(OsRelease),
    /// From a database at a fixed path: counted only when that path
    /// (symlinks followed) leads to it.
    Database(Vec<Package>),
    /// From a file counted wherever it is.
    Packages(Vec<Package>),
}

struct Selector;

impl Select for Selector {
    type Item = Found;

    fn wants_file(&self, path: &str) -> bool {
        classify(path).is_some()
    }

    fn wants_link(&self, path: &str) -> bool {
        // The fixed paths and their ancestors: `/etc/os-release` itself is a
        // link in Debian, `/lib` one in merged-/usr systems, `/var/lib/rpm`
        // one in Fedora.
        FIXED_PATHS.iter().any(|fixed| {
            fixed
                .strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    fn parse_file(&mut self, path: &str, bytes: &[u8]) -> Option<Found> {
        let text = || String::from_utf8_lossy(bytes);
        Some(match classify(path)? {
            Source::OsRelease => Found::Os(parse_os_release(&text())),
            Source::Dpkg => Found::Database(dpkg_packages(&text(), true)),
            Source::DpkgStatusD => Found::Packages(dpkg_packages(&text(), false)),
            Source::Apk => Found::Database(apk_packages(&text())),
            Source::RpmSqlite => Found::Database(rpm_sqlite_packages(bytes)?),
            Source::RpmBdb => Found::Database(rpm_bdb_packages(bytes)?),
            Source::Python => Found::Packages(python_package(&text()).into_iter().collect()),
            Source::NpmLock => Found::Packages(npm_lock_packages(bytes)),
            Source::NpmPackage => {
                Found::Packages(npm_manifest_package(bytes).into_iter().collect())
            }
            Source::CargoLock => Found::Packages(cargo_packages(&text())),
        })
    }

    fn parse_go(&mut self, _path: &str, info: GoBuildInfo) -> Option<Found> {
        Some(Found::Packages(go_packages(&info)))
    }
}

fn collect(fs: &FileSystem<Found>) -> Inventory {
    let os = OS_RELEASE.iter().find_map(|path| match fs.get(path)?.item {
        Found::Os(os) => Some(os.clone()),
        _ => None,
    });

    let mut packages = Vec::new();
    // Two fixed paths may lead to one file (`/var/lib/rpm` -> sysimage).
    let mut seen = BTreeSet::new();
    let mut take_database = |path: &str, packages: &mut Vec<Package>| -> bool {
        let Some(file) = fs.get(path) else {
            return false;
        };
        let Found::Database(found) = file.item else {
            return false;
        };
        if seen.insert(file.path.to_owned()) {
            packages.extend(placed(found, file.path, file.layer));
        }
        true
    };
    take_database(DPKG_STATUS, &mut packages);
    take_database(APK_INSTALLED, &mut packages);
    // One rpm database: the first that exists and reads.
    for (path, _) in RPM_DATABASES {
        if take_database(path, &mut packages) {
            break;
        }
    }
    for file in fs.files() {
        if let Found::Packages(found) = file.item {
            packages.extend(placed(found, file.path, file.layer));
        }
    }

    packages.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    packages.dedup();
    Inventory { os, packages }
}

fn placed<'a>(
    found: &'a [Package],
    path: &'a str,
    layer: usize,
) -> impl Iterator<Item = Package> + 'a {
    found.iter().map(move |p| Package {
        path: path.to_owned(),
        layer,
        ..p.clone()
    })
}

#[allow(clippy::type_complexity)]
fn sort_key(
    p: &Package,
) -> (
    u8,
    &str,
    &str,
    &str,
    usize,
    Option<&str>,
    Option<&str>,
    Option<&str>,
) {
    (
        p.kind as u8,
        &p.name,
        &p.version,
        &p.path,
        p.layer,
        p.arch.as_deref(),
        p.source_name.as_deref(),
        p.source_version.as_deref(),
    )
}

/// A package before the file it came from is known.
fn package(kind: PackageKind, name: &str, version: &str) -> Package {
    Package {
        kind,
        name: name.to_owned(),
        version: version.to_owned(),
        source_name: None,
        source_version: None,
        arch: None,
        path: String::new(),
        layer: 0,
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

/// `KEY=value` lines, values shell-quoted (os-release(5)).
fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    let mut id = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote_shell(raw.trim());
        match key.trim() {
            "ID" => id = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_owned).collect(),
            "VERSION_ID" => os.version_id = non_empty(Some(&value)),
            "VERSION_CODENAME" => os.version_codename = non_empty(Some(&value)),
            "PRETTY_NAME" => os.pretty_name = non_empty(Some(&value)),
            _ => {}
        }
    }
    // os-release(5): "If not set, a default of ID=linux may be used."
    os.id = id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "linux".to_owned());
    os
}

fn unquote_shell(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some('\'') => raw[1..].split('\'').next().unwrap_or_default().to_owned(),
        Some('"') => {
            let mut out = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            if !matches!(escaped, '"' | '\\' | '$' | '`') {
                                out.push('\\');
                            }
                            out.push(escaped);
                        }
                    }
                    c => out.push(c),
                }
            }
            out
        }
        _ => raw.to_owned(),
    }
}

/// RFC 822-style stanzas separated by blank lines, as `(field, value)`
/// pairs; continuation lines (leading space or tab) are dropped, since no
/// field read here spans lines.
fn stanzas(text: &str) -> Vec<Vec<(&str, &str)>> {
    let mut all = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim(), value.trim()));
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

fn field<'a>(stanza: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// dpkg's `status` (every stanza has `Status:`) or one `status.d/` file
/// (distroless writes installed packages only, often without it).
fn dpkg_packages(text: &str, status_required: bool) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in stanzas(text) {
        let (Some(name), Some(version)) = (field(&stanza, "Package"), field(&stanza, "Version"))
        else {
            continue;
        };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        // `want flag status`: what is on disk is the third word, so
        // `hold ok installed` counts and `deinstall ok config-files` not.
        let installed = match field(&stanza, "Status") {
            Some(status) => {
                let words: Vec<&str> = status.split_whitespace().collect();
                words.len() == 3 && words[1] == "ok" && words[2] == "installed"
            }
            None => !status_required,
        };
        if !installed {
            continue;
        }
        let mut pkg = package(PackageKind::Dpkg, name, version);
        pkg.arch = non_empty(field(&stanza, "Architecture"));
        if let Some(source) = field(&stanza, "Source") {
            // `Source: name` or `Source: name (version)`.
            let (source_name, source_version) = match source.split_once('(') {
                Some((name, rest)) => (name.trim(), rest.split(')').next().map(str::trim)),
                None => (source, None),
            };
            pkg.source_name = non_empty(Some(source_name));
            pkg.source_version = non_empty(source_version);
        }
        out.push(pkg);
    }
    out
}

/// apk's installed database: one record per package, `X:value` lines with
/// case-sensitive single-letter keys.
fn apk_packages(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for record in stanzas(text) {
        let get = |key: &str| {
            record
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_empty())
        };
        let (Some(name), Some(version)) = (get("P"), get("V")) else {
            continue;
        };
        let mut pkg = package(PackageKind::Apk, name, version);
        pkg.arch = non_empty(get("A"));
        pkg.source_name = non_empty(get("o"));
        out.push(pkg);
    }
    out
}

const RPMTAG_NAME: u32 = 1000;
const RPMTAG_VERSION: u32 = 1001;
const RPMTAG_RELEASE: u32 = 1002;
const RPMTAG_EPOCH: u32 = 1003;
const RPMTAG_ARCH: u32 = 1022;
const RPMTAG_SOURCERPM: u32 = 1044;
const RPM_INT32_TYPE: u32 = 4;
const RPM_STRING_TYPE: u32 = 6;
const RPM_STRING_ARRAY_TYPE: u32 = 8;
const RPM_I18NSTRING_TYPE: u32 = 9;
/// rpm's own limits on a header (`hdrMaxSize`: 256 MiB, 64Ki tags).
const RPM_MAX_INDEX: usize = 0x0001_0000;

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// One package from an rpm header blob as the database stores it (no lead,
/// no magic): index count and data length, 16-byte index entries of tag,
/// type, offset and count (all big-endian), then the data store.
fn rpm_header_package(blob: &[u8]) -> Option<Package> {
    let index_len = usize::try_from(be32(blob, 0)?).ok()?;
    let data_len = usize::try_from(be32(blob, 4)?).ok()?;
    if index_len > RPM_MAX_INDEX {
        return None;
    }
    let data_start = 8 + index_len * 16;
    let data = blob.get(data_start..data_start.checked_add(data_len)?)?;
    let (mut name, mut version, mut release, mut epoch, mut arch, mut source_rpm) =
        (None, None, None, None, None, None);
    for i in 0..index_len {
        let at = 8 + i * 16;
        let (tag, kind, offset) = (be32(blob, at)?, be32(blob, at + 4)?, be32(blob, at + 8)?);
        let offset = usize::try_from(offset).ok()?;
        let string = || -> Option<String> {
            if !matches!(
                kind,
                RPM_STRING_TYPE | RPM_STRING_ARRAY_TYPE | RPM_I18NSTRING_TYPE
            ) {
                return None;
            }
            let tail = data.get(offset..)?;
            let end = tail.iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&tail[..end]).into_owned())
        };
        match tag {
            RPMTAG_NAME => name = string(),
            RPMTAG_VERSION => version = string(),
            RPMTAG_RELEASE => release = string(),
            RPMTAG_ARCH => arch = string(),
            RPMTAG_SOURCERPM => source_rpm = string(),
            RPMTAG_EPOCH if kind == RPM_INT32_TYPE => epoch = be32(data, offset),
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty())?;
    let version = version.filter(|v| !v.is_empty())?;
    let version_release = match release.as_deref() {
        Some(release) if !release.is_empty() => format!("{version}-{release}"),
        _ => version,
    };
    let full = match epoch {
        Some(epoch) => format!("{epoch}:{version_release}"),
        None => version_release.clone(),
    };
    let mut pkg = package(PackageKind::Rpm, &name, &full);
    pkg.arch = non_empty(arch.as_deref());
    if let Some(srpm) = source_rpm {
        // `openssl-1.1.1k-5.el8.src.rpm`: name, version, release.
        let stem = srpm
            .strip_suffix(".src.rpm")
            .or_else(|| srpm.strip_suffix(".nosrc.rpm"))
            .unwrap_or(&srpm);
        let mut parts = stem.rsplitn(3, '-');
        if let (Some(src_release), Some(src_version), Some(src_name)) =
            (parts.next(), parts.next(), parts.next())
        {
            pkg.source_name = non_empty(Some(src_name));
            let src_version_release = format!("{src_version}-{src_release}");
            if src_version_release != version_release {
                pkg.source_version = Some(match epoch {
                    Some(epoch) => format!("{epoch}:{src_version_release}"),
                    None => src_version_release,
                });
            }
        }
    }
    Some(pkg)
}

fn rpm_packages<I: IntoIterator<Item = Vec<u8>>>(blobs: I) -> Vec<Package> {
    blobs
        .into_iter()
        .filter_map(|blob| rpm_header_package(&blob))
        // The keys rpm imports for signature checks are not software.
        .filter(|p| p.name != "gpg-pubkey")
        .collect()
}

/// A file in the temp directory, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn create(parts: &[&[u8]]) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ecrd-rpmdb-{}-{}-{nanos}.sqlite",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let temp = TempFile { path };
        for part in parts {
            file.write_all(part)?;
        }
        Ok(temp)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// rpm 4.16+'s `rpmdb.sqlite`: table `Packages`, column `blob`. SQLite only
/// opens files, so the bytes go to a temp file for the duration.
fn rpm_sqlite_packages(bytes: &[u8]) -> Option<Vec<Package>> {
    if !bytes.starts_with(SQLITE_MAGIC) || bytes.len() < 100 {
        return None;
    }
    // rpm keeps the database in WAL mode; a WAL database cannot be opened
    // read-only without its `-shm` file. The image holds no WAL to replay,
    // so the header's read/write versions go back to 1 (rollback journal).
    let mut header = bytes[..100].to_vec();
    if header[18] == 2 || header[19] == 2 {
        header[18] = 1;
        header[19] = 1;
    }
    let file = TempFile::create(&[&header[..], &bytes[100..]]).ok()?;
    let conn = rusqlite::Connection::open_with_flags(
        &file.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let mut statement = conn.prepare("SELECT blob FROM Packages").ok()?;
    let blobs: Vec<Vec<u8>> = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .ok()?
        .filter_map(Result::ok)
        .collect();
    Some(rpm_packages(blobs))
}

/// Berkeley DB hash database magic (`DB_HASHMAGIC`).
const BDB_HASH_MAGIC: u32 = 0x0006_1561;
const BDB_PAGE_HEADER: usize = 26;
const BDB_HASH_META_PAGE: u8 = 8;
const BDB_HASH_UNSORTED_PAGE: u8 = 2;
const BDB_HASH_PAGE: u8 = 13;
const BDB_OVERFLOW_PAGE: u8 = 7;
const BDB_KEYDATA_ITEM: u8 = 1;
const BDB_OFFPAGE_ITEM: u8 = 3;

/// The Berkeley DB hash file of rpm before 4.16 (`/var/lib/rpm/Packages`,
/// CentOS 7, Amazon Linux 2): every hash page holds key/value item pairs;
/// the values are header blobs, inline or (usually) on a chain of overflow
/// pages. Read page by page from the metadata page's page size, in the
/// byte order its magic shows (db_page.h).
fn rpm_bdb_packages(db: &[u8]) -> Option<Vec<Package>> {
    let meta = db.get(..72)?;
    let magic: [u8; 4] = meta[12..16].try_into().ok()?;
    let swapped = if u32::from_le_bytes(magic) == BDB_HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == BDB_HASH_MAGIC {
        true
    } else {
        return None;
    };
    let u32_at = |data: &[u8], at: usize| -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if swapped {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    };
    let u16_at = |data: &[u8], at: usize| -> Option<usize> {
        let bytes: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if swapped {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        }))
    };
    // Encrypted databases (byte 24) are not readable here.
    if meta[25] != BDB_HASH_META_PAGE || meta[24] != 0 {
        return None;
    }
    let page_size = usize::try_from(u32_at(meta, 20)?).ok()?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let last_page = usize::try_from(u32_at(meta, 32)?).ok()?;
    let pages = (db.len() / page_size).min(last_page.saturating_add(1));
    let page = |number: usize| db.get(number * page_size..(number + 1) * page_size);

    let mut blobs = Vec::new();
    for number in 1..pages {
        let Some(hash_page) = page(number) else {
            break;
        };
        if !matches!(hash_page[25], BDB_HASH_PAGE | BDB_HASH_UNSORTED_PAGE) {
            continue;
        }
        let entries = u16_at(hash_page, 20)?;
        // Items come in key/value pairs; item i runs from its offset to the
        // previous item's (the first to the end of the page).
        for value in (1..entries).step_by(2) {
            let Some(start) = u16_at(hash_page, BDB_PAGE_HEADER + 2 * value) else {
                break;
            };
            let end = u16_at(hash_page, BDB_PAGE_HEADER + 2 * (value - 1)).unwrap_or(page_size);
            let Some(item) = hash_page.get(start..end.max(start)) else {
                continue;
            };
            match item.first() {
                Some(&BDB_KEYDATA_ITEM) => blobs.push(item[1..].to_vec()),
                Some(&BDB_OFFPAGE_ITEM) => {
                    let (Some(first), Some(total)) = (u32_at(item, 4), u32_at(item, 8)) else {
                        continue;
                    };
                    let total = usize::try_from(total).ok()?;
                    let mut blob = Vec::with_capacity(total.min(db.len()));
                    let mut next = usize::try_from(first).ok()?;
                    let mut hops = 0;
                    while next != 0 && blob.len() < total && hops < pages {
                        hops += 1;
                        let Some(overflow) = page(next) else { break };
                        if overflow[25] != BDB_OVERFLOW_PAGE {
                            break;
                        }
                        // On an overflow page the "high free offset" field
                        // holds how many bytes of the item it carries.
                        let used = u16_at(overflow, 22)?;
                        let Some(chunk) = overflow.get(BDB_PAGE_HEADER..BDB_PAGE_HEADER + used)
                        else {
                            break;
                        };
                        blob.extend_from_slice(chunk);
                        next = usize::try_from(u32_at(overflow, 16)?).ok()?;
                    }
                    blob.truncate(total);
                    blobs.push(blob);
                }
                _ => {}
            }
        }
    }
    Some(rpm_packages(blobs))
}

/// The `Name:` and `Version:` headers of core metadata (`METADATA`,
/// `PKG-INFO`), which end at the first blank line.
fn python_package(text: &str) -> Option<Package> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if key.eq_ignore_ascii_case("Name") && name.is_none() {
            name = Some(value);
        } else if key.eq_ignore_ascii_case("Version") && version.is_none() {
            version = Some(value);
        }
    }
    let (name, version) = (
        name.filter(|n| !n.is_empty())?,
        version.filter(|v| !v.is_empty())?,
    );
    Some(package(PackageKind::Python, name, version))
}

fn json_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// `package-lock.json`: the `packages` map of lockfile versions 2 and 3
/// (keyed by install path), else version 1's nested `dependencies`.
fn npm_lock_packages(bytes: &[u8]) -> Vec<Package> {
    let Ok(lock) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(installed) = lock.get("packages").and_then(Value::as_object) {
        for (key, entry) in installed {
            // "" is the project itself; keys without node_modules/ are its
            // workspace members; links point at one of those.
            let Some(at) = key.rfind("node_modules/") else {
                continue;
            };
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = json_str(entry, "name").unwrap_or(&key[at + "node_modules/".len()..]);
            if let (false, Some(version)) = (name.is_empty(), json_str(entry, "version")) {
                out.push(package(PackageKind::Npm, name, version));
            }
        }
    } else if let Some(dependencies) = lock.get("dependencies") {
        npm_lock_v1(dependencies, &mut out, 0);
    }
    out
}

/// Deeper than any real tree; stops a hostile file from exhausting the stack.
const NPM_MAX_DEPTH: usize = 128;

fn npm_lock_v1(dependencies: &Value, out: &mut Vec<Package>, depth: usize) {
    let Some(dependencies) = dependencies.as_object() else {
        return;
    };
    if depth > NPM_MAX_DEPTH {
        return;
    }
    for (name, entry) in dependencies {
        if let Some(version) = json_str(entry, "version") {
            if let Some(alias) = version.strip_prefix("npm:") {
                // An alias: `"version": "npm:real-name@1.2.3"`.
                if let Some((real, version)) = alias.rsplit_once('@') {
                    if !real.is_empty() && !version.is_empty() {
                        out.push(package(PackageKind::Npm, real, version));
                    }
                }
            } else if !version.starts_with("file:") {
                // `file:` is a local link, i.e. part of the project.
                out.push(package(PackageKind::Npm, name, version));
            }
        }
        if let Some(nested) = entry.get("dependencies") {
            npm_lock_v1(nested, out, depth + 1);
        }
    }
}

fn npm_manifest_package(bytes: &[u8]) -> Option<Package> {
    let manifest: Value = serde_json::from_slice(bytes).ok()?;
    let name = json_str(&manifest, "name")?;
    let version = json_str(&manifest, "version")?;
    Some(package(PackageKind::Npm, name, version))
}

/// `[[package]]` tables of a `Cargo.lock`, read line by line: only `name`,
/// `version` and whether there is a `source` matter, and Cargo writes each
/// on its own line.
fn cargo_packages(text: &str) -> Vec<Package> {
    struct Entry<'a> {
        name: Option<&'a str>,
        version: Option<&'a str>,
        source: bool,
    }
    fn flush(entry: Option<Entry<'_>>, out: &mut Vec<Package>) {
        // No `source`: a workspace member, i.e. the project itself.
        if let Some(Entry {
            name: Some(name),
            version: Some(version),
            source: true,
        }) = entry
        {
            out.push(package(PackageKind::Cargo, name, version));
        }
    }
    let mut out = Vec::new();
    let mut current: Option<Entry<'_>> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(current.take(), &mut out);
            if line == "[[package]]" {
                current = Some(Entry {
                    name: None,
                    version: None,
                    source: false,
                });
            }
            continue;
        }
        let (Some(entry), Some((key, value))) = (current.as_mut(), line.split_once('=')) else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match key.trim() {
            "name" => entry.name = Some(value).filter(|v| !v.is_empty()),
            "version" => entry.version = Some(value).filter(|v| !v.is_empty()),
            "source" => entry.source = true,
            _ => {}
        }
    }
    flush(current, &mut out);
    out
}

/// The toolchain as `stdlib`, then the main module and every dependency
/// from the module text (`mod`, `dep`, and `=>` replacing the line before).
fn go_packages(info: &GoBuildInfo) -> Vec<Package> {
    let mut out = Vec::new();
    let toolchain = info.go_version.trim();
    // `go1.21.3`, possibly with experiments (`go1.21.3 X:boringcrypto`);
    // a `devel ...` toolchain is kept whole.
    let stdlib = match toolchain.split_whitespace().next() {
        Some(first) if first.starts_with("go") => &first[2..],
        _ => toolchain,
    };
    if !stdlib.is_empty() {
        out.push(package(PackageKind::GoStdlib, "stdlib", stdlib));
    }

    let mut main: Option<(&str, &str)> = None;
    let mut deps: Vec<(&str, &str)> = Vec::new();
    let mut after_dep = false;
    for line in info.modinfo.lines() {
        let mut fields = line.split('\t');
        let word = fields.next();
        let path = fields.next().unwrap_or_default();
        let version = fields.next().unwrap_or_default();
        match word {
            Some("mod") => {
                main = Some((path, version));
                after_dep = false;
            }
            Some("dep") => {
                deps.push((path, version));
                after_dep = true;
            }
            Some("=>") if after_dep => {
                if let Some(last) = deps.last_mut() {
                    *last = (path, version);
                }
            }
            _ => after_dep = false,
        }
    }
    // `(devel)` is a module built from its own checkout, and a replacement
    // by a local directory has no version: neither names a release.
    let released = |(path, version): &(&str, &str)| {
        !path.is_empty() && !version.is_empty() && *version != "(devel)"
    };
    for (path, version) in main.iter().chain(deps.iter()).filter(|m| released(m)) {
        out.push(package(PackageKind::Go, path, version));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::layers::tests::{elf_with, go_blob, Layer};
    use super::*;
    use std::io::Cursor;

    fn scan(layers: Vec<Vec<u8>>) -> Result<Inventory, InventoryError> {
        inventory(layers.into_iter().map(|b| Ok(Cursor::new(b))))
    }

    /// (kind, name, version, path, layer) of every package.
    fn summary(inv: &Inventory) -> Vec<(PackageKind, &str, &str, &str, usize)> {
        inv.packages
            .iter()
            .map(|p| {
                (
                    p.kind,
                    p.name.as_str(),
                    p.version.as_str(),
                    p.path.as_str(),
                    p.layer,
                )
            })
            .collect()
    }

    fn find<'a>(inv: &'a Inventory, name: &str) -> &'a Package {
        inv.packages.iter().find(|p| p.name == name).unwrap()
    }

    const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    const DPKG_BASE: &str = "Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit
 This package is part of the OpenSSL project's implementation.
 .
 Package: not-a-package

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: oldconf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: held
Status: hold ok installed
Architecture: all
Version: 2.0
";

    fn debian_base() -> Vec<u8> {
        Layer::new()
            .dir("etc")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("usr/lib/os-release", DEBIAN_OS_RELEASE.as_bytes())
            .file("var/lib/dpkg/status", DPKG_BASE.as_bytes())
            .gzip()
    }

    #[test]
    fn debian_base_reads_dpkg_and_a_symlinked_os_release() {
        let inv = scan(vec![debian_base()]).unwrap();
        let os = inv.os.clone().unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let status = "/var/lib/dpkg/status";
        assert_eq!(
            summary(&inv),
            vec![
                (PackageKind::Dpkg, "bash", "5.2.15-2+b2", status, 0),
                (PackageKind::Dpkg, "held", "2.0", status, 0),
                (PackageKind::Dpkg, "libssl3", "3.0.11-1~deb12u1", status, 0),
                (PackageKind::Dpkg, "zlib1g", "1:1.2.13.dfsg-1", status, 0),
            ]
        );
        let ssl = find(&inv, "libssl3");
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.source_version, None);
        assert_eq!(ssl.arch.as_deref(), Some("amd64"));
        let zlib = find(&inv, "zlib1g");
        assert_eq!(zlib.source_name.as_deref(), Some("zlib"));
        assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
        assert_eq!(find(&inv, "bash").source_name, None);
    }

    #[test]
    fn later_layers_upgrade_and_remove_dpkg_packages() {
        let upgraded = DPKG_BASE
            .replace("3.0.11-1~deb12u1", "3.0.13-1~deb12u1")
            .replace(
                "Package: bash\nStatus: install ok installed",
                "Package: bash\nStatus: deinstall ok not-installed",
            );
        let layer = Layer::new()
            .file("var/lib/dpkg/status", upgraded.as_bytes())
            .tar();
        let inv = scan(vec![debian_base(), layer]).unwrap();
        let ssl = find(&inv, "libssl3");
        assert_eq!((ssl.version.as_str(), ssl.layer), ("3.0.13-1~deb12u1", 1));
        assert!(inv.packages.iter().all(|p| p.name != "bash"));
        assert_eq!(inv.os.unwrap().id, "debian");
    }

    #[test]
    fn os_release_prefers_etc_and_unquotes() {
        let layer = Layer::new()
            .file("usr/lib/os-release", b"ID=ignored\n")
            .file(
                "etc/os-release",
                b"# comment\nID=ubuntu\nID_LIKE='debian linux'\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Ubuntu \\\"Jammy\\\"\"\n",
            )
            .tar();
        let os = scan(vec![layer]).unwrap().os.unwrap();
        assert_eq!(os.id, "ubuntu");
        assert_eq!(os.id_like, vec!["debian", "linux"]);
        assert_eq!(os.version_id.as_deref(), Some("22.04"));
        assert_eq!(os.pretty_name.as_deref(), Some("Ubuntu \"Jammy\""));
        assert_eq!(os.version_codename, None);

        let none = scan(vec![Layer::new().file("app/x", b"x").tar()]).unwrap();
        assert_eq!(none, Inventory::default());
    }

    #[test]
    fn distroless_status_d_counts_stanzas_without_status() {
        let layer = Layer::new()
            .file(
                "etc/os-release",
                b"PRETTY_NAME=\"Distroless\"\nID=debian\nVERSION_ID=\"12\"\n",
            )
            .file(
                "var/lib/dpkg/status.d/libc6",
                b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n",
            )
            .file("var/lib/dpkg/status.d/libc6.md5sums", b"abc  lib/x.so\n")
            .file(
                "var/lib/dpkg/status.d/tzdata",
                b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
            )
            .tar();
        let inv = scan(vec![layer]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![
                (
                    PackageKind::Dpkg,
                    "libc6",
                    "2.36-9+deb12u4",
                    "/var/lib/dpkg/status.d/libc6",
                    0
                ),
                (
                    PackageKind::Dpkg,
                    "tzdata",
                    "2024a-0+deb12u1",
                    "/var/lib/dpkg/status.d/tzdata",
                    0
                ),
            ]
        );
        assert_eq!(find(&inv, "libc6").source_name.as_deref(), Some("glibc"));
    }

    #[test]
    fn alpine_apk_database() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nT:the musl c library\no:musl\nm:Someone\n\nC:Q1def=\nP:libcrypto3\nV:3.1.4-r1\nA:x86_64\no:openssl\nr:libcrypto1.1\np:so:libcrypto.so.3=3\nR:libcrypto.so.3\na:0:0:755\n\n";
        let layer = Layer::new()
            .file(
                "etc/os-release",
                b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\n",
            )
            .file("lib/apk/db/installed", db.as_bytes())
            .gzip();
        let inv = scan(vec![layer]).unwrap();
        assert_eq!(
            inv.os.as_ref().unwrap().version_id.as_deref(),
            Some("3.18.4")
        );
        let path = "/lib/apk/db/installed";
        assert_eq!(
            summary(&inv),
            vec![
                (PackageKind::Apk, "libcrypto3", "3.1.4-r1", path, 0),
                (PackageKind::Apk, "musl", "1.2.4-r2", path, 0),
            ]
        );
        let crypto = find(&inv, "libcrypto3");
        assert_eq!(crypto.source_name.as_deref(), Some("openssl"));
        assert_eq!(crypto.arch.as_deref(), Some("x86_64"));
    }

    #[test]
    fn merged_usr_apk_database_is_found_through_the_lib_symlink() {
        let layer = Layer::new()
            .symlink("lib", "usr/lib")
            .file("usr/lib/apk/db/installed", b"P:busybox\nV:1.36.1-r5\n")
            .tar();
        let inv = scan(vec![layer]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![(
                PackageKind::Apk,
                "busybox",
                "1.36.1-r5",
                "/usr/lib/apk/db/installed",
                0
            )]
        );
        // Without the link, the stray copy is not the database.
        let stray = Layer::new()
            .file("usr/lib/apk/db/installed", b"P:busybox\nV:1.36.1-r5\n")
            .tar();
        assert!(scan(vec![stray]).unwrap().packages.is_empty());
    }

    #[test]
    fn python_metadata_and_whiteouts() {
        let base = Layer::new()
            .file(
                "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\n\nName: body-is-not-headers\n",
            )
            .file(
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
                b"Metadata-Version: 1.2\r\nName: six\r\nVersion: 1.16.0\r\n",
            )
            .file(
                "usr/lib/python3/dist-packages/PyYAML-6.0.egg-info",
                b"Metadata-Version: 1.1\nName: PyYAML\nVersion: 6.0\n",
            )
            .file("usr/lib/python3/dist-packages/broken.dist-info/METADATA", b"Name: broken\n")
            .tar();
        let inv = scan(vec![base.clone()]).unwrap();
        let names: Vec<_> = inv
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("PyYAML", "6.0"), ("requests", "2.31.0"), ("six", "1.16.0")]
        );
        assert!(inv.packages.iter().all(|p| p.kind == PackageKind::Python));

        // `pip uninstall` in a later layer: whiteouts of a directory and a file.
        let top = Layer::new()
            .whiteout("usr/lib/python3/dist-packages/six-1.16.0.egg-info")
            .whiteout("usr/lib/python3/dist-packages/PyYAML-6.0.egg-info")
            .tar();
        let inv = scan(vec![base, top]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![(
                PackageKind::Python,
                "requests",
                "2.31.0",
                "/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                0
            )]
        );
    }

    #[test]
    fn an_opaque_directory_hides_lower_packages() {
        let base = Layer::new()
            .file(
                "app/node_modules/left-pad/package.json",
                br#"{"name":"left-pad","version":"1.3.0"}"#,
            )
            .file(
                "app/node_modules/lodash/package.json",
                br#"{"name":"lodash","version":"4.17.20"}"#,
            )
            .tar();
        let top = Layer::new()
            .dir("app/node_modules")
            .opaque("app/node_modules")
            .file(
                "app/node_modules/lodash/package.json",
                br#"{"name":"lodash","version":"4.17.21"}"#,
            )
            .tar();
        let inv = scan(vec![base, top]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![(
                PackageKind::Npm,
                "lodash",
                "4.17.21",
                "/app/node_modules/lodash/package.json",
                1
            )]
        );
    }

    #[test]
    fn node_modules_manifests_only_at_package_roots() {
        let layer = Layer::new()
            .file(
                "app/package.json",
                br#"{"name":"my-app","version":"1.0.0"}"#,
            )
            .file(
                "app/node_modules/@babel/core/package.json",
                br#"{"name":"@babel/core","version":"7.23.0"}"#,
            )
            .file(
                "app/node_modules/a/node_modules/b/package.json",
                br#"{"name":"b","version":"2.0.0","description":"nested"}"#,
            )
            .file(
                "app/node_modules/a/package.json",
                br#"{"name":"a","version":"1.0.0"}"#,
            )
            .file(
                "app/node_modules/a/test/fixture/package.json",
                br#"{"name":"fixture","version":"0.0.1"}"#,
            )
            .file(
                "app/node_modules/@babel/package.json",
                br#"{"name":"scope","version":"0.0.1"}"#,
            )
            .file("app/node_modules/c/package.json", br#"{"name":"c"}"#)
            .file("app/node_modules/d/package.json", b"not json")
            .tar();
        let inv = scan(vec![layer]).unwrap();
        let names: Vec<_> = inv
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("@babel/core", "7.23.0"), ("a", "1.0.0"), ("b", "2.0.0")]
        );
    }

    #[test]
    fn npm_lockfiles_v1_and_v3() {
        let v1 = br#"{
          "name": "app", "version": "1.0.0", "lockfileVersion": 1,
          "dependencies": {
            "express": {"version": "4.18.2", "dependencies": {
              "debug": {"version": "2.6.9"}
            }},
            "debug": {"version": "4.3.4"},
            "local": {"version": "file:../local"},
            "alias": {"version": "npm:lodash@4.17.21"},
            "dup": {"version": "1.0.0", "dependencies": {"dup": {"version": "1.0.0"}}}
          }
        }"#;
        let v3 = br#"{
          "name": "svc", "version": "2.0.0", "lockfileVersion": 3,
          "packages": {
            "": {"name": "svc", "version": "2.0.0"},
            "node_modules/axios": {"version": "1.6.0"},
            "node_modules/axios/node_modules/form-data": {"version": "4.0.0"},
            "node_modules/@types/node": {"version": "20.8.0", "dev": true},
            "node_modules/my-alias": {"name": "real-pkg", "version": "3.0.0"},
            "node_modules/ws-member": {"resolved": "packages/member", "link": true},
            "packages/member": {"name": "member", "version": "0.1.0"}
          }
        }"#;
        let layer = Layer::new()
            .file("srv/v1/package-lock.json", v1)
            .file("srv/v3/package-lock.json", v3)
            .file("srv/bad/package-lock.json", b"{")
            .tar();
        let inv = scan(vec![layer]).unwrap();
        let got: Vec<_> = inv
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str()))
            .collect();
        let (p1, p3) = ("/srv/v1/package-lock.json", "/srv/v3/package-lock.json");
        assert_eq!(
            got,
            vec![
                ("@types/node", "20.8.0", p3),
                ("axios", "1.6.0", p3),
                ("debug", "2.6.9", p1),
                ("debug", "4.3.4", p1),
                ("dup", "1.0.0", p1),
                ("express", "4.18.2", p1),
                ("form-data", "4.0.0", p3),
                ("lodash", "4.17.21", p1),
                ("real-pkg", "3.0.0", p3),
            ]
        );
    }

    #[test]
    fn cargo_lock_skips_workspace_members() {
        let lock = r#"# This file is automatically @generated by Cargo.
version = 3

[[package]]
name = "myapp"
version = "0.1.0"
dependencies = [
 "serde 1.0.190 (registry+https://github.com/rust-lang/crates.io-index)",
 "x 0.1.0 (git+https://example.com/x?rev=abc#abc)",
]

[[package]]
name = "serde"
version = "1.0.190"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "91d3c334ca1ee894a2c6f6ad698fe8c435b76d504b13d436f0685d648d6d96f7"

[[package]]
name = "x"
version = "0.1.0"
source = "git+https://example.com/x?rev=abc#abc"

[metadata]
name = "not-a-package"
"#;
        let layer = Layer::new()
            .file("src/app/Cargo.lock", lock.as_bytes())
            .tar();
        let inv = scan(vec![layer]).unwrap();
        let p = "/src/app/Cargo.lock";
        assert_eq!(
            summary(&inv),
            vec![
                (PackageKind::Cargo, "serde", "1.0.190", p, 0),
                (PackageKind::Cargo, "x", "0.1.0", p, 0),
            ]
        );
    }

    #[test]
    fn go_binaries_report_stdlib_main_module_and_replaced_deps() {
        let modinfo = "path\texample.com/app/cmd/app\n\
mod\texample.com/app\tv1.4.0\th1:abc=\n\
dep\tgithub.com/gorilla/mux\tv1.8.0\th1:def=\n\
dep\tgolang.org/x/net\tv0.10.0\th1:ghi=\n\
=>\tgithub.com/fork/net\tv0.17.0\th1:jkl=\n\
dep\texample.com/local\tv0.0.0\n\
=>\t../local\t\n\
build\t-compiler=gc\n\
build\tGOOS=linux\n";
        let binary = elf_with(4096 + 48, &go_blob("go1.21.3", modinfo), 10_000);
        let devel = elf_with(
            64,
            &go_blob("go1.22.0 X:boringcrypto", "path\tx\nmod\tx\t(devel)\t\n"),
            0,
        );
        let base = Layer::new()
            .exe("usr/local/bin/app", &binary)
            .exe("usr/local/bin/devel", &devel)
            .file_mode("usr/local/bin/notexec", 0o644, &binary)
            .exe("usr/local/bin/gone", &devel)
            .tar();
        let top = Layer::new().whiteout("usr/local/bin/gone").gzip();
        let inv = scan(vec![base, top]).unwrap();
        let (app, dev) = ("/usr/local/bin/app", "/usr/local/bin/devel");
        assert_eq!(
            summary(&inv),
            vec![
                (PackageKind::Go, "example.com/app", "v1.4.0", app, 0),
                (PackageKind::Go, "github.com/fork/net", "v0.17.0", app, 0),
                (PackageKind::Go, "github.com/gorilla/mux", "v1.8.0", app, 0),
                (PackageKind::GoStdlib, "stdlib", "1.21.3", app, 0),
                (PackageKind::GoStdlib, "stdlib", "1.22.0", dev, 0),
            ]
        );
    }

    /// An rpm header blob (as rpmdb stores it) from string and int32 tags.
    fn rpm_header(tags: &[(u32, Result<&str, u32>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, value) in tags {
            let (kind, offset) = match value {
                Ok(text) => {
                    let offset = data.len();
                    data.extend_from_slice(text.as_bytes());
                    data.push(0);
                    (RPM_STRING_TYPE, offset)
                }
                Err(number) => {
                    while data.len() % 4 != 0 {
                        data.push(0);
                    }
                    let offset = data.len();
                    data.extend_from_slice(&number.to_be_bytes());
                    (RPM_INT32_TYPE, offset)
                }
            };
            for field in [*tag, kind, offset as u32, 1] {
                index.extend_from_slice(&field.to_be_bytes());
            }
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }

    fn rpm_headers() -> Vec<Vec<u8>> {
        vec![
            rpm_header(&[
                (RPMTAG_NAME, Ok("openssl-libs")),
                (RPMTAG_EPOCH, Err(1)),
                (RPMTAG_VERSION, Ok("1.1.1k")),
                (RPMTAG_RELEASE, Ok("9.el8_7")),
                (RPMTAG_ARCH, Ok("x86_64")),
                (RPMTAG_SOURCERPM, Ok("openssl-1.1.1k-9.el8_7.src.rpm")),
            ]),
            rpm_header(&[
                (RPMTAG_NAME, Ok("bash")),
                (RPMTAG_VERSION, Ok("4.4.20")),
                (RPMTAG_RELEASE, Ok("4.el8_6")),
                (RPMTAG_ARCH, Ok("x86_64")),
                (RPMTAG_SOURCERPM, Ok("bash-4.4.20-4.el8_6.src.rpm")),
            ]),
            rpm_header(&[
                (RPMTAG_NAME, Ok("gpg-pubkey")),
                (RPMTAG_VERSION, Ok("fd431d51")),
                (RPMTAG_RELEASE, Ok("4ae0493b")),
            ]),
            b"\0\0\0\xff garbage".to_vec(),
        ]
    }

    fn check_rpm(inv: &Inventory, path: &str) {
        assert_eq!(
            summary(inv),
            vec![
                (PackageKind::Rpm, "bash", "4.4.20-4.el8_6", path, 0),
                (
                    PackageKind::Rpm,
                    "openssl-libs",
                    "1:1.1.1k-9.el8_7",
                    path,
                    0
                ),
            ]
        );
        let ssl = find(inv, "openssl-libs");
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.source_version, None);
        assert_eq!(ssl.arch.as_deref(), Some("x86_64"));
    }

    #[test]
    fn rpm_sqlite_database() {
        let dir = std::env::temp_dir().join(format!("ecrd-inventory-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db_path = dir.join("rpmdb.sqlite");
        let _ = std::fs::remove_file(&db_path);
        {
            let conn = rusqlite::Connection::open(&db_path).unwrap();
            // rpm runs its database in WAL mode.
            conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
                .unwrap();
            conn.execute_batch(
                "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
            )
            .unwrap();
            for blob in rpm_headers() {
                conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                    .unwrap();
            }
        }
        let bytes = std::fs::read(&db_path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes[18], 2, "the test database is in WAL mode");

        let before: Vec<_> = temp_rpmdbs();
        let layer = Layer::new()
            .file(
                "etc/os-release",
                b"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n",
            )
            .file("usr/lib/sysimage/rpm/rpmdb.sqlite", &bytes)
            .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
            .tar();
        let inv = scan(vec![layer]).unwrap();
        check_rpm(&inv, "/usr/lib/sysimage/rpm/rpmdb.sqlite");
        assert_eq!(inv.os.unwrap().id_like, vec!["rhel", "centos", "fedora"]);
        assert_eq!(temp_rpmdbs(), before, "the temp copy is removed");

        // Not a database: nothing, and no failure.
        let junk = Layer::new()
            .file("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0junk")
            .tar();
        assert!(scan(vec![junk]).unwrap().packages.is_empty());
    }

    fn temp_rpmdbs() -> Vec<String> {
        let prefix = format!("ecrd-rpmdb-{}-", std::process::id());
        let mut names: Vec<String> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        names.sort();
        names
    }

    /// A little-endian Berkeley DB hash file: metadata page, one hash page
    /// with two key/value pairs (one value inline, one off-page), and the
    /// overflow chain of the off-page value.
    fn bdb(headers: &[Vec<u8>]) -> Vec<u8> {
        const PAGE: usize = 512;
        let mut pages = vec![vec![0u8; PAGE]];
        let meta = &mut pages[0];
        meta[12..16].copy_from_slice(&BDB_HASH_MAGIC.to_le_bytes());
        meta[16..20].copy_from_slice(&9u32.to_le_bytes());
        meta[20..24].copy_from_slice(&(PAGE as u32).to_le_bytes());
        meta[25] = BDB_HASH_META_PAGE;

        // Page 1: the hash page; items are laid out from the end.
        let mut hash = vec![0u8; PAGE];
        hash[25] = BDB_HASH_PAGE;
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut overflow_pages: Vec<Vec<u8>> = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let mut key = vec![BDB_KEYDATA_ITEM];
            key.extend_from_slice(&(i as u32 + 1).to_le_bytes());
            items.push(key);
            if header.len() < 64 {
                let mut value = vec![BDB_KEYDATA_ITEM];
                value.extend_from_slice(header);
                items.push(value);
                continue;
            }
            let first_page = 2 + overflow_pages.len();
            let chunks: Vec<&[u8]> = header.chunks(PAGE - BDB_PAGE_HEADER - 10).collect();
            for (n, chunk) in chunks.iter().enumerate() {
                let mut page = vec![0u8; PAGE];
                let number = first_page + n;
                page[8..12].copy_from_slice(&(number as u32).to_le_bytes());
                let next = if n + 1 < chunks.len() {
                    number as u32 + 1
                } else {
                    0
                };
                page[16..20].copy_from_slice(&next.to_le_bytes());
                page[22..24].copy_from_slice(&(chunk.len() as u16).to_le_bytes());
                page[25] = BDB_OVERFLOW_PAGE;
                page[BDB_PAGE_HEADER..BDB_PAGE_HEADER + chunk.len()].copy_from_slice(chunk);
                overflow_pages.push(page);
            }
            let mut value = vec![BDB_OFFPAGE_ITEM, 0, 0, 0];
            value.extend_from_slice(&(first_page as u32).to_le_bytes());
            value.extend_from_slice(&(header.len() as u32).to_le_bytes());
            items.push(value);
        }
        hash[20..22].copy_from_slice(&(items.len() as u16).to_le_bytes());
        let mut end = PAGE;
        for (i, item) in items.iter().enumerate() {
            let start = end - item.len();
            hash[start..end].copy_from_slice(item);
            let slot = BDB_PAGE_HEADER + 2 * i;
            hash[slot..slot + 2].copy_from_slice(&(start as u16).to_le_bytes());
            end = start;
        }
        pages.push(hash);
        pages.extend(overflow_pages);
        let last = pages.len() as u32 - 1;
        pages[0][32..36].copy_from_slice(&last.to_le_bytes());
        pages.concat()
    }

    #[test]
    fn rpm_berkeley_db() {
        let mut headers = rpm_headers();
        // Make one header span several overflow pages.
        headers[1] = rpm_header(&[
            (RPMTAG_NAME, Ok("bash")),
            (RPMTAG_VERSION, Ok("4.4.20")),
            (RPMTAG_RELEASE, Ok("4.el8_6")),
            (RPMTAG_ARCH, Ok("x86_64")),
            (RPMTAG_SOURCERPM, Ok("bash-4.4.20-4.el8_6.src.rpm")),
            (1004, Ok(&"The GNU Bourne Again shell. ".repeat(60))),
        ]);
        let db = bdb(&headers);
        let layer = Layer::new().file("var/lib/rpm/Packages", &db).tar();
        let inv = scan(vec![layer]).unwrap();
        check_rpm(&inv, "/var/lib/rpm/Packages");
        assert!(rpm_bdb_packages(&db[..60]).is_none());
        assert_eq!(rpm_bdb_packages(&db[..700]).map(|p| p.len()), Some(0));
    }

    #[test]
    fn a_package_json_deleted_by_a_whiteout_and_a_rewritten_file_win() {
        let base = Layer::new()
            .file(
                "app/node_modules/qs/package.json",
                br#"{"name":"qs","version":"6.5.2"}"#,
            )
            .file(
                "app/node_modules/ms/package.json",
                br#"{"name":"ms","version":"2.0.0"}"#,
            )
            .tar();
        let top = Layer::new()
            .whiteout("app/node_modules/qs/package.json")
            .file(
                "app/node_modules/ms/package.json",
                br#"{"name":"ms","version":"2.1.3"}"#,
            )
            .tar();
        let inv = scan(vec![base, top]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![(
                PackageKind::Npm,
                "ms",
                "2.1.3",
                "/app/node_modules/ms/package.json",
                1
            )]
        );
    }

    #[test]
    fn unreadable_layers_fail_with_their_index() {
        let mut corrupt = Layer::new().file("etc/os-release", &[b'x'; 5000]).gzip();
        corrupt[20] ^= 0x55;
        corrupt.truncate(corrupt.len() - 30);
        let err = scan(vec![debian_base(), corrupt]).unwrap_err();
        assert_eq!(err.failure, InventoryFailure::UnreadableLayer);
        assert!(err.message.contains("layer 1"), "{err}");

        let err = inventory(vec![Err::<Cursor<Vec<u8>>, _>(io::Error::other(
            "missing blob",
        ))])
        .unwrap_err();
        assert_eq!(err.failure, InventoryFailure::UnreadableLayer);
        assert!(err.to_string().contains("layer 0") && err.to_string().contains("missing blob"));

        let err = scan(vec![b"BZh91AY&SY".to_vec()]).unwrap_err();
        assert_eq!(err.failure, InventoryFailure::UnsupportedImage);
    }

    #[test]
    fn large_uninteresting_files_stream_through() {
        let big = vec![0x5au8; 3 << 20];
        let layer = Layer::new()
            .file("opt/data.bin", &big)
            .exe("opt/tool", &big)
            .file("lib/apk/db/installed", b"P:zlib\nV:1.3-r2\n")
            .zstd();
        let inv = scan(vec![layer]).unwrap();
        assert_eq!(
            summary(&inv),
            vec![(
                PackageKind::Apk,
                "zlib",
                "1.3-r2",
                "/lib/apk/db/installed",
                0
            )]
        );
    }

    #[test]
    fn duplicates_collapse_and_order_is_by_kind_then_name() {
        let layer = Layer::new()
            .file("a/Cargo.lock", b"[[package]]\nname = \"z\"\nversion = \"1.0.0\"\nsource = \"registry\"\n")
            .file("var/lib/dpkg/status", b"Package: z\nStatus: install ok installed\nVersion: 1\n")
            .file("b/package-lock.json", br#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0"},"b":{"version":"1.0.0","dependencies":{"a":{"version":"1.0.0"}}}}}"#)
            .tar();
        let inv = scan(vec![layer]).unwrap();
        let got: Vec<_> = inv
            .packages
            .iter()
            .map(|p| (p.kind, p.name.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (PackageKind::Dpkg, "z"),
                (PackageKind::Npm, "a"),
                (PackageKind::Npm, "b"),
                (PackageKind::Cargo, "z"),
            ]
        );
    }
}
