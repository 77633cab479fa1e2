//! `/dashboard/traces`: the list with filters and keyset pagination, one
//! trace with its span tree and logs, the outcome update, and agent
//! comparison.

use super::agents::{run_json, RunRow, RUN_COLUMNS};
use super::logs::{log_json, LogRow, LOG_COLUMNS};
use crate::auth::Principal;
use crate::error::{AppError, AppResult, Json, Query};
use crate::rollup::{self, Grouping, Scope};
use crate::sql::{self, Bind, Filter};
use crate::telemetry_store::{
    cost_total, fmt_us, fmt_us_opt, map_json, percent, rounded_ms, usd_number, usd_string,
};
use crate::AppState;
use agentvista_shared::error::ApiError;
use agentvista_shared::model::{RunStatus, SpanType};
use axum::extract::{Path, State};
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Deserialize, Default)]
pub struct ListParams {
    agent_id: Option<String>,
    agent: Option<String>,
    status: Option<String>,
    success: Option<String>,
    outcome: Option<String>,
    start: Option<String>,
    end: Option<String>,
    min_duration_ms: Option<i64>,
    max_duration_ms: Option<i64>,
    model: Option<String>,
    span_type: Option<String>,
    q: Option<String>,
    /// `key=value` on span attributes.
    attribute: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    page_size: Option<i64>,
    cursor: Option<String>,
}

const SORTS: [&str; 4] = ["started_at", "duration_ms", "total_cost", "total_tokens"];

/// `GET /dashboard/traces`: newest first by default. Pagination is by
/// keyset: `next_cursor` from one page is the `cursor` of the next, so deep
/// pages cost what the first does.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<ListParams>,
) -> AppResult<Json<Value>> {
    let principal = principal.reader()?;
    let mut f = Filter::org(principal.org_id);
    if let Some(a) = p.agent_id.as_deref().filter(|s| !s.is_empty()) {
        let a = sql::uuid_param("agent_id", a)?;
        f.push("agent_id = toUUID(?)", [Bind::Str(a.to_string())]);
    }
    if let Some(a) = p.agent.as_deref().filter(|s| !s.is_empty()) {
        f.push("agent_name = ?", [Bind::Str(a.to_string())]);
    }
    if let Some(s) = p.status.as_deref().filter(|s| !s.is_empty()) {
        let s = RunStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!(
                    "unknown value {s:?}, expected one of {}",
                    RunStatus::EXPECTED
                ),
            )
        })?;
        f.push("status = ?", [Bind::Str(s.as_str().to_string())]);
    }
    match p.success.as_deref() {
        None | Some("") => {}
        Some("true") => f.push("success = true", []),
        Some("false") => f.push("success = false", []),
        Some("null") | Some("none") => f.push("isNull(success)", []),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "success",
                format!("unknown value {other:?}, expected true, false or null"),
            )
            .into())
        }
    }
    if let Some(o) = p.outcome.as_deref().filter(|s| !s.is_empty()) {
        f.push("outcome = ?", [Bind::Str(o.to_string())]);
    }
    if let Some(us) = sql::time_param("start", p.start.as_deref())? {
        f.push("started_at >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    if let Some(us) = sql::time_param("end", p.end.as_deref())? {
        f.push("started_at <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    for (name, v, op) in [
        ("min_duration_ms", p.min_duration_ms, ">="),
        ("max_duration_ms", p.max_duration_ms, "<="),
    ] {
        if let Some(v) = v {
            if v < 0 {
                return Err(ApiError::invalid_field(name, "must not be negative").into());
            }
            f.push(&format!("duration_ms {op} ?"), [Bind::Int(v)]);
        }
    }
    // Span-level filters select trace ids from the spans table.
    let mut span_f = Filter::org(principal.org_id);
    let mut by_span = false;
    // Name and attribute filters need the spans themselves; model and span
    // type alone are answered from the per-trace facets rollup.
    let mut needs_spans = false;
    let (mut facet_model, mut facet_type) = (None, None);
    if let Some(m) = p.model.as_deref().filter(|s| !s.is_empty()) {
        span_f.push("model = ?", [Bind::Str(m.to_string())]);
        facet_model = Some(m.to_string());
        by_span = true;
    }
    if let Some(t) = p.span_type.as_deref().filter(|s| !s.is_empty()) {
        let t = SpanType::parse(t).ok_or_else(|| {
            ApiError::invalid_field(
                "span_type",
                format!(
                    "unknown value {t:?}, expected one of {}",
                    SpanType::EXPECTED
                ),
            )
        })?;
        span_f.push("span_type = ?", [Bind::Str(t.as_str().to_string())]);
        facet_type = Some(t.as_str().to_string());
        by_span = true;
    }
    if let Some(q) = p.q.as_deref() {
        for term in sql::terms("q", q)? {
            span_f.push(
                "positionCaseInsensitiveUTF8(name, ?) > 0",
                [Bind::Str(term)],
            );
            by_span = true;
            needs_spans = true;
        }
    }
    if let Some(a) = p.attribute.as_deref().filter(|s| !s.is_empty()) {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| ApiError::invalid_field("attribute", "must be key=value"))?;
        span_f.push(
            "(attributes[?] = ? OR resource_attributes[?] = ?)",
            [
                Bind::Str(k.to_string()),
                Bind::Str(v.to_string()),
                Bind::Str(k.to_string()),
                Bind::Str(v.to_string()),
            ],
        );
        by_span = true;
        needs_spans = true;
    }
    let sort = sql::enum_param("sort", p.sort.as_deref().unwrap_or("started_at"), &SORTS)?;
    let order = sql::enum_param(
        "order",
        p.order.as_deref().unwrap_or("desc"),
        &["asc", "desc"],
    )?;
    let size = p.page_size.unwrap_or(50);
    if !(1..=200).contains(&size) {
        return Err(ApiError::invalid_field("page_size", "must be between 1 and 200").into());
    }
    let sort_expr = match sort {
        "started_at" => "toInt64(toUnixTimestamp64Micro(started_at))",
        "duration_ms" => "ifNull(duration_ms, -1)",
        "total_cost" => "reinterpretAsInt64(ifNull(total_cost, 0))",
        _ => "ifNull(total_tokens, -1)",
    };
    // The page's WHERE without the keyset, for `total`.
    let mut where_sql = f.sql();
    let mut binds = f.clone();
    if by_span && !needs_spans {
        // Only model / span type: a key-range read of the span facets
        // rollup instead of every span of the organization (migration 0003).
        let mut facet_f = Filter::org(principal.org_id);
        if let Some(m) = &facet_model {
            facet_f.push("model = ?", [Bind::Str(m.clone())]);
        }
        if let Some(t) = &facet_type {
            facet_f.push("span_type = ?", [Bind::Str(t.clone())]);
        }
        where_sql.push_str(&format!(
            " AND trace_id IN (SELECT trace_id FROM span_facets WHERE {})",
            facet_f.sql()
        ));
        binds.bind_more(facet_f.binds().iter().cloned());
    } else if by_span {
        where_sql.push_str(&format!(
            " AND trace_id IN (SELECT trace_id FROM spans FINAL WHERE {})",
            span_f.sql()
        ));
        binds.bind_more(span_f.binds().iter().cloned());
    }
    let ch = &state.0.ch;
    // The total and the page are independent reads: run them at once.
    let total = binds
        .apply(ch.query(&format!(
            "SELECT count() FROM traces FINAL WHERE {where_sql}"
        )))
        .fetch_one::<u64>();
    let mut page_sql = where_sql.clone();
    let mut page_binds = binds.clone();
    if let Some(c) = p.cursor.as_deref().filter(|s| !s.is_empty()) {
        let (key, id) = c
            .split_once('_')
            .and_then(|(k, id)| Some((k.parse::<i64>().ok()?, Uuid::parse_str(id).ok()?)))
            .ok_or_else(|| {
                ApiError::invalid_field("cursor", "is not a cursor from a previous page")
            })?;
        let cmp = if order == "desc" { "<" } else { ">" };
        page_sql.push_str(&format!(
            " AND ({sort_expr}, trace_id) {cmp} (?, toUUID(?))"
        ));
        page_binds.bind_more([Bind::Int(key), Bind::Str(id.to_string())]);
    }
    let rows = page_binds
        .apply(ch.query(&format!(
            "SELECT {RUN_COLUMNS} FROM traces FINAL WHERE {page_sql} \
             ORDER BY {sort_expr} {order}, trace_id {order} LIMIT ?"
        )))
        .bind(size + 1)
        .fetch_all::<RunRow>();
    let (total, rows) = tokio::try_join!(total, rows)?;
    let has_more = rows.len() as i64 > size;
    let rows = &rows[..rows.len().min(size as usize)];
    // The cursor carries the last row's sort key, computed as `sort_expr`.
    let sort_key = |r: &RunRow| match sort {
        "started_at" => r.started_us,
        "duration_ms" => r.duration_ms.unwrap_or(-1),
        "total_cost" => r.total_cost.unwrap_or(0),
        _ => r.total_tokens.unwrap_or(-1),
    };
    let next_cursor = if has_more {
        rows.last()
            .map(|r| format!("{}_{}", sort_key(r), r.trace_id))
    } else {
        None
    };
    Ok(Json(json!({
        "traces": rows.iter().map(run_json).collect::<Vec<_>>(),
        "total": total,
        "page_size": size,
        "has_more": has_more,
        "next_cursor": next_cursor,
    })))
}

#[derive(Row, Deserialize)]
struct SpanRow {
    #[serde(with = "clickhouse::serde::uuid")]
    span_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid::option")]
    parent_span_id: Option<Uuid>,
    #[serde(with = "clickhouse::serde::uuid")]
    agent_id: Uuid,
    agent_name: String,
    span_type: String,
    name: String,
    status: String,
    started_us: i64,
    ended_us: Option<i64>,
    duration_ms: Option<i64>,
    model: Option<String>,
    provider: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    total_tokens: Option<i64>,
    cached_tokens: Option<i64>,
    cost: Option<i64>,
    cost_computed: bool,
    input: Option<String>,
    output: Option<String>,
    error: Option<String>,
    attributes: Vec<(String, String)>,
    resource_attributes: Vec<(String, String)>,
    kind: String,
    source: String,
    scope: String,
    events: String,
    links: String,
}

const MAX_TRACE_SPANS: i64 = 10_000;
const MAX_TRACE_LOGS: i64 = 500;

/// `GET /dashboard/traces/{trace_id}`: the run, its spans as a tree (depth,
/// children, subtree tokens and cost), span events and links, and the log
/// records linked to it.
pub async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(trace_id): Path<String>,
) -> AppResult<Json<Value>> {
    let principal = principal.reader()?;
    let trace_id = Uuid::parse_str(&trace_id).map_err(|_| ApiError::not_found("Trace"))?;
    let (org, tid) = (principal.org_id.to_string(), trace_id.to_string());
    let ch = &state.0.ch;
    // The run, its spans and its logs are independent reads: run them at
    // once (the answer waits for the slowest, not for the sum).
    let header = ch
        .query(&format!(
            "SELECT {RUN_COLUMNS} FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)"
        ))
        .bind(&org)
        .bind(&tid)
        .fetch_optional::<RunRow>();
    let spans = ch
        .query(
            "SELECT span_id, parent_span_id, agent_id, agent_name, span_type, name, status, \
             toUnixTimestamp64Micro(started_at) AS started_us, toUnixTimestamp64Micro(ended_at) AS ended_us, \
             duration_ms, model, provider, input_tokens, output_tokens, total_tokens, cached_tokens, \
             cost, cost_computed, input, output, error, attributes, \
             resource_attributes, kind, source, scope, events, links \
             FROM spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) ORDER BY started_at, span_id LIMIT ?",
        )
        .bind(&org)
        .bind(&tid)
        .bind(MAX_TRACE_SPANS)
        .fetch_all::<SpanRow>();
    let logs = ch
        .query(&format!(
            "SELECT {LOG_COLUMNS} FROM logs FINAL WHERE org_id = toUUID(?) \
               AND (timestamp, log_id) IN (SELECT timestamp, log_id FROM log_traces \
                                           WHERE org_id = toUUID(?) AND trace_id = toUUID(?)) \
               AND trace_id = toUUID(?) \
             ORDER BY timestamp LIMIT ?"
        ))
        .bind(&org)
        .bind(&org)
        .bind(&tid)
        .bind(&tid)
        .bind(MAX_TRACE_LOGS)
        .fetch_all::<LogRow>();
    let (header, spans, logs) = tokio::try_join!(header, spans, logs)?;
    if header.is_none() && spans.is_empty() {
        return Err(ApiError::not_found("Trace").into());
    }

    let tree = SpanTree::build(&spans);
    // Subtree roll-ups, children before parents (128-bit money: a trace's
    // spans may add up beyond 64 bits of nano-dollars).
    let mut sub_tokens: Vec<i64> = spans.iter().map(|s| s.total_tokens.unwrap_or(0)).collect();
    let mut sub_cost: Vec<i128> = spans
        .iter()
        .map(|s| i128::from(s.cost.unwrap_or(0)))
        .collect();
    for &i in tree.order.iter().rev() {
        if let Some(p) = tree.parent[i] {
            sub_tokens[p] = sub_tokens[p].saturating_add(sub_tokens[i]);
            sub_cost[p] += sub_cost[i];
        }
    }
    let (order, depth) = (&tree.order, &tree.depth);
    let span_json: Vec<Value> = order
        .iter()
        .map(|&i| {
            let s = &spans[i];
            json!({
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "depth": depth[i],
                "children": tree.children[i].iter().map(|&c| spans[c].span_id).collect::<Vec<_>>(),
                "agent_id": s.agent_id,
                "agent_name": s.agent_name,
                "type": s.span_type,
                "kind": s.kind,
                "source": s.source,
                "name": s.name,
                "status": s.status,
                "started_at": fmt_us(s.started_us),
                "ended_at": fmt_us_opt(s.ended_us),
                "duration_ms": s.duration_ms,
                "model": s.model,
                "provider": s.provider,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "total_tokens": s.total_tokens,
                "cached_tokens": s.cached_tokens,
                "cost_usd": usd_string(s.cost),
                "cost_computed": s.cost_computed,
                "subtree_tokens": sub_tokens[i],
                "subtree_cost_usd": usd_string(Some(sub_cost[i])),
                "input": s.input,
                "output": s.output,
                "error": s.error,
                "attributes": map_json(&s.attributes),
                "resource_attributes": map_json(&s.resource_attributes),
                "scope": s.scope,
                "events": serde_json::from_str::<Value>(&s.events).unwrap_or(Value::Null),
                "links": serde_json::from_str::<Value>(&s.links).unwrap_or(Value::Null),
            })
        })
        .collect();
    let trace = match &header {
        Some(h) => run_json(h),
        None => {
            // Spans without any run header: summarize them.
            let first = spans
                .iter()
                .min_by_key(|s| s.started_us)
                .expect("non-empty");
            let end = spans.iter().filter_map(|s| s.ended_us).max();
            json!({
                "trace_id": trace_id,
                "agent_id": first.agent_id,
                "agent_name": first.agent_name,
                "status": if spans.iter().any(|s| s.status == "failed") { "failed" } else { "completed" },
                "started_at": fmt_us(first.started_us),
                "ended_at": fmt_us_opt(end),
                "duration_ms": end.map(|e| (e - first.started_us) / 1000),
                "success": null,
                "outcome": null,
                "total_tokens": spans.iter().filter_map(|s| s.total_tokens).reduce(|a, b| a.saturating_add(b)),
                "total_cost_usd": usd_string(spans.iter().filter_map(|s| s.cost.map(i128::from)).reduce(|a, b| a + b)),
            })
        }
    };
    Ok(Json(json!({
        "trace": trace,
        "span_count": spans.len(),
        "spans": span_json,
        "logs": logs.iter().map(log_json).collect::<Vec<_>>(),
    })))
}

/// A trace's spans as a tree: each span's parent in the tree (its
/// `parent_span_id` when that span is in the trace), children, depth, and
/// a depth-first order from the roots. Roots are spans without a parent in
/// the trace, and every member of a parent cycle (a span that is its own
/// parent, or A -> B -> A): so every span appears exactly once.
struct SpanTree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    depth: Vec<usize>,
    order: Vec<usize>,
}

impl SpanTree {
    fn build(spans: &[SpanRow]) -> Self {
        let n = spans.len();
        let ids: HashMap<Uuid, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let mut parent: Vec<Option<usize>> = spans
            .iter()
            .map(|s| s.parent_span_id.and_then(|p| ids.get(&p).copied()))
            .collect();
        // Break cycles: walk up from each span; a span met twice in one walk
        // is on a cycle, and every span of that cycle becomes a root.
        let mut state = vec![0u8; n]; // 0 unseen, 1 on the current walk, 2 done
        for start in 0..n {
            let mut walk = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                match state[i] {
                    2 => break,
                    1 => {
                        let from = walk.iter().position(|&w| w == i).expect("on the walk");
                        for &member in &walk[from..] {
                            parent[member] = None;
                        }
                        break;
                    }
                    _ => {
                        state[i] = 1;
                        walk.push(i);
                        at = parent[i];
                    }
                }
            }
            for i in walk {
                state[i] = 2;
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (i, p) in parent.iter().enumerate() {
            match p {
                Some(p) => children[*p].push(i),
                None => roots.push(i),
            }
        }
        let mut depth = vec![0usize; n];
        let mut order = Vec::with_capacity(n);
        let mut stack: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            for &k in children[i].iter().rev() {
                depth[k] = depth[i] + 1;
                stack.push(k);
            }
        }
        SpanTree {
            parent,
            children,
            depth,
            order,
        }
    }
}

/// `PATCH /dashboard/traces/{trace_id}`: set `success` and/or `outcome`
/// after the run (needs `write`). The new values are written as a newer
/// version of the run, so every later read, stats included, sees them.
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path(trace_id): Path<String>,
    Json(body): Json<serde_json::Map<String, Value>>,
) -> AppResult<Json<Value>> {
    let principal = principal.writer()?;
    let trace_id = Uuid::parse_str(&trace_id).map_err(|_| ApiError::not_found("Trace"))?;
    // Absent: unchanged; null: cleared; a value: set.
    let success: Option<Option<bool>> = match body.get("success") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Bool(b)) => Some(Some(*b)),
        Some(_) => {
            return Err(ApiError::invalid_field("success", "must be true, false or null").into())
        }
    };
    let outcome: Option<Option<String>> = match body.get("outcome") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(o)) if o.chars().count() <= 256 => Some(Some(o.clone())),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "outcome",
                "must be a string of at most 256 characters, or null",
            )
            .into())
        }
    };
    if success.is_none() && outcome.is_none() {
        return Err(
            ApiError::bad_request("Nothing to update: send success and/or outcome.").into(),
        );
    }
    let (org, tid) = (principal.org_id.to_string(), trace_id.to_string());
    let ch = &state.0.ch;
    let current: Option<u64> = ch
        .query("SELECT version FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)")
        .bind(&org)
        .bind(&tid)
        .fetch_optional()
        .await?;
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    // The new version of the run: copied from the current one, or, for a
    // trace of spans without a run (an OTLP export without its root span,
    // which GET summarizes), created from its spans as GET summarizes them
    // (first span's agent, earliest start, latest end, failed when a span
    // failed, token and cost sums).
    let (version, kept, head, tail, from) = match current {
        Some(current) => (
            now.max(current + 1),
            ("success", "outcome"),
            "org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms",
            "total_tokens, total_cost, metadata, retention_days",
            "traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)",
        ),
        None => (
            now,
            ("CAST(NULL AS Nullable(Bool))", "CAST(NULL AS Nullable(String))"),
            "org_id, trace_id, argMin(agent_id, started_at), argMin(agent_name, started_at), \
             if(countIf(status = 'failed') > 0, 'failed', 'completed'), min(started_at), max(ended_at), \
             if(isNull(max(ended_at)), NULL, toInt64(dateDiff('millisecond', min(started_at), assumeNotNull(max(ended_at)))))",
            "if(countIf(isNotNull(total_tokens)) = 0, NULL, sum(ifNull(total_tokens, 0))), \
             if(countIf(isNotNull(cost)) = 0, NULL, toDecimal64(least(sum(ifNull(cost, 0)), 100000000), 9)), \
             map(), max(retention_days)",
            "spans FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?) GROUP BY org_id, trace_id",
        ),
    };
    let success_sql = match success {
        None => kept.0.to_string(),
        Some(None) => "CAST(NULL AS Nullable(Bool))".to_string(),
        Some(Some(b)) => format!("CAST({b} AS Nullable(Bool))"),
    };
    let (outcome_sql, outcome_bind) = match &outcome {
        None => (kept.1, None),
        Some(None) => ("CAST(NULL AS Nullable(String))", None),
        Some(Some(o)) => ("CAST(? AS Nullable(String))", Some(o.clone())),
    };
    let mut q = ch.query(&format!(
        "INSERT INTO traces (org_id, trace_id, agent_id, agent_name, status, started_at, ended_at, duration_ms, \
         success, outcome, total_tokens, total_cost, metadata, retention_days, version) \
         SELECT {head}, {success_sql}, {outcome_sql}, {tail}, ? FROM {from}"
    ));
    if let Some(o) = outcome_bind {
        q = q.bind(o);
    }
    q.bind(version).bind(&org).bind(&tid).execute().await?;
    let h: Option<RunRow> = ch
        .query(&format!(
            "SELECT {RUN_COLUMNS} FROM traces FINAL WHERE org_id = toUUID(?) AND trace_id = toUUID(?)"
        ))
        .bind(&org)
        .bind(&tid)
        .fetch_optional()
        .await?;
    // No run and no spans either: nothing to patch.
    let h = h.ok_or_else(|| ApiError::not_found("Trace"))?;
    Ok(Json(run_json(&h)))
}

#[derive(Deserialize)]
pub struct CompareParams {
    /// Comma-separated agent ids (two or more).
    agent_ids: Option<String>,
    days: Option<i64>,
    start: Option<String>,
    end: Option<String>,
}

/// `GET /dashboard/traces/compare?agent_ids=a,b[&days=30|&start=&end=]`.
pub async fn compare(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<CompareParams>,
) -> AppResult<Json<Value>> {
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
    let now = OffsetDateTime::now_utc();
    let end_param = sql::time_param("end", p.end.as_deref())?;
    let end_us = end_param.unwrap_or((now.unix_timestamp_nanos() / 1000) as i64);
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
            (end_us.div_euclid(rollup::DAY_US) - (days - 1)) * rollup::DAY_US
        }
    };
    if start_us > end_us {
        return Err(ApiError::invalid_field("start", "must not be after end").into());
    }
    let org = principal.org_id.to_string();
    let ch = &state.0.ch;
    // Every agent must be the organization's (another's is a 404); their
    // names and the statistics are read at once.
    let names = ch
        .query("SELECT toString(agent_id), argMin(name, created_at) FROM agents WHERE org_id = toUUID(?) AND has(?, toString(agent_id)) GROUP BY agent_id")
        .bind(&org)
        .bind(ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
        .fetch_all::<(String, String)>();
    let scope = Scope {
        org_id: principal.org_id,
        agents: Some(&ids),
        start_us: Some(start_us),
        // Without `end` the window is open: today counts whole (a run whose
        // start a fast client clock put after now included), and is read
        // from the rollup once it is current.
        end_us: end_param,
    };
    let totals = async {
        rollup::cells(ch, &scope)
            .await?
            .totals(ch, Grouping::Both)
            .await
    };
    let (names, totals) = tokio::try_join!(async { Ok::<_, AppError>(names.await?) }, totals)?;
    if names.len() != ids.len() {
        return Err(ApiError::not_found("Agent").into());
    }
    let (rows, daily): (Vec<_>, Vec<_>) = totals.into_iter().partition(|t| t.whole);
    // The window's days; an open window ends today (or on the latest day
    // that holds a run, when a client clock runs ahead).
    let first_day = start_us.div_euclid(rollup::DAY_US);
    let last_day = end_param
        .map(|e| e.div_euclid(rollup::DAY_US))
        .unwrap_or(end_us.div_euclid(rollup::DAY_US))
        .max(daily.iter().map(|d| i64::from(d.day)).max().unwrap_or(0));
    let agents: Vec<Value> = ids
        .iter()
        .map(|id| {
            let name = names.iter().find(|(a, _)| *a == id.to_string()).map(|(_, n)| n.clone());
            let r = rows.iter().find(|r| r.agent_id == *id);
            let runs = r.map_or(0, |r| r.runs);
            let mut outcomes = r.map(|r| r.outcomes.clone()).unwrap_or_default();
            outcomes.sort();
            json!({
                "agent_id": id,
                "agent_name": name,
                "runs": runs,
                "success_rate": r.map_or(Value::Null, |r| percent(r.successful, r.with_signal)),
                "failure_rate": r.map_or(Value::Null, |r| percent(r.unsuccessful, r.with_signal)),
                "error_rate": r.map_or(Value::Null, |r| percent(r.failed_status, r.runs)),
                "p50_duration_ms": rounded_ms(r.and_then(|r| r.duration_quantile(0))),
                "p95_duration_ms": rounded_ms(r.and_then(|r| r.duration_quantile(1))),
                "p99_duration_ms": rounded_ms(r.and_then(|r| r.duration_quantile(2))),
                "total_cost": r.map_or(Value::Null, |r| cost_total(r.cost_runs, r.cost_nanos)),
                "avg_cost_per_run": r.filter(|r| r.cost_runs > 0).map_or(Value::Null, |r| usd_number(r.cost_nanos / i128::from(r.cost_runs))),
                "total_tokens": r.map_or(0, |r| r.tokens),
                "avg_tokens_per_run": r.filter(|r| r.runs > 0).map_or(Value::Null, |r| json!(r.tokens as f64 / r.runs as f64)),
                "outcomes": Value::Object(outcomes.into_iter().map(|(o, n)| (o, json!(n))).collect()),
                // Dense, as `/agents/{id}/stats`: every UTC day of the
                // window, days without runs included.
                "daily": (first_day..=last_day).map(|day| {
                    let d = daily.iter().find(|d| d.agent_id == *id && i64::from(d.day) == day);
                    json!({
                        "date": rollup::date_of(day as u16).to_string(),
                        "runs": d.map_or(0, |d| d.runs),
                        "success_rate": d.map_or(Value::Null, |d| percent(d.successful, d.with_signal)),
                        "total_cost": d.map_or(Value::Null, |d| cost_total(d.cost_runs, d.cost_nanos)),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "start": fmt_us(start_us),
        "end": fmt_us(end_us),
        "agents": agents,
    })))
}
