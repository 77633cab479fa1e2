//! `/dashboard/traces`: the list with filters and keyset pagination, one
//! trace with its span tree and logs, the outcome update, and agent
//! comparison.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql;
use crate::store::run_stats::{self, Grouping, Scope};
use crate::store::runs::{self, Cursor, ListQuery, OutcomeUpdate, RunFilter, RunSort};
use crate::store::{agents, logs, spans};
use crate::views::fmt_us;
use crate::views::logs::Log;
use crate::views::runs::{AgentComparison, Comparison, Run, TraceDetail, TraceList};
use crate::AppState;
use agentvista_shared::error::ApiError;
use agentvista_shared::model::{RunStatus, SpanType};
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Runs of this agent (UUID).
    agent_id: Option<String>,
    /// Runs of the agent with this name.
    agent: Option<String>,
    /// `running`, `completed`, `failed` or `timed_out`.
    #[param(inline, value_type = Option<RunStatus>)]
    status: Option<String>,
    /// `true`, `false`, or `null` (runs without a success signal).
    #[param(inline, value_type = Option<SuccessParam>)]
    success: Option<String>,
    outcome: Option<String>,
    /// RFC 3339; runs started at or after.
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<String>,
    /// RFC 3339; runs started at or before.
    #[param(value_type = Option<String>, format = DateTime)]
    end: Option<String>,
    #[param(minimum = 0)]
    min_duration_ms: Option<i64>,
    #[param(minimum = 0)]
    max_duration_ms: Option<i64>,
    /// A span of the run used this model.
    model: Option<String>,
    /// A span of the run has this type.
    #[param(inline, value_type = Option<SpanType>)]
    span_type: Option<String>,
    /// Terms (ANDed, case-insensitive) in a span name.
    q: Option<String>,
    /// `key=value` on span or resource attributes.
    attribute: Option<String>,
    /// `started_at` (default), `duration_ms`, `total_cost` or `total_tokens`.
    #[param(inline, value_type = Option<SortParam>)]
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[param(inline, value_type = Option<OrderParam>)]
    order: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    page_size: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The documented values of `success`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum SuccessParam {
    True,
    False,
    Null,
}

/// The documented values of `sort` (`RunSort::NAMES`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum SortParam {
    StartedAt,
    DurationMs,
    TotalCost,
    TotalTokens,
}

/// The documented values of `order`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum OrderParam {
    Desc,
    Asc,
}

fn filled(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl ListParams {
    /// The validated query, or a 400 naming the parameter.
    fn parse(self, org_id: Uuid) -> Result<ListQuery, ApiError> {
        let status = match filled(self.status) {
            None => None,
            Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    format!(
                        "unknown value {s:?}, expected one of {}",
                        RunStatus::EXPECTED
                    ),
                )
            })?),
        };
        let success = match self.success.as_deref() {
            None | Some("") => None,
            Some("true") => Some(Some(true)),
            Some("false") => Some(Some(false)),
            Some("null") | Some("none") => Some(None),
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "success",
                    format!("unknown value {other:?}, expected true, false or null"),
                ))
            }
        };
        for (name, v) in [
            ("min_duration_ms", self.min_duration_ms),
            ("max_duration_ms", self.max_duration_ms),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(ApiError::invalid_field(name, "must not be negative"));
            }
        }
        let span_type = match filled(self.span_type) {
            None => None,
            Some(t) => Some(SpanType::parse(&t).ok_or_else(|| {
                ApiError::invalid_field(
                    "span_type",
                    format!(
                        "unknown value {t:?}, expected one of {}",
                        SpanType::EXPECTED
                    ),
                )
            })?),
        };
        let attribute = match filled(self.attribute) {
            None => None,
            Some(a) => {
                let (k, v) = a
                    .split_once('=')
                    .ok_or_else(|| ApiError::invalid_field("attribute", "must be key=value"))?;
                Some((k.to_string(), v.to_string()))
            }
        };
        let sort = sql::enum_param(
            "sort",
            self.sort.as_deref().unwrap_or("started_at"),
            &RunSort::NAMES,
        )?;
        let order = sql::enum_param(
            "order",
            self.order.as_deref().unwrap_or("desc"),
            &["asc", "desc"],
        )?;
        let size = self.page_size.unwrap_or(50);
        if !(1..=200).contains(&size) {
            return Err(ApiError::invalid_field(
                "page_size",
                "must be between 1 and 200",
            ));
        }
        let cursor = match filled(self.cursor) {
            None => None,
            Some(c) => Some(Cursor::parse(&c).ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor from a previous page")
            })?),
        };
        Ok(ListQuery {
            filter: RunFilter {
                org_id,
                agent_id: filled(self.agent_id)
                    .map(|a| sql::uuid_param("agent_id", &a))
                    .transpose()?,
                agent_name: filled(self.agent),
                status,
                success,
                outcome: filled(self.outcome),
                start_us: sql::time_param("start", self.start.as_deref())?,
                end_us: sql::time_param("end", self.end.as_deref())?,
                min_duration_ms: self.min_duration_ms,
                max_duration_ms: self.max_duration_ms,
                model: filled(self.model),
                span_type,
                name_terms: self
                    .q
                    .as_deref()
                    .map(|q| sql::terms("q", q))
                    .transpose()?
                    .unwrap_or_default(),
                attribute,
            },
            sort: RunSort::parse(sort).expect("checked"),
            descending: order == "desc",
            size,
            cursor,
        })
    }
}

/// List runs, newest first by default. Pagination is by keyset:
/// `next_cursor` from one page is the `cursor` of the next, so deep pages
/// cost what the first does.
#[utoipa::path(operation_id = "traces_list", get, path = "/dashboard/traces", tag = "traces", params(ListParams),
    responses((status = 200, body = TraceList), (status = 400, body = agentvista_shared::error::ErrorBody),
              (status = 401, body = agentvista_shared::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> AppResult<Json<TraceList>> {
    let principal = principal.reader()?;
    let q = p.parse(principal.org_id)?;
    let (total, rows) = runs::list(&state.0.ch, &q).await?;
    let has_more = rows.len() as i64 > q.size;
    let rows = &rows[..rows.len().min(q.size as usize)];
    Ok(Json(TraceList {
        traces: rows.iter().map(Run::from).collect(),
        total,
        page_size: q.size,
        has_more,
        next_cursor: if has_more {
            rows.last().map(|r| Cursor::after(q.sort, r))
        } else {
            None
        },
    }))
}

/// One trace: the run, its spans as a tree (depth, children, subtree
/// tokens and cost), span events and links, and the log records linked to
/// it. A trace of spans without a run is summarized from its spans.
#[utoipa::path(operation_id = "traces_detail", get, path = "/dashboard/traces/{trace_id}", tag = "traces",
    params(("trace_id" = Uuid, Path, description = "The trace id")),
    responses((status = 200, body = TraceDetail), (status = 404, body = agentvista_shared::error::ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(trace_id): Path<String>,
) -> AppResult<Json<TraceDetail>> {
    let principal = principal.reader()?;
    let trace_id = Uuid::parse_str(&trace_id).map_err(|_| ApiError::not_found("Trace"))?;
    let (org, ch) = (principal.org_id, &state.0.ch);
    // The run, its spans and its logs are independent reads: run them at
    // once (the answer waits for the slowest, not for the sum).
    let (header, (spans, total_spans), logs) = tokio::try_join!(
        runs::get(ch, org, trace_id),
        spans::of_trace(ch, org, trace_id, state.0.config.trace_max_spans),
        logs::of_trace(ch, org, trace_id),
    )?;
    // Building the tree of up to 10,000 spans is CPU work: off the async
    // workers, so that other requests do not wait behind it.
    let detail = tokio::task::spawn_blocking(move || {
        let logs = logs.iter().map(Log::from).collect();
        TraceDetail::build(header.as_ref(), trace_id, &spans, total_spans, logs)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    detail
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Trace").into())
}

/// Set a run's `success` and/or `outcome` after the run.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct OutcomePatch {
    /// `true`, `false`, or null to clear; absent: unchanged.
    #[schema(value_type = Option<bool>)]
    #[allow(dead_code)]
    success: Option<Value>,
    /// At most 256 characters, or null to clear; absent: unchanged.
    #[schema(value_type = Option<String>)]
    #[allow(dead_code)]
    outcome: Option<Value>,
}

/// Set `success` and/or `outcome` after the run (needs `write`). The new
/// values are written as a newer version of the run, so every later read,
/// statistics included, sees them.
#[utoipa::path(operation_id = "traces_patch", patch, path = "/dashboard/traces/{trace_id}", tag = "traces",
    params(("trace_id" = Uuid, Path, description = "The trace id")),
    request_body = OutcomePatch,
    responses((status = 200, body = Run), (status = 400, body = agentvista_shared::error::ErrorBody),
              (status = 404, body = agentvista_shared::error::ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path(trace_id): Path<String>,
    Json(body): Json<serde_json::Map<String, Value>>,
) -> AppResult<Json<Run>> {
    let principal = principal.writer()?;
    let trace_id = Uuid::parse_str(&trace_id).map_err(|_| ApiError::not_found("Trace"))?;
    let update = outcome_update(&body)?;
    let run = runs::update_outcome(&state.0.ch, principal.org_id, trace_id, &update)
        .await?
        .ok_or_else(|| ApiError::not_found("Trace"))?;
    Ok(Json(Run::from(&run)))
}

/// The update a PATCH body asks for: absent is unchanged, null clears.
fn outcome_update(body: &serde_json::Map<String, Value>) -> Result<OutcomeUpdate, ApiError> {
    let success = match body.get("success") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Bool(b)) => Some(Some(*b)),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "success",
                "must be true, false or null",
            ))
        }
    };
    let outcome = match body.get("outcome") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(o)) if o.chars().count() <= 256 => Some(Some(o.clone())),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "outcome",
                "must be a string of at most 256 characters, or null",
            ))
        }
    };
    if success.is_none() && outcome.is_none() {
        return Err(ApiError::bad_request(
            "Nothing to update: send success and/or outcome.",
        ));
    }
    Ok(OutcomeUpdate { success, outcome })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareParams {
    /// Comma-separated agent ids (2 to 10).
    #[param(required = true)]
    agent_ids: Option<String>,
    /// The last `days` UTC days (1 to 365, default 30), unless `start` is given.
    #[param(minimum = 1, maximum = 365)]
    days: Option<i64>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<String>,
    /// RFC 3339; default now.
    #[param(value_type = Option<String>, format = DateTime)]
    end: Option<String>,
}

/// Compare two or more agents over a window: runs, success, error and
/// failure rates, latency percentiles, cost, tokens, outcomes, and a daily
/// series.
#[utoipa::path(operation_id = "traces_compare", get, path = "/dashboard/traces/compare", tag = "traces", params(CompareParams),
    responses((status = 200, body = Comparison), (status = 400, body = agentvista_shared::error::ErrorBody),
              (status = 404, body = agentvista_shared::error::ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<CompareParams>,
) -> AppResult<Json<Comparison>> {
    let principal = principal.reader()?;
    let raw = p.agent_ids.unwrap_or_default();
    let mut ids: Vec<Uuid> = Vec::new();
    for a in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = sql::uuid_param("agent_ids", a)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() < 2 || ids.len() > 10 {
        return Err(
            ApiError::invalid_field("agent_ids", "give 2 to 10 comma-separated agent ids").into(),
        );
    }
    let end_param = sql::time_param("end", p.end.as_deref())?;
    let end_us = end_param.unwrap_or_else(agentvista_shared::window::now_us);
    let start_us = match sql::time_param("start", p.start.as_deref())? {
        Some(s) => s,
        None => {
            let days = p.days.unwrap_or(30);
            if !(1..=365).contains(&days) {
                return Err(ApiError::invalid_field("days", "must be between 1 and 365").into());
            }
            // The last `days` UTC days, the end's day included (as
            // `/agents/{id}/stats`): whole days, so the daily series has no
            // partial first day and closed days come from the rollup.
            (end_us.div_euclid(run_stats::DAY_US) - (days - 1)) * run_stats::DAY_US
        }
    };
    if start_us > end_us {
        return Err(ApiError::invalid_field("start", "must not be after end").into());
    }
    let ch = &state.0.ch;
    let scope = Scope {
        org_id: principal.org_id,
        agents: Some(&ids),
        start_us: Some(start_us),
        // Without `end` the window is open: today counts whole (a run whose
        // start a fast client clock put after now included), and is read
        // from the rollup once it is current.
        end_us: end_param,
    };
    // Every agent must be the organization's (another's is a 404); their
    // names and the statistics are read at once.
    let totals = async {
        run_stats::cells(ch, &scope)
            .await?
            .totals(ch, Grouping::Both)
            .await
    };
    let (names, totals) = tokio::try_join!(agents::list(ch, principal.org_id, Some(&ids)), totals)?;
    if names.len() != ids.len() {
        return Err(ApiError::not_found("Agent").into());
    }
    let (whole, daily): (Vec<_>, Vec<_>) = totals.into_iter().partition(|t| t.whole);
    // The window's days; an open window ends today (or on the latest day
    // that holds a run, when a client clock runs ahead).
    let first_day = start_us.div_euclid(run_stats::DAY_US);
    let last_day = end_us
        .div_euclid(run_stats::DAY_US)
        .max(daily.iter().map(|d| i64::from(d.day)).max().unwrap_or(0));
    let agents = ids
        .iter()
        .map(|id| {
            let name = names
                .iter()
                .find(|a| a.agent_id == *id)
                .map(|a| a.name.clone());
            let days: Vec<_> = daily.iter().filter(|d| d.agent_id == *id).collect();
            AgentComparison::build(
                *id,
                name,
                whole.iter().find(|r| r.agent_id == *id),
                &days,
                first_day..=last_day,
            )
        })
        .collect();
    Ok(Json(Comparison {
        start: fmt_us(start_us),
        end: fmt_us(end_us),
        agents,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(f: impl FnOnce(&mut ListParams)) -> Result<ListQuery, ApiError> {
        let mut p = ListParams::default();
        f(&mut p);
        p.parse(Uuid::nil())
    }

    fn field(r: Result<ListQuery, ApiError>) -> String {
        let e = r.err().expect("a 400");
        assert_eq!(e.status_code(), 400);
        e.errors[0].field.clone()
    }

    #[test]
    fn defaults_and_filters_parse_into_the_query() {
        let q = parse(|_| {}).unwrap();
        assert_eq!(
            (q.sort, q.descending, q.size),
            (RunSort::StartedAt, true, 50)
        );
        let q = parse(|p| {
            p.status = Some("timed_out".into());
            p.success = Some("null".into());
            p.attribute = Some("http.route=/a=b".into());
            p.q = Some("  plan  Tool ".into());
            p.sort = Some("total_cost".into());
            p.order = Some("asc".into());
            p.agent_id = Some(String::new());
        })
        .unwrap();
        assert_eq!(q.filter.status, Some(RunStatus::TimedOut));
        assert_eq!(q.filter.success, Some(None));
        assert_eq!(
            q.filter.attribute,
            Some(("http.route".into(), "/a=b".into()))
        );
        assert_eq!(q.filter.name_terms, vec!["plan", "Tool"]);
        assert_eq!((q.sort, q.descending), (RunSort::TotalCost, false));
        assert_eq!(q.filter.agent_id, None);
    }

    #[test]
    fn each_bad_parameter_is_a_400_naming_it() {
        assert_eq!(field(parse(|p| p.status = Some("done".into()))), "status");
        assert_eq!(field(parse(|p| p.success = Some("yes".into()))), "success");
        assert_eq!(
            field(parse(|p| p.span_type = Some("x".into()))),
            "span_type"
        );
        assert_eq!(
            field(parse(|p| p.attribute = Some("novalue".into()))),
            "attribute"
        );
        assert_eq!(field(parse(|p| p.page_size = Some(201))), "page_size");
        assert_eq!(field(parse(|p| p.page_size = Some(0))), "page_size");
        assert_eq!(
            field(parse(|p| p.min_duration_ms = Some(-1))),
            "min_duration_ms"
        );
        assert_eq!(
            field(parse(|p| p.cursor = Some("12_notauuid".into()))),
            "cursor"
        );
        assert_eq!(field(parse(|p| p.sort = Some("name".into()))), "sort");
        assert_eq!(field(parse(|p| p.agent_id = Some("x".into()))), "agent_id");
        assert_eq!(
            field(parse(|p| p.start = Some("yesterday".into()))),
            "start"
        );
        assert_eq!(field(parse(|p| p.q = Some("a ".repeat(11)))), "q");
    }

    #[test]
    fn outcome_updates_distinguish_absent_null_and_values() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let u = outcome_update(&body(serde_json::json!({"success": null}))).unwrap();
        assert_eq!((u.success, u.outcome), (Some(None), None));
        let u = outcome_update(&body(serde_json::json!({"outcome": "won"}))).unwrap();
        assert_eq!(u.outcome, Some(Some("won".into())));
        assert!(outcome_update(&body(serde_json::json!({}))).is_err());
        assert!(outcome_update(&body(serde_json::json!({"success": "yes"}))).is_err());
        let long = "x".repeat(257);
        assert!(outcome_update(&body(serde_json::json!({ "outcome": long }))).is_err());
    }
}
