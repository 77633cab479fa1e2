//! Tests that need no backing service: the router called in process
//! (`tower::ServiceExt::oneshot`) for routing, authentication and request
//! validation, and the generated OpenAPI document. A plain `cargo test`
//! runs these on any machine; the whole-stack suite (`tests/api`) needs
//! `--features stack-tests` and the local stack.

mod deploy;
mod openapi;
mod router;
