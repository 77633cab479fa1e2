//! `/auth/*`: sign-up, login (session cookie and JWT), logout, me, the
//! password change and the caller's sessions (listed, ended one by one or
//! all at once).

use crate::auth::{self as authn, Principal, SESSION_COOKIE};
use crate::error::{AppError, AppResult, Json};
use crate::login_throttle::{self, LoginThrottle};
use crate::store::accounts;
use crate::views::accounts::{Me, OrganizationView, SessionView, SignedUp, Token, UserView};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody, ErrorKind};
use agentvista_shared::keys;
use agentvista_shared::plan::Plan;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 256;

#[derive(Deserialize, ToSchema)]
pub struct SignupBody {
    email: Option<String>,
    /// 8 to 256 characters.
    password: Option<String>,
    /// Display name (at most 128 characters); `username` is an alias.
    /// Default: the email's local part.
    name: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// `username` is an alias.
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

/// Sign up: a user and their personal organization (the user is its
/// admin); logs in as `login` does.
#[utoipa::path(operation_id = "auth_signup", post, path = "/auth/signup", tag = "auth", request_body = SignupBody, security(),
    responses((status = 201, body = SignedUp), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    Json(body): Json<SignupBody>,
) -> AppResult<Response> {
    if !state.0.config.signup_enabled {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "Sign-up is disabled on this server; ask an administrator of your organization to add you.",
        )
        .into());
    }
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
    let (user, org) = accounts::create_user(&state.0.pg, &email, &name, hash, Plan::Free).await?;
    let (token, cookie) = start_session(&state, user.id, org.id).await?;
    let body = SignedUp {
        user: UserView::from(&user),
        organization: OrganizationView::from(&org),
        token,
    };
    Ok(with_cookie(StatusCode::CREATED, body, &cookie))
}

/// Log in: sets the HttpOnly session cookie and returns a short-lived
/// JWT. Repeated failures for an email or client are throttled (429 with
/// `Retry-After`).
#[utoipa::path(operation_id = "auth_login", post, path = "/auth/login", tag = "auth", request_body = LoginBody, security(),
    responses((status = 200, body = Token), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
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
    // Checked (and counted, in one atomic step) before the password is
    // hashed: a throttled attempt costs no Argon2 time.
    if let Some(wait) = throttle.reserve(&state.0.redis).await {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(ErrorBody {
                detail: &format!("Too many failed logins; retry in {wait} seconds."),
                errors: &[],
            }),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(r);
    }
    let user = accounts::user_by_email(&state.0.pg, email.trim()).await?;
    // Verify against a dummy hash when the user is unknown, so that timing
    // does not reveal which emails have accounts.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.0.dummy_hash.clone());
    let ok = authn::verify_password_async(password, stored).await;
    let Some(user) = user.filter(|_| ok) else {
        // Counted already by the reservation.
        return Err(ApiError::new(ErrorKind::Unauthorized, "Invalid email or password.").into());
    };
    throttle.succeeded(&state.0.redis).await;
    let org = accounts::memberships(&state.0.pg, user.id)
        .await?
        .first()
        .map(|m| m.id)
        .ok_or_else(|| ApiError::new(ErrorKind::Unauthorized, "Invalid email or password."))?;
    let (token, cookie) = start_session(&state, user.id, org).await?;
    Ok(with_cookie(StatusCode::OK, token, &cookie))
}

/// A new session for the user: its token (hashed) in PostgreSQL, the
/// cookie that carries it, and a JWT for `org_id`.
async fn start_session(
    state: &AppState,
    user_id: Uuid,
    org_id: Uuid,
) -> AppResult<(Token, String)> {
    let app = &state.0;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let ttl = app.config.session_ttl;
    let session_id = accounts::create_session(
        &app.pg,
        &keys::hash(&token),
        user_id,
        OffsetDateTime::now_utc() + ttl,
    )
    .await?;
    let jwt_ttl = app.config.jwt_ttl.as_secs() as i64;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        ttl.whole_seconds(),
        if app.config.cookie_secure {
            "; Secure"
        } else {
            ""
        }
    );
    let token = Token {
        access_token: app.jwt.issue(user_id, org_id, session_id, jwt_ttl),
        token_type: "bearer",
        expires_in: jwt_ttl,
    };
    Ok((token, cookie))
}

fn with_cookie(status: StatusCode, body: impl Serialize, cookie: &str) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(cookie).expect("cookie is ascii"),
    );
    resp
}

/// Log out: ends the session named by the session cookie (also when a
/// bearer token is sent with it) and clears the cookie; 204 whether or not
/// there was a session, so it is safe to repeat.
#[utoipa::path(operation_id = "auth_logout", post, path = "/auth/logout", tag = "auth", security(),
    responses((status = 204, description = "Logged out; the cookie is cleared")))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if let Some(token) = authn::session_token(&headers) {
        accounts::delete_session(&state.0.pg, &keys::hash(&token)).await?;
    }
    // A JWT's session ends too (so the token stops working at once).
    let claims = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(keys::bearer)
        .filter(|t| !t.starts_with(keys::KEY_PREFIX))
        .and_then(|t| state.0.jwt.verify(t));
    if let Some((sid, user)) = claims.and_then(|c| c.sid.map(|s| (s, c.sub))) {
        accounts::end_session(&state.0.pg, user, sid).await?;
    }
    Ok(cleared_cookie(StatusCode::NO_CONTENT))
}

fn cleared_cookie(status: StatusCode) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("av_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    (status, headers).into_response()
}

/// A user signed in (session cookie or JWT): API keys cannot manage
/// sessions or passwords.
fn signed_in(p: &Principal) -> Result<Uuid, AppError> {
    match (p.method, p.session_id) {
        (authn::AuthMethod::ApiKey, _) | (_, None) => Err(ApiError::new(
            ErrorKind::Forbidden,
            "This route needs a signed-in user (session cookie or bearer token), not an API key.",
        )
        .into()),
        (_, Some(sid)) => Ok(sid),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: Option<String>,
    /// 8 to 256 characters.
    new_password: Option<String>,
}

/// Change the caller's password (204): the current one is checked, and
/// every other session of the user ends (with their tokens); this one
/// stays signed in.
#[utoipa::path(operation_id = "auth_change_password", post, path = "/auth/password", tag = "auth",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<PasswordChange>,
) -> AppResult<StatusCode> {
    let sid = signed_in(&principal)?;
    let new = body.new_password.map(|p| {
        validate_password(Some(p)).map_err(|e| {
            ApiError::invalid_field(
                "new_password",
                e.0.detail.trim_start_matches("password ").to_string(),
            )
        })
    });
    let new = match new {
        Some(n) => n?,
        None => return Err(ApiError::invalid_field("new_password", "is required").into()),
    };
    let user = accounts::user_by_id(&state.0.pg, principal.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    let current = body.current_password.unwrap_or_default();
    if !authn::verify_password_async(current, user.password_hash).await {
        return Err(
            ApiError::invalid_field("current_password", "is not the current password").into(),
        );
    }
    let hash = authn::hash_password_async(new).await?;
    accounts::set_password(&state.0.pg, user.id, &hash, Some(sid)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions, newest first; `current` marks the one the
/// request came with.
#[utoipa::path(operation_id = "auth_sessions", get, path = "/auth/sessions", tag = "auth",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<SessionView>>> {
    let sid = signed_in(&principal)?;
    let rows = accounts::sessions_of(&state.0.pg, principal.user_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| SessionView::build(s, sid))
            .collect(),
    ))
}

/// Log out everywhere: every session of the caller ends, this one
/// included, with every JWT issued with them (204).
#[utoipa::path(operation_id = "auth_end_sessions", delete, path = "/auth/sessions", tag = "auth",
    responses((status = 204, description = "Every session ended"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn end_sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Response> {
    signed_in(&principal)?;
    accounts::end_sessions(&state.0.pg, principal.user_id, None).await?;
    Ok(cleared_cookie(StatusCode::NO_CONTENT))
}

/// End one of the caller's sessions (204; 404 for an unknown one or
/// another user's).
#[utoipa::path(operation_id = "auth_end_session", delete, path = "/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = Uuid, Path, description = "The session id")),
    responses((status = 204, description = "Ended"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    principal: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> AppResult<StatusCode> {
    signed_in(&principal)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("Session"))?;
    if accounts::end_session(&state.0.pg, principal.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Session").into())
    }
}

/// The caller and their organizations.
#[utoipa::path(operation_id = "auth_me", get, path = "/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Me>> {
    let principal = principal.reader()?;
    let pg = &state.0.pg;
    let (user, orgs) = tokio::try_join!(
        accounts::user_by_id(pg, principal.user_id),
        accounts::memberships(pg, principal.user_id)
    )?;
    let user = user.ok_or_else(|| ApiError::not_found("User"))?;
    Ok(Json(Me::build(&user, principal.org_id, orgs)))
}
