//! OTLP/JSON metrics decoded straight into `opentelemetry-proto`'s types,
//! without an intermediate `serde_json::Value` tree (as
//! [`super::json_stream`] does for traces and logs, on its helpers).
//!
//! Written against the OTLP JSON mapping rather than the crate's serde,
//! which it accepts a superset of: 64-bit integers (times, counts, bucket
//! counts, `asInt`) as numbers or strings, doubles as numbers or the
//! mapping's strings (`"NaN"`, `"Infinity"`, `"-Infinity"`, digits),
//! temporalities by number or name; every field may be missing (the crate
//! requires all fields of exponential-histogram and summary points), and
//! an exemplar's value is read where the mapping puts it (`asDouble`,
//! `asInt` beside its other fields) as well as nested under `value` (the
//! crate's form). The unit tests hold it to the crate's answer on
//! generated exports both accept; where the crate's serde silently dropped
//! a metric's data (an exemplar's `asInt`, a partial exponential-histogram
//! point, `"NaN"`), this reads it.

use super::json::{enum_number, TEMPORALITIES};
use super::json_stream::{hex_bytes, nanos, EnumValue, Root, RootField};
use super::json_values::{array_of, key_values, Int};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

impl RootField for JResourceMetrics {
    const FIELD: &'static str = "resourceMetrics";
}

impl From<Root<JResourceMetrics>> for ExportMetricsServiceRequest {
    fn from(r: Root<JResourceMetrics>) -> Self {
        ExportMetricsServiceRequest {
            resource_metrics: r.0.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JResourceMetrics {
    resource: Option<Resource>,
    scope_metrics: Vec<JScopeMetrics>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JScopeMetrics {
    scope: Option<InstrumentationScope>,
    metrics: Vec<JMetric>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JMetric {
    name: String,
    description: String,
    unit: String,
    metadata: Vec<KeyValue>,
    gauge: Option<JPoints<JNumberPoint>>,
    sum: Option<JSum>,
    histogram: Option<JAggregated<JHistogramPoint>>,
    exponential_histogram: Option<JAggregated<JExpPoint>>,
    summary: Option<JPoints<JSummaryPoint>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct JPoints<P> {
    data_points: Vec<P>,
}

impl<P> Default for JPoints<P> {
    fn default() -> Self {
        JPoints {
            data_points: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct JAggregated<P> {
    data_points: Vec<P>,
    #[serde(deserialize_with = "temporality")]
    aggregation_temporality: i32,
}

impl<P> Default for JAggregated<P> {
    fn default() -> Self {
        JAggregated {
            data_points: Vec::new(),
            aggregation_temporality: 0,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JSum {
    data_points: Vec<JNumberPoint>,
    #[serde(deserialize_with = "temporality")]
    aggregation_temporality: i32,
    is_monotonic: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JNumberPoint {
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    exemplars: Vec<JExemplar>,
    flags: u32,
    #[serde(deserialize_with = "some_double")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "some_int64")]
    as_int: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JHistogramPoint {
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    count: u64,
    #[serde(deserialize_with = "some_double")]
    sum: Option<f64>,
    #[serde(deserialize_with = "uint64s")]
    bucket_counts: Vec<u64>,
    #[serde(deserialize_with = "doubles")]
    explicit_bounds: Vec<f64>,
    exemplars: Vec<JExemplar>,
    flags: u32,
    #[serde(deserialize_with = "some_double")]
    min: Option<f64>,
    #[serde(deserialize_with = "some_double")]
    max: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JExpPoint {
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    count: u64,
    #[serde(deserialize_with = "some_double")]
    sum: Option<f64>,
    scale: i32,
    #[serde(deserialize_with = "nanos")]
    zero_count: u64,
    positive: Option<JBuckets>,
    negative: Option<JBuckets>,
    flags: u32,
    exemplars: Vec<JExemplar>,
    #[serde(deserialize_with = "some_double")]
    min: Option<f64>,
    #[serde(deserialize_with = "some_double")]
    max: Option<f64>,
    #[serde(deserialize_with = "double")]
    zero_threshold: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JBuckets {
    offset: i32,
    #[serde(deserialize_with = "uint64s")]
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JSummaryPoint {
    #[serde(deserialize_with = "key_values")]
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    count: u64,
    #[serde(deserialize_with = "double")]
    sum: f64,
    quantile_values: Vec<JQuantile>,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JQuantile {
    #[serde(deserialize_with = "double")]
    quantile: f64,
    #[serde(deserialize_with = "double")]
    value: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JExemplar {
    #[serde(deserialize_with = "key_values")]
    filtered_attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "hex_bytes")]
    span_id: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    trace_id: Vec<u8>,
    #[serde(deserialize_with = "some_double")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "some_int64")]
    as_int: Option<i64>,
    /// The crate's own (nested) form.
    value: Option<exemplar::Value>,
}

impl From<JResourceMetrics> for ResourceMetrics {
    fn from(r: JResourceMetrics) -> Self {
        ResourceMetrics {
            resource: r.resource,
            scope_metrics: r
                .scope_metrics
                .into_iter()
                .map(|s| ScopeMetrics {
                    scope: s.scope,
                    metrics: s.metrics.into_iter().map(Into::into).collect(),
                    schema_url: s.schema_url,
                })
                .collect(),
            schema_url: r.schema_url,
        }
    }
}

impl From<JMetric> for Metric {
    fn from(m: JMetric) -> Self {
        let data = if let Some(g) = m.gauge {
            Some(metric::Data::Gauge(Gauge {
                data_points: g.data_points.into_iter().map(Into::into).collect(),
            }))
        } else if let Some(s) = m.sum {
            Some(metric::Data::Sum(Sum {
                data_points: s.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            }))
        } else if let Some(h) = m.histogram {
            Some(metric::Data::Histogram(Histogram {
                data_points: h.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: h.aggregation_temporality,
            }))
        } else if let Some(h) = m.exponential_histogram {
            Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: h.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: h.aggregation_temporality,
            }))
        } else {
            m.summary.map(|s| {
                metric::Data::Summary(Summary {
                    data_points: s.data_points.into_iter().map(Into::into).collect(),
                })
            })
        };
        Metric {
            name: m.name,
            description: m.description,
            unit: m.unit,
            metadata: m.metadata,
            data,
        }
    }
}

fn exemplars(e: Vec<JExemplar>) -> Vec<Exemplar> {
    e.into_iter()
        .map(|e| Exemplar {
            filtered_attributes: e.filtered_attributes,
            time_unix_nano: e.time_unix_nano,
            span_id: e.span_id,
            trace_id: e.trace_id,
            value: e
                .as_double
                .map(exemplar::Value::AsDouble)
                .or(e.as_int.map(exemplar::Value::AsInt))
                .or(e.value),
        })
        .collect()
}

impl From<JNumberPoint> for NumberDataPoint {
    fn from(p: JNumberPoint) -> Self {
        NumberDataPoint {
            attributes: p.attributes,
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            exemplars: exemplars(p.exemplars),
            flags: p.flags,
            value: p
                .as_double
                .map(number_data_point::Value::AsDouble)
                .or(p.as_int.map(number_data_point::Value::AsInt)),
        }
    }
}

impl From<JHistogramPoint> for HistogramDataPoint {
    fn from(p: JHistogramPoint) -> Self {
        HistogramDataPoint {
            attributes: p.attributes,
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            bucket_counts: p.bucket_counts,
            explicit_bounds: p.explicit_bounds,
            exemplars: exemplars(p.exemplars),
            flags: p.flags,
            min: p.min,
            max: p.max,
        }
    }
}

impl From<JExpPoint> for ExponentialHistogramDataPoint {
    fn from(p: JExpPoint) -> Self {
        let buckets = |b: JBuckets| exponential_histogram_data_point::Buckets {
            offset: b.offset,
            bucket_counts: b.bucket_counts,
        };
        ExponentialHistogramDataPoint {
            attributes: p.attributes,
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            scale: p.scale,
            zero_count: p.zero_count,
            positive: p.positive.map(buckets),
            negative: p.negative.map(buckets),
            flags: p.flags,
            exemplars: exemplars(p.exemplars),
            min: p.min,
            max: p.max,
            zero_threshold: p.zero_threshold,
        }
    }
}

impl From<JSummaryPoint> for SummaryDataPoint {
    fn from(p: JSummaryPoint) -> Self {
        SummaryDataPoint {
            attributes: p.attributes,
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            quantile_values: p
                .quantile_values
                .into_iter()
                .map(|q| summary_data_point::ValueAtQuantile {
                    quantile: q.quantile,
                    value: q.value,
                })
                .collect(),
            flags: p.flags,
        }
    }
}

/// An aggregation temporality by number or name
/// (`AGGREGATION_TEMPORALITY_DELTA`, `cumulative`).
fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumValue(|s| enum_number(s, TEMPORALITIES)))
}

/// A double: a number, or a string the JSON mapping allows (`"NaN"`,
/// `"Infinity"`, `"-Infinity"`, or digits).
struct Double;

impl Visitor<'_> for Double {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => v.parse().map_err(E::custom),
        }
    }
}

fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(Double)
}

/// A double read by [`double`].
struct D64(f64);

impl<'de> Deserialize<'de> for D64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        double(d).map(D64)
    }
}

impl From<D64> for f64 {
    fn from(v: D64) -> f64 {
        v.0
    }
}

/// A 64-bit unsigned integer read by [`nanos`] (a number or a string).
struct Uint64(u64);

impl<'de> Deserialize<'de> for Uint64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        nanos(d).map(Uint64)
    }
}

impl From<Uint64> for u64 {
    fn from(v: Uint64) -> u64 {
        v.0
    }
}

/// An optional double; `null` is absent.
fn some_double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<D64>::deserialize(d)?.map(f64::from))
}

/// An optional signed 64-bit integer, as a number or a string; `null` is
/// absent.
fn some_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Int>::deserialize(d)?.map(|i| i.0))
}

/// Unsigned 64-bit integers (bucket counts), each a number or a string.
fn uint64s<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    array_of::<D, Uint64, u64>(d, "an array of 64-bit unsigned integers")
}

/// Doubles (explicit bounds), each a number or a mapping string.
fn doubles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    array_of::<D, D64, f64>(d, "an array of numbers")
}

#[cfg(test)]
mod tests {
    use super::super::{decode, decode_metrics, Encoding, MetricsRequest, Signal};
    use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric, number_data_point};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn streamed(body: &[u8]) -> Result<MetricsRequest, String> {
        decode_metrics(Encoding::Json, body).map_err(|e| e.detail)
    }

    fn via_value(body: &[u8]) -> Result<MetricsRequest, String> {
        decode::<MetricsRequest>(Signal::Metrics, Encoding::Json, body).map_err(|e| e.detail)
    }

    fn time() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(1_700_000_000_000_000_000u64)),
            Just(json!("1700000000000000001")),
            Just(json!(0)),
        ]
    }

    fn uint() -> impl Strategy<Value = Value> {
        prop_oneof![Just(json!(3)), Just(json!("7")), Just(json!(0))]
    }

    fn temporality() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(1)),
            Just(json!(2)),
            Just(json!("AGGREGATION_TEMPORALITY_DELTA")),
            Just(json!("cumulative")),
        ]
    }

    fn attributes() -> impl Strategy<Value = Value> {
        proptest::sample::select(vec![
            json!([]),
            json!([{"key": "route", "value": {"stringValue": "/chat"}}]),
            json!([{"key": "n", "value": {"intValue": "4"}}, {"key": "ok", "value": {"boolValue": true}}]),
        ])
    }

    /// A metric of each kind, in the forms both decoders accept: the
    /// crate's serde needs every field of exponential-histogram and summary
    /// points, and its exemplars are left out (it reads their value nested).
    fn metric() -> impl Strategy<Value = Value> {
        let number = (
            attributes(),
            time(),
            time(),
            prop_oneof![
                Just(json!({"asDouble": 0.25})),
                Just(json!({"asInt": "42"})),
                Just(json!({"asInt": -3})),
                Just(json!({})),
            ],
        )
            .prop_map(|(a, s, t, v)| {
                let mut p = json!({"attributes": a, "startTimeUnixNano": s, "timeUnixNano": t});
                for (k, x) in v.as_object().unwrap() {
                    p[k] = x.clone();
                }
                p
            })
            .boxed();
        let histogram = (
            attributes(),
            time(),
            uint(),
            uint(),
            proptest::option::of(Just(1.5)),
        )
            .prop_map(|(a, t, c, b, m)| {
                let mut p = json!({"attributes": a, "timeUnixNano": t, "count": c, "sum": 4.5,
                                   "bucketCounts": [b, 1], "explicitBounds": [1.0]});
                if let Some(m) = m {
                    p["min"] = json!(m);
                    p["max"] = json!(m * 2.0);
                }
                p
            });
        let exp = (attributes(), time(), time(), uint(), uint()).prop_map(|(a, s, t, c, z)| {
            json!({"attributes": a, "startTimeUnixNano": s, "timeUnixNano": t, "count": c,
                   "sum": 2.0, "scale": 3, "zeroCount": z,
                   "positive": {"offset": -2, "bucketCounts": [z, 2]},
                   "negative": {"offset": 0, "bucketCounts": []},
                   "flags": 0, "exemplars": [], "min": 0.5, "max": 9.0, "zeroThreshold": 0.0})
        });
        let summary = (attributes(), time(), time(), uint()).prop_map(|(a, s, t, c)| {
            json!({"attributes": a, "startTimeUnixNano": s, "timeUnixNano": t, "count": c,
                   "sum": 10.0, "quantileValues": [{"quantile": 0.5, "value": 2.0}], "flags": 0})
        });
        prop_oneof![
            proptest::collection::vec(number.clone(), 0..3)
                .prop_map(|p| json!({"name": "g", "unit": "1", "gauge": {"dataPoints": p}})),
            (proptest::collection::vec(number, 0..3), temporality(), any::<bool>()).prop_map(
                |(p, t, m)| json!({"name": "s", "description": "d", "sum": {"dataPoints": p,
                    "aggregationTemporality": t, "isMonotonic": m}})
            ),
            (proptest::collection::vec(histogram, 0..3), temporality()).prop_map(|(p, t)| json!(
                {"name": "h", "histogram": {"dataPoints": p, "aggregationTemporality": t}}
            )),
            (proptest::collection::vec(exp, 0..2), temporality()).prop_map(|(p, t)| json!(
                {"name": "e", "exponentialHistogram": {"dataPoints": p, "aggregationTemporality": t}}
            )),
            proptest::collection::vec(summary, 0..2)
                .prop_map(|p| json!({"name": "q", "summary": {"dataPoints": p}})),
            Just(json!({"name": "no data"})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// On exports the crate's serde accepts, both paths give the same
        /// request.
        #[test]
        fn same_as_the_value_path(metrics in proptest::collection::vec(metric(), 0..4)) {
            let body = serde_json::to_vec(&json!({"resourceMetrics": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeMetrics": [{"scope": {"name": "m"}, "metrics": metrics}]
            }]}))
            .unwrap();
            let want = via_value(&body);
            prop_assert!(want.is_ok(), "{:?}", want);
            prop_assert_eq!(streamed(&body), want);
        }

        /// Whatever the body, a request or an error, never a panic.
        #[test]
        fn any_body_decodes_or_is_refused(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = streamed(&body);
        }
    }

    #[test]
    fn the_json_mapping_forms_the_crate_dropped_are_read() {
        // Exemplar values beside their fields, an exponential-histogram
        // point with only some fields, doubles as mapping strings.
        let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "5", "asDouble": "NaN",
                "exemplars": [{"timeUnixNano": "6", "asInt": "7", "traceId": "5b8efff798038103d269b633813fc60c"}]}]}},
            {"name": "e", "exponentialHistogram": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                "dataPoints": [{"timeUnixNano": 9, "count": "4", "scale": 1,
                                "positive": {"bucketCounts": ["1", 3]}}]}},
            {"name": "h", "histogram": {"dataPoints": [{"count": 2, "explicitBounds": [1, "Infinity"],
                "bucketCounts": [1, "1"]}]}}
        ]}]}]});
        let body = serde_json::to_vec(&body).unwrap();
        // The crate's serde (the old path) silently dropped the data of
        // all three metrics.
        let old = via_value(&body).unwrap();
        assert!(old.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .all(|m| m.data.is_none()));
        let r = streamed(&body).unwrap();
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        let Some(metric::Data::Gauge(g)) = &m[0].data else {
            panic!("gauge")
        };
        let p = &g.data_points[0];
        assert!(matches!(p.value, Some(number_data_point::Value::AsDouble(v)) if v.is_nan()));
        assert_eq!(p.exemplars[0].value, Some(exemplar::Value::AsInt(7)));
        assert_eq!(p.exemplars[0].trace_id.len(), 16);
        let Some(metric::Data::ExponentialHistogram(e)) = &m[1].data else {
            panic!("exp")
        };
        assert_eq!(e.aggregation_temporality, 1);
        assert_eq!(e.data_points[0].count, 4);
        assert_eq!(
            e.data_points[0].positive.as_ref().unwrap().bucket_counts,
            vec![1, 3]
        );
        let Some(metric::Data::Histogram(h)) = &m[2].data else {
            panic!("histogram")
        };
        assert_eq!(h.data_points[0].explicit_bounds, vec![1.0, f64::INFINITY]);
        assert_eq!(h.data_points[0].bucket_counts, vec![1, 1]);
    }

    #[test]
    fn errors_keep_the_value_paths_shape() {
        let missing = streamed(b"{}").unwrap_err();
        assert_eq!(missing, via_value(b"{}").unwrap_err());
        let not_array = streamed(br#"{"resourceMetrics": 3}"#).unwrap_err();
        assert_eq!(
            not_array,
            via_value(br#"{"resourceMetrics": 3}"#).unwrap_err()
        );
        let bad = streamed(br#"{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"sum": {"dataPoints": [{"asInt": "x"}]}}]}]}]}"#)
            .unwrap_err();
        assert!(bad.starts_with("Invalid OTLP JSON at resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].asInt"), "{bad}");
        assert!(streamed(b"{\"resourceMetrics\": [] } x")
            .unwrap_err()
            .starts_with("Malformed JSON body"));
    }
}
