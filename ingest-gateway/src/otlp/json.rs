//! OTLP/JSON quirks, smoothed before the JSON reaches `opentelemetry-proto`'s
//! serde types.
//!
//! The OTLP JSON mapping allows 64-bit integers as numbers or strings and
//! enums as numbers (names are tolerated by protobuf's JSON mapping). The
//! crate's serde support is stricter and not uniform: some timestamps must
//! be strings, others numbers. This pass walks the known OTLP structure and
//! rewrites each such field into the form the crate accepts.

use serde_json::{Map, Value};

/// How the crate wants a 64-bit field.
#[derive(Clone, Copy)]
enum Want {
    String,
    Number,
}

fn coerce(obj: &mut Map<String, Value>, key: &str, want: Want) {
    let Some(v) = obj.get_mut(key) else { return };
    match (want, &*v) {
        (Want::String, Value::Number(n)) => *v = Value::String(n.to_string()),
        (Want::Number, Value::String(s)) => {
            if let Ok(n) = s.parse::<u64>() {
                *v = Value::from(n);
            } else if let Ok(n) = s.parse::<i64>() {
                *v = Value::from(n);
            }
        }
        _ => {}
    }
}

fn coerce_array(obj: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Array(items)) = obj.get_mut(key) {
        for item in items {
            if let Value::String(s) = item {
                if let Ok(n) = s.parse::<u64>() {
                    *item = Value::from(n);
                }
            }
        }
    }
}

/// The number of an enum value given by name (`CLIENT`, or with its
/// type's prefix, `SPAN_KIND_CLIENT`, in any case) or as a number in a
/// string.
pub(crate) fn enum_number(s: &str, names: &[(&str, i64)]) -> Option<i64> {
    let upper = s.to_ascii_uppercase();
    names
        .iter()
        .find(|(name, _)| {
            upper == *name
                || upper
                    .strip_suffix(name)
                    .is_some_and(|prefix| prefix.ends_with('_'))
        })
        .map(|(_, n)| *n)
        .or_else(|| s.parse().ok())
}

/// Replace an enum given by name with its number.
fn enum_by_name(obj: &mut Map<String, Value>, key: &str, names: &[(&str, i64)]) {
    if let Some(Value::String(s)) = obj.get(key) {
        if let Some(n) = enum_number(s, names) {
            obj.insert(key.to_string(), Value::from(n));
        }
    }
}

fn objects(v: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    v.and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn nested<'a>(
    root: &'a mut Value,
    outer: &'static str,
    inner: &'static str,
    leaf: &'static str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    objects(root.get_mut(outer))
        .flat_map(move |r| objects(r.get_mut(inner)))
        .flat_map(move |s| objects(s.get_mut(leaf)))
}

pub(crate) const SPAN_KINDS: &[(&str, i64)] = &[
    ("UNSPECIFIED", 0),
    ("INTERNAL", 1),
    ("SERVER", 2),
    ("CLIENT", 3),
    ("PRODUCER", 4),
    ("CONSUMER", 5),
];
pub(crate) const STATUS_CODES: &[(&str, i64)] = &[("UNSET", 0), ("OK", 1), ("ERROR", 2)];
pub(crate) const TEMPORALITIES: &[(&str, i64)] =
    &[("UNSPECIFIED", 0), ("DELTA", 1), ("CUMULATIVE", 2)];

pub fn normalize_traces(root: &mut Value) {
    for span in nested(root, "resourceSpans", "scopeSpans", "spans") {
        coerce(span, "startTimeUnixNano", Want::String);
        coerce(span, "endTimeUnixNano", Want::String);
        enum_by_name(span, "kind", SPAN_KINDS);
        if let Some(Value::Object(status)) = span.get_mut("status") {
            enum_by_name(status, "code", STATUS_CODES);
        }
        for event in objects(span.get_mut("events")) {
            coerce(event, "timeUnixNano", Want::String);
        }
    }
}

pub fn normalize_logs(root: &mut Value) {
    for rec in nested(root, "resourceLogs", "scopeLogs", "logRecords") {
        coerce(rec, "timeUnixNano", Want::String);
        coerce(rec, "observedTimeUnixNano", Want::String);
        if let Some(Value::String(s)) = rec.get("severityNumber") {
            let n = severity_number_by_name(s);
            rec.insert("severityNumber".into(), Value::from(n));
        }
    }
}

pub(crate) fn severity_number_by_name(s: &str) -> i64 {
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SEVERITY_NUMBER_").unwrap_or(&upper);
    let base = [
        ("TRACE", 1),
        ("DEBUG", 5),
        ("INFO", 9),
        ("WARN", 13),
        ("ERROR", 17),
        ("FATAL", 21),
    ];
    for (prefix, n) in base {
        if let Some(rest) = name.strip_prefix(prefix) {
            let offset = rest.parse::<i64>().map_or(0, |d| (d - 1).clamp(0, 3));
            return n + offset;
        }
    }
    s.parse().unwrap_or(0)
}

pub fn normalize_metrics(root: &mut Value) {
    for metric in nested(root, "resourceMetrics", "scopeMetrics", "metrics") {
        for (kind, times) in [
            ("gauge", Want::String),
            ("sum", Want::String),
            ("histogram", Want::String),
            ("exponentialHistogram", Want::Number),
            ("summary", Want::Number),
        ] {
            let Some(Value::Object(data)) = metric.get_mut(kind) else {
                continue;
            };
            enum_by_name(data, "aggregationTemporality", TEMPORALITIES);
            for dp in objects(data.get_mut("dataPoints")) {
                coerce(dp, "startTimeUnixNano", times);
                coerce(dp, "timeUnixNano", times);
                coerce(dp, "asInt", Want::Number);
                coerce(dp, "count", Want::Number);
                coerce(dp, "zeroCount", Want::Number);
                coerce_array(dp, "bucketCounts");
                for side in ["positive", "negative"] {
                    if let Some(Value::Object(b)) = dp.get_mut(side) {
                        coerce_array(b, "bucketCounts");
                    }
                }
                for ex in objects(dp.get_mut("exemplars")) {
                    coerce(ex, "timeUnixNano", Want::Number);
                    coerce(ex, "asInt", Want::Number);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn span_times_and_enums() {
        let mut v = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "startTimeUnixNano": 1700000000000000000u64, "endTimeUnixNano": "1700000000500000000",
            "kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR"},
            "events": [{"timeUnixNano": 1700000000100000000u64}]
        }]}]}]});
        normalize_traces(&mut v);
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["endTimeUnixNano"], "1700000000500000000");
        assert_eq!(span["kind"], 3);
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["events"][0]["timeUnixNano"], "1700000000100000000");
    }

    #[test]
    fn metric_fields_take_the_crates_shapes() {
        let mut v = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                     "dataPoints": [{"timeUnixNano": 5, "asInt": "42"}]}},
            {"exponentialHistogram": {"dataPoints": [{"timeUnixNano": "7", "count": "3",
                     "positive": {"bucketCounts": ["1", "2"]}}]}}
        ]}]}]});
        normalize_metrics(&mut v);
        let m = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        assert_eq!(m[0]["sum"]["aggregationTemporality"], 2);
        assert_eq!(m[0]["sum"]["dataPoints"][0]["timeUnixNano"], "5");
        assert_eq!(m[0]["sum"]["dataPoints"][0]["asInt"], 42);
        let dp = &m[1]["exponentialHistogram"]["dataPoints"][0];
        assert_eq!(dp["timeUnixNano"], 7);
        assert_eq!(dp["count"], 3);
        assert_eq!(dp["positive"]["bucketCounts"], json!([1, 2]));
    }

    #[test]
    fn severity_names() {
        assert_eq!(severity_number_by_name("SEVERITY_NUMBER_ERROR"), 17);
        assert_eq!(severity_number_by_name("WARN2"), 14);
        assert_eq!(severity_number_by_name("9"), 9);
    }
}
