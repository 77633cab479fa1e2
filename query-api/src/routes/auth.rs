//! `/auth/*`: sign-up, login (session cookie and JWT), logout, me.

use crate::auth::{self as authn, Principal, SESSION_COOKIE};
use crate::control;
use crate::error::{AppError, AppResult, Json};
use crate::login_throttle::{self, LoginThrottle};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorKind};
use agentvista_shared::keys;
use agentvista_shared::plan::Plan;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 256;

#[derive(Deserialize)]
pub struct SignupBody {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn validate_email(email: Option<String>) -> Result<String, AppError> {
    let email = email.map(|e| e.trim().to_string()).unwrap_or_default();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if !valid {
        return Err(ApiError::invalid_field("email", "must be a valid email address").into());
    }
    Ok(email)
}

/// The signup password rule (8 to 256 characters), also applied by
/// `query-api admin bootstrap`.
pub fn validate_password(password: Option<String>) -> Result<String, AppError> {
    let p = password.unwrap_or_default();
    let n = p.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        )
        .into());
    }
    Ok(p)
}

/// `POST /auth/signup`: a user and their personal organization; logs in.
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<SignupBody>,
) -> AppResult<Response> {
    let email = validate_email(body.email)?;
    let password = validate_password(body.password)?;
    let name = body
        .name
        .or(body.username)
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_string());
    if name.chars().count() > 128 {
        return Err(ApiError::invalid_field("name", "must be at most 128 characters").into());
    }
    let hash = authn::hash_password_async(password).await?;
    let (user, org) = control::create_user(&state.0.pg, &email, &name, hash, Plan::Free).await?;
    let body = json!({
        "user": {"id": user.id, "email": user.email, "name": user.name},
        "organization": org,
    });
    login_response(&state, user.id, org.id, StatusCode::CREATED, body).await
}

/// `POST /auth/login`: sets the session cookie and returns a JWT.
pub async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> AppResult<Response> {
    let email = body.email.or(body.username).unwrap_or_default();
    let password = body.password.unwrap_or_default();
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let throttle = LoginThrottle::new(&email, login_throttle::client_ip(peer, &headers));
    // Checked before the password is hashed: a throttled attempt costs no
    // Argon2 time.
    if let Some(wait) = throttle.blocked(&state.0.redis).await {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(
                json!({"detail": format!("Too many failed logins; retry in {wait} seconds.")}),
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(r);
    }
    let user = control::user_by_email(&state.0.pg, email.trim()).await?;
    // Verify against a dummy hash when the user is unknown, so that timing
    // does not reveal which emails have accounts.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.0.dummy_hash.clone());
    let ok = authn::verify_password_async(password, stored).await;
    let Some(user) = user.filter(|_| ok) else {
        throttle.failed(&state.0.redis).await;
        return Err(ApiError::new(ErrorKind::Unauthorized, "Invalid email or password.").into());
    };
    throttle.succeeded(&state.0.redis).await;
    let org: (Uuid,) = sqlx::query_as(
        "SELECT org_id FROM memberships WHERE user_id = $1 ORDER BY created_at, org_id LIMIT 1",
    )
    .bind(user.id)
    .fetch_one(&state.0.pg)
    .await?;
    login_response(&state, user.id, org.0, StatusCode::OK, json!({})).await
}

async fn login_response(
    state: &AppState,
    user_id: Uuid,
    org_id: Uuid,
    status: StatusCode,
    mut body: serde_json::Value,
) -> AppResult<Response> {
    let app = &state.0;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let ttl = app.config.session_ttl;
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(keys::hash(&token))
    .bind(user_id)
    .bind(OffsetDateTime::now_utc() + ttl)
    .execute(&app.pg)
    .await?;
    let jwt_ttl = app.config.jwt_ttl.as_secs() as i64;
    body["access_token"] = json!(app.jwt.issue(user_id, org_id, jwt_ttl));
    body["token_type"] = json!("bearer");
    body["expires_in"] = json!(jwt_ttl);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        ttl.whole_seconds(),
        if app.config.cookie_secure {
            "; Secure"
        } else {
            ""
        }
    );
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie is ascii"),
    );
    Ok(resp)
}

/// `POST /auth/logout`: ends the session named by the session cookie (also
/// when a bearer token is sent with it) and clears the cookie; 204 whether
/// or not there was a session, so it is safe to repeat.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some(token) = authn::session_token(&headers) {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(keys::hash(&token))
            .execute(&state.0.pg)
            .await?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("av_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// `GET /auth/me`: the caller and their organizations.
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<serde_json::Value>> {
    let principal = principal.reader()?;
    let user: (Uuid, String, String, OffsetDateTime) =
        sqlx::query_as("SELECT id, email, name, created_at FROM users WHERE id = $1")
            .bind(principal.user_id)
            .fetch_optional(&state.0.pg)
            .await?
            .ok_or_else(|| ApiError::not_found("User"))?;
    let orgs: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(
        "SELECT o.id, o.slug, o.name, o.plan, m.role FROM organizations o \
         JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 ORDER BY m.created_at, o.id",
    )
    .bind(principal.user_id)
    .fetch_all(&state.0.pg)
    .await?;
    Ok(Json(json!({
        "id": user.0,
        "email": user.1,
        "name": user.2,
        "created_at": agentvista_shared::time_fmt::format(user.3),
        "current_organization_id": principal.org_id,
        "organizations": orgs.into_iter().map(|(id, slug, name, plan, role)| json!({
            "id": id, "slug": slug, "name": name, "plan": plan, "role": role,
        })).collect::<Vec<_>>(),
    })))
}
