//! OTLP metrics to AgentVista metric points (contract ruling 8: the OTLP
//! type names are kept).

use super::attrs;
use agentvista_shared::model::{MetricPoint, MetricType, Temporality};
use agentvista_shared::window::IngestWindow;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, AggregationTemporality};
use sha2::{Digest, Sha256};

#[derive(Debug, Default)]
pub struct Translated {
    pub points: Vec<MetricPoint>,
    pub rejected: u64,
    pub error: Option<String>,
}

fn temporality(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => Temporality::Delta.as_str(),
        Ok(AggregationTemporality::Cumulative) => Temporality::Cumulative.as_str(),
        _ => "",
    }
}

/// Stable id of a series: metric name, attributes, resource and scope.
fn series_id(
    name: &str,
    attributes: &[(String, String)],
    resource: &[(String, String)],
    scope: &str,
) -> u64 {
    let mut h = Sha256::new();
    for part in [name, scope] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for list in [attributes, resource] {
        let mut sorted: Vec<_> = list.iter().collect();
        sorted.sort();
        h.update((sorted.len() as u64).to_le_bytes());
        for (k, v) in sorted {
            h.update((k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// Why a point cannot be stored as sent, if it cannot: its time outside
/// `window`, or a histogram whose buckets do not fit its bounds (bounds
/// must be finite and strictly increasing, with one bucket more than
/// bounds, or no buckets at all).
fn check_point(p: &MetricPoint, window: &IngestWindow) -> Result<(), String> {
    window
        .check_ns(p.time_ns)
        .map_err(|m| format!("{}: data point time_unix_nano {m}", p.name))?;
    if p.metric_type == MetricType::Histogram.as_str() {
        let bounds = &p.explicit_bounds;
        if !bounds.iter().all(|b| b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "{}: histogram explicit_bounds must be finite and strictly increasing",
                p.name
            ));
        }
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != bounds.len() + 1 {
            return Err(format!(
                "{}: histogram has {} bucket counts for {} explicit bounds (need bounds + 1)",
                p.name,
                p.bucket_counts.len(),
                bounds.len()
            ));
        }
    }
    Ok(())
}

fn accept(out: &mut Translated, p: MetricPoint, window: &IngestWindow) {
    match check_point(&p, window) {
        Ok(()) => out.points.push(p),
        Err(e) => {
            out.rejected += 1;
            out.error.get_or_insert(e);
        }
    }
}

/// Translate an export; points that [`check_point`] refuses are rejected
/// (counted in `partial_success`, with the first reason).
pub fn translate(req: &ExportMetricsServiceRequest, window: &IngestWindow) -> Translated {
    let mut out = Translated::default();
    for rm in &req.resource_metrics {
        let (service, resource_attributes) = attrs::resource_context(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map_or(String::new(), |s| s.name.clone());
            for metric in &sm.metrics {
                if metric.name.is_empty() || metric.name.len() > 255 {
                    out.rejected += 1;
                    out.error
                        .get_or_insert("metric with an empty or over-long name".into());
                    continue;
                }
                let base = |metric_type: &str,
                            attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
                            start: u64,
                            time: u64| {
                    let attributes = attrs::flatten(attributes);
                    MetricPoint {
                        name: metric.name.clone(),
                        metric_type: metric_type.to_string(),
                        unit: metric.unit.clone(),
                        description: metric.description.clone(),
                        service_name: service.clone(),
                        series_id: series_id(
                            &metric.name,
                            &attributes,
                            &resource_attributes,
                            &scope,
                        ),
                        attributes,
                        resource_attributes: resource_attributes.clone(),
                        scope: scope.clone(),
                        start_time_ns: i64::try_from(start).unwrap_or(i64::MAX),
                        time_ns: i64::try_from(time).unwrap_or(i64::MAX),
                        value: None,
                        temporality: String::new(),
                        is_monotonic: false,
                        count: None,
                        sum: None,
                        min: None,
                        max: None,
                        bucket_counts: Vec::new(),
                        explicit_bounds: Vec::new(),
                        exp_scale: 0,
                        exp_zero_count: 0,
                        exp_positive_offset: 0,
                        exp_positive_counts: Vec::new(),
                        exp_negative_offset: 0,
                        exp_negative_counts: Vec::new(),
                        quantiles: Vec::new(),
                        quantile_values: Vec::new(),
                    }
                };
                let number = |v: &Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsDouble(d)) => Some(*d),
                    Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
                    None => None,
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => {
                        for dp in &g.data_points {
                            let mut p = base(
                                MetricType::Gauge.as_str(),
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.value = number(&dp.value);
                            accept(&mut out, p, window);
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for dp in &s.data_points {
                            let mut p = base(
                                MetricType::Sum.as_str(),
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.value = number(&dp.value);
                            p.temporality = temporality(s.aggregation_temporality).into();
                            p.is_monotonic = s.is_monotonic;
                            accept(&mut out, p, window);
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for dp in &h.data_points {
                            let mut p = base(
                                MetricType::Histogram.as_str(),
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.temporality = temporality(h.aggregation_temporality).into();
                            p.count = Some(dp.count);
                            p.sum = dp.sum;
                            p.min = dp.min;
                            p.max = dp.max;
                            p.bucket_counts = dp.bucket_counts.clone();
                            p.explicit_bounds = dp.explicit_bounds.clone();
                            accept(&mut out, p, window);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for dp in &h.data_points {
                            let mut p = base(
                                MetricType::ExponentialHistogram.as_str(),
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.temporality = temporality(h.aggregation_temporality).into();
                            p.count = Some(dp.count);
                            p.sum = dp.sum;
                            p.min = dp.min;
                            p.max = dp.max;
                            p.exp_scale = dp.scale;
                            p.exp_zero_count = dp.zero_count;
                            if let Some(b) = &dp.positive {
                                p.exp_positive_offset = b.offset;
                                p.exp_positive_counts = b.bucket_counts.clone();
                            }
                            if let Some(b) = &dp.negative {
                                p.exp_negative_offset = b.offset;
                                p.exp_negative_counts = b.bucket_counts.clone();
                            }
                            accept(&mut out, p, window);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for dp in &s.data_points {
                            let mut p = base(
                                MetricType::Summary.as_str(),
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.count = Some(dp.count);
                            p.sum = Some(dp.sum);
                            p.quantiles = dp.quantile_values.iter().map(|q| q.quantile).collect();
                            p.quantile_values =
                                dp.quantile_values.iter().map(|q| q.value).collect();
                            accept(&mut out, p, window);
                        }
                    }
                    None => {
                        out.rejected += 1;
                        out.error.get_or_insert("metric without data".into());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };

    fn req(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn sums_and_histograms() {
        let t = translate(
            &req(vec![
                Metric {
                    name: "requests".into(),
                    unit: "1".into(),
                    data: Some(Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 10,
                            value: Some(number_data_point::Value::AsInt(7)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "latency".into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            time_unix_nano: 20,
                            count: 3,
                            sum: Some(1.5),
                            bucket_counts: vec![1, 2, 0],
                            explicit_bounds: vec![0.5, 1.0],
                            ..Default::default()
                        }],
                        aggregation_temporality: 1,
                    })),
                    ..Default::default()
                },
                Metric {
                    name: "empty".into(),
                    ..Default::default()
                },
            ]),
            &IngestWindow::unbounded(),
        );
        assert_eq!(t.rejected, 1);
        assert_eq!(t.points.len(), 2);
        let s = &t.points[0];
        assert_eq!(
            (
                s.metric_type.as_str(),
                s.value,
                s.temporality.as_str(),
                s.is_monotonic
            ),
            ("sum", Some(7.0), "cumulative", true)
        );
        let h = &t.points[1];
        assert_eq!(h.metric_type, "histogram");
        assert_eq!(h.temporality, "delta");
        assert_eq!(h.bucket_counts, vec![1, 2, 0]);
        assert_eq!(h.explicit_bounds, vec![0.5, 1.0]);
        assert_ne!(s.series_id, h.series_id);
    }

    fn histogram(time: u64, counts: Vec<u64>, bounds: Vec<f64>) -> Metric {
        Metric {
            name: "h".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: time,
                    count: counts.iter().sum(),
                    bucket_counts: counts,
                    explicit_bounds: bounds,
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn malformed_histograms_and_times_outside_the_window_are_rejected() {
        let now_ns: u64 = 1_764_000_000_000_000_000;
        let window = IngestWindow::around((now_ns / 1_000) as i64);
        let cases: Vec<(Metric, Option<&str>)> = vec![
            (histogram(now_ns, vec![1, 2, 3], vec![1.0, 2.0]), None),
            (histogram(now_ns, vec![], vec![]), None),
            (
                histogram(now_ns, vec![1, 2], vec![1.0, 2.0]),
                Some("2 bucket counts for 2 explicit bounds"),
            ),
            (
                histogram(now_ns, vec![1, 2, 3], vec![2.0, 1.0]),
                Some("strictly increasing"),
            ),
            (
                histogram(now_ns, vec![1, 2], vec![f64::NAN]),
                Some("finite"),
            ),
            (histogram(1, vec![1], vec![]), Some("in the past")),
            (histogram(u64::MAX, vec![1], vec![]), Some("in the future")),
        ];
        for (metric, want) in cases {
            let t = translate(&req(vec![metric]), &window);
            match want {
                None => assert_eq!((t.points.len(), t.rejected), (1, 0)),
                Some(w) => {
                    assert_eq!((t.points.len(), t.rejected), (0, 1), "{w}");
                    assert!(t.error.as_deref().unwrap().contains(w), "{:?}", t.error);
                }
            }
        }
    }
}
