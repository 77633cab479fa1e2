//! Login throttling: failed logins counted in Redis over a fixed
//! 15-minute window, per (account, client), per client and per account.
//!
//! A login is checked *before* its password is hashed, so a throttled
//! attempt costs no Argon2 time (the hash is no amplification target). The
//! check and the count are one step in Redis ([`LoginThrottle::reserve`], a
//! script): an attempt is counted as a failure before its password is
//! checked and refunded when it succeeds, so parallel attempts cannot all
//! pass the check before any of them is counted. The
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

    /// Reserve an attempt: `Some(seconds)` until one may be made when a
    /// limit is reached (nothing counted); otherwise the attempt is counted
    /// as a failure in every counter (each expires a window after its first
    /// failure) in the same atomic step, and `None`.
    pub async fn reserve(&self, redis: &Redis) -> Option<u64> {
        static RESERVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                r"local wait = 0
                for i, key in ipairs(KEYS) do
                  local count = tonumber(redis.call('GET', key) or '0')
                  if count >= tonumber(ARGV[i]) then
                    local ttl = redis.call('TTL', key)
                    if ttl < 1 then ttl = tonumber(ARGV[4]) end
                    if ttl > wait then wait = ttl end
                  end
                end
                if wait > 0 then return wait end
                for _, key in ipairs(KEYS) do
                  redis.call('INCR', key)
                  redis.call('EXPIRE', key, ARGV[4], 'NX')
                end
                return 0",
            )
        });
        let mut conn = redis.clone();
        let mut call = RESERVE.prepare_invoke();
        for key in &self.keys {
            call.key(key);
        }
        for limit in LIMITS {
            call.arg(limit);
        }
        call.arg(WINDOW_SECS);
        match call.invoke_async::<u64>(&mut conn).await {
            Ok(0) => None,
            Ok(wait) => Some(wait),
            Err(e) => {
                tracing::warn!(error = %e, "login throttle unavailable; not throttling");
                None
            }
        }
    }

    /// A successful login clears its (account, client) counter and refunds
    /// the attempt [`Self::reserve`] counted in the others (never below
    /// zero, never reviving an expired counter).
    pub async fn succeeded(&self, redis: &Redis) {
        static REFUND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                r"redis.call('DEL', KEYS[1])
                for i = 2, #KEYS do
                  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
                  if count > 0 then redis.call('DECR', KEYS[i]) end
                end
                return 0",
            )
        });
        let mut conn = redis.clone();
        let mut call = REFUND.prepare_invoke();
        for key in &self.keys {
            call.key(key);
        }
        if let Err(e) = call.invoke_async::<i64>(&mut conn).await {
            tracing::warn!(error = %e, "login throttle unavailable; success not recorded");
        }
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
