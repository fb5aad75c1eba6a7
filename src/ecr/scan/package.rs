//! What a scan finds in an image, shared by the inventory (which produces
//! it), the vulnerability matcher (which reads it) and the scan records
//! (which persist it, so a rescan on new vulnerability data never rereads
//! the layers).

use serde::{Deserialize, Serialize};

/// Which package manager (or language ecosystem) recorded a package; the
/// matcher turns this and the image's OS into an OSV ecosystem name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageKind {
    /// `/var/lib/dpkg/status` or `status.d/` (Debian, Ubuntu, distroless).
    Dpkg,
    /// `/lib/apk/db/installed` (Alpine, Wolfi).
    Apk,
    /// The rpm database (Red Hat family, SUSE, Amazon Linux).
    Rpm,
    /// A `*.dist-info/METADATA` or `*.egg-info/PKG-INFO`.
    Python,
    /// A `package-lock.json` entry or a `node_modules/**/package.json`.
    Npm,
    /// A module in a Go binary's embedded build information.
    Go,
    /// The Go toolchain a Go binary was built with (`stdlib` in OSV).
    GoStdlib,
    /// A `Cargo.lock` entry.
    Cargo,
}

impl PackageKind {
    /// The name ECR's enhanced findings give the package manager
    /// (`vulnerablePackages[].packageManager`).
    pub fn package_manager(self) -> &'static str {
        match self {
            PackageKind::Dpkg => "OS",
            PackageKind::Apk => "OS",
            PackageKind::Rpm => "OS",
            PackageKind::Python => "PYTHONPKG",
            PackageKind::Npm => "NODEPKG",
            PackageKind::Go | PackageKind::GoStdlib => "GOBINARY",
            PackageKind::Cargo => "CARGO",
        }
    }
}

/// The fields of `/etc/os-release` (or `/usr/lib/os-release`) a scan needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `ubuntu`, `alpine`, `rhel`, `rocky`, `almalinux`.
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// `VERSION_ID`, e.g. `12`, `22.04`, `3.18.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`, e.g. `Debian GNU/Linux 12 (bookworm)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub kind: PackageKind,
    /// The binary package's (or module's) name as its ecosystem spells it.
    pub name: String,
    /// The installed version, exactly as recorded (for dpkg including the
    /// epoch, e.g. `1:2.3-4`; for rpm `[epoch:]version-release`).
    pub version: String,
    /// The source package, when the database names one that differs (dpkg
    /// `Source:`, apk `o:`, rpm SOURCERPM name). OS vulnerability data is
    /// usually keyed by source package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// The source package's version when it differs from `version`
    /// (dpkg `Source: name (version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The architecture the database records, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The file the package was read from, absolute inside the image
    /// (e.g. `/var/lib/dpkg/status`, `/app/package-lock.json`, `/usr/bin/app`).
    pub path: String,
    /// Index (0-based, in manifest order) of the layer that last wrote `path`.
    pub layer: usize,
}

/// Everything a scan learned from an image's file system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
}
