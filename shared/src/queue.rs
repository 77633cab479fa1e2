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

    /// Whether it carries no record at all.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
            && self.spans.is_empty()
            && self.logs.is_empty()
            && self.metrics.is_empty()
    }

    /// Spans are the billable events.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// The message split by Kafka key: the organization followed by a
    /// bucket (of `buckets`) of each record's trace. A trace's run row,
    /// spans and logs share a bucket, so they stay on one partition, in
    /// order, while one organization's traffic spreads over up to
    /// `buckets` partitions and writers. A log without a trace goes by its
    /// id, a metric point by its series. One message per non-empty bucket;
    /// with `buckets` <= 1, the message as it is under one key.
    pub fn keyed(self, buckets: u8) -> Vec<(MessageKey, IngestMessage)> {
        let key = |bucket: u8| {
            let mut k = [0u8; 17];
            k[..16].copy_from_slice(self.org_id.as_bytes());
            k[16] = bucket;
            k
        };
        if buckets <= 1 {
            return vec![(key(0), self)];
        }
        let empty = IngestMessage {
            format: self.format,
            org_id: self.org_id,
            version: self.version,
            retention_days: self.retention_days,
            traces: Vec::new(),
            spans: Vec::new(),
            logs: Vec::new(),
            metrics: Vec::new(),
        };
        let keys: Vec<MessageKey> = (0..buckets).map(key).collect();
        let mut parts = vec![empty; usize::from(buckets)];
        let IngestMessage {
            traces,
            spans,
            logs,
            metrics,
            ..
        } = self;
        for t in traces {
            parts[key_bucket(t.trace_id.as_u128(), buckets)]
                .traces
                .push(t);
        }
        for s in spans {
            parts[key_bucket(s.trace_id.as_u128(), buckets)]
                .spans
                .push(s);
        }
        for l in logs {
            let id = l.trace_id.unwrap_or(l.log_id).as_u128();
            parts[key_bucket(id, buckets)].logs.push(l);
        }
        for m in metrics {
            parts[key_bucket(u128::from(m.series_id), buckets)]
                .metrics
                .push(m);
        }
        keys.into_iter()
            .zip(parts)
            .filter(|(_, m)| !m.is_empty())
            .collect()
    }
}

/// A message's Kafka key: the organization's 16 bytes and a key bucket.
pub type MessageKey = [u8; 17];

/// The key bucket (below `buckets`) of an id: a fixed mix of its bits, the
/// same on every gateway and version.
pub fn key_bucket(id: u128, buckets: u8) -> usize {
    let folded = (id as u64) ^ ((id >> 64) as u64);
    let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) % u64::from(buckets.max(1))) as usize
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

    /// Many traces, each with a run row and two spans, and metric points
    /// of several series.
    fn many_traces(n: usize) -> IngestMessage {
        let mut m = message();
        let (trace, span) = (m.traces[0].clone(), m.spans[0].clone());
        m.traces.clear();
        m.spans.clear();
        for _ in 0..n {
            let id = Uuid::new_v4();
            m.traces.push(TraceRecord {
                trace_id: id,
                ..trace.clone()
            });
            for _ in 0..2 {
                m.spans.push(SpanRecord {
                    trace_id: id,
                    span_id: Uuid::new_v4(),
                    ..span.clone()
                });
            }
        }
        m
    }

    #[test]
    fn keyed_keeps_every_record_once_and_each_trace_under_one_key() {
        let m = many_traces(200);
        let org = m.org_id;
        let parts = m.clone().keyed(16);
        assert!(parts.len() > 8, "200 traces fill most of 16 buckets");
        let mut traces = 0;
        let mut spans = 0;
        let mut key_of = std::collections::HashMap::new();
        for (key, part) in &parts {
            assert_eq!(&key[..16], org.as_bytes());
            assert!(key[16] < 16);
            assert_eq!((part.org_id, part.version), (org, m.version));
            for t in &part.traces {
                assert!(key_of.insert(t.trace_id, *key).is_none());
            }
            traces += part.traces.len();
            spans += part.spans.len();
        }
        for (key, part) in &parts {
            for s in &part.spans {
                assert_eq!(key_of[&s.trace_id], *key, "a span under its trace's key");
            }
        }
        assert_eq!((traces, spans), (200, 400));
        // Stable: the same split again.
        let again: Vec<MessageKey> = m.clone().keyed(16).into_iter().map(|(k, _)| k).collect();
        assert_eq!(again, parts.iter().map(|(k, _)| *k).collect::<Vec<_>>());
        // One bucket: the message as it is, under the organization's key.
        let one = m.clone().keyed(1);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].1, m);
        assert_eq!(one[0].0[16], 0);
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
