//! Bounded fuzzing of everything that parses untrusted bytes: the SDK batch
//! parser, the OTLP JSON and protobuf decoders and the translators. Any
//! input must give a value or a 4xx, never a panic. The case count is kept
//! small for CI; raise it for a longer run:
//!
//!     PROPTEST_CASES=200000 cargo test --release -p ingest-gateway --test fuzz

use agentvista_shared::error::ErrorKind;
use agentvista_shared::queue::{IngestMessage, FORMAT_VERSION};
use agentvista_shared::window::IngestWindow;
use agentvista_shared::{promoted, prompts};
use ingest_gateway::otlp::{self, Encoding, Signal};
use ingest_gateway::{body, sdk};
use proptest::prelude::*;
use std::collections::HashMap;
use uuid::Uuid;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn is_client_error(k: ErrorKind) -> bool {
    matches!(
        k,
        ErrorKind::BadRequest | ErrorKind::PayloadTooLarge | ErrorKind::UnsupportedMediaType
    )
}

/// JSON-ish text built from the batch's own vocabulary, so that the fuzzer
/// reaches past the first syntax error.
fn jsonish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"traces\"",
        "\"trace\"",
        "\"spans\"",
        "\"trace_id\"",
        "\"span_id\"",
        "\"agent\"",
        "\"status\"",
        "\"started_at\"",
        "\"ended_at\"",
        "\"cost_usd\"",
        "\"total_cost_usd\"",
        "\"duration_ms\"",
        "\"input_tokens\"",
        "\"type\"",
        "\"prompt_name\"",
        "\"prompt_version\"",
        "\"agentvista.prompt.name\"",
        "\"agentvista.prompt.version\"",
        "\"langfuse.prompt.version\"",
        "3.0",
        "\"completed\"",
        "\"llm\"",
        "null",
        "true",
        "-1",
        "1e309",
        "18446744073709551616",
        "\"2024-01-15T10:00:00Z\"",
        "\"550e8400-e29b-41d4-a716-446655440000\"",
        "\"0.004500\"",
        "\"resourceSpans\"",
        "\"scopeSpans\"",
        "\"traceId\"",
        "\"spanId\"",
        "\"5b8efff798038103d269b633813fc60c\"",
        "\"startTimeUnixNano\"",
        "\"attributes\"",
        "\"key\"",
        "\"value\"",
        "\"intValue\"",
        "\"stringValue\"",
        "\"resourceLogs\"",
        "\"resourceMetrics\"",
        "\"metrics\"",
        "\"gauge\"",
        "\"dataPoints\"",
        "\"asInt\"",
        "0",
    ]);
    prop::collection::vec(atoms, 0..200).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn sdk_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(e) = sdk::parse(&bytes, &HashMap::new(), &IngestWindow::unbounded()) {
            prop_assert!(is_client_error(e.kind), "{e:?}");
        }
    }

    #[test]
    fn sdk_parser_survives_structured_garbage(text in jsonish()) {
        if let Err(e) = sdk::parse(text.as_bytes(), &HashMap::new(), &IngestWindow::unbounded()) {
            prop_assert!(is_client_error(e.kind), "{e:?}");
        }
    }

    #[test]
    fn otlp_decoders_and_translators_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        text in jsonish(),
    ) {
        let org = Uuid::nil();
        for enc in [Encoding::Protobuf, Encoding::Json] {
            for input in [&bytes[..], text.as_bytes()] {
                // The base URL's signal guess takes any body.
                let _ = otlp::sniff(enc, input);
                match otlp::decode::<otlp::TracesRequest>(Signal::Traces, enc, input) {
                    Ok(r) => { otlp::traces::translate(&r, org, &HashMap::new(), &IngestWindow::unbounded()); }
                    Err(e) => prop_assert!(is_client_error(e.kind)),
                }
                match otlp::decode::<otlp::MetricsRequest>(Signal::Metrics, enc, input) {
                    Ok(r) => { otlp::metrics::translate(&r, &IngestWindow::unbounded()); }
                    Err(e) => prop_assert!(is_client_error(e.kind)),
                }
                match otlp::decode::<otlp::LogsRequest>(Signal::Logs, enc, input) {
                    Ok(r) => { otlp::logs::translate(&r, 0, &IngestWindow::unbounded()); }
                    Err(e) => prop_assert!(is_client_error(e.kind)),
                }
            }
        }
    }

    /// Prompt references come from any span's attributes: whatever they
    /// hold, a reference is valid or absent, never a panic.
    #[test]
    fn prompt_references_are_valid_or_absent(
        name in any::<String>(),
        version in prop::sample::select(vec!["1", "2147483647", "2147483648", "0", "-1", "3.0", "3.5", "1e9", "NaN", "", " 7 "]),
        free in any::<String>(),
        langfuse in any::<bool>(),
    ) {
        let (n, v) = if langfuse {
            (prompts::LANGFUSE_NAME_ATTR, prompts::LANGFUSE_VERSION_ATTR)
        } else {
            (prompts::NAME_ATTR, prompts::VERSION_ATTR)
        };
        for value in [version.to_string(), free] {
            let attrs = vec![(n.to_string(), name.clone()), (v.to_string(), value)];
            if let Some((name, version)) = prompts::reference(&attrs) {
                prop_assert!(prompts::check_name(&name).is_ok());
                prop_assert!((1..=prompts::MAX_VERSION).contains(&version));
            }
        }
    }

    /// Message text is stored once: whatever attributes a span carries,
    /// promoting the text to its columns and restoring it on read gives
    /// back the attributes as sent (the same pairs; order is not kept).
    #[test]
    fn promoted_attributes_read_back_as_sent(
        attrs in prop::collection::vec(
            (prop_oneof![
                Just("input.value".to_string()), Just("gen_ai.input.messages".to_string()),
                Just("gen_ai.output.messages".to_string()), Just(promoted::INPUT_MARKER.to_string()),
                "[a-z.]{1,12}",
            ], "[a-z ]{0,8}"),
            0..6),
        pick_in in 0usize..4,
        pick_out in 0usize..4,
    ) {
        let taken = |keys: &[&'static str; 3], i: usize| -> Option<(&'static str, String)> {
            let key = *keys.get(i)?;
            attrs.iter().find(|(k, _)| k == key).map(|(_, v)| (key, v.clone()))
        };
        let input = taken(&promoted::INPUT_KEYS, pick_in);
        let output = taken(&promoted::OUTPUT_KEYS, pick_out);
        let mut stored = attrs.clone();
        promoted::promote(
            &mut stored,
            input.as_ref().map(|(k, v)| (*k, v.as_str())),
            output.as_ref().map(|(k, v)| (*k, v.as_str())),
        );
        promoted::restore(
            &mut stored,
            input.as_ref().map(|(_, v)| v.as_str()),
            output.as_ref().map(|(_, v)| v.as_str()),
        );
        let (mut sent, mut read) = (attrs.clone(), stored);
        sent.sort();
        read.sort();
        prop_assert_eq!(sent, read);
    }

    #[test]
    fn gunzip_never_panics_and_respects_the_cap(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        match body::gunzip(&bytes, 4096) {
            Ok(out) => prop_assert!(out.len() <= 4096),
            Err(e) => prop_assert!(is_client_error(e.kind)),
        }
    }

    /// The writer decodes whatever is on the topic: garbage and corrupted
    /// messages are errors, never a panic or a huge allocation.
    #[test]
    fn queue_decoder_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let _ = IngestMessage::decode(&bytes);
        let mut real = valid_message().encode();
        for (at, byte) in flips {
            let i = at.index(real.len());
            real[i] = byte;
        }
        let _ = IngestMessage::decode(&real);
    }
}

fn valid_message() -> IngestMessage {
    let body = br#"{"traces":[{"trace":{"trace_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","agent":"a","status":"completed","started_at":"2024-01-15T10:00:00Z"},"spans":[{"span_id":"8d444840-9dc0-11d1-b245-5ffdce74fad2","trace_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","type":"llm","name":"n","status":"completed","started_at":"2024-01-15T10:00:00Z","model":"gpt-4o","input_tokens":5}]}]}"#;
    let batch = sdk::parse(body, &HashMap::new(), &IngestWindow::unbounded()).expect("valid");
    IngestMessage {
        format: FORMAT_VERSION,
        org_id: Uuid::nil(),
        version: 1,
        retention_days: 30,
        traces: batch.traces,
        spans: batch.spans,
        logs: Vec::new(),
        metrics: Vec::new(),
    }
}
