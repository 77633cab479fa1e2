//! OTLP metrics to AgentVista metric points (contract ruling 8: the OTLP
//! type names are kept).

use super::attrs;
use agentvista_shared::model::MetricPoint;
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
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
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

pub fn translate(req: &ExportMetricsServiceRequest) -> Translated {
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
                        start_time_ns: start as i64,
                        time_ns: time as i64,
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
                                "gauge",
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.value = number(&dp.value);
                            out.points.push(p);
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for dp in &s.data_points {
                            let mut p = base(
                                "sum",
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.value = number(&dp.value);
                            p.temporality = temporality(s.aggregation_temporality).into();
                            p.is_monotonic = s.is_monotonic;
                            out.points.push(p);
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for dp in &h.data_points {
                            let mut p = base(
                                "histogram",
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
                            out.points.push(p);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        for dp in &h.data_points {
                            let mut p = base(
                                "exponential_histogram",
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
                            out.points.push(p);
                        }
                    }
                    Some(Data::Summary(s)) => {
                        for dp in &s.data_points {
                            let mut p = base(
                                "summary",
                                &dp.attributes,
                                dp.start_time_unix_nano,
                                dp.time_unix_nano,
                            );
                            p.count = Some(dp.count);
                            p.sum = Some(dp.sum);
                            p.quantiles = dp.quantile_values.iter().map(|q| q.quantile).collect();
                            p.quantile_values =
                                dp.quantile_values.iter().map(|q| q.value).collect();
                            out.points.push(p);
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
        let t = translate(&req(vec![
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
        ]));
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
}
