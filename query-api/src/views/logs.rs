//! Log records and the log search answer.

use super::{attributes, rfc3339};
use crate::store::logs::StoredLog;
use agentvista_shared::model::Severity;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// One OTLP log record.
#[derive(Debug, Serialize, ToSchema)]
pub struct Log {
    pub id: Uuid,
    /// RFC 3339 with nanoseconds.
    pub timestamp: String,
    pub observed_timestamp: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    pub severity_number: u8,
    pub severity_text: String,
    pub service_name: String,
    /// String bodies as they are; structured bodies as JSON text.
    pub body: String,
    pub trace_id: Option<Uuid>,
    pub span_id: Option<Uuid>,
    pub attributes: BTreeMap<String, String>,
    pub resource_attributes: BTreeMap<String, String>,
    pub scope: String,
}

impl From<&StoredLog> for Log {
    fn from(r: &StoredLog) -> Self {
        Log {
            id: r.log_id,
            timestamp: rfc3339(r.timestamp),
            observed_timestamp: rfc3339(r.observed_timestamp),
            severity: r.severity.clone(),
            severity_number: r.severity_number,
            severity_text: r.severity_text.clone(),
            service_name: r.service_name.clone(),
            body: r.body.clone(),
            trace_id: r.trace_id,
            span_id: r.span_id,
            attributes: attributes(&r.attributes),
            resource_attributes: attributes(&r.resource_attributes),
            scope: r.scope.clone(),
        }
    }
}

/// `GET /dashboard/logs/search`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogSearch {
    /// Records matching the query (all pages).
    pub total: u64,
    pub limit: i64,
    pub offset: i64,
    pub logs: Vec<Log>,
}
