//! OTLP attribute values as text, and lookups over them.

use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{json, Value};

/// Longest attribute value kept, in bytes; longer ones are cut on a char
/// boundary and marked.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Attributes kept per record.
pub const MAX_ATTRIBUTES: usize = 256;

fn to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Av::StringValue(s)) => json!(s),
        Some(Av::BoolValue(b)) => json!(b),
        Some(Av::IntValue(i)) => json!(i),
        Some(Av::DoubleValue(d)) => json!(d),
        Some(Av::BytesValue(b)) => json!(hex::encode(b)),
        Some(Av::ArrayValue(a)) => Value::Array(a.values.iter().map(to_json).collect()),
        Some(Av::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|k| (k.key.clone(), k.value.as_ref().map_or(Value::Null, to_json)))
                .collect(),
        ),
    }
}

/// A value as text: strings as they are, scalars printed, the rest JSON.
pub fn text(v: &AnyValue) -> String {
    let s = match &v.value {
        None => String::new(),
        Some(Av::StringValue(s)) => s.clone(),
        Some(Av::BoolValue(b)) => b.to_string(),
        Some(Av::IntValue(i)) => i.to_string(),
        Some(Av::DoubleValue(d)) => d.to_string(),
        _ => to_json(v).to_string(),
    };
    truncate(s)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_VALUE_BYTES {
        let mut cut = MAX_VALUE_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…[truncated]");
    }
    s
}

/// Key-value pairs as text, at most [`MAX_ATTRIBUTES`].
pub fn flatten(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .take(MAX_ATTRIBUTES)
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

/// Lookups by key over one or more attribute lists.
pub struct Attrs<'a>(pub &'a [KeyValue]);

impl Attrs<'_> {
    pub fn get(&self, key: &str) -> Option<&AnyValue> {
        self.0
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(text).filter(|s| !s.is_empty())
    }

    /// The first of `keys` that is present, as text.
    pub fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k))
    }

    /// An integer attribute (ints, integral doubles and numeric strings).
    pub fn int(&self, key: &str) -> Option<i64> {
        match &self.get(key)?.value {
            Some(Av::IntValue(i)) => Some(*i),
            Some(Av::DoubleValue(d)) if d.fract() == 0.0 && d.is_finite() => Some(*d as i64),
            Some(Av::StringValue(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match &self.get(key)?.value {
            Some(Av::BoolValue(b)) => Some(*b),
            Some(Av::StringValue(s)) => s.parse().ok(),
            _ => None,
        }
    }
}

/// The service name (`unknown_service` when absent, at most 256 chars) and
/// the flattened attributes of an OTLP resource.
pub fn resource_context(
    resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>,
) -> (String, Vec<(String, String)>) {
    let attrs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
    let service = Attrs(attrs)
        .str("service.name")
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_string())
        .chars()
        .take(crate::sdk::MAX_NAME_LEN)
        .collect();
    (service, flatten(attrs))
}

/// The agent / service of telemetry without `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
