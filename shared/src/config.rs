//! Typed configuration helpers: every setting is an `AV_*` environment
//! variable, read once at start, with a default that works on a developer
//! machine. Errors name the variable.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("invalid value for {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

/// Read `var`, or `default` when unset or empty.
pub fn string(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

/// Read and parse `var`, or `default` when unset or empty.
pub fn parse<T: FromStr>(var: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v.parse().map_err(|e: T::Err| ConfigError {
            var: var.to_string(),
            message: format!("{e} (got {v:?})"),
        }),
        _ => Ok(default),
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Connection settings every service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub kafka_brokers: String,
    pub kafka_topic: String,
    pub redis_url: String,
    /// A PEM file of the CA(s) that signed the Redis server's certificate
    /// (`AV_REDIS_CA_FILE`), for a `rediss://` URL whose server the
    /// system's CAs do not vouch for.
    pub redis_ca_file: Option<String>,
    pub database_url: Secret,
    pub clickhouse_url: String,
    pub clickhouse_database: String,
    pub clickhouse_user: String,
    pub clickhouse_password: Secret,
}

impl CommonConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            kafka_brokers: string("AV_KAFKA_BROKERS", "127.0.0.1:19092"),
            kafka_topic: string("AV_KAFKA_TOPIC", crate::queue::TOPIC_SPANS),
            redis_url: string("AV_REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_ca_file: Some(string("AV_REDIS_CA_FILE", "")).filter(|f| !f.is_empty()),
            database_url: Secret::new(string(
                "AV_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/agentvista",
            )),
            clickhouse_url: string("AV_CLICKHOUSE_URL", "http://127.0.0.1:18123"),
            clickhouse_database: string("AV_CLICKHOUSE_DATABASE", "agentvista"),
            clickhouse_user: string("AV_CLICKHOUSE_USER", "default"),
            clickhouse_password: Secret::new(string("AV_CLICKHOUSE_PASSWORD", "")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn parse_errors_name_the_variable() {
        std::env::set_var("AV_TEST_PARSE_ERR", "abc");
        let e = parse::<u16>("AV_TEST_PARSE_ERR", 1).unwrap_err();
        assert!(e.to_string().contains("AV_TEST_PARSE_ERR"));
        assert_eq!(parse::<u16>("AV_TEST_UNSET_VAR", 7).unwrap(), 7);
    }
}
