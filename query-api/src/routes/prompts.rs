//! `/dashboard/prompts`: register prompt versions, list them, fetch the
//! active (or a given) version at run time with an `ETag`, make an older
//! version active again, link runs to versions, and compare versions on
//! their linked runs. Names are unique per organization; another
//! organization's prompt is a 404.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql;
use crate::store::prompt_stats;
use crate::store::prompts::{self as store, Link, NewPrompt};
use crate::views::prompts::{Prompt, PromptComparison, PromptUsage, VersionComparison};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use agentvista_shared::plan::Plan;
use agentvista_shared::prompts::{check_name, MAX_VERSION};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest template, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 100_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Most versions one list answer holds (and the default).
pub const MAX_LIST: i64 = 1_000;

/// A new prompt version.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromptBody {
    /// Required: groups the versions (1 to 128 characters, no `/`).
    name: Option<String>,
    /// 1 to 2147483647; default 1.
    version: Option<i64>,
    /// Required: the full prompt text (at most 100,000 characters).
    template_text: Option<String>,
    /// What changed in this version (at most 2,000 characters).
    description: Option<String>,
}

fn checked_name(field: &str, name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|m| ApiError::invalid_field(field, m))
}

/// A version number from a path or a query (an unknown one is a 404 for
/// paths, a 400 for bodies and queries).
fn checked_version(field: &str, v: i64) -> Result<i32, ApiError> {
    if (1..=i64::from(MAX_VERSION)).contains(&v) {
        Ok(v as i32)
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("must be an integer from 1 to {MAX_VERSION}"),
        ))
    }
}

/// Register a version of a prompt (201). It becomes the name's active
/// version; 409 when the name already has this version.
#[utoipa::path(operation_id = "prompts_create", post, path = "/dashboard/prompts/", tag = "prompts",
    request_body = PromptBody,
    responses((status = 201, body = Prompt), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<PromptBody>,
) -> AppResult<(StatusCode, Json<Prompt>)> {
    let p = principal.writer()?;
    let name = body
        .name
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?;
    checked_name("name", &name)?;
    let template_text = body
        .template_text
        .ok_or_else(|| ApiError::invalid_field("template_text", "is required"))?;
    if template_text.trim().is_empty() {
        return Err(ApiError::invalid_field("template_text", "must not be empty").into());
    }
    if template_text.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(ApiError::invalid_field(
            "template_text",
            format!("must be at most {MAX_TEMPLATE_CHARS} characters"),
        )
        .into());
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(ApiError::invalid_field(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )
        .into());
    }
    let version = checked_version("version", body.version.unwrap_or(1))?;
    let variables = crate::views::prompts::variables(&template_text);
    let new = NewPrompt {
        name: &name,
        version,
        template_text: &template_text,
        description: body.description.as_deref(),
        variables: &variables,
    };
    let prompt = store::create(&state.0.pg, p.org_id, p.user_id, &new).await?;
    Ok((StatusCode::CREATED, Json(Prompt::from(prompt))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// At most this many versions (1 to 1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Skip this many (0 to 1000000).
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
}

impl ListParams {
    fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(MAX_LIST);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIST}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=1_000_000).contains(&offset) {
            return Err(ApiError::invalid_field(
                "offset",
                "must be between 0 and 1000000",
            ));
        }
        Ok((limit, offset))
    }
}

/// Every prompt version of the organization, by name, then newest version
/// first.
#[utoipa::path(operation_id = "prompts_list", get, path = "/dashboard/prompts/", tag = "prompts",
    params(ListParams),
    responses((status = 200, body = Vec<Prompt>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> AppResult<Json<Vec<Prompt>>> {
    let p = principal.reader()?;
    let (limit, offset) = params.bounds()?;
    let rows = store::list(&state.0.pg, p.org_id, limit, offset).await?;
    Ok(Json(rows.into_iter().map(Prompt::from).collect()))
}

/// The versions of one prompt, newest first; 404 for an unknown name.
#[utoipa::path(operation_id = "prompts_versions", get, path = "/dashboard/prompts/{name}/versions", tag = "prompts",
    params(("name" = String, Path, description = "The prompt name"), ListParams),
    responses((status = 200, body = Vec<Prompt>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(params): Query<ListParams>,
) -> AppResult<Json<Vec<Prompt>>> {
    let p = principal.reader()?;
    let (limit, offset) = params.bounds()?;
    let pg = &state.0.pg;
    let rows = store::versions(pg, p.org_id, &name, limit, offset).await?;
    if rows.is_empty() && !store::name_exists(pg, p.org_id, &name).await? {
        return Err(ApiError::not_found("Prompt").into());
    }
    Ok(Json(rows.into_iter().map(Prompt::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchParams {
    /// A given version instead of the active one.
    #[param(minimum = 1, maximum = 2147483647)]
    version: Option<i64>,
}

/// The strong validator of a representation: its bytes' SHA-256, shortened.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as
/// RFC 9110 asks for this header).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

/// Fetch a prompt at run time: its active version, or `?version=N`. The
/// answer carries an `ETag`; a request with a matching `If-None-Match`
/// gets 304 with no body, so clients cache and revalidate cheaply. The
/// active version's `ETag` changes when another version becomes active.
#[utoipa::path(operation_id = "prompts_get", get, path = "/dashboard/prompts/{name}", tag = "prompts",
    params(("name" = String, Path, description = "The prompt name"), FetchParams,
           ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, body = Prompt, headers(("ETag" = String))),
              (status = 304, description = "Not modified: the cached version is current"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(params): Query<FetchParams>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let p = principal.reader()?;
    let version = params
        .version
        .map(|v| checked_version("version", v))
        .transpose()?;
    let prompt = store::get(&state.0.pg, p.org_id, &name, version)
        .await?
        .ok_or_else(|| ApiError::not_found("Prompt"))?;
    let body = serde_json::to_vec(&Prompt::from(prompt)).map_err(|_| ApiError::internal())?;
    let etag = etag_of(&body);
    let validators = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
    ];
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, validators).into_response());
    }
    Ok((
        validators,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Make a version the prompt's active one (a rollback, or a roll forward);
/// the other versions of the name become inactive.
#[utoipa::path(operation_id = "prompts_activate", post, path = "/dashboard/prompts/{name}/versions/{version}/activate", tag = "prompts",
    params(("name" = String, Path, description = "The prompt name"),
           ("version" = i64, Path, description = "The version to make active")),
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<Prompt>> {
    let p = principal.writer()?;
    let version = version
        .parse::<i64>()
        .ok()
        .and_then(|v| checked_version("version", v).ok())
        .ok_or_else(|| ApiError::not_found("Prompt version"))?;
    let prompt = store::activate(&state.0.pg, p.org_id, &name, version)
        .await?
        .ok_or_else(|| ApiError::not_found("Prompt version"))?;
    Ok(Json(Prompt::from(prompt)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareParams {
    /// Only runs that started at or after this time (RFC 3339); default:
    /// all time.
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<String>,
    /// Only runs that started at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    end: Option<String>,
}

/// Per-version analytics of a prompt over the runs linked to each version:
/// runs, success and failure rates (among runs with a success signal),
/// error rate, average, p50 and p95 duration, cost, tokens, outcomes, and
/// first and last use. All time by default; `start`/`end` bound the runs'
/// start. 404 for an unknown name.
#[utoipa::path(operation_id = "prompts_compare", get, path = "/dashboard/prompts/{name}/compare", tag = "prompts",
    params(("name" = String, Path, description = "The prompt name"), CompareParams),
    responses((status = 200, body = PromptComparison), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(params): Query<CompareParams>,
) -> AppResult<Json<PromptComparison>> {
    let p = principal.reader()?;
    let start_us = sql::time_param("start", params.start.as_deref())?;
    let end_us = sql::time_param("end", params.end.as_deref())?;
    if let (Some(s), Some(e)) = (start_us, end_us) {
        if s > e {
            return Err(ApiError::invalid_field("start", "must not be after end").into());
        }
    }
    // The newest versions, bounded like every list.
    let registered = store::versions(&state.0.pg, p.org_id, &name, MAX_LIST, 0).await?;
    if registered.is_empty() {
        return Err(ApiError::not_found("Prompt").into());
    }
    let numbers: Vec<u32> = registered.iter().map(|v| v.version as u32).collect();
    let totals =
        prompt_stats::compare(&state.0.ch, p.org_id, &name, &numbers, start_us, end_us).await?;
    Ok(Json(PromptComparison {
        name,
        start: start_us.map(crate::views::fmt_us),
        end: end_us.map(crate::views::fmt_us),
        versions: registered
            .iter()
            .map(|v| {
                let t = totals.iter().find(|t| t.prompt_version == v.version as u32);
                VersionComparison::build(v, t)
            })
            .collect(),
    }))
}

/// A prompt version used by a run.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UsageBody {
    /// Required.
    prompt_name: Option<String>,
    /// Required.
    prompt_version: Option<i64>,
    /// Required: a trace of the organization (a UUID, or 32 hex characters).
    trace_id: Option<String>,
    /// A span of that trace, to link the span rather than the run's header.
    span_id: Option<String>,
}

/// How long the usage route waits for a trace that was just accepted to
/// become readable before answering 404 (the writer stores an accepted
/// batch within about a second).
const TRACE_WAIT: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// A trace or span id as the batch route accepts it: a UUID, or W3C hex.
fn id_param(field: &str, raw: &str, hex_len: usize) -> Result<Uuid, ApiError> {
    let raw = raw.trim();
    if raw.len() == hex_len && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = hex::decode(raw).map_err(|_| ApiError::invalid_field(field, "is not an id"))?;
        let id = if hex_len == 32 {
            agentvista_shared::ids::trace_id_from_otlp(&bytes)
        } else {
            agentvista_shared::ids::span_id_from_otlp(&bytes)
        };
        return id.ok_or_else(|| ApiError::invalid_field(field, "is not an id"));
    }
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::invalid_field(field, format!("{raw:?} is not a UUID")))
}

/// Link a run (or one of its spans) to the prompt version it used (201).
/// Idempotent: the same prompt version and trace again is one link. 404
/// for an unknown version, and for a trace (or span) the organization has
/// not stored.
#[utoipa::path(operation_id = "prompts_usage", post, path = "/dashboard/prompts/usage", tag = "prompts",
    request_body = UsageBody,
    responses((status = 201, body = PromptUsage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<UsageBody>,
) -> AppResult<(StatusCode, Json<PromptUsage>)> {
    let p = principal.writer()?;
    let name = body
        .prompt_name
        .ok_or_else(|| ApiError::invalid_field("prompt_name", "is required"))?;
    checked_name("prompt_name", &name)?;
    let version = body
        .prompt_version
        .ok_or_else(|| ApiError::invalid_field("prompt_version", "is required"))?;
    let version = checked_version("prompt_version", version)?;
    let trace_id = id_param(
        "trace_id",
        body.trace_id
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("trace_id", "is required"))?,
        32,
    )?;
    let span_id = body
        .span_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| id_param("span_id", s, 16))
        .transpose()?;
    let org = crate::store::accounts::org_by_id(&state.0.pg, p.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization"))?;
    if store::get(&state.0.pg, p.org_id, &name, Some(version))
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("Prompt version").into());
    }
    let ch = &state.0.ch;
    let mut found = store::trace_has(ch, p.org_id, trace_id, span_id).await?;
    for wait in TRACE_WAIT {
        if found {
            break;
        }
        tokio::time::sleep(wait).await;
        found = store::trace_has(ch, p.org_id, trace_id, span_id).await?;
    }
    if !found {
        return Err(ApiError::not_found(if span_id.is_some() { "Span" } else { "Trace" }).into());
    }
    let retention_days = Plan::parse(&org.plan)
        .unwrap_or(Plan::Free)
        .retention_days();
    store::link(
        ch,
        &Link {
            org_id: p.org_id,
            retention_days,
            prompt_name: name.clone(),
            prompt_version: version as u32,
            trace_id,
            span_id,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(PromptUsage {
            prompt_name: name,
            prompt_version: version as u32,
            trace_id,
            span_id,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let etag = etag_of(b"{}");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(not_modified(&with(&etag), &etag));
        assert!(not_modified(&with(&format!("\"x\", W/{etag}")), &etag));
        assert!(not_modified(&with("*"), &etag));
        assert!(!not_modified(&with("\"other\""), &etag));
        assert!(!not_modified(&HeaderMap::new(), &etag));
        assert_ne!(etag, etag_of(b"{ }"));
    }

    #[test]
    fn ids_are_uuids_or_w3c_hex() {
        let t = id_param("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", 32).unwrap();
        assert_eq!(t.to_string(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
        let s = id_param("span_id", "00f067aa0ba902b7", 16).unwrap();
        assert_eq!(s.to_string(), "00000000-0000-0000-00f0-67aa0ba902b7");
        assert!(id_param("trace_id", "nope", 32).is_err());
        assert!(id_param("trace_id", &"0".repeat(32), 32).is_err());
    }
}
