//! The image scan engine's pure parts: the package inventory read from an
//! image's layers, how each package ecosystem orders its versions, CVSS
//! scoring, and matching an inventory against OSV vulnerability data.

pub mod cvss;
pub mod inventory;
pub mod layers;
pub mod osv;
pub mod package;
pub mod version_apk;
pub mod version_dpkg;
pub mod version_pep440;
pub mod version_rpm;
pub mod version_semver;
