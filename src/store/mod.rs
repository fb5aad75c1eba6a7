//! Storage traits. The domain (`ecr/`) keeps every record in a
//! [`MetadataStore`]: an ordered key-value store with serialisable
//! transactions, split into named tables. Keys are strings that sort the way
//! listings page (`<account>/<region>/<repository>...`), values are the
//! domain's records encoded as JSON.
//!
//! Keeping the trait this small is deliberate: every rule lives in `ecr/`, and
//! a backend only has to be an ordered map with atomic commits, which the
//! memory and disk backends implement the same way and prove with one shared
//! conformance suite (`store::conformance`).

pub mod blobs;
pub mod checked_read;
pub mod disk;
pub mod disk_blobs;
pub mod disk_read;
pub mod fleet;
pub mod memory;
pub mod memory_blobs;
pub mod postgres;
pub mod s3_blobs;
pub mod sha256_state;
pub mod tables;
pub mod watched;

#[cfg(test)]
pub mod conformance;

use std::fmt;

/// The tables of the metadata store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `<account>/<region>/<repository>` → repository record.
    Repositories,
    /// `<account>/<region>/<setting name>` → account setting value.
    AccountSettings,
    /// `<account>/<region>` → registry-wide configuration.
    Registries,
    /// `<account>/<region>/<repository>@<digest>` → image record.
    Images,
    /// `<account>/<region>/<repository>:<tag>` → digest.
    Tags,
    /// `<account>/<region>/<repository>@<digest>` → a blob linked into a repository.
    Layers,
    /// `<upload id>` → upload session.
    Uploads,
    /// `<account>/<region>/<repository>@<subject digest>><referrer digest>` → descriptor.
    Referrers,
    /// `<account>/<region>/<repository>` → the repository's latest lifecycle
    /// policy preview.
    LifecyclePreviews,
    /// `<account>/<region>/<repository>` → the repository policy's text
    /// (raw UTF-8, so reading it for a decision decodes nothing).
    RepositoryPolicies,
    /// `<account>/<region>` → the registry policy's text (raw UTF-8).
    RegistryPolicies,
    /// `<account>/<region>` → the registry scanning configuration.
    ScanningConfigurations,
    /// `<account>/<region>/<prefix>` → a repository creation template.
    CreationTemplates,
    /// `<queued-at, hex nanoseconds>-<uuid>` → an image push waiting to be
    /// replicated (written in the push's own transaction).
    ReplicationQueue,
    /// `<account>/<region>/<repository>@<digest>` → the image's replication
    /// status per destination.
    ReplicationStatuses,
    /// `<account>/<region>/<repository>@<digest>` → the image's latest scan
    /// (status and severity counts; `ecr::scans::ScanRecord`).
    ImageScans,
    /// `<account>/<region>/<repository>@<digest>` → the latest scan's findings.
    ScanFindings,
    /// `<account>/<region>/<repository>@<digest>` → the packages found in the
    /// image, kept so a rescan on new vulnerability data reads no layer.
    ImageInventories,
    /// `<account>/<region>/<ecr repository prefix>` → a pull through cache rule.
    PullThroughCacheRules,
    /// `<account>/<region>/<repository>:<tag>` → when the cached tag was
    /// last checked against its upstream (ecrd's clock, milliseconds).
    UpstreamTagChecks,
    /// `<account>/<region>/<principal ARN>` → a pull-time update exclusion.
    PullTimeExclusions,
    /// `<account>/<region>` → the registry's signing configuration.
    SigningConfigurations,
    /// `<signing profile ARN>` → the profile's local key and certificate.
    SigningKeys,
    /// `<account>/<region>/<repository>@<digest>` → the image's signing
    /// status per signing profile.
    SigningStatuses,
    /// `<queued-at, hex nanoseconds>-<uuid>` → an image push waiting to be
    /// signed (written in the push's own transaction).
    SigningQueue,
    /// `<account>` → the account's ECR Public registry (alias, catalog data).
    PublicRegistries,
    /// `<alias>` → the account whose public registry has that alias (raw UTF-8).
    PublicAliases,
    /// `<account>/ecr-public/<repository>` → a public repository's catalog data.
    RepositoryCatalogs,
}

impl Table {
    pub const ALL: &'static [Table] = &[
        Table::Repositories,
        Table::AccountSettings,
        Table::Registries,
        Table::Images,
        Table::Tags,
        Table::Layers,
        Table::Uploads,
        Table::Referrers,
        Table::LifecyclePreviews,
        Table::RepositoryPolicies,
        Table::RegistryPolicies,
        Table::ScanningConfigurations,
        Table::CreationTemplates,
        Table::ReplicationQueue,
        Table::ReplicationStatuses,
        Table::ImageScans,
        Table::ScanFindings,
        Table::ImageInventories,
        Table::PullThroughCacheRules,
        Table::UpstreamTagChecks,
        Table::PullTimeExclusions,
        Table::SigningConfigurations,
        Table::SigningKeys,
        Table::SigningStatuses,
        Table::SigningQueue,
        Table::PublicRegistries,
        Table::PublicAliases,
        Table::RepositoryCatalogs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Repositories => "repositories",
            Table::AccountSettings => "account_settings",
            Table::Registries => "registries",
            Table::Images => "images",
            Table::Tags => "tags",
            Table::Layers => "layers",
            Table::Uploads => "uploads",
            Table::Referrers => "referrers",
            Table::LifecyclePreviews => "lifecycle_previews",
            Table::RepositoryPolicies => "repository_policies",
            Table::RegistryPolicies => "registry_policies",
            Table::ScanningConfigurations => "scanning_configurations",
            Table::CreationTemplates => "creation_templates",
            Table::ReplicationQueue => "replication_queue",
            Table::ReplicationStatuses => "replication_statuses",
            Table::ImageScans => "image_scans",
            Table::ScanFindings => "scan_findings",
            Table::ImageInventories => "image_inventories",
            Table::PullThroughCacheRules => "pull_through_cache_rules",
            Table::UpstreamTagChecks => "upstream_tag_checks",
            Table::PullTimeExclusions => "pull_time_exclusions",
            Table::SigningConfigurations => "signing_configurations",
            Table::SigningKeys => "signing_keys",
            Table::SigningStatuses => "signing_statuses",
            Table::SigningQueue => "signing_queue",
            Table::PublicRegistries => "public_registries",
            Table::PublicAliases => "public_aliases",
            Table::RepositoryCatalogs => "repository_catalogs",
        }
    }

    /// The table of a [`Table::name`].
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// A failure of the storage layer itself (I/O, corruption), never a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// A key and its stored value.
pub type Entry = (String, Vec<u8>);

/// Reads that see one consistent state.
pub trait ReadTxn {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries whose key starts with `prefix`, in key order, beginning after
    /// `start_after` when given, at most `limit` of them.
    fn scan(
        &self,
        table: Table,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// How many entries `table` holds. The backends count without reading
    /// values (a map's length, SQL's `COUNT`); this default pages through
    /// keys and values, for a backend that cannot.
    fn count(&self, table: Table) -> Result<u64, StoreError> {
        const PAGE: usize = 1000;
        let mut total = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = self.scan(table, "", after.as_deref(), PAGE)?;
            total += page.len() as u64;
            if page.len() < PAGE {
                return Ok(total);
            }
            after = page.last().map(|(k, _)| k.clone());
        }
    }
}

/// A write transaction: its changes are visible to itself at once and to
/// everyone else after `commit`; dropping it without committing discards them.
pub trait WriteTxn: ReadTxn {
    fn put(&mut self, table: Table, key: &str, value: Vec<u8>) -> Result<(), StoreError>;
    fn delete(&mut self, table: Table, key: &str) -> Result<(), StoreError>;
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Where metadata lives. Transactions are short and synchronous: never hold
/// one across an `.await`.
pub trait MetadataStore: Send + Sync {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, StoreError>;
    fn write(&self) -> Result<Box<dyn WriteTxn + '_>, StoreError>;
    /// Drops every record (the operator's `/_ecrd/reset`).
    fn clear(&self) -> Result<(), StoreError>;
    /// A short name for health output: `memory`, `disk` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether other processes may share this store (replicas on one
    /// database), so the fleet methods below do something.
    fn is_shared(&self) -> bool {
        false
    }

    /// Takes `lock` for every process sharing this store, waiting for it;
    /// None when the store is this process's alone (`fleet`), whose own
    /// locks then suffice.
    fn fleet_lock(
        &self,
        lock: fleet::FleetLock,
        mode: fleet::LockMode,
    ) -> Result<Option<fleet::FleetGuard>, StoreError> {
        let _ = (lock, mode);
        Ok(None)
    }

    /// Leadership of `task` among the processes sharing this store until the
    /// guard is dropped, or None while another process leads it. A store of
    /// one process always grants it.
    fn lead(&self, task: fleet::FleetTask) -> Result<Option<fleet::FleetGuard>, StoreError> {
        let _ = task;
        Ok(Some(fleet::FleetGuard::local()))
    }

    /// A point in the write history: every write committed so far is at or
    /// before it, every later one after. None when this process makes every
    /// write, so watching its own puts (`watched`) sees them all.
    fn write_mark(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// The records of `tables` written (put) after `mark`, by any process.
    fn written_since(&self, mark: u64, tables: &[Table]) -> Result<watched::Writes, StoreError> {
        let _ = (mark, tables);
        Ok(Vec::new())
    }
}

/// The smallest string greater than every string starting with `prefix`, or
/// None when there is none (empty prefix). Strings compare bytewise in Rust,
/// SQLite (BINARY collation over UTF-8) and PostgreSQL (the "C" collation), which orders them by code
/// point, so bumping the last character that can be bumped is enough.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        while next <= char::MAX as u32 {
            if let Some(c) = char::from_u32(next) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
            next += 1; // skip the surrogate range
        }
    }
    None
}
