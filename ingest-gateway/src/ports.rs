//! The gateway's three outside dependencies as small traits: who a key is
//! ([`Authenticate`]: the key store), the monthly quota ([`QuotaStore`]:
//! Redis) and the queue ([`Publisher`]: Kafka). The services implement them
//! over the real clients; in-process tests implement them in memory
//! (`tests/inprocess.rs`) to drive the HTTP handlers without any service.

use crate::auth::KeyStore;
use crate::producer::Queue;
use crate::quota::{Quota, Reservation};
use agentvista_shared::error::ApiError;
use agentvista_shared::keys::KeyRecord;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use uuid::Uuid;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolve an `Authorization` header to a key.
pub trait Authenticate: Send + Sync {
    /// The key of a `Bearer` header, or 401 (503 when no store answers).
    fn authenticate<'a>(
        &'a self,
        header: Option<&'a str>,
    ) -> BoxFuture<'a, Result<KeyRecord, ApiError>>;
    /// Write buffered `last_used_at` stamps (periodically and on shutdown).
    fn flush_last_used(&self) -> BoxFuture<'_, ()>;
}

/// Reserve spans against an organization's monthly limit.
pub trait QuotaStore: Send + Sync {
    fn reserve(
        &self,
        org_id: Uuid,
        spans: u64,
        limit: u64,
    ) -> BoxFuture<'_, Result<Reservation, String>>;
    /// Give back a reservation whose batch was not accepted.
    fn release<'a>(&'a self, counter: &'a str, spans: u64) -> BoxFuture<'a, ()>;
}

/// Hand an encoded message to the queue and wait for its acknowledgement.
pub trait Publisher: Send + Sync {
    fn send<'a>(&'a self, key: &'a [u8], payload: &'a [u8]) -> BoxFuture<'a, Result<(), String>>;
    /// Whether the queue answers (for `/readyz`).
    fn ready(&self) -> BoxFuture<'_, bool>;
    /// Wait for queued messages to be delivered, up to `timeout` (blocking).
    fn flush(&self, timeout: Duration);
}

impl Authenticate for KeyStore {
    fn authenticate<'a>(
        &'a self,
        header: Option<&'a str>,
    ) -> BoxFuture<'a, Result<KeyRecord, ApiError>> {
        Box::pin(KeyStore::authenticate(self, header))
    }

    fn flush_last_used(&self) -> BoxFuture<'_, ()> {
        Box::pin(KeyStore::flush_last_used(self))
    }
}

impl QuotaStore for Quota {
    fn reserve(
        &self,
        org_id: Uuid,
        spans: u64,
        limit: u64,
    ) -> BoxFuture<'_, Result<Reservation, String>> {
        Box::pin(async move {
            Quota::reserve(self, org_id, spans, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn release<'a>(&'a self, counter: &'a str, spans: u64) -> BoxFuture<'a, ()> {
        Box::pin(Quota::release(self, counter, spans))
    }
}

impl Publisher for Queue {
    fn send<'a>(&'a self, key: &'a [u8], payload: &'a [u8]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Queue::send(self, key, payload)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(Queue::ready(self))
    }

    fn flush(&self, timeout: Duration) {
        Queue::flush(self, timeout)
    }
}
