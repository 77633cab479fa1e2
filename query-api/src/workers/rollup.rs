//! The per-day rollups as a worker: every `AV_ROLLUP_INTERVAL_SECS`, one
//! pass of [`crate::store::run_stats::refresh`] (runs per agent) and one of
//! [`crate::store::prompt_stats::refresh`] (runs per prompt version); each
//! takes its own pass lock, so replicas take turns.

use super::Worker;
use crate::store::prompt_stats;
use crate::store::run_stats::{self as rollup, RefreshConfig};
use sqlx::PgPool;
use std::time::Duration;

pub struct RollupWorker {
    pub ch: clickhouse::Client,
    pub pg: PgPool,
    pub config: RefreshConfig,
}

impl Worker for RollupWorker {
    fn name(&self) -> &'static str {
        "rollup"
    }

    fn interval(&self) -> Duration {
        self.config.interval
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        if let Some(days) = rollup::refresh(&self.ch, &self.pg, self.config.settle).await? {
            if days > 0 {
                tracing::info!(days, "rolled up run statistics");
            }
        }
        if let Some(days) = prompt_stats::refresh(&self.ch, &self.pg, self.config.settle).await? {
            if days > 0 {
                tracing::info!(days, "rolled up prompt comparisons");
            }
        }
        Ok(())
    }
}
