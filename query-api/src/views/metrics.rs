//! Metric streams, points (their fields follow the metric type) and
//! downsampled buckets.

use super::{attributes, rfc3339};
use crate::store::metrics::{StoredPoint, StoredStream};
use agentvista_shared::model::{MetricType, Temporality};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// One metric stream (`GET /dashboard/metrics/`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricStream {
    pub name: String,
    #[schema(value_type = MetricType)]
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    pub data_point_count: u64,
}

impl From<StoredStream> for MetricStream {
    fn from(r: StoredStream) -> Self {
        MetricStream {
            name: r.name,
            metric_type: r.metric_type,
            unit: r.unit,
            description: r.description,
            data_point_count: r.data_point_count,
        }
    }
}

/// `GET /dashboard/metrics/query`: raw `points`, or with `step` the
/// downsampled `buckets` (then `step` and `agg` are echoed).
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricQuery {
    pub name: String,
    #[schema(value_type = MetricType)]
    pub metric_type: String,
    pub unit: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<Point>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<Bucket>>,
}

/// One data point; the value fields depend on the metric type.
#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    pub timestamp: String,
    /// Start of the aggregation interval (sums, histograms), when known.
    pub start_timestamp: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub service_name: String,
    #[serde(flatten)]
    pub values: PointValues,
}

/// The value fields of a point, by metric type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PointValues {
    Gauge {
        value: Option<f64>,
    },
    Sum {
        value: Option<f64>,
        #[schema(value_type = Temporality)]
        temporality: String,
        is_monotonic: bool,
    },
    Histogram {
        count: Option<u64>,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        bucket_counts: Vec<u64>,
        explicit_bounds: Vec<f64>,
        #[schema(value_type = Temporality)]
        temporality: String,
    },
    ExponentialHistogram {
        count: Option<u64>,
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        scale: i32,
        zero_count: u64,
        positive: ExpBuckets,
        negative: ExpBuckets,
        #[schema(value_type = Temporality)]
        temporality: String,
    },
    Summary {
        count: Option<u64>,
        sum: Option<f64>,
        quantiles: Vec<QuantileValue>,
    },
}

/// One side of an exponential histogram.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpBuckets {
    pub offset: i32,
    pub bucket_counts: Vec<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuantileValue {
    pub quantile: f64,
    pub value: f64,
}

/// One downsampled bucket: `value` is null when no point has a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    pub timestamp: String,
    pub value: Option<f64>,
}

impl From<&StoredPoint> for Point {
    fn from(r: &StoredPoint) -> Self {
        let values = match MetricType::parse(&r.metric_type) {
            Some(MetricType::Gauge) => PointValues::Gauge { value: r.value },
            Some(MetricType::Sum) => PointValues::Sum {
                value: r.value,
                temporality: r.temporality.clone(),
                is_monotonic: r.is_monotonic,
            },
            Some(MetricType::Histogram) => PointValues::Histogram {
                count: r.count,
                sum: r.sum,
                min: r.min,
                max: r.max,
                bucket_counts: r.bucket_counts.clone(),
                explicit_bounds: r.explicit_bounds.clone(),
                temporality: r.temporality.clone(),
            },
            Some(MetricType::ExponentialHistogram) => PointValues::ExponentialHistogram {
                count: r.count,
                sum: r.sum,
                min: r.min,
                max: r.max,
                scale: r.exp_scale,
                zero_count: r.exp_zero_count,
                positive: ExpBuckets {
                    offset: r.exp_positive_offset,
                    bucket_counts: r.exp_positive_counts.clone(),
                },
                negative: ExpBuckets {
                    offset: r.exp_negative_offset,
                    bucket_counts: r.exp_negative_counts.clone(),
                },
                temporality: r.temporality.clone(),
            },
            Some(MetricType::Summary) | None => PointValues::Summary {
                count: r.count,
                sum: r.sum,
                quantiles: r
                    .quantiles
                    .iter()
                    .zip(&r.quantile_values)
                    .map(|(&quantile, &value)| QuantileValue { quantile, value })
                    .collect(),
            },
        };
        Point {
            timestamp: rfc3339(r.time),
            start_timestamp: (r.start_time.unix_timestamp_nanos() > 0)
                .then(|| rfc3339(r.start_time)),
            labels: attributes(&r.attributes),
            service_name: r.service_name.clone(),
            values,
        }
    }
}
