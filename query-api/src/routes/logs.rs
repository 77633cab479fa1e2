//! `/dashboard/logs/search`: full text over the body (terms ANDed,
//! case-insensitive) and exact filters, newest first.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql;
use crate::store::logs::{self, LogFilter};
use crate::views::logs::{Log, LogSearch};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use agentvista_shared::model::Severity;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

pub const MAX_LIMIT: i64 = 1000;
pub const MAX_OFFSET: i64 = 100_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Terms (ANDed, case-insensitive) in the body: at most 10 of at most
    /// 100 characters.
    q: Option<String>,
    service_name: Option<String>,
    /// `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `unspecified`.
    #[param(inline, value_type = Option<Severity>)]
    severity: Option<String>,
    trace_id: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    end: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// 0 to 100000 (default 0).
    #[param(minimum = 0, maximum = 100000)]
    offset: Option<i64>,
}

/// Search log records, newest first.
#[utoipa::path(operation_id = "logs_search", get, path = "/dashboard/logs/search", tag = "logs", params(SearchParams),
    responses((status = 200, body = LogSearch), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<SearchParams>,
) -> AppResult<Json<LogSearch>> {
    let principal = principal.reader()?;
    let severity = match p.severity.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Severity::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "severity",
                format!(
                    "unknown value {s:?}, expected one of {}",
                    Severity::EXPECTED
                ),
            )
        })?),
    };
    let filter = LogFilter {
        org_id: principal.org_id,
        terms: p
            .q
            .as_deref()
            .map(|q| sql::terms("q", q))
            .transpose()?
            .unwrap_or_default(),
        service_name: p.service_name.filter(|s| !s.is_empty()),
        severity,
        trace_id: p
            .trace_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|t| sql::uuid_param("trace_id", t))
            .transpose()?,
        start_us: sql::time_param("start", p.start.as_deref())?,
        end_us: sql::time_param("end", p.end.as_deref())?,
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIMIT}")).into(),
        );
    }
    let offset = p.offset.unwrap_or(0);
    if !(0..=MAX_OFFSET).contains(&offset) {
        return Err(ApiError::invalid_field(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}"),
        )
        .into());
    }
    let (total, rows) = logs::search(&state.0.ch, &filter, limit, offset).await?;
    Ok(Json(LogSearch {
        total,
        limit,
        offset,
        logs: rows.iter().map(Log::from).collect(),
    }))
}
