//! `/dashboard/metrics/`: metric streams, and points of one stream with
//! label filters and optional downsampling.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql;
use crate::store::metrics::{self, Agg, PointFilter};
use crate::views::fmt_ns;
use crate::views::metrics::{Bucket, MetricQuery, MetricStream, Point};
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use agentvista_shared::model::MetricType;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

/// Every metric stream of the organization, by name.
#[utoipa::path(operation_id = "metrics_streams", get, path = "/dashboard/metrics/", tag = "metrics",
    responses((status = 200, body = Vec<MetricStream>), (status = 401, body = ErrorBody)))]
pub async fn streams(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<MetricStream>>> {
    let principal = principal.reader()?;
    let rows = metrics::streams(&state.0.ch, principal.org_id).await?;
    Ok(Json(rows.into_iter().map(MetricStream::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParams {
    /// The metric name.
    #[param(required = true)]
    name: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    end: Option<String>,
    /// Points (or buckets) returned: 1 to 10000 (default 1000), the newest.
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// JSON object of attribute filters, e.g. `{"route":"/chat"}` (at most 20).
    labels: Option<String>,
    service_name: Option<String>,
    /// Bucket width in seconds (1 to 2678400); with it the answer is downsampled.
    #[param(minimum = 1, maximum = 2678400)]
    step: Option<i64>,
    /// `avg` (default), `min`, `max`, `sum`, `count`, or `p50`/`p90`/`p95`/`p99` (histograms).
    #[param(inline, value_type = Option<AggParam>)]
    agg: Option<String>,
}

/// The documented values of `agg` (`Agg::NAMES`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum AggParam {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    P50,
    P90,
    P95,
    P99,
}

/// Points of one metric oldest first (the newest `limit` of the range), or
/// with `step` one value per bucket.
#[utoipa::path(operation_id = "metrics_query", get, path = "/dashboard/metrics/query", tag = "metrics", params(QueryParams),
    responses((status = 200, body = MetricQuery), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<QueryParams>,
) -> AppResult<Json<MetricQuery>> {
    let principal = principal.reader()?;
    let name = p
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?;
    // Parameters are checked before the metric is looked up: a malformed
    // request is a 400 whether or not the metric exists.
    let start_us = sql::time_param("start", p.start.as_deref())?;
    let end_us = sql::time_param("end", p.end.as_deref())?;
    let limit = p.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be between 1 and 10000").into());
    }
    if let Some(step) = p.step {
        if !(1..=86_400 * 31).contains(&step) {
            return Err(
                ApiError::invalid_field("step", "must be between 1 and 2678400 seconds").into(),
            );
        }
    }
    let agg_name =
        sql::enum_param("agg", p.agg.as_deref().unwrap_or("avg"), &Agg::NAMES)?.to_string();
    let agg = Agg::parse(&agg_name).expect("checked");
    let filter = PointFilter {
        org_id: principal.org_id,
        name: name.clone(),
        start_us,
        end_us,
        service_name: p.service_name.filter(|s| !s.is_empty()),
        labels: labels(p.labels.as_deref())?,
    };
    let ch = &state.0.ch;
    let metric = metrics::metric(ch, &filter)
        .await?
        .ok_or_else(|| ApiError::not_found("Metric"))?;
    let mut body = MetricQuery {
        name,
        metric_type: metric.metric_type.clone(),
        unit: metric.unit.clone(),
        description: metric.description.clone(),
        points: None,
        step: None,
        agg: None,
        buckets: None,
    };
    if let Some(step) = p.step {
        if matches!(agg, Agg::Quantile(_)) && metric.metric_type != MetricType::Histogram.as_str() {
            return Err(ApiError::invalid_field(
                "agg",
                "quantiles apply to histogram metrics; use avg, min, max, sum or count",
            )
            .into());
        }
        let buckets = metrics::buckets(ch, &filter, &metric, step, agg, limit).await?;
        body.step = Some(step);
        body.agg = Some(agg_name);
        body.buckets = Some(
            buckets
                .into_iter()
                .map(|(ts, value)| Bucket {
                    timestamp: fmt_ns(ts),
                    value,
                })
                .collect(),
        );
    } else {
        let rows = metrics::points(ch, &filter, limit).await?;
        body.points = Some(rows.iter().map(Point::from).collect());
    }
    Ok(Json(body))
}

/// `labels`: a JSON object of at most 20 attribute filters; non-string
/// values match their JSON text.
fn labels(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let map: Map<String, Value> = serde_json::from_str(raw).map_err(|_| {
        ApiError::invalid_field(
            "labels",
            "must be a JSON object of strings, e.g. {\"route\":\"/chat\"}",
        )
    })?;
    if map.len() > 20 {
        return Err(ApiError::invalid_field("labels", "at most 20 labels"));
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}
