//! The image scan engine's pure parts: how each package ecosystem orders
//! its versions (needed to decide whether an installed version falls in a
//! vulnerability record's affected range).

pub mod version_apk;
pub mod version_dpkg;
