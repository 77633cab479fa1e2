//! API keys as the `/me/api-keys/` routes return them (never the hash; the
//! raw key only in the answer to its creation).

use crate::store::keys::StoredKey;
use agentvista_shared::time_fmt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// `read` and/or `write`.
    pub scopes: Vec<String>,
    /// The first characters of the key, for recognizing it.
    pub prefix: String,
    pub is_active: bool,
    pub org_slug: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<StoredKey> for ApiKey {
    fn from(k: StoredKey) -> Self {
        ApiKey {
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            prefix: k.prefix,
            is_active: k.is_active,
            org_slug: k.org_slug,
            created_at: time_fmt::format(k.created_at),
            last_used_at: k.last_used_at.map(time_fmt::format),
            revoked_at: k.revoked_at.map(time_fmt::format),
        }
    }
}

/// `POST /me/api-keys/` (201): the key, with the raw `key` shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// `av_` and 64 hex characters; store it now, it is not shown again.
    pub key: String,
}

/// `GET /me/api-keys/`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyPage {
    pub count: i64,
    pub page: i64,
    pub page_size: i64,
    /// The query string of the next page, or null.
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<ApiKey>,
}

/// A liveness answer: `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

impl Status {
    pub const OK: Status = Status { status: "ok" };
}

/// A key of an organization as its admins see it (`GET
/// /org/{org_slug}/api-keys`): the key and its owner.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub user_id: Uuid,
    pub user_email: String,
}
