//! Email over SMTP (lettre): the settings, and how a message is built and
//! sent. Messages are queued in PostgreSQL (`store::emails`) in the same
//! transaction as what caused them and sent by `workers::email`.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the SMTP connection is secured (`AV_SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP (a local relay or mail catcher).
    None,
    /// STARTTLS on the submission port (587).
    StartTls,
    /// TLS from the first byte (465).
    Tls,
}

/// `AV_SMTP_*`. Without a host, emails stay queued (`pending`).
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<agentvista_shared::config::Secret>,
    /// The sender, e.g. `AgentVista <alerts@example.com>`.
    pub from: String,
    /// The dashboard's base URL, for links in messages.
    pub public_url: String,
}

impl SmtpConfig {
    pub fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let builder = match self.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host),
            TlsMode::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.host)?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&self.host)?,
        };
        let mut builder = builder
            .port(self.port)
            .timeout(Some(Duration::from_secs(10)));
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        Ok(builder.build())
    }
}

/// Send one message with a plain-text and an HTML part.
pub async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> anyhow::Result<()> {
    let message = Message::builder()
        .from(from.parse::<Mailbox>()?)
        .to(to.parse::<Mailbox>()?)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(
            text.to_string(),
            html.to_string(),
        ))?;
    transport.send(message).await?;
    Ok(())
}

/// Text made safe for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
