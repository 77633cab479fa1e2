//! The per-day run rollup as a worker: every `AV_ROLLUP_INTERVAL_SECS`, one
//! pass of [`crate::store::run_stats::refresh`] (which takes the rollup's pass lock,
//! so replicas take turns).

use super::Worker;
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
        Ok(())
    }
}
