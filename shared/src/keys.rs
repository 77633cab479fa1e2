//! API keys: generation, hashing and the shape of a cached key record.
//!
//! A raw key is `av_` followed by 64 lowercase hex characters (32 random
//! bytes). Only its SHA-256 (hex) and a display prefix are ever stored.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub const KEY_PREFIX: &str = "av_";
/// How many characters of the raw key are kept for display (`av_` + 8 hex).
pub const DISPLAY_PREFIX_LEN: usize = 11;

/// A freshly generated key. `raw` is shown to the user once and then dropped.
pub struct NewKey {
    pub raw: String,
    pub hash: String,
    pub prefix: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

pub fn generate() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let raw = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    NewKey {
        hash: hash(&raw),
        prefix: raw[..DISPLAY_PREFIX_LEN].to_string(),
        raw,
    }
}

/// The stored form of a key: lowercase hex SHA-256.
pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Whether `raw` has the shape of an AgentVista key.
pub fn is_well_formed(raw: &str) -> bool {
    raw.len() == KEY_PREFIX.len() + 64
        && raw.starts_with(KEY_PREFIX)
        && raw[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Constant-time comparison of two hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A key presented by a client, checked for shape and hashed: the one way
/// both services verify a key (look the hash up, then [`Presented::matches`]
/// the stored hash in constant time).
#[derive(Debug)]
pub struct Presented {
    hash: String,
}

impl Presented {
    /// `None` unless `raw` has the shape of a key (no lookup for garbage).
    pub fn parse(raw: &str) -> Option<Self> {
        is_well_formed(raw).then(|| Presented { hash: hash(raw) })
    }

    /// The hash to look the key up by.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether the stored hash is this key's (constant time).
    pub fn matches(&self, stored_hash: &str) -> bool {
        hashes_equal(stored_hash, &self.hash)
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

/// The Redis value that marks a revoked key under [`redis_key`]: the
/// gateway refuses it at once instead of reading PostgreSQL, until the
/// tombstone expires (after every cache of the record has).
pub const TOMBSTONE: &str = "revoked";
pub const TOMBSTONE_TTL_SECS: u64 = 7 * 24 * 3600;

/// The Redis key under which a key record is cached.
pub fn redis_key(hash: &str) -> String {
    format!("av:apikey:{hash}")
}

/// What the ingestion path needs to know about a key, cached in Redis as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub org_id: Uuid,
    /// The stored hash, compared again in constant time after lookup.
    pub hash: String,
    pub scopes: Vec<String>,
    pub monthly_span_limit: u64,
    pub retention_days: u16,
}

/// The columns of a [`KeyRecord`] in PostgreSQL; append the condition
/// (`k.key_hash = $1` or `k.id = $1`).
pub const KEY_RECORD_SELECT: &str =
    "SELECT k.id, k.org_id, k.key_hash, k.scopes, o.plan, o.monthly_span_limit \
     FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.revoked_at IS NULL AND ";

/// A row of [`KEY_RECORD_SELECT`].
pub type KeyRecordRow = (Uuid, Uuid, String, Vec<String>, String, Option<i64>);

impl KeyRecord {
    /// The effective limits follow from the plan unless the organization
    /// has its own monthly span limit.
    pub fn from_row((key_id, org_id, hash, scopes, plan, limit): KeyRecordRow) -> Self {
        let plan = crate::plan::Plan::parse(&plan).unwrap_or(crate::plan::Plan::Free);
        KeyRecord {
            key_id,
            org_id,
            hash,
            scopes,
            monthly_span_limit: limit.map_or(plan.monthly_span_limit(), |l| l.max(0) as u64),
            retention_days: plan.retention_days(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

pub const SCOPE_READ: &str = "read";
pub const SCOPE_WRITE: &str = "write";
pub const ALL_SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_WRITE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed() {
        let k = generate();
        assert!(is_well_formed(&k.raw));
        assert_eq!(k.prefix.len(), 11);
        assert!(k.raw.starts_with(&k.prefix));
        assert_eq!(k.hash, hash(&k.raw));
        assert_eq!(k.hash.len(), 64);
        assert!(!format!("{k:?}").contains(&k.raw));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "av_",
            "sk_0000000000000000000000000000000000000000000000000000000000000000",
            "av_000000000000000000000000000000000000000000000000000000000000000G",
            "av_00000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }
}
