//! Registry-wide settings: account settings (GetAccountSetting /
//! PutAccountSetting) and the registry description (DescribeRegistry).
//!
//! The settings ECR documents, with their values and defaults:
//! `BASIC_SCAN_TYPE_VERSION` (AWS_NATIVE | CLAIR, default AWS_NATIVE),
//! `REGISTRY_POLICY_SCOPE` (V1 | V2, default V2),
//! `BLOB_MOUNTING` (ENABLED | DISABLED). ECR's default is DISABLED; ecrd's is
//! ENABLED so that OCI cross-repository mounts work out of the box (a
//! documented difference); DISABLED makes a mount request start an upload.

use super::error::{EcrError, EcrResult};
use super::names::Scope;
use super::records::RegistryRecord;
use super::{load, save, Ecr};
use crate::store::Table;

/// (name, allowed values, default)
const SETTINGS: &[(&str, &[&str], &str)] = &[
    (
        "BASIC_SCAN_TYPE_VERSION",
        &["AWS_NATIVE", "CLAIR"],
        "AWS_NATIVE",
    ),
    ("REGISTRY_POLICY_SCOPE", &["V1", "V2"], "V2"),
    ("BLOB_MOUNTING", &["ENABLED", "DISABLED"], "ENABLED"),
];

fn setting(
    name: &str,
) -> EcrResult<&'static (&'static str, &'static [&'static str], &'static str)> {
    SETTINGS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = SETTINGS.iter().map(|s| s.0).collect();
        EcrError::invalid_parameter("name", &format!("must be one of [{}]", names.join(", ")))
    })
}

fn setting_key(scope: &Scope, name: &str) -> String {
    format!("{}{}", scope.key_prefix(), name)
}

impl Ecr {
    pub fn get_account_setting(&self, scope: &Scope, name: &str) -> EcrResult<(String, String)> {
        let (name, _, default) = setting(name)?;
        let tx = self.store.read()?;
        let value: Option<String> = load(&*tx, Table::AccountSettings, &setting_key(scope, name))?;
        Ok((
            name.to_string(),
            value.unwrap_or_else(|| default.to_string()),
        ))
    }

    pub fn put_account_setting(
        &self,
        scope: &Scope,
        name: &str,
        value: &str,
    ) -> EcrResult<(String, String)> {
        let (name, allowed, _) = setting(name)?;
        if !allowed.contains(&value) {
            return Err(EcrError::invalid_parameter(
                "value",
                &format!("must be one of [{}] for {name}", allowed.join(", ")),
            ));
        }
        let mut tx = self.store.write()?;
        save(
            &mut *tx,
            Table::AccountSettings,
            &setting_key(scope, name),
            &value,
        )?;
        tx.commit()?;
        Ok((name.to_string(), value.to_string()))
    }

    /// The whole-registry configuration, empty until something is put.
    pub fn registry_record(&self, scope: &Scope) -> EcrResult<RegistryRecord> {
        let tx = self.store.read()?;
        let key = scope.key_prefix();
        Ok(load(&*tx, Table::Registries, &key)?.unwrap_or_default())
    }

    /// A setting's current value, for the rules that depend on one.
    pub fn account_setting_enabled(
        &self,
        scope: &Scope,
        name: &str,
        enabled_value: &str,
    ) -> EcrResult<bool> {
        Ok(self.get_account_setting(scope, name)?.1 == enabled_value)
    }
}
