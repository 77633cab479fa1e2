//! Integration tests of the whole ingest -> Kafka -> ClickHouse -> query
//! path against the real local stack (`scripts/infra`). Each test signs up
//! its own user and organization, so tests never share state.

mod agents;
mod alerts;
mod api_keys;
mod auth;
mod cli;
mod dashboard;
mod faults;
mod hardening;
mod helpers;
mod ingest;
mod limits;
mod openapi;
mod ops;
mod otlp;
mod poison;
mod prompts;
mod readme;
mod rollups;
mod schema;
mod sdk_python;
mod tls;
mod web;
mod webhooks;

/// The environment's configuration as it is (the cluster suite changes it).
pub fn adjust_common(_: &mut agentvista_shared::config::CommonConfig) {}
