//! Agents (`agents` table: one row per agent and insert, the first name
//! kept).

use crate::error::AppResult;
use crate::sql::{Bind, Filter};
use clickhouse::Row;
use serde::Deserialize;
use uuid::Uuid;

/// An agent as read back.
#[derive(Debug, Row, Deserialize)]
pub struct StoredAgent {
    #[serde(with = "clickhouse::serde::uuid")]
    pub agent_id: Uuid,
    pub name: String,
    pub created_us: i64,
}

/// Agents of the organization (all, or those of `only`), by name.
pub async fn list(
    ch: &clickhouse::Client,
    org_id: Uuid,
    only: Option<&[Uuid]>,
) -> AppResult<Vec<StoredAgent>> {
    let mut f = Filter::org(org_id);
    if let Some(ids) = only {
        f.push(
            "agent_id IN ?",
            [Bind::Strs(ids.iter().map(Uuid::to_string).collect())],
        );
    }
    Ok(f.apply(ch.query(&format!(
        "SELECT agent_id, argMin(name, created_at) AS name, \
                    toInt64(toUnixTimestamp64Micro(min(created_at))) AS created_us \
             FROM agents WHERE {} GROUP BY agent_id ORDER BY name, agent_id",
        f.sql()
    )))
    .fetch_all()
    .await?)
}

/// One agent of the organization.
pub async fn get(
    ch: &clickhouse::Client,
    org_id: Uuid,
    agent_id: Uuid,
) -> AppResult<Option<StoredAgent>> {
    Ok(list(ch, org_id, Some(&[agent_id])).await?.pop())
}
