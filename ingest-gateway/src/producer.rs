//! The Kafka producer: acks=all, and a batch is acknowledged to the client
//! only after the broker confirmed it.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::Duration;

pub struct Queue {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl Queue {
    pub fn new(brokers: &str, topic: &str, timeout: Duration) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        Self::with_config(config, topic, timeout)
    }

    /// [`Queue::new`] from a base configuration (the brokers and security
    /// settings of `agentvista_shared::clients::kafka`).
    pub fn with_config(
        mut config: ClientConfig,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.max.bytes", "16777216")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("socket.keepalive.enable", "true")
            .create()?;
        Ok(Queue {
            producer,
            topic: topic.to_string(),
            timeout,
        })
    }

    /// Send one message and wait for the broker's acknowledgement.
    pub async fn send(&self, key: &[u8], payload: &[u8]) -> Result<(), KafkaError> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        self.producer
            .send(record, self.timeout)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }

    /// Whether the broker answers a metadata request for our topic.
    pub async fn ready(&self) -> bool {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|m| m.topics().iter().any(|t| t.error().is_none()))
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }

    /// Wait for queued messages to be delivered, up to `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::error!(error = %e, "producer flush on shutdown failed");
        }
    }
}
