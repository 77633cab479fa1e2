//! The AgentVista contract crate.
//!
//! Everything the three services must agree on lives here: the domain types
//! (traces, spans) and the closed vocabularies of the contract, the Kafka
//! message format, prompt references, id derivation, API-key hashing and verification, the
//! error taxonomy, plans, the backing-service clients, and config and
//! telemetry helpers.
//!
//! Invariant: this crate knows nothing of HTTP frameworks (no hyper, no
//! axum). Services map [`error::ErrorKind`] to status codes themselves.

pub mod clients;
pub mod config;
pub mod error;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod money;
pub mod openapi;
pub mod plan;
pub mod pricing;
pub mod promoted;
pub mod prompts;
pub mod queue;
pub mod telemetry;
pub mod time_fmt;
pub mod window;
