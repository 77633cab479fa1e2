//! The email sender: every second, take due emails from the outbox (one
//! sender per email across replicas: `SKIP LOCKED` in a transaction per
//! email that holds it until its outcome is recorded) and send them over SMTP.
//! A failed send is retried after 30 s, 2, 10 and 30 minutes, then marked
//! `failed`. Without `AV_SMTP_HOST` the sender does not run and emails stay
//! `pending`.

use super::Worker;
use crate::email::SmtpConfig;
use crate::store::emails;
use sqlx::PgPool;
use std::time::Duration;

const RETRY_SECS: [u64; 4] = [30, 120, 600, 1800];

/// Emails sent per pass at most (the rest wait for the next second).
const PER_PASS: usize = 20;

pub struct EmailSender {
    pub pg: PgPool,
    pub config: Option<SmtpConfig>,
}

impl Worker for EmailSender {
    fn name(&self) -> &'static str {
        "email"
    }

    fn interval(&self) -> Duration {
        if self.config.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        }
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        let transport = config.transport()?;
        // One transaction per email: its outcome is committed as soon as it
        // is sent, so a crash mid-pass re-sends at most the one in flight
        // and the history shows `sent` while the next one is on the wire.
        for _ in 0..PER_PASS {
            let mut tx = self.pg.begin().await?;
            let Some(e) = emails::next_due(&mut tx).await? else {
                break;
            };
            let attempts = e.attempts + 1;
            let sent = crate::email::send(
                &transport,
                &config.from,
                &e.to_addr,
                &e.subject,
                &e.body_text,
                &e.body_html,
            )
            .await;
            let error = sent.err().map(|err| err.to_string());
            if let Some(err) = &error {
                tracing::warn!(email_id = %e.id, attempts, error = %err, "email not sent");
            }
            let retry = Duration::from_secs(
                RETRY_SECS[usize::try_from(attempts - 1)
                    .unwrap_or(0)
                    .min(RETRY_SECS.len() - 1)],
            );
            emails::record(&mut tx, e.id, attempts, error.as_deref(), retry).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
