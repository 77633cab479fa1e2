//! OTLP/JSON attributes (`KeyValue`) and values (`AnyValue`) read straight
//! into `opentelemetry-proto`'s types. The crate's own serde reads an
//! `AnyValue` through `#[serde(flatten)]`, which buffers every value into
//! serde's intermediate `Content` tree and reads it again; attributes are
//! most of a GenAI span's JSON, so that was most of the decoding.
//!
//! It accepts exactly what the crate's serde accepts (the differential
//! property tests of [`super::json_stream`] cover attributes): a `KeyValue`
//! needs its `key`, its `value` may be missing or null; an `AnyValue` is an
//! object whose last known key (`stringValue`, `boolValue`, `intValue` as a
//! number or a string, `doubleValue`, `arrayValue`, `kvlistValue`,
//! `bytesValue` in base64) gives the value, unknown keys are skipped, and
//! one without a known key is refused.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// A `KeyValue` of the crate, read without the flatten buffer.
struct JKeyValue(KeyValue);

impl From<JKeyValue> for KeyValue {
    fn from(kv: JKeyValue) -> Self {
        kv.0
    }
}

impl<'de> Deserialize<'de> for JKeyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JKeyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct KeyValue")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JKeyValue, A::Error> {
                let (mut key, mut value) = (None, None);
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*k {
                        "key" => {
                            if key.is_some() {
                                return Err(de::Error::duplicate_field("key"));
                            }
                            key = Some(map.next_value::<String>()?);
                        }
                        "value" => {
                            if value.is_some() {
                                return Err(de::Error::duplicate_field("value"));
                            }
                            value = Some(map.next_value::<Option<JAnyValue>>()?.map(|v| v.0));
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(JKeyValue(KeyValue {
                    key: key.ok_or_else(|| de::Error::missing_field("key"))?,
                    value: value.flatten(),
                }))
            }
        }
        d.deserialize_struct("KeyValue", &["key", "value"], V)
    }
}

/// An `AnyValue` of the crate.
struct JAnyValue(AnyValue);

impl From<JAnyValue> for AnyValue {
    fn from(v: JAnyValue) -> Self {
        v.0
    }
}

impl<'de> Deserialize<'de> for JAnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JAnyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object for AnyValue")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JAnyValue, A::Error> {
                use any_value::Value;
                let mut value = None;
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    value = Some(match &*k {
                        "stringValue" => Value::StringValue(map.next_value()?),
                        "boolValue" => Value::BoolValue(map.next_value()?),
                        "intValue" => Value::IntValue(map.next_value::<Int>()?.0),
                        "doubleValue" => Value::DoubleValue(map.next_value()?),
                        "arrayValue" => {
                            let a: JArray = map.next_value()?;
                            Value::ArrayValue(ArrayValue { values: a.values })
                        }
                        "kvlistValue" => {
                            let l: JKvList = map.next_value()?;
                            Value::KvlistValue(KeyValueList { values: l.values })
                        }
                        "bytesValue" => {
                            // Rare: decoded by the crate itself (its base64).
                            let b: String = map.next_value()?;
                            let v: AnyValue =
                                serde_json::from_value(serde_json::json!({ "bytesValue": b }))
                                    .map_err(de::Error::custom)?;
                            v.value.ok_or_else(|| de::Error::custom("bytesValue"))?
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    });
                }
                value
                    .map(|v| JAnyValue(AnyValue { value: Some(v) }))
                    .ok_or_else(|| de::Error::custom("Invalid data for Value, no known keys found"))
            }
        }
        d.deserialize_map(V)
    }
}

/// `intValue` (and metrics' `asInt`): a 64-bit signed integer as a
/// number or a string.
pub(crate) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 64-bit integer as a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                v.parse().map(Int).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct JArray {
    #[serde(deserialize_with = "any_values")]
    values: Vec<AnyValue>,
}

#[derive(Deserialize)]
struct JKvList {
    #[serde(deserialize_with = "key_values")]
    values: Vec<KeyValue>,
}

/// An array whose elements are read as `W` and kept as `T`; `what` names
/// it in errors.
pub(crate) fn array_of<'de, D, W, T>(d: D, what: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    W: Deserialize<'de> + Into<T>,
{
    struct Seq<W, T>(&'static str, PhantomData<(W, T)>);
    impl<'de, W: Deserialize<'de> + Into<T>, T> Visitor<'de> for Seq<W, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(w) = seq.next_element::<W>()? {
                out.push(w.into());
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Seq::<W, T>(what, PhantomData))
}

fn any_values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AnyValue>, D::Error> {
    array_of::<D, JAnyValue, AnyValue>(d, "a sequence")
}

/// Attributes (`attributes`, `values` of a key-value list): an array of
/// `KeyValue`.
pub(crate) fn key_values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
    array_of::<D, JKeyValue, KeyValue>(d, "a sequence")
}

/// A log record's `body`: an `AnyValue`, or null for none.
pub(crate) fn some_any_value<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<AnyValue>, D::Error> {
    Ok(Option::<JAnyValue>::deserialize(d)?.map(|v| v.0))
}
