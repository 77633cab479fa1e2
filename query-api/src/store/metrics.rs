//! Metric points (`metric_points` table): streams, one stream's points,
//! and downsampled buckets.

use crate::error::AppResult;
use crate::histogram::{histogram_quantile, merge_histograms};
use crate::sql::{Bind, Filter};
use agentvista_shared::model::{MetricType, Temporality};
use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A metric stream's latest description and point count.
#[derive(Debug, Row, Deserialize)]
pub struct StoredStream {
    pub name: String,
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    pub data_point_count: u64,
}

/// A point as read back; the fields that do not apply to its type are
/// empty.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct StoredPoint {
    #[serde(with = "clickhouse::serde::time::datetime64::nanos")]
    pub time: OffsetDateTime,
    /// The epoch when the point has no start time.
    #[serde(with = "clickhouse::serde::time::datetime64::nanos")]
    pub start_time: OffsetDateTime,
    pub metric_type: String,
    pub service_name: String,
    pub attributes: Vec<(String, String)>,
    pub value: Option<f64>,
    pub temporality: String,
    pub is_monotonic: bool,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub exp_scale: i32,
    pub exp_zero_count: u64,
    pub exp_positive_offset: i32,
    pub exp_positive_counts: Vec<u64>,
    pub exp_negative_offset: i32,
    pub exp_negative_counts: Vec<u64>,
    pub quantiles: Vec<f64>,
    pub quantile_values: Vec<f64>,
}

/// A metric's latest type, unit, description and temporality.
#[derive(Debug, Row, Deserialize)]
pub struct StoredMetric {
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    pub temporality: String,
}

/// Every stream of the organization, by name.
pub async fn streams(ch: &clickhouse::Client, org_id: Uuid) -> AppResult<Vec<StoredStream>> {
    Ok(ch
        .query(
            "SELECT metric_name AS name, argMax(metric_type, time) AS metric_type, argMax(unit, time) AS unit, \
             argMax(description, time) AS description, count() AS data_point_count \
             FROM metric_points FINAL WHERE org_id = toUUID(?) GROUP BY metric_name ORDER BY metric_name",
        )
        .bind(org_id.to_string())
        .fetch_all()
        .await?)
}

/// Which points of one metric a read covers.
#[derive(Debug, Default)]
pub struct PointFilter {
    pub org_id: Uuid,
    pub name: String,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    pub service_name: Option<String>,
    /// Attribute equalities.
    pub labels: Vec<(String, String)>,
}

impl PointFilter {
    fn metric(&self) -> Filter {
        let mut f = Filter::org(self.org_id);
        f.push("metric_name = ?", [Bind::Str(self.name.clone())]);
        f
    }

    fn to_sql(&self) -> Filter {
        let mut f = self.metric();
        if let Some(us) = self.start_us {
            f.push("time >= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        if let Some(us) = self.end_us {
            f.push("time <= fromUnixTimestamp64Micro(?)", [Bind::Int(us)]);
        }
        if let Some(s) = &self.service_name {
            f.push("service_name = ?", [Bind::Str(s.clone())]);
        }
        for (k, v) in &self.labels {
            f.push(
                "attributes[?] = ?",
                [Bind::Str(k.clone()), Bind::Str(v.clone())],
            );
        }
        f
    }
}

/// The metric's latest description, or `None` when it has no point.
pub async fn metric(
    ch: &clickhouse::Client,
    filter: &PointFilter,
) -> AppResult<Option<StoredMetric>> {
    let f = filter.metric();
    Ok(f.apply(ch.query(&format!(
        "SELECT argMax(metric_type, time) AS metric_type, argMax(unit, time) AS unit, \
             argMax(description, time) AS description, argMax(temporality, time) AS temporality \
             FROM metric_points WHERE {} HAVING count() > 0",
        f.sql()
    )))
    .fetch_optional()
    .await?)
}

/// The newest `limit` points of the range, oldest first.
pub async fn points(
    ch: &clickhouse::Client,
    filter: &PointFilter,
    limit: i64,
) -> AppResult<Vec<StoredPoint>> {
    let f = filter.to_sql();
    let mut rows: Vec<StoredPoint> = f
        .apply(ch.query(&format!(
            "SELECT ?fields FROM metric_points FINAL WHERE {} ORDER BY time DESC, series_id LIMIT ?",
            f.sql()
        )))
        .bind(limit)
        .fetch_all()
        .await?;
    rows.reverse();
    Ok(rows)
}

/// How buckets aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    /// A quantile in 0..1 (histograms).
    Quantile(f64),
}

impl Agg {
    pub const NAMES: [&'static str; 9] = [
        "avg", "min", "max", "sum", "count", "p50", "p90", "p95", "p99",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "count" => Agg::Count,
            "p50" => Agg::Quantile(0.5),
            "p90" => Agg::Quantile(0.9),
            "p95" => Agg::Quantile(0.95),
            "p99" => Agg::Quantile(0.99),
            _ => return None,
        })
    }
}

#[derive(Row, Deserialize)]
struct StoredBucket {
    bucket_ts: i64,
    agg_value: f64,
    counts: Vec<u64>,
    bounds: Vec<f64>,
}

/// One value per `step` seconds (the newest `limit` buckets), as
/// (nanoseconds, value). Gauges and sums aggregate `value`; histograms
/// aggregate their `sum`/`count`, and quantiles come from the merged bucket
/// counts (delta points are added; for cumulative points the last point of
/// each series in the bucket counts). The caller checks that quantiles go
/// with histograms.
pub async fn buckets(
    ch: &clickhouse::Client,
    filter: &PointFilter,
    metric: &StoredMetric,
    step: i64,
    agg: Agg,
    limit: i64,
) -> AppResult<Vec<(i64, Option<f64>)>> {
    let f = filter.to_sql();
    let histogram = metric.metric_type == MetricType::Histogram.as_str();
    let cumulative = metric.temporality == Temporality::Cumulative.as_str();
    let field = if histogram { "ifNull(sum, 0)" } else { "value" };
    let agg_sql = match agg {
        Agg::Avg if histogram => {
            "sum(ifNull(sum, 0)) / greatest(sum(ifNull(count, 0)), 1)".to_string()
        }
        Agg::Count if histogram => "toFloat64(sum(ifNull(count, 0)))".to_string(),
        Agg::Count => "toFloat64(count())".to_string(),
        Agg::Avg => format!("toFloat64(ifNull(avg({field}), nan))"),
        Agg::Min => format!("toFloat64(ifNull(min({field}), nan))"),
        Agg::Max => format!("toFloat64(ifNull(max({field}), nan))"),
        Agg::Sum => format!("toFloat64(ifNull(sum({field}), nan))"),
        Agg::Quantile(_) => "nan".to_string(),
    };
    let bucket = "toInt64(intDiv(toUnixTimestamp64Nano(time), ?) * ?)";
    let step_ns = step * 1_000_000_000;
    // Points are grouped by their bounds as well: a series whose bounds
    // changed gives one row per bound set, and only points whose counts fit
    // their bounds are merged (points stored before ingestion validated
    // them may not).
    let fits = "length(bucket_counts) = length(explicit_bounds) + 1";
    let inner_counts = if cumulative {
        format!("argMaxIf(bucket_counts, time, {fits})")
    } else {
        format!("sumForEachIf(bucket_counts, {fits})")
    };
    let sql = if agg == Agg::Sum && metric.metric_type == MetricType::Sum.as_str() && cumulative {
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
    let q = ch.query(&sql).bind(step_ns).bind(step_ns);
    let rows: Vec<StoredBucket> = f.apply(q).fetch_all().await?;
    let mut grouped: Vec<(i64, Vec<&StoredBucket>)> = Vec::new();
    for r in &rows {
        match grouped.last_mut() {
            Some((ts, list)) if *ts == r.bucket_ts => list.push(r),
            _ => grouped.push((r.bucket_ts, vec![r])),
        }
    }
    let keep = grouped.len().saturating_sub(limit as usize);
    Ok(grouped[keep..]
        .iter()
        .map(|(ts, series)| {
            let value = if let Agg::Quantile(q) = agg {
                let sets: Vec<(&[f64], &[u64])> = series
                    .iter()
                    .map(|s| (s.bounds.as_slice(), s.counts.as_slice()))
                    .collect();
                let (bounds, merged) = merge_histograms(&sets);
                histogram_quantile(&merged, &bounds, q)
            } else {
                let vals = series.iter().map(|s| s.agg_value).filter(|v| v.is_finite());
                match agg {
                    Agg::Min => {
                        vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
                    }
                    Agg::Max => {
                        vals.fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
                    }
                    Agg::Sum | Agg::Count => Some(vals.sum()),
                    _ => {
                        let v: Vec<f64> = vals.collect();
                        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                    }
                }
            };
            (*ts, value)
        })
        .collect())
}
