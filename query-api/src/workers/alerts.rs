//! The alert evaluator: every `AV_ALERT_INTERVAL_SECS`, one pass across
//! replicas (the advisory lock of [`super::exclusive`]) evaluates every
//! active alert. Run statistics are read in a few grouped ClickHouse
//! queries (one per distinct window, not one per alert); each alert's state
//! (`ok`/`firing`, `last_fired_at`) lives in PostgreSQL and is changed only
//! if it is still as read (`store::alerts::record`), so a restart neither
//! re-fires nor forgets, and two evaluators never fire twice.
//!
//! Rules: a breach fires when the alert is `ok`, and again while it lasts
//! once `cooldown_minutes` have passed since the last firing; a firing
//! alert whose condition no longer holds resolves. A window with fewer than
//! `min_runs` finished runs neither fires a rate or p95 nor keeps it firing.

use super::Worker;
use crate::store::alerts::{self as store, StoredAlert, Transition};
use crate::webhooks::{Envelope, EnvelopeOrg};
use agentvista_shared::ids;
use agentvista_shared::model::AlertType;
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Serializes passes across replicas ("avalerts").
pub const LOCK_KEY: i64 = 0x6176_616c_6572_7473;

pub struct AlertEvaluator {
    pub pg: PgPool,
    pub ch: clickhouse::Client,
    pub interval: Duration,
    /// The dashboard's base URL, for the link in emails.
    pub public_url: String,
}

impl Worker for AlertEvaluator {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        let pass = async {
            // One pass per interval across replicas, not one per replica.
            if !super::due(&self.pg, "alerts", self.interval).await? {
                return Ok(0);
            }
            evaluate(&self.pg, &self.ch, &self.public_url).await
        };
        if let Some(n) = super::exclusive(&self.pg, LOCK_KEY, pass).await? {
            if n > 0 {
                tracing::info!(events = n, "alerts fired or resolved");
            }
        }
        Ok(())
    }
}

/// The run statistics of one target over one window.
#[derive(Debug, Default, Clone, Row, Deserialize)]
pub struct Window {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub finished: u64,
    pub failed: u64,
    pub timed: u64,
    pub p95_ms: f64,
    pub cost_usd: f64,
    pub last_run_us: i64,
}

/// The agent an alert watches: its `agent_id`, or the agent named by its
/// `target_service` (OTLP's `service.name` is the agent name).
pub fn target(a: &StoredAlert) -> Uuid {
    a.agent_id
        .unwrap_or_else(|| ids::agent_id(a.org_id, a.target_service.as_deref().unwrap_or_default()))
}

/// Statistics of `targets` over runs started at or after `since_us`.
async fn windows(
    ch: &clickhouse::Client,
    targets: &[(Uuid, Uuid)],
    since_us: i64,
) -> anyhow::Result<HashMap<(Uuid, Uuid), Window>> {
    if targets.is_empty() {
        return Ok(HashMap::new());
    }
    let pairs: Vec<(String, String)> = targets
        .iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
    let orgs: Vec<String> = targets.iter().map(|(o, _)| o.to_string()).collect();
    let rows: Vec<Window> = ch
        .query(
            "SELECT org_id, agent_id, countIf(status != 'running') AS finished, countIf(status = 'failed') AS failed, \
               countIf(status != 'running' AND isNotNull(duration_ms)) AS timed, \
               ifNotFinite(toFloat64(quantileIf(0.95)(assumeNotNull(duration_ms), status != 'running' AND isNotNull(duration_ms))), 0) AS p95_ms, \
               toFloat64(sum(ifNull(total_cost, 0))) AS cost_usd, \
               toInt64(toUnixTimestamp64Micro(max(started_at))) AS last_run_us \
             FROM traces FINAL \
             WHERE org_id IN ? AND (org_id, agent_id) IN ? \
               AND started_at >= fromUnixTimestamp64Micro(?) \
             GROUP BY org_id, agent_id",
        )
        .bind(orgs)
        .bind(pairs)
        .bind(since_us)
        // 10,000 targets are ~800 KB of SQL (the default limit is 256 KiB).
        .with_setting("max_query_size", "16777216")
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|w| ((w.org_id, w.agent_id), w))
        .collect())
}

/// One service's points of one metric over a look-back, summarized.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct InfraRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub org_id: Uuid,
    pub metric_name: String,
    pub service_name: String,
    pub n: u64,
    pub sum: f64,
    pub max: f64,
    pub min: f64,
    pub last: f64,
    pub last_ns: i64,
}

/// The points of `metrics` ((organization, metric name) pairs) since
/// `since_us`, per service: one grouped read for every composite alert
/// with that look-back. A point's value is a gauge's or sum's value, or a
/// histogram's mean.
async fn infra_rows(
    ch: &clickhouse::Client,
    metrics: &[(Uuid, String)],
    since_us: i64,
) -> anyhow::Result<HashMap<(Uuid, String), Vec<InfraRow>>> {
    if metrics.is_empty() {
        return Ok(HashMap::new());
    }
    let orgs: Vec<String> = metrics.iter().map(|(o, _)| o.to_string()).collect();
    let pairs: Vec<(String, String)> = metrics
        .iter()
        .map(|(o, m)| (o.to_string(), m.clone()))
        .collect();
    let rows: Vec<InfraRow> = ch
        .query(
            "SELECT org_id, metric_name, service_name, count() AS n, sum(v) AS sum, max(v) AS max, min(v) AS min, \
               argMax(v, time) AS last, toInt64(toUnixTimestamp64Nano(max(time))) AS last_ns \
             FROM (SELECT org_id, metric_name, service_name, time, \
                     assumeNotNull(coalesce(value, sum / nullIf(toFloat64(count), 0), sum)) AS v, \
                     isNotNull(coalesce(value, sum)) AS present \
                   FROM metric_points FINAL \
                   WHERE org_id IN ? AND (org_id, metric_name) IN ? AND time >= fromUnixTimestamp64Micro(?)) \
             WHERE present GROUP BY org_id, metric_name, service_name",
        )
        .bind(orgs)
        .bind(pairs)
        .bind(since_us)
        .with_setting("max_query_size", "16777216")
        .fetch_all()
        .await?;
    let mut out: HashMap<(Uuid, String), Vec<InfraRow>> = HashMap::new();
    for r in rows {
        out.entry((r.org_id, r.metric_name.clone()))
            .or_default()
            .push(r);
    }
    Ok(out)
}

/// An infra condition's value from the grouped rows: its service's, or all
/// services' together when it names none.
pub fn infra_value(rows: &[InfraRow], cond: &Value) -> Option<f64> {
    let service = cond["service_name"].as_str().filter(|s| !s.is_empty());
    let rows: Vec<&InfraRow> = rows
        .iter()
        .filter(|r| service.is_none_or(|s| r.service_name == s))
        .collect();
    let n: u64 = rows.iter().map(|r| r.n).sum();
    if n == 0 {
        return None;
    }
    let v = match cond["agg"].as_str().unwrap_or("avg") {
        "max" => rows.iter().map(|r| r.max).fold(f64::MIN, f64::max),
        "min" => rows.iter().map(|r| r.min).fold(f64::MAX, f64::min),
        "sum" => rows.iter().map(|r| r.sum).sum(),
        "count" => n as f64,
        "last" => rows
            .iter()
            .max_by_key(|r| r.last_ns)
            .map_or(0.0, |r| r.last),
        _ => rows.iter().map(|r| r.sum).sum::<f64>() / n as f64,
    };
    v.is_finite().then_some(v)
}

fn compare(op: &str, v: f64, t: f64) -> bool {
    match op {
        ">=" => v >= t,
        "<" => v < t,
        "<=" => v <= t,
        _ => v > t,
    }
}

/// An alert's condition: (breaching, observed value).
/// `w` covers the alert's look-back (its window; today for a daily cost).
fn judge(a: &StoredAlert, w: Option<&Window>, now_us: i64) -> (bool, Option<f64>) {
    let t = a.threshold.unwrap_or(0.0);
    let min = u64::try_from(a.min_runs).unwrap_or(1);
    match AlertType::parse(&a.alert_type) {
        Some(AlertType::FailureRate) => match w.filter(|w| w.finished >= min) {
            Some(w) => {
                let rate = w.failed as f64 / w.finished as f64;
                (rate > t, Some(rate))
            }
            None => (false, None),
        },
        Some(AlertType::LatencyThreshold) => match w.filter(|w| w.timed >= min) {
            Some(w) => (w.p95_ms > t, Some(w.p95_ms)),
            None => (false, None),
        },
        Some(AlertType::CostThreshold) => {
            let cost = w.map_or(0.0, |w| w.cost_usd);
            (cost > t, Some(cost))
        }
        Some(AlertType::Inactivity) => {
            // Hours since the last run within the look-back; none: at least
            // the threshold has passed.
            let hours = w
                .filter(|w| w.last_run_us > 0)
                .map(|w| (now_us - w.last_run_us) as f64 / 3.6e9);
            match hours {
                Some(h) => (h > t, Some(h)),
                None => (true, None),
            }
        }
        _ => (false, None),
    }
}

/// One pass: evaluate every active alert; returns the events made.
pub async fn evaluate(
    pg: &PgPool,
    ch: &clickhouse::Client,
    public_url: &str,
) -> anyhow::Result<usize> {
    let alerts = store::active(pg).await?;
    let now = OffsetDateTime::now_utc();
    let now_us = (now.unix_timestamp_nanos() / 1000) as i64;
    let day_start_us = now.date().midnight().assume_utc().unix_timestamp() * 1_000_000;
    // One grouped read per distinct look-back.
    let mut by_since: HashMap<i64, Vec<(Uuid, Uuid)>> = HashMap::new();
    let since_of = |a: &StoredAlert| -> i64 {
        match AlertType::parse(&a.alert_type) {
            // A week beyond the threshold, so that the observed value (hours
            // since the last run) is known for an agent that stopped lately.
            Some(AlertType::Inactivity) => {
                now_us - ((a.threshold.unwrap_or(0.0) + 168.0) * 3.6e9) as i64
            }
            Some(AlertType::CostThreshold) => day_start_us,
            _ => now_us - i64::from(a.window_minutes) * 60_000_000,
        }
    };
    // Inactivity reads share the longest look-back of its alerts.
    let inactivity_since = alerts
        .iter()
        .filter(|(a, _)| a.alert_type == "inactivity")
        .map(|(a, _)| since_of(a))
        .min();
    let look_back = |a: &StoredAlert| match inactivity_since {
        Some(since) if a.alert_type == "inactivity" => since,
        _ => since_of(a),
    };
    let window_since = |a: &StoredAlert| now_us - i64::from(a.window_minutes) * 60_000_000;
    for (a, _) in &alerts {
        let since = look_back(a);
        by_since
            .entry(since)
            .or_default()
            .push((a.org_id, target(a)));
    }
    let mut stats: HashMap<i64, HashMap<(Uuid, Uuid), Window>> = HashMap::new();
    for (since, targets) in &by_since {
        stats.insert(*since, windows(ch, targets, *since).await?);
    }
    // The metrics of composite alerts' infra conditions: one grouped read
    // per distinct window. A failed read skips those alerts, not the pass.
    let mut wanted: HashMap<i64, Vec<(Uuid, String)>> = HashMap::new();
    for (a, _) in alerts.iter().filter(|(a, _)| a.alert_type == "composite") {
        let since = window_since(a);
        let conds = a
            .composite_config
            .as_ref()
            .and_then(|c| c["conditions"].as_array().cloned());
        for cond in conds.into_iter().flatten().filter(|c| c["kind"] == "infra") {
            let key = (
                a.org_id,
                cond["metric_name"].as_str().unwrap_or_default().to_string(),
            );
            let list = wanted.entry(since).or_default();
            if !list.contains(&key) {
                list.push(key);
            }
        }
    }
    let mut infra: HashMap<i64, HashMap<(Uuid, String), Vec<InfraRow>>> = HashMap::new();
    for (since, metrics) in &wanted {
        match infra_rows(ch, metrics, *since).await {
            Ok(rows) => {
                infra.insert(*since, rows);
            }
            Err(e) => tracing::warn!(error = %e, "composite alerts' metrics not read"),
        }
    }
    let mut events = 0;
    let mut unchanged: Vec<(Uuid, Option<f64>)> = Vec::new();
    for (a, slug) in &alerts {
        let key = (a.org_id, target(a));
        let w = stats.get(&look_back(a)).and_then(|m| m.get(&key));
        let (breach, value) = if a.alert_type == "composite" {
            match infra.get(&window_since(a)) {
                Some(rows) => composite(a, w, rows),
                None => {
                    // Its metrics could not be read: skipped this pass.
                    tracing::warn!(alert_id = %a.id, "composite alert not evaluated");
                    continue;
                }
            }
        } else {
            judge(a, w, now_us)
        };
        let cooled = a
            .last_fired_at
            .is_none_or(|at| now - at >= time::Duration::minutes(i64::from(a.cooldown_minutes)));
        let transition = match (breach, a.state.as_str()) {
            (true, "ok") if cooled => Transition::Fire,
            (true, "firing") if cooled && a.cooldown_minutes > 0 => Transition::Fire,
            (false, "firing") => Transition::Resolve,
            _ => Transition::Stay,
        };
        let body = |event_id: Uuid| {
            let event_type = if transition == Transition::Fire {
                "alert.fired"
            } else {
                "alert.resolved"
            };
            Envelope {
                id: event_id,
                event_type: event_type.to_string(),
                created_at: agentvista_shared::time_fmt::format(OffsetDateTime::now_utc()),
                organization: EnvelopeOrg { id: a.org_id, slug: slug.clone() },
                data: json!({
                    "alert": {"id": a.id, "type": a.alert_type, "threshold": a.threshold,
                              "agent_id": a.agent_id, "agent_name": a.agent_name,
                              "target_service": a.target_service, "window_minutes": a.window_minutes},
                    "value": value,
                    "threshold": a.threshold,
                    "state": if transition == Transition::Fire { "firing" } else { "ok" },
                }),
            }
            .to_body()
        };
        if transition == Transition::Stay {
            // The steady state is written in one statement for all.
            unchanged.push((a.id, value));
            continue;
        }
        let email = || message(a, value, transition, public_url);
        match store::record(pg, a, value, transition, body, email).await {
            Ok(Some(_)) => events += 1,
            Ok(None) => {}
            Err(e) => tracing::warn!(alert_id = %a.id, error = %e, "alert state not recorded"),
        }
    }
    store::record_values(pg, &unchanged).await?;
    Ok(events)
}

/// The email of a firing or resolution: (subject, text, HTML). It names
/// the agent or service, the rule, the observed value and the threshold,
/// and links to the agent's page.
pub fn message(
    a: &StoredAlert,
    value: Option<f64>,
    transition: Transition,
    public_url: &str,
) -> (String, String, String) {
    use crate::email::escape;
    let what = if transition == Transition::Fire {
        "fired"
    } else {
        "resolved"
    };
    let named = match (&a.agent_name, &a.target_service) {
        (Some(agent), _) => format!("agent {agent}"),
        (None, Some(service)) => format!("service {service}"),
        _ => "its target".to_string(),
    };
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v}"));
    let link = format!("{}/agents/{}", public_url.trim_end_matches('/'), target(a));
    let subject = format!("[AgentVista] Alert {what}: {} on {named}", a.alert_type);
    let text = format!(
        "The {} alert on {named} {what}.\n\nObserved value: {}\nThreshold: {}\nAlert: {}\n\nOpen the agent: {link}\n",
        a.alert_type, fmt(value), fmt(a.threshold), a.id
    );
    let html = format!(
        "<p>The <b>{}</b> alert on <b>{}</b> {what}.</p><table><tr><td>Observed value</td><td>{}</td></tr>\
         <tr><td>Threshold</td><td>{}</td></tr><tr><td>Alert</td><td>{}</td></tr></table>\
         <p><a href=\"{}\">Open the agent</a></p>",
        escape(&a.alert_type), escape(&named), fmt(value), fmt(a.threshold), a.id, escape(&link)
    );
    (subject, text, html)
}

/// A composite alert: its ai conditions over the target's window, its
/// infra conditions over stored metric points, combined by `operator`.
fn composite(
    a: &StoredAlert,
    w: Option<&Window>,
    infra: &HashMap<(Uuid, String), Vec<InfraRow>>,
) -> (bool, Option<f64>) {
    let Some(cfg) = &a.composite_config else {
        return (false, None);
    };
    let all = cfg["operator"].as_str() != Some("any");
    let mut results = Vec::new();
    let mut first_value = None;
    for cond in cfg["conditions"].as_array().into_iter().flatten() {
        let target = cond["value"].as_f64().unwrap_or(0.0);
        let op = cond["op"].as_str().unwrap_or(">");
        let value = if cond["kind"] == "ai" {
            let min = u64::try_from(a.min_runs).unwrap_or(1);
            match cond["metric"].as_str() {
                Some("failure_rate") => w
                    .filter(|w| w.finished >= min)
                    .map(|w| w.failed as f64 / w.finished as f64),
                Some("p95_latency_ms") => w.filter(|w| w.timed >= min).map(|w| w.p95_ms),
                Some("cost_usd") => Some(w.map_or(0.0, |w| w.cost_usd)),
                Some("runs") => Some(w.map_or(0.0, |w| w.finished as f64)),
                _ => None,
            }
        } else {
            let key = (
                a.org_id,
                cond["metric_name"].as_str().unwrap_or_default().to_string(),
            );
            infra.get(&key).and_then(|rows| infra_value(rows, cond))
        };
        first_value = first_value.or(value);
        results.push(value.is_some_and(|v| compare(op, v, target)));
    }
    let breach = if all {
        !results.is_empty() && results.iter().all(|r| *r)
    } else {
        results.iter().any(|r| *r)
    };
    (breach, first_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, n: u64, sum: f64, max: f64, last: f64, last_ns: i64) -> InfraRow {
        InfraRow {
            org_id: Uuid::nil(),
            metric_name: "gpu".into(),
            service_name: service.into(),
            n,
            sum,
            max,
            min: 0.0,
            last,
            last_ns,
        }
    }

    #[test]
    fn infra_values_combine_services_unless_one_is_named() {
        let rows = [
            row("a", 2, 180.0, 95.0, 90.0, 10),
            row("b", 2, 80.0, 50.0, 30.0, 20),
        ];
        let v = |c: Value| infra_value(&rows, &c);
        assert_eq!(v(json!({"agg": "avg", "service_name": "a"})), Some(90.0));
        assert_eq!(v(json!({"agg": "avg"})), Some(65.0));
        assert_eq!(v(json!({"agg": "max"})), Some(95.0));
        assert_eq!(v(json!({"agg": "count"})), Some(4.0));
        assert_eq!(v(json!({"agg": "last"})), Some(30.0));
        assert_eq!(v(json!({"agg": "avg", "service_name": "c"})), None);
    }
}
