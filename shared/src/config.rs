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

/// Connection settings every service shares. Its `Debug` shows no secret:
/// the passwords are [`Secret`]s and the Redis URL's password is masked.
#[derive(Clone)]
pub struct CommonConfig {
    pub kafka_brokers: String,
    pub kafka_topic: String,
    /// `security.protocol` of every Kafka client (`AV_KAFKA_SECURITY_PROTOCOL`:
    /// `plaintext` by default, `ssl`, `sasl_plaintext`, `sasl_ssl`), with
    /// the SASL and TLS settings below; passed to librdkafka as they are.
    pub kafka_security_protocol: Option<String>,
    /// `sasl.mechanism` (`AV_KAFKA_SASL_MECHANISM`: `PLAIN`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub kafka_sasl_mechanism: Option<String>,
    pub kafka_sasl_username: Option<String>,
    pub kafka_sasl_password: Option<Secret>,
    /// `ssl.ca.location` (`AV_KAFKA_SSL_CA_LOCATION`): the brokers' CA, a
    /// PEM file, when the system's CAs do not vouch for them.
    pub kafka_ssl_ca_location: Option<String>,
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
    /// A PEM file of the CA(s) that signed the ClickHouse server's
    /// certificate (`AV_CLICKHOUSE_CA_FILE`), for an `https://`
    /// `AV_CLICKHOUSE_URL` that the system's CAs do not vouch for; checked
    /// when the configuration is read.
    pub clickhouse_ca_file: Option<String>,
    /// Cluster mode (`AV_CLICKHOUSE_CLUSTER`): the name of a cluster in the
    /// ClickHouse servers' `remote_servers`. The schema's tables are local
    /// to every node (database `clickhouse_database`), and the services
    /// read and write `Distributed` tables over them (database
    /// [`CommonConfig::clickhouse_data_database`]). Unset: one node.
    pub clickhouse_cluster: Option<String>,
    /// Every node of the cluster, all shards and replicas
    /// (`AV_CLICKHOUSE_NODES`, comma-separated HTTP URLs): the migrator
    /// applies the schema to each. Unused on one node.
    pub clickhouse_nodes: Vec<String>,
    /// Replicated tables on a cluster (`AV_CLICKHOUSE_REPLICATED=1`): the
    /// schema's MergeTree engines become their `Replicated` forms, keyed by
    /// each node's `{shard}` and `{replica}` macros (needs ClickHouse Keeper).
    pub clickhouse_replicated: bool,
}

impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonConfig")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_topic", &self.kafka_topic)
            .field("kafka_security_protocol", &self.kafka_security_protocol)
            .field("kafka_sasl_mechanism", &self.kafka_sasl_mechanism)
            .field("kafka_sasl_username", &self.kafka_sasl_username)
            .field("kafka_sasl_password", &self.kafka_sasl_password)
            .field("kafka_ssl_ca_location", &self.kafka_ssl_ca_location)
            .field("redis_url", &masked_url(&self.redis_url))
            .field("redis_ca_file", &self.redis_ca_file)
            .field("database_url", &self.database_url)
            .field("clickhouse_url", &masked_url(&self.clickhouse_url))
            .field("clickhouse_database", &self.clickhouse_database)
            .field("clickhouse_user", &self.clickhouse_user)
            .field("clickhouse_password", &self.clickhouse_password)
            .field("clickhouse_ca_file", &self.clickhouse_ca_file)
            .field("clickhouse_cluster", &self.clickhouse_cluster)
            .field("clickhouse_nodes", &self.clickhouse_nodes)
            .field("clickhouse_replicated", &self.clickhouse_replicated)
            .finish()
    }
}

/// A URL with the password of its user info replaced by `***`
/// (`rediss://:p@host/0` → `rediss://:***@host/0`).
fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// An environment variable that is set and not empty.
fn optional(var: &str) -> Option<String> {
    Some(string(var, "")).filter(|v| !v.is_empty())
}

impl CommonConfig {
    /// The security settings every Kafka client of the services gets
    /// (librdkafka names), only those that are set.
    pub fn kafka_settings(&self) -> Vec<(&'static str, String)> {
        [
            ("security.protocol", self.kafka_security_protocol.clone()),
            ("sasl.mechanism", self.kafka_sasl_mechanism.clone()),
            ("sasl.username", self.kafka_sasl_username.clone()),
            (
                "sasl.password",
                self.kafka_sasl_password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
            ),
            ("ssl.ca.location", self.kafka_ssl_ca_location.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
    }

    /// The database the services read and write: the schema's own on one
    /// node, its `Distributed` twin (`<database>_dist`) on a cluster.
    pub fn clickhouse_data_database(&self) -> String {
        match self.clickhouse_cluster {
            Some(_) => format!("{}_dist", self.clickhouse_database),
            None => self.clickhouse_database.clone(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            kafka_brokers: string("AV_KAFKA_BROKERS", "127.0.0.1:19092"),
            kafka_topic: string("AV_KAFKA_TOPIC", crate::queue::TOPIC_SPANS),
            kafka_security_protocol: optional("AV_KAFKA_SECURITY_PROTOCOL"),
            kafka_sasl_mechanism: optional("AV_KAFKA_SASL_MECHANISM"),
            kafka_sasl_username: optional("AV_KAFKA_SASL_USERNAME"),
            kafka_sasl_password: optional("AV_KAFKA_SASL_PASSWORD").map(Secret::new),
            kafka_ssl_ca_location: optional("AV_KAFKA_SSL_CA_LOCATION"),
            redis_url: string("AV_REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_ca_file: optional("AV_REDIS_CA_FILE"),
            database_url: Secret::new(string(
                "AV_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/agentvista",
            )),
            clickhouse_url: string("AV_CLICKHOUSE_URL", "http://127.0.0.1:18123"),
            clickhouse_database: string("AV_CLICKHOUSE_DATABASE", "agentvista"),
            clickhouse_user: string("AV_CLICKHOUSE_USER", "default"),
            clickhouse_password: Secret::new(string("AV_CLICKHOUSE_PASSWORD", "")),
            clickhouse_ca_file: match optional("AV_CLICKHOUSE_CA_FILE") {
                Some(path) => {
                    crate::clients::ca_certificates(&path).map_err(|message| ConfigError {
                        var: "AV_CLICKHOUSE_CA_FILE".into(),
                        message,
                    })?;
                    Some(path)
                }
                None => None,
            },
            clickhouse_cluster: optional("AV_CLICKHOUSE_CLUSTER"),
            clickhouse_nodes: string("AV_CLICKHOUSE_NODES", "")
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect(),
            clickhouse_replicated: parse("AV_CLICKHOUSE_REPLICATED", 0u8)? == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_security_settings_pass_through_and_the_password_does_not_print() {
        std::env::set_var("AV_KAFKA_SECURITY_PROTOCOL", "sasl_ssl");
        std::env::set_var("AV_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512");
        std::env::set_var("AV_KAFKA_SASL_USERNAME", "agentvista");
        std::env::set_var("AV_KAFKA_SASL_PASSWORD", "s3cret");
        let c = CommonConfig::from_env().unwrap();
        for var in [
            "AV_KAFKA_SECURITY_PROTOCOL",
            "AV_KAFKA_SASL_MECHANISM",
            "AV_KAFKA_SASL_USERNAME",
            "AV_KAFKA_SASL_PASSWORD",
        ] {
            std::env::remove_var(var);
        }
        assert_eq!(
            c.kafka_settings(),
            vec![
                ("security.protocol", "sasl_ssl".to_string()),
                ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
                ("sasl.username", "agentvista".to_string()),
                ("sasl.password", "s3cret".to_string()),
            ]
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(CommonConfig::from_env()
            .unwrap()
            .kafka_settings()
            .is_empty());
    }

    #[test]
    fn the_redis_urls_password_does_not_print() {
        let mut c = CommonConfig::from_env().unwrap();
        c.redis_url = "rediss://default:hunter2@cache.internal:6380/0".into();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("rediss://default:***@cache.internal:6380/0"));
        assert_eq!(
            masked_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(masked_url("redis://:p@h/0"), "redis://:***@h/0");
        assert_eq!(masked_url("http://user@h:8123"), "http://user@h:8123");
    }

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
