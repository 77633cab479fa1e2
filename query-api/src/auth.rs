//! Who is calling: a session cookie, a JWT, or an API key.
//!
//! Sessions and JWTs come from the browser login flow and carry every scope;
//! a JWT names the session it was issued with (`sid`) and works only while
//! that session lives: logging out, "log out everywhere" and a password
//! change end the JWTs too;
//! API keys carry the scopes they were created with. A principal acts in one
//! organization: the key's, or for users the one named by the
//! `X-AgentVista-Org` header (a slug they belong to), else their personal one.

use crate::error::AppError;
use crate::store::{accounts, members};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::keys::{self, SCOPE_READ, SCOPE_WRITE};
use agentvista_shared::model::Role;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const SESSION_COOKIE: &str = "av_session";
pub const ORG_HEADER: &str = "x-agentvista-org";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    Jwt,
    ApiKey,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    /// The session row, for logout.
    pub session_id: Option<Uuid>,
}

impl Principal {
    pub fn require(&self, scope: &str) -> Result<(), AppError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden_scope(scope).into())
        }
    }

    /// A principal allowed to read the organization's data.
    pub fn reader(self) -> Result<Self, AppError> {
        self.require(SCOPE_READ)?;
        Ok(self)
    }

    pub fn writer(self) -> Result<Self, AppError> {
        self.require(SCOPE_WRITE)?;
        Ok(self)
    }
}

/// The caller as a member of the organization a path names
/// (`/org/{org_slug}/...`), with their role in it.
#[derive(Debug, Clone)]
pub struct OrgMember {
    pub principal: Principal,
    pub org_id: Uuid,
    pub slug: String,
    pub role: Role,
}

impl Principal {
    /// The caller's membership of `slug`: 404 for a non-member and for an
    /// API key of another organization (neither learns that it exists).
    pub async fn member_of(self, state: &AppState, slug: &str) -> Result<OrgMember, AppError> {
        let found = members::role_in(&state.0.pg, slug, self.user_id).await?;
        let (org_id, role) = found
            .filter(|(org, _)| self.method != AuthMethod::ApiKey || *org == self.org_id)
            .ok_or_else(|| ApiError::not_found("Organization"))?;
        Ok(OrgMember {
            principal: self,
            org_id,
            slug: slug.to_string(),
            role: Role::parse(&role).unwrap_or(Role::Member),
        })
    }
}

impl OrgMember {
    /// Any member may read (a key needs `read`).
    pub fn reader(self) -> Result<Self, AppError> {
        self.principal.require(SCOPE_READ)?;
        Ok(self)
    }

    /// Changes need the organization's `admin` role (a key needs `write`).
    pub fn admin(self) -> Result<Self, AppError> {
        self.principal.require(SCOPE_WRITE)?;
        if self.role != Role::Admin {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                "This action requires the admin role in the organization.",
            )
            .into());
        }
        Ok(self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub org: Uuid,
    /// The session the token was issued with; a token without one (issued
    /// before sessions were tied to tokens) is refused.
    #[serde(default)]
    pub sid: Option<Uuid>,
    pub iat: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue(&self, user_id: Uuid, org_id: Uuid, session_id: Uuid, ttl_secs: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id,
            org: org_id,
            sid: Some(session_id),
            iat: now,
            exp: now + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with a fresh salt cannot fail")
        .to_string()
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Run the (deliberately slow) password hash off the async workers.
pub async fn hash_password_async(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| AppError(ApiError::internal()))
}

pub async fn verify_password_async(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .unwrap_or(false)
}

fn unauthenticated() -> AppError {
    AppError(ApiError::new(
        ErrorKind::Unauthorized,
        "Authentication required: send an API key, a bearer token or a session cookie.",
    ))
}

/// The session cookie's token, if the request carries one.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let app = &state.0;
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(keys::bearer)
            .map(str::to_string);
        if let Some(token) = bearer {
            if token.starts_with(keys::KEY_PREFIX) {
                return api_key_principal(state, &token).await;
            }
            let invalid = || {
                AppError(ApiError::new(
                    ErrorKind::Unauthorized,
                    "Invalid or expired token.",
                ))
            };
            let claims = app.jwt.verify(&token).ok_or_else(invalid)?;
            let sid = claims.sid.ok_or_else(invalid)?;
            if !accounts::session_live(&app.pg, sid, claims.sub).await? {
                return Err(AppError(ApiError::new(
                    ErrorKind::Unauthorized,
                    "The session of this token ended (logged out); log in again.",
                )));
            }
            let org_id = select_org(state, claims.sub, &parts.headers, Some(claims.org)).await?;
            return Ok(Principal {
                user_id: claims.sub,
                org_id,
                scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
                method: AuthMethod::Jwt,
                session_id: Some(sid),
            });
        }
        if let Some(token) = session_token(&parts.headers) {
            let row: Option<(Uuid, Uuid)> = sqlx::query_as(
                "SELECT id, user_id FROM sessions WHERE token_hash = $1 AND expires_at > now()",
            )
            .bind(keys::hash(&token))
            .fetch_optional(&app.pg)
            .await?;
            let (session_id, user_id) = row.ok_or_else(|| {
                AppError(ApiError::new(
                    ErrorKind::Unauthorized,
                    "Session expired or invalid; log in again.",
                ))
            })?;
            let org_id = select_org(state, user_id, &parts.headers, None).await?;
            return Ok(Principal {
                user_id,
                org_id,
                scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
                method: AuthMethod::Session,
                session_id: Some(session_id),
            });
        }
        Err(unauthenticated())
    }
}

async fn api_key_principal(state: &AppState, raw: &str) -> Result<Principal, AppError> {
    let key = keys::Presented::parse(raw).ok_or_else(ApiError::unauthorized)?;
    let row: Option<(Uuid, Uuid, Uuid, String, Vec<String>)> = sqlx::query_as(
        "SELECT id, user_id, org_id, key_hash, scopes FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(key.hash())
    .fetch_optional(&state.0.pg)
    .await?;
    let (key_id, user_id, org_id, stored, scopes) = row.ok_or_else(ApiError::unauthorized)?;
    if !key.matches(&stored) {
        return Err(ApiError::unauthorized().into());
    }
    let pg = state.0.pg.clone();
    tokio::spawn(async move {
        let _ = sqlx::query(
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND revoked_at IS NULL \
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .bind(key_id)
        .execute(&pg)
        .await;
    });
    Ok(Principal {
        user_id,
        org_id,
        scopes,
        method: AuthMethod::ApiKey,
        session_id: None,
    })
}

/// The organization a user acts in: the header's slug when given (404 when
/// they are not a member), else `preferred` when still a member, else the
/// first organization they joined.
async fn select_org(
    state: &AppState,
    user_id: Uuid,
    headers: &HeaderMap,
    preferred: Option<Uuid>,
) -> Result<Uuid, AppError> {
    let pg = &state.0.pg;
    if let Some(slug) = headers.get(ORG_HEADER).and_then(|v| v.to_str().ok()) {
        return accounts::member_org_by_slug(pg, user_id, slug)
            .await?
            .ok_or_else(|| ApiError::not_found("Organization").into());
    }
    let orgs: Vec<(Uuid,)> = accounts::memberships(pg, user_id)
        .await?
        .into_iter()
        .map(|m| (m.id,))
        .collect();
    if let Some(p) = preferred.filter(|p| orgs.iter().any(|(id,)| id == p)) {
        return Ok(p);
    }
    orgs.first().map(|(id,)| *id).ok_or_else(|| {
        AppError(ApiError::new(
            ErrorKind::Unauthorized,
            "The account no longer exists.",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn jwts_verify_and_expire() {
        let k = JwtKeys::new(b"secret");
        let (u, o) = (Uuid::new_v4(), Uuid::new_v4());
        let s = Uuid::new_v4();
        let c = k.verify(&k.issue(u, o, s, 60)).unwrap();
        assert_eq!((c.sub, c.org, c.sid), (u, o, Some(s)));
        assert!(k.verify(&k.issue(u, o, s, -60)).is_none());
        assert!(JwtKeys::new(b"other")
            .verify(&k.issue(u, o, s, 60))
            .is_none());
    }
}
