//! The Kafka message format between the gateway and the writer.
//!
//! One message carries the normalized records of one accepted request, for
//! one organization. `version` is the gateway's receive time in nanoseconds:
//! ClickHouse keeps the highest version of a row, so a re-sent batch replaces
//! the earlier copy instead of adding to it.

use crate::model::{LogRecord, MetricPoint, SpanRecord, TraceRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Bumped on an incompatible change; the writer refuses unknown versions.
pub const FORMAT_VERSION: u8 = 1;

/// Default topic names.
pub const TOPIC_SPANS: &str = "av.ingest.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestMessage {
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
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message format {0}")]
    UnsupportedFormat(u8),
}

impl IngestMessage {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ingest messages always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let msg: IngestMessage = serde_json::from_slice(bytes)?;
        if msg.format != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedFormat(msg.format));
        }
        Ok(msg)
    }

    /// Spans are the billable events.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }
}
