//! `/dashboard/metrics/`: metric streams, and points of one stream with
//! label filters and optional downsampling.

use crate::auth::Principal;
use crate::error::{AppResult, Json, Query};
use crate::sql::{self, Bind, Filter};
use crate::telemetry_store::{fmt_ns, map_json};
use crate::AppState;
use agentvista_shared::error::ApiError;
use axum::extract::State;
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Row, Deserialize)]
struct StreamRow {
    name: String,
    metric_type: String,
    unit: String,
    description: String,
    data_point_count: u64,
}

/// `GET /dashboard/metrics/`: every stream, by name.
pub async fn streams(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Value>> {
    let principal = principal.reader()?;
    let rows: Vec<StreamRow> = state
        .0
        .ch
        .query(
            "SELECT metric_name AS name, argMax(metric_type, time) AS metric_type, argMax(unit, time) AS unit, \
             argMax(description, time) AS description, count() AS data_point_count \
             FROM metric_points FINAL WHERE org_id = toUUID(?) GROUP BY metric_name ORDER BY metric_name",
        )
        .bind(principal.org_id.to_string())
        .fetch_all()
        .await?;
    Ok(Json(Value::Array(
        rows.into_iter()
            .map(|r| {
                json!({"name": r.name, "metric_type": r.metric_type, "unit": r.unit,
                       "description": r.description, "data_point_count": r.data_point_count})
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
pub struct QueryParams {
    name: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<i64>,
    /// JSON object of attribute filters, e.g. `{"route":"/chat"}`.
    labels: Option<String>,
    service_name: Option<String>,
    /// Bucket width in seconds; with it the answer is downsampled.
    step: Option<i64>,
    /// avg, min, max, sum, count, or p50/p90/p95/p99 (histograms).
    agg: Option<String>,
}

#[derive(Row, Deserialize)]
struct PointRow {
    ts: i64,
    start_ts: i64,
    metric_type: String,
    service_name: String,
    attributes: Vec<(String, String)>,
    value: Option<f64>,
    temporality: String,
    is_monotonic: bool,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Vec<u64>,
    explicit_bounds: Vec<f64>,
    exp_scale: i32,
    exp_zero_count: u64,
    exp_positive_offset: i32,
    exp_positive_counts: Vec<u64>,
    exp_negative_offset: i32,
    exp_negative_counts: Vec<u64>,
    quantiles: Vec<f64>,
    quantile_values: Vec<f64>,
}

const AGGS: [&str; 9] = [
    "avg", "min", "max", "sum", "count", "p50", "p90", "p95", "p99",
];

/// `GET /dashboard/metrics/query?name=…`: points oldest first (the newest
/// `limit` of the range), or with `step` one value per bucket.
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    Query(p): Query<QueryParams>,
) -> AppResult<Json<Value>> {
    let principal = principal.reader()?;
    let name = p
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid_field("name", "is required"))?;
    // Parameters are checked before the metric is looked up: a malformed
    // request is a 400 whether or not the metric exists.
    let start = sql::time_param("start", p.start.as_deref())?;
    let end = sql::time_param("end", p.end.as_deref())?;
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
    let agg = sql::enum_param("agg", p.agg.as_deref().unwrap_or("avg"), &AGGS)?.to_string();
    let ch = &state.0.ch;
    let mut f = Filter::org(principal.org_id);
    f.push("metric_name = ?", [Bind::Str(name.clone())]);
    let meta: Option<(String, String, String, String)> = f
        .apply(ch.query(&format!(
            "SELECT argMax(metric_type, time), argMax(unit, time), argMax(description, time), argMax(temporality, time) \
             FROM metric_points WHERE {} HAVING count() > 0",
            f.sql()
        )))
        .fetch_optional()
        .await?;
    let Some((metric_type, unit, description, temporality)) = meta else {
        return Err(ApiError::not_found("Metric").into());
    };
    if let Some(us) = start {
        f.push("time >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    if let Some(us) = end {
        f.push("time <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
    }
    if let Some(s) = p.service_name.as_deref().filter(|s| !s.is_empty()) {
        f.push("service_name = ?", [Bind::Str(s.to_string())]);
    }
    if let Some(labels) = p.labels.as_deref().filter(|s| !s.is_empty()) {
        let map: Map<String, Value> = serde_json::from_str(labels).map_err(|_| {
            ApiError::invalid_field(
                "labels",
                "must be a JSON object of strings, e.g. {\"route\":\"/chat\"}",
            )
        })?;
        if map.len() > 20 {
            return Err(ApiError::invalid_field("labels", "at most 20 labels").into());
        }
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            f.push("attributes[?] = ?", [Bind::Str(k), Bind::Str(v)]);
        }
    }
    let mut body =
        json!({"name": name, "metric_type": metric_type, "unit": unit, "description": description});
    if let Some(step) = p.step {
        body["step"] = json!(step);
        body["agg"] = json!(agg);
        body["buckets"] =
            downsample(&state, &f, &metric_type, &temporality, step, &agg, limit).await?;
        return Ok(Json(body));
    }
    let mut rows: Vec<PointRow> = f
        .apply(ch.query(&format!(
            "SELECT toInt64(toUnixTimestamp64Nano(time)) AS ts, toInt64(toUnixTimestamp64Nano(start_time)) AS start_ts, \
             metric_type, service_name, attributes, value, temporality, is_monotonic, count, sum, min, max, \
             bucket_counts, explicit_bounds, exp_scale, exp_zero_count, exp_positive_offset, exp_positive_counts, \
             exp_negative_offset, exp_negative_counts, quantiles, quantile_values \
             FROM metric_points FINAL WHERE {} ORDER BY time DESC, series_id LIMIT ?",
            f.sql()
        )))
        .bind(limit)
        .fetch_all()
        .await?;
    rows.reverse();
    body["points"] = Value::Array(rows.iter().map(point_json).collect());
    Ok(Json(body))
}

fn point_json(r: &PointRow) -> Value {
    let mut v = json!({
        "timestamp": fmt_ns(r.ts),
        "start_timestamp": if r.start_ts > 0 { json!(fmt_ns(r.start_ts)) } else { Value::Null },
        "labels": map_json(&r.attributes),
        "service_name": r.service_name,
    });
    match r.metric_type.as_str() {
        "gauge" => v["value"] = json!(r.value),
        "sum" => {
            v["value"] = json!(r.value);
            v["temporality"] = json!(r.temporality);
            v["is_monotonic"] = json!(r.is_monotonic);
        }
        "histogram" => {
            v["count"] = json!(r.count);
            v["sum"] = json!(r.sum);
            v["min"] = json!(r.min);
            v["max"] = json!(r.max);
            v["bucket_counts"] = json!(r.bucket_counts);
            v["explicit_bounds"] = json!(r.explicit_bounds);
            v["temporality"] = json!(r.temporality);
        }
        "exponential_histogram" => {
            v["count"] = json!(r.count);
            v["sum"] = json!(r.sum);
            v["min"] = json!(r.min);
            v["max"] = json!(r.max);
            v["scale"] = json!(r.exp_scale);
            v["zero_count"] = json!(r.exp_zero_count);
            v["positive"] =
                json!({"offset": r.exp_positive_offset, "bucket_counts": r.exp_positive_counts});
            v["negative"] =
                json!({"offset": r.exp_negative_offset, "bucket_counts": r.exp_negative_counts});
            v["temporality"] = json!(r.temporality);
        }
        _ => {
            v["count"] = json!(r.count);
            v["sum"] = json!(r.sum);
            v["quantiles"] = Value::Array(
                r.quantiles
                    .iter()
                    .zip(&r.quantile_values)
                    .map(|(q, v)| json!({"quantile": q, "value": v}))
                    .collect(),
            );
        }
    }
    v
}

#[derive(Row, Deserialize)]
struct BucketRow {
    bucket_ts: i64,
    agg_value: f64,
    counts: Vec<u64>,
    bounds: Vec<f64>,
}

/// One value per `step` seconds. Gauges and sums aggregate `value`;
/// histograms aggregate their `sum`/`count`, and quantiles come from the
/// merged bucket counts (delta points are added; for cumulative points the
/// last point of each series in the bucket counts).
async fn downsample(
    state: &AppState,
    f: &Filter,
    metric_type: &str,
    temporality: &str,
    step: i64,
    agg: &str,
    limit: i64,
) -> AppResult<Value> {
    let histogram = metric_type == "histogram";
    let quantile = agg
        .strip_prefix('p')
        .and_then(|q| q.parse::<f64>().ok())
        .map(|q| q / 100.0);
    if quantile.is_some() && !histogram {
        return Err(ApiError::invalid_field(
            "agg",
            "quantiles apply to histogram metrics; use avg, min, max, sum or count",
        )
        .into());
    }
    let field = if histogram { "ifNull(sum, 0)" } else { "value" };
    let agg_sql = match agg {
        "avg" if histogram => {
            "sum(ifNull(sum, 0)) / greatest(sum(ifNull(count, 0)), 1)".to_string()
        }
        "count" if histogram => "toFloat64(sum(ifNull(count, 0)))".to_string(),
        "count" => "toFloat64(count())".to_string(),
        "avg" | "min" | "max" | "sum" => format!("toFloat64(ifNull({agg}({field}), nan))"),
        _ => "nan".to_string(),
    };
    let bucket = "toInt64(intDiv(toUnixTimestamp64Nano(time), ?) * ?)";
    let step_ns = step * 1_000_000_000;
    // Points are grouped by their bounds as well: a series whose bounds
    // changed gives one row per bound set, and only points whose counts fit
    // their bounds are merged (points stored before ingestion validated
    // them may not).
    let fits = "length(bucket_counts) = length(explicit_bounds) + 1";
    let inner_counts = if temporality == "cumulative" {
        format!("argMaxIf(bucket_counts, time, {fits})")
    } else {
        format!("sumForEachIf(bucket_counts, {fits})")
    };
    let per_series_sql = if agg == "sum" && metric_type == "sum" && temporality == "cumulative" {
        // A cumulative counter: the increase of each series in each bucket,
        // as Prometheus' `increase` (without extrapolation). Each point
        // adds its rise over the series' previous point; a drop is a
        // counter reset, after which the point's value is the rise.
        format!(
            "SELECT bucket_ts, sum(if(rise < 0, v, rise)) AS agg_value, \
             CAST([] AS Array(UInt64)) AS counts, CAST([] AS Array(Float64)) AS bounds \
             FROM (SELECT {bucket} AS bucket_ts, series_id, toFloat64(ifNull(value, 0)) AS v, \
                   v - lagInFrame(v, 1, v) OVER (PARTITION BY series_id ORDER BY time \
                                               ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS rise \
                   FROM metric_points FINAL WHERE {}) \
             GROUP BY bucket_ts, series_id ORDER BY bucket_ts",
            f.sql()
        )
    } else {
        format!(
            "SELECT {bucket} AS bucket_ts, {agg_sql} AS agg_value, {inner_counts} AS counts, explicit_bounds AS bounds \
             FROM metric_points FINAL WHERE {} GROUP BY bucket_ts, series_id, explicit_bounds ORDER BY bucket_ts",
            f.sql()
        )
    };
    // The bucket expression's two binds come first, then the filter's.
    let q = state
        .0
        .ch
        .query(&per_series_sql)
        .bind(step_ns)
        .bind(step_ns);
    let rows: Vec<BucketRow> = f.apply(q).fetch_all().await?;
    let mut buckets: Vec<(i64, Vec<&BucketRow>)> = Vec::new();
    for r in &rows {
        match buckets.last_mut() {
            Some((ts, list)) if *ts == r.bucket_ts => list.push(r),
            _ => buckets.push((r.bucket_ts, vec![r])),
        }
    }
    let keep = buckets.len().saturating_sub(limit as usize);
    let out: Vec<Value> = buckets[keep..]
        .iter()
        .map(|(ts, series)| {
            let value = if let Some(q) = quantile {
                let sets: Vec<(&[f64], &[u64])> = series
                    .iter()
                    .map(|s| (s.bounds.as_slice(), s.counts.as_slice()))
                    .collect();
                let (bounds, merged) = merge_histograms(&sets);
                histogram_quantile(&merged, &bounds, q)
            } else {
                let vals = series.iter().map(|s| s.agg_value).filter(|v| v.is_finite());
                match agg {
                    "min" => vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v)))),
                    "max" => vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
                    "sum" | "count" => Some(vals.sum()),
                    _ => {
                        let v: Vec<f64> = vals.collect();
                        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                    }
                }
            };
            json!({"timestamp": fmt_ns(*ts), "value": value})
        })
        .collect();
    Ok(Value::Array(out))
}

/// Histograms with possibly different explicit bounds as one histogram
/// over the union of their bounds. Each bucket's count is spread over the
/// union buckets it covers in proportion to their width (the same
/// uniform-within-a-bucket assumption the quantile interpolation makes), so
/// histograms that share bounds merge exactly; the overflow bucket goes to
/// the union bucket just above its lower bound. Sets whose counts do not fit
/// their bounds (bounds + 1 counts, strictly increasing finite bounds) are
/// left out.
pub fn merge_histograms(sets: &[(&[f64], &[u64])]) -> (Vec<f64>, Vec<f64>) {
    let valid = |b: &[f64], c: &[u64]| {
        !b.is_empty()
            && c.len() == b.len() + 1
            && b.iter().all(|x| x.is_finite())
            && b.windows(2).all(|w| w[0] < w[1])
    };
    let mut union: Vec<f64> = sets
        .iter()
        .filter(|(b, c)| valid(b, c))
        .flat_map(|(b, _)| b.iter().copied())
        .collect();
    union.sort_by(f64::total_cmp);
    union.dedup();
    let mut merged = vec![0f64; union.len() + 1];
    let at = |x: f64| union.partition_point(|u| *u < x);
    for (bounds, counts) in sets.iter().filter(|(b, c)| valid(b, c)) {
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let c = c as f64;
            if i == bounds.len() {
                merged[at(bounds[i - 1]) + 1] += c;
                continue;
            }
            let hi = bounds[i];
            let lo = if i == 0 { hi.min(0.0) } else { bounds[i - 1] };
            let last = at(hi);
            if hi <= lo {
                merged[last] += c;
                continue;
            }
            let first = if i == 0 { 0 } else { at(lo) + 1 };
            for (j, slot) in merged.iter_mut().enumerate().take(last + 1).skip(first) {
                let from = if j == 0 { lo } else { union[j - 1].max(lo) };
                *slot += c * (union[j] - from).max(0.0) / (hi - lo);
            }
        }
    }
    (union, merged)
}

/// The `q` quantile of a histogram with explicit bounds, interpolating
/// linearly inside the bucket (the last bucket answers its lower bound).
pub fn histogram_quantile(counts: &[f64], bounds: &[f64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || bounds.is_empty() {
        return None;
    }
    let rank = q * total;
    let mut seen = 0f64;
    for (i, &c) in counts.iter().enumerate() {
        if c <= 0.0 {
            continue;
        }
        if seen + c >= rank {
            let lower = if i == 0 {
                bounds[0].min(0.0)
            } else {
                bounds[i - 1]
            };
            let Some(&upper) = bounds.get(i) else {
                return Some(lower);
            };
            let within = (rank - seen) / c;
            return Some(lower + (upper - lower) * within);
        }
        seen += c;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::{histogram_quantile, merge_histograms};

    #[test]
    fn quantiles_from_buckets() {
        // bounds 0,10,100: buckets (-inf,0], (0,10], (10,100], (100,inf)
        let bounds = [0.0, 10.0, 100.0];
        assert_eq!(
            histogram_quantile(&[0., 10., 0., 0.], &bounds, 0.5),
            Some(5.0)
        );
        assert_eq!(
            histogram_quantile(&[0., 5., 5., 0.], &bounds, 0.75),
            Some(55.0)
        );
        assert_eq!(
            histogram_quantile(&[0., 0., 0., 4.], &bounds, 0.99),
            Some(100.0)
        );
        assert_eq!(histogram_quantile(&[0., 0., 0., 0.], &bounds, 0.5), None);
    }

    #[test]
    fn histograms_merge_over_mixed_bounds() {
        // The same bounds: an exact merge.
        let a: (&[f64], &[u64]) = (&[0.0, 10.0, 100.0], &[0, 10, 0, 0]);
        let (b, m) = merge_histograms(&[a, a]);
        assert_eq!(b, vec![0.0, 10.0, 100.0]);
        assert_eq!(m, vec![0.0, 20.0, 0.0, 0.0]);
        // Different bounds: 10 in (0,10] and 10 in (0,20], half of which
        // lies in (0,10]: 15 of 20 below 10, the median inside (0,10].
        let c: (&[f64], &[u64]) = (&[20.0], &[10, 0]);
        let (b, m) = merge_histograms(&[a, c]);
        assert_eq!(b, vec![0.0, 10.0, 20.0, 100.0]);
        assert_eq!(m, vec![0.0, 15.0, 5.0, 0.0, 0.0]);
        let p50 = histogram_quantile(&m, &b, 0.5).unwrap();
        assert!((p50 - 20.0 / 3.0).abs() < 1e-9, "{p50}");
        // Counts that do not fit their bounds are left out, never a panic.
        let bad: (&[f64], &[u64]) = (&[1.0, 2.0], &[1, 2, 3, 4, 5]);
        let (_, m) = merge_histograms(&[bad, a]);
        assert_eq!(m.iter().sum::<f64>(), 10.0);
        let (b, m) = merge_histograms(&[bad]);
        assert_eq!(histogram_quantile(&m, &b, 0.5), None);
    }
}
