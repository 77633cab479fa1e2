//! OTLP log records to AgentVista log records (contract ruling 8).

use super::attrs;
use agentvista_shared::ids;
use agentvista_shared::model::{LogRecord, Severity};
use agentvista_shared::window::IngestWindow;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLog;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Severity number to its name: 1-4 trace, 5-8 debug, 9-12 info, 13-16
/// warn, 17-20 error, 21-24 fatal.
pub fn severity_name(n: i32) -> &'static str {
    match n {
        1..=4 => Severity::Trace,
        5..=8 => Severity::Debug,
        9..=12 => Severity::Info,
        13..=16 => Severity::Warn,
        17..=20 => Severity::Error,
        21..=24 => Severity::Fatal,
        _ => Severity::Unspecified,
    }
    .as_str()
}

/// Severity from the text when the number is absent (`WARNING`, `err`…).
fn severity_from_text(text: &str) -> Option<(u8, &'static str)> {
    let t = text.trim().to_ascii_lowercase();
    let n = match t.as_str() {
        "trace" | "finest" => 1,
        "debug" | "fine" => 5,
        "info" | "information" | "notice" => 9,
        "warn" | "warning" => 13,
        "error" | "err" | "severe" => 17,
        "fatal" | "critical" | "crit" | "alert" | "emergency" => 21,
        _ => return None,
    };
    Some((n, severity_name(i32::from(n))))
}

#[derive(Debug, Default)]
pub struct Translated {
    pub logs: Vec<LogRecord>,
    pub rejected: u64,
    pub error: Option<String>,
}

/// Translate an export received at `received_ns`; a record whose time lies
/// outside `window` is rejected (counted in `partial_success`).
pub fn translate(
    req: &ExportLogsServiceRequest,
    received_ns: i64,
    window: &IngestWindow,
) -> Translated {
    let mut out = Translated::default();
    for rl in &req.resource_logs {
        let (service, resource_attributes) = attrs::resource_context(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map_or(String::new(), |s| s.name.clone());
            for rec in &sl.log_records {
                match translate_record(rec, received_ns, window) {
                    Ok(mut log) => {
                        log.service_name = service.clone();
                        log.resource_attributes = resource_attributes.clone();
                        log.scope = scope.clone();
                        log.log_id = content_id(&log);
                        out.logs.push(log);
                    }
                    Err(e) => {
                        out.rejected += 1;
                        out.error.get_or_insert(e);
                    }
                }
            }
        }
    }
    out
}

fn translate_record(
    rec: &OtlpLog,
    received_ns: i64,
    window: &IngestWindow,
) -> Result<LogRecord, String> {
    let trace_id = match rec.trace_id.len() {
        0 => None,
        16 => ids::trace_id_from_otlp(&rec.trace_id),
        _ => return Err("log record with an invalid trace_id (need 16 bytes)".into()),
    };
    let span_id = match rec.span_id.len() {
        0 => None,
        8 => ids::span_id_from_otlp(&rec.span_id),
        _ => return Err("log record with an invalid span_id (need 8 bytes)".into()),
    };
    let observed = if rec.observed_time_unix_nano > 0 {
        i64::try_from(rec.observed_time_unix_nano).unwrap_or(i64::MAX)
    } else {
        received_ns
    };
    let time = if rec.time_unix_nano > 0 {
        i64::try_from(rec.time_unix_nano).unwrap_or(i64::MAX)
    } else {
        observed
    };
    window
        .check_ns(time)
        .map_err(|m| format!("log record time {m}"))?;
    let (number, severity) = match rec.severity_number {
        n @ 1..=24 => (n as u8, severity_name(n)),
        _ => severity_from_text(&rec.severity_text).unwrap_or((0, Severity::Unspecified.as_str())),
    };
    Ok(LogRecord {
        log_id: Uuid::nil(),
        time_ns: time,
        observed_time_ns: observed,
        severity_number: number,
        severity_text: rec.severity_text.chars().take(64).collect(),
        severity: severity.to_string(),
        body: rec.body.as_ref().map(attrs::text).unwrap_or_default(),
        service_name: String::new(),
        trace_id,
        span_id,
        attributes: attrs::flatten(&rec.attributes),
        resource_attributes: Vec::new(),
        scope: String::new(),
    })
}

/// A record's id from its content, so that a re-sent record replaces
/// itself (two records identical in every field are one record).
fn content_id(log: &LogRecord) -> Uuid {
    let mut h = Sha256::new();
    h.update(log.time_ns.to_le_bytes());
    h.update(log.observed_time_ns.to_le_bytes());
    h.update([log.severity_number]);
    for part in [&log.severity_text, &log.body, &log.service_name, &log.scope] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(log.trace_id.unwrap_or_default().as_bytes());
    h.update(log.span_id.unwrap_or_default().as_bytes());
    for list in [&log.attributes, &log.resource_attributes] {
        h.update((list.len() as u64).to_le_bytes());
        for (k, v) in list {
            h.update((k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_mapping() {
        for (n, want) in [
            (1, "trace"),
            (4, "trace"),
            (5, "debug"),
            (9, "info"),
            (13, "warn"),
            (16, "warn"),
            (17, "error"),
            (21, "fatal"),
            (24, "fatal"),
            (0, "unspecified"),
            (25, "unspecified"),
        ] {
            assert_eq!(severity_name(n), want, "{n}");
        }
        assert_eq!(severity_from_text("WARNING"), Some((13, "warn")));
        assert_eq!(severity_from_text("loud"), None);
    }

    #[test]
    fn records_translate_with_stable_ids() {
        let rec = OtlpLog {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "payment failed".into(),
                    ),
                ),
            }),
            trace_id: hex::decode("5b8efff798038103d269b633813fc60c").unwrap(),
            span_id: hex::decode("eee19b7ec3c1b174").unwrap(),
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
                scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                    log_records: vec![
                        rec.clone(),
                        rec,
                        OtlpLog {
                            trace_id: vec![1, 2],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let t = translate(&req, 5, &IngestWindow::unbounded());
        assert_eq!(t.rejected, 1);
        assert_eq!(t.logs.len(), 2);
        let l = &t.logs[0];
        assert_eq!(l.severity, "error");
        assert_eq!(l.body, "payment failed");
        assert_eq!(l.service_name, "unknown_service");
        assert_eq!(l.observed_time_ns, 5);
        assert_eq!(
            l.trace_id.unwrap().to_string(),
            "5b8efff7-9803-8103-d269-b633813fc60c"
        );
        assert_eq!(t.logs[0].log_id, t.logs[1].log_id);
    }
}
