//! The Kafka message format between the gateway and the writer.
//!
//! One message carries the normalized records of one accepted request (or a
//! chunk of one), for one organization. `version` is the gateway's receive
//! time in nanoseconds: ClickHouse keeps the highest version of a row, so a
//! re-sent batch replaces the earlier copy instead of adding to it.
//!
//! # Encoding
//!
//! Format 2 (current) is [postcard](https://docs.rs/postcard): compact,
//! varint-encoded, no escaping, about a third of the gateway's CPU per span
//! cheaper than JSON (see BENCHMARKS.md). `format` is the struct's first
//! field and a `u8`, which postcard writes as one plain byte, so the first
//! byte of every message names its format. Format 1 was JSON (its first byte
//! is `{`); the writer still decodes it, so a rolling upgrade that replaces
//! gateways while older messages sit in the topic loses nothing.
//!
//! postcard is not self-describing: any change to these structs is a new
//! format number, and writers are upgraded before gateways.

use crate::model::{LogRecord, MetricPoint, SpanRecord, TraceRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The format gateways write; bumped on any change to the message structs.
pub const FORMAT_VERSION: u8 = 2;
/// The JSON format of the first releases, still decoded.
pub const FORMAT_JSON_V1: u8 = 1;

/// Default topic names.
pub const TOPIC_SPANS: &str = "av.ingest.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestMessage {
    /// Must stay the first field (see the module docs).
    pub format: u8,
    pub org_id: Uuid,
    /// Receive time at the gateway (ns since epoch); the row version.
    pub version: u64,
    pub retention_days: u16,
    #[serde(default)]
    pub traces: Vec<TraceRecord>,
    #[serde(default)]
    pub spans: Vec<SpanRecord>,
    #[serde(default)]
    pub logs: Vec<LogRecord>,
    #[serde(default)]
    pub metrics: Vec<MetricPoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unsupported message format {0}")]
    UnsupportedFormat(u8),
    #[error("empty message")]
    Empty,
}

impl IngestMessage {
    /// Encode in the current format ([`FORMAT_VERSION`], whatever `format`
    /// says).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = postcard::to_allocvec(self).expect("ingest messages always serialize");
        bytes[0] = FORMAT_VERSION;
        bytes
    }

    /// Decode a message of the current format or of format 1 (JSON).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let msg: IngestMessage =
            match bytes.first() {
                None => return Err(DecodeError::Empty),
                Some(&FORMAT_VERSION) => postcard::from_bytes(bytes)
                    .map_err(|e| DecodeError::Malformed(e.to_string()))?,
                Some(b'{') => serde_json::from_slice(bytes)
                    .map_err(|e| DecodeError::Malformed(e.to_string()))?,
                Some(&other) => return Err(DecodeError::UnsupportedFormat(other)),
            };
        match msg.format {
            FORMAT_VERSION | FORMAT_JSON_V1 => Ok(msg),
            other => Err(DecodeError::UnsupportedFormat(other)),
        }
    }

    /// Spans are the billable events.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunStatus, Source, SpanType};

    fn message() -> IngestMessage {
        let trace_id = Uuid::new_v4();
        IngestMessage {
            format: FORMAT_VERSION,
            org_id: Uuid::new_v4(),
            version: 1_700_000_000_123_456_789,
            retention_days: 30,
            traces: vec![TraceRecord {
                trace_id,
                agent_id: Uuid::new_v4(),
                agent_name: "support \"bot\" ✓".into(),
                status: RunStatus::Completed,
                started_at_us: 1,
                ended_at_us: Some(2),
                duration_ms: None,
                success: Some(true),
                outcome: Some("resolved".into()),
                total_tokens: Some(10),
                total_cost_nanos: Some(-5),
                metadata: vec![("k".into(), "\"v\"".into())],
                derived: true,
            }],
            spans: vec![SpanRecord {
                trace_id,
                span_id: Uuid::new_v4(),
                parent_span_id: None,
                agent_id: Uuid::nil(),
                agent_name: "a".into(),
                span_type: SpanType::Llm,
                name: "chat".into(),
                status: RunStatus::Failed,
                started_at_us: i64::MIN,
                ended_at_us: Some(i64::MAX),
                duration_ms: Some(0),
                model: Some("gpt-4o".into()),
                input_tokens: Some(800),
                output_tokens: Some(120),
                total_tokens: Some(920),
                cost_nanos: Some(3_200_000),
                input: Some("line\nbreak".into()),
                output: None,
                error: Some("boom".into()),
                attributes: vec![("gen_ai.system".into(), "openai".into())],
                source: Source::Otlp,
                kind: "client".into(),
                provider: Some("openai".into()),
                cached_tokens: None,
                cost_computed: true,
                status_message: None,
                resource_attributes: vec![],
                scope: "s@1".into(),
                events: vec![],
                links: vec![],
            }],
            logs: vec![],
            metrics: vec![],
        }
    }

    #[test]
    fn round_trips_in_the_current_format() {
        let m = message();
        let bytes = m.encode();
        assert_eq!(bytes[0], FORMAT_VERSION, "the first byte names the format");
        assert_eq!(IngestMessage::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn format_1_json_still_decodes() {
        let mut m = message();
        m.format = FORMAT_JSON_V1;
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(IngestMessage::decode(&json).unwrap(), m);
    }

    #[test]
    fn refuses_unknown_formats_and_garbage_without_panicking() {
        let mut bytes = message().encode();
        bytes[0] = 9;
        assert!(matches!(
            IngestMessage::decode(&bytes),
            Err(DecodeError::UnsupportedFormat(9))
        ));
        assert!(matches!(
            IngestMessage::decode(&[]),
            Err(DecodeError::Empty)
        ));
        let good = message().encode();
        for cut in 1..good.len() {
            assert!(IngestMessage::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A huge claimed length must not allocate it.
        let mut huge = vec![FORMAT_VERSION, 0];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(IngestMessage::decode(&huge).is_err());
    }
}
