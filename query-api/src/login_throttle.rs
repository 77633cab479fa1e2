//! Login throttling: failed logins counted in Redis over a fixed
//! 15-minute window, per (account, client), per client and per account.
//!
//! A login is checked *before* its password is hashed, so a throttled
//! attempt costs no Argon2 time (the hash is no amplification target). The
//! limits ([`LIMITS`]) make guessing slow from one client and from many,
//! while a lockout is never permanent: every counter expires 15 minutes
//! after its first failure, and locking a user out from elsewhere takes
//! [`PER_ACCOUNT`] failures (and lasts at most the window). A successful
//! login clears the (account, client) counter. When Redis is unreachable
//! logins are not throttled (Argon2 still bounds their rate) and the
//! outage is logged.

use agentvista_shared::clients::Redis;
use std::net::IpAddr;

/// The window every counter lives for, from its first failure.
pub const WINDOW_SECS: u64 = 900;
/// Failures allowed per (account, client) in a window.
pub const PER_ACCOUNT_CLIENT: u64 = 10;
/// Failures allowed per client (any account) in a window.
pub const PER_CLIENT: u64 = 100;
/// Failures allowed per account (any client) in a window.
pub const PER_ACCOUNT: u64 = 50;

const LIMITS: [u64; 3] = [PER_ACCOUNT_CLIENT, PER_CLIENT, PER_ACCOUNT];

/// The counters one login attempt is checked against.
pub struct LoginThrottle {
    keys: [String; 3],
}

impl LoginThrottle {
    pub fn new(email: &str, client: Option<IpAddr>) -> Self {
        let account = agentvista_shared::keys::hash(&email.trim().to_lowercase());
        let client = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        LoginThrottle {
            keys: [
                format!("av:login:pair:{account}:{client}"),
                format!("av:login:client:{client}"),
                format!("av:login:account:{account}"),
            ],
        }
    }

    /// Seconds until the attempt may be made, when a limit is reached.
    pub async fn blocked(&self, redis: &Redis) -> Option<u64> {
        let mut conn = redis.clone();
        let counts: Vec<Option<u64>> = match redis::cmd("MGET")
            .arg(&self.keys[..])
            .query_async(&mut conn)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "login throttle unavailable; not throttling");
                return None;
            }
        };
        let mut wait = None;
        for ((key, count), limit) in self.keys.iter().zip(counts).zip(LIMITS) {
            if count.unwrap_or(0) >= limit {
                let ttl: i64 = redis::cmd("TTL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(WINDOW_SECS as i64);
                let ttl = u64::try_from(ttl).unwrap_or(WINDOW_SECS).max(1);
                wait = Some(wait.map_or(ttl, |w: u64| w.max(ttl)));
            }
        }
        wait
    }

    /// Count a failed attempt in every counter (each expires a window after
    /// its first failure).
    pub async fn failed(&self, redis: &Redis) {
        let mut conn = redis.clone();
        let mut pipe = redis::pipe();
        for key in &self.keys {
            pipe.cmd("INCR").arg(key).ignore();
            pipe.cmd("EXPIRE")
                .arg(key)
                .arg(WINDOW_SECS)
                .arg("NX")
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "login throttle unavailable; failure not counted");
        }
    }

    /// A successful login clears its (account, client) counter.
    pub async fn succeeded(&self, redis: &Redis) {
        let mut conn = redis.clone();
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(&self.keys[0])
            .query_async(&mut conn)
            .await;
    }
}

/// The client of a request: the peer address, or, when the peer is a
/// loopback or private address (the router), the `X-Real-IP` it set.
pub fn client_ip(
    peer: Option<std::net::SocketAddr>,
    headers: &axum::http::HeaderMap,
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip());
    let trusted = peer.is_some_and(|ip| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    });
    let forwarded = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match (trusted, forwarded) {
        (true, Some(ip)) => Some(ip),
        _ => peer,
    }
}
