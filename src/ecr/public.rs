//! ECR Public's own state and rules: each account's public registry (its
//! alias, display name and verified flag), the alias → account index the
//! public registry's `/v2/` paths are resolved through, and repositories'
//! catalog data (description, about and usage text, architectures,
//! operating systems, logo).
//!
//! Everything else of ECR Public (repositories, images, layers, uploads,
//! policies, tags) is the private registry's machinery on a scope in the
//! public namespace ([`Scope::public`]): one set of image rules for both.
//!
//! A registry gets a default alias derived from its account id the first
//! time anything asks for it (ECR assigns a random one when the first public
//! repository is created; a derived one is the same on every run, so a test
//! can predict it). `--public-alias ACCOUNT=ALIAS` sets another.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{EcrError, EcrResult, ErrorKind};
use super::names::{AccountId, RepositoryName, Scope};
use super::repositories::{get_repository, repository_key};
use super::{load, save, Ecr};
use crate::store::{Table, WriteTxn};

/// An account's public registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicRegistryRecord {
    pub alias: String,
    /// The catalog's display name (`PutRegistryCatalogData`).
    #[serde(default)]
    pub display_name: Option<String>,
    pub created_at_ms: i64,
}

/// A public repository's catalog data, as last put.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_systems: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_text: Option<String>,
    /// The logo's bytes, base64 (at most 512,000 bytes decoded: the model's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_base64: Option<String>,
}

impl CatalogRecord {
    /// The logo's bytes, if there is one.
    pub fn logo(&self) -> Option<Vec<u8>> {
        self.logo_base64
            .as_deref()
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| !b.is_empty())
    }

    /// A short fingerprint of the logo, so its URL changes when it does.
    pub fn logo_version(&self) -> Option<String> {
        self.logo()
            .map(|bytes| hex::encode(&Sha256::digest(&bytes)[..6]))
    }
}

/// What PutRepositoryCatalogData (or CreateRepository's `catalogData`) sets.
#[derive(Debug, Clone, Default)]
pub struct CatalogInput {
    pub description: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub operating_systems: Option<Vec<String>>,
    pub about_text: Option<String>,
    pub usage_text: Option<String>,
    pub logo: Option<Vec<u8>>,
}

impl From<CatalogInput> for CatalogRecord {
    fn from(input: CatalogInput) -> Self {
        CatalogRecord {
            description: input.description,
            architectures: input.architectures,
            operating_systems: input.operating_systems,
            about_text: input.about_text,
            usage_text: input.usage_text,
            logo_base64: input
                .logo
                .filter(|l| !l.is_empty())
                .map(|l| STANDARD.encode(l)),
        }
    }
}

/// The alias an account's public registry starts with: `e` and nine hex
/// digits of a hash of the account id (ECR's aliases are eight random
/// lower-case letters and digits; this one is stable across runs).
pub fn default_alias(account: &AccountId) -> String {
    let digest = Sha256::digest(format!("ecrd public registry alias {account}"));
    format!("e{}", &hex::encode(digest)[..9])
}

/// Whether `alias` follows the model's `RegistryAliasName`
/// (`[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 50 characters).
pub fn is_valid_alias(alias: &str) -> bool {
    let len_ok = (2..=50).contains(&alias.len());
    let mut chars = alias.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let mut previous_separator = false;
    let mut body_ok = true;
    for (i, c) in alias.chars().enumerate().skip(1) {
        let separator = matches!(c, '.' | '_' | '-');
        if separator && (previous_separator || i == 1 || i + 1 == alias.len()) {
            body_ok = false;
        }
        if !(separator || c.is_ascii_lowercase() || c.is_ascii_digit()) {
            body_ok = false;
        }
        previous_separator = separator;
    }
    len_ok && first_ok && body_ok
}

fn registry_not_found(registry: &str) -> EcrError {
    EcrError::new(
        ErrorKind::RegistryNotFound,
        format!("The registry with id or alias '{registry}' does not exist"),
    )
}

impl Ecr {
    /// An account's public registry, made (with its default alias) the
    /// first time it is asked for.
    pub fn public_registry(&self, account: &AccountId) -> EcrResult<PublicRegistryRecord> {
        {
            let tx = self.store.read()?;
            if let Some(record) = load(&*tx, Table::PublicRegistries, account.as_str())? {
                return Ok(record);
            }
        }
        let mut tx = self.store.write()?;
        if let Some(record) = load(&*tx, Table::PublicRegistries, account.as_str())? {
            return Ok(record);
        }
        let record = PublicRegistryRecord {
            alias: default_alias(account),
            display_name: None,
            created_at_ms: self.clock.now_ms(),
        };
        claim_alias(&mut *tx, &record.alias, account)?;
        save(&mut *tx, Table::PublicRegistries, account.as_str(), &record)?;
        tx.commit()?;
        Ok(record)
    }

    /// Gives an account's public registry the alias `alias` (the
    /// operator's `--public-alias`); the old alias stops resolving.
    pub fn set_public_alias(&self, account: &AccountId, alias: &str) -> EcrResult<()> {
        if !is_valid_alias(alias) {
            return Err(EcrError::invalid_parameter(
                "alias",
                "must satisfy regular expression '[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*'",
            ));
        }
        let mut tx = self.store.write()?;
        let mut record: PublicRegistryRecord =
            match load(&*tx, Table::PublicRegistries, account.as_str())? {
                Some(record) => record,
                None => PublicRegistryRecord {
                    alias: alias.to_string(),
                    display_name: None,
                    created_at_ms: self.clock.now_ms(),
                },
            };
        if tx.get(Table::PublicAliases, &record.alias)?.as_deref()
            == Some(account.as_str().as_bytes())
            && record.alias != alias
        {
            tx.delete(Table::PublicAliases, &record.alias)?;
        }
        claim_alias(&mut *tx, alias, account)?;
        record.alias = alias.to_string();
        save(&mut *tx, Table::PublicRegistries, account.as_str(), &record)?;
        tx.commit().map_err(EcrError::from)
    }

    /// The public registry a `registryId` names: an account id, or one of
    /// the registry's aliases (the model's `RegistryIdOrAlias`).
    pub fn public_registry_named(&self, id_or_alias: &str) -> EcrResult<AccountId> {
        if let Ok(account) = AccountId::parse(id_or_alias) {
            return Ok(account);
        }
        self.public_account_of_alias(id_or_alias)?
            .ok_or_else(|| registry_not_found(id_or_alias))
    }

    /// The account whose public registry has `alias`, if any.
    pub fn public_account_of_alias(&self, alias: &str) -> EcrResult<Option<AccountId>> {
        let tx = self.store.read()?;
        let Some(bytes) = tx.get(Table::PublicAliases, alias)? else {
            return Ok(None);
        };
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| AccountId::parse(s).ok()))
    }

    /// PutRegistryCatalogData: sets (or, with `None`, keeps) the display name.
    pub fn put_registry_catalog_data(
        &self,
        account: &AccountId,
        display_name: Option<String>,
    ) -> EcrResult<PublicRegistryRecord> {
        self.public_registry(account)?;
        let mut tx = self.store.write()?;
        let mut record: PublicRegistryRecord =
            load(&*tx, Table::PublicRegistries, account.as_str())?
                .ok_or_else(|| registry_not_found(account.as_str()))?;
        if let Some(name) = display_name {
            record.display_name = Some(name);
        }
        save(&mut *tx, Table::PublicRegistries, account.as_str(), &record)?;
        tx.commit()?;
        Ok(record)
    }

    /// GetRepositoryCatalogData: what was last put (empty if nothing was).
    pub fn repository_catalog(
        &self,
        scope: &Scope,
        name: &RepositoryName,
    ) -> EcrResult<CatalogRecord> {
        let tx = self.store.read()?;
        get_repository(&*tx, scope, name)?;
        Ok(load(
            &*tx,
            Table::RepositoryCatalogs,
            &repository_key(scope, name.as_str()),
        )?
        .unwrap_or_default())
    }

    /// PutRepositoryCatalogData: replaces the repository's catalog data
    /// with what is given (a member left out is cleared).
    pub fn put_repository_catalog(
        &self,
        scope: &Scope,
        name: &RepositoryName,
        input: CatalogInput,
    ) -> EcrResult<CatalogRecord> {
        let mut tx = self.store.write()?;
        get_repository(&*tx, scope, name)?;
        let record = CatalogRecord::from(input);
        save(
            &mut *tx,
            Table::RepositoryCatalogs,
            &repository_key(scope, name.as_str()),
            &record,
        )?;
        tx.commit()?;
        Ok(record)
    }
}

/// Points `alias` at `account`, unless another account holds it.
fn claim_alias(
    tx: &mut (impl WriteTxn + ?Sized),
    alias: &str,
    account: &AccountId,
) -> EcrResult<()> {
    if let Some(holder) = tx.get(Table::PublicAliases, alias)? {
        if holder != account.as_str().as_bytes() {
            return Err(EcrError::invalid_parameter(
                "alias",
                &format!("the alias '{alias}' belongs to another registry"),
            ));
        }
    }
    tx.put(
        Table::PublicAliases,
        alias,
        account.as_str().as_bytes().to_vec(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_aliases_are_valid_and_stable() {
        let account = AccountId::parse("123456789012").unwrap();
        let alias = default_alias(&account);
        assert_eq!(alias, default_alias(&account));
        assert!(is_valid_alias(&alias), "{alias}");
        assert_ne!(
            alias,
            default_alias(&AccountId::parse("210987654321").unwrap())
        );
    }

    #[test]
    fn alias_grammar() {
        for ok in ["ab", "my-team", "a1.b2_c3", "x9"] {
            assert!(is_valid_alias(ok), "{ok}");
        }
        for bad in [
            "a",
            "1ab",
            "Ab",
            "a-",
            "a--b",
            "a/b",
            "-ab",
            &"a".repeat(51),
        ] {
            assert!(!is_valid_alias(bad), "{bad}");
        }
    }
}
