//! The two shards: started once per test binary (`cluster`), and what a
//! sharded write leaves on each: every trace with all of its rows on one
//! shard, both shards used, nothing twice.

use crate::helpers::{batch, free_port, spawn_app};
use reqwest::StatusCode;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The cluster's name in both servers' `remote_servers`.
pub const CLUSTER: &str = "av_two_shards";

pub struct Cluster {
    /// The HTTP URL of each shard's one node.
    pub nodes: Vec<String>,
    /// The servers (each exits once this process is gone).
    _servers: Vec<std::process::Child>,
}

static CLUSTER_NODES: OnceLock<Cluster> = OnceLock::new();

/// Two ClickHouse servers (the stack's engine, `scripts/clickhouse_server.py`)
/// as the two shards of [`CLUSTER`], started on first use; each exits and
/// removes its data once this test process is gone.
pub fn cluster() -> &'static Cluster {
    CLUSTER_NODES.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let home = std::env::var("AV_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".stack"));
        let python = home.join("venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/infra",
            python.display()
        );
        let dir = home.join(format!("cluster-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
        let shards: String = ports
            .iter()
            .map(|(_, tcp)| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
                )
            })
            .collect();
        let extra = dir.join("cluster.xml");
        std::fs::write(
            &extra,
            format!("<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>"),
        )
        .unwrap();
        let (mut nodes, mut servers) = (Vec::new(), Vec::new());
        for (i, (http, tcp)) in ports.iter().enumerate() {
            let data = dir.join(format!("shard{i}"));
            let log = std::fs::File::create(dir.join(format!("shard{i}.out"))).unwrap();
            let server = std::process::Command::new(&python)
                .arg(root.join("scripts/clickhouse_server.py"))
                .arg("run")
                .arg(&data)
                .arg(http.to_string())
                .arg(tcp.to_string())
                .env("AV_CH_CONFIG_EXTRA", &extra)
                .env("AV_CH_EPHEMERAL", "1")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting a clickhouse shard");
            servers.push(server);
            let ready = data.join("run/ports.tsv");
            let deadline = Instant::now() + Duration::from_secs(60);
            while !std::fs::metadata(&ready).is_ok_and(|m| m.len() > 0) {
                assert!(
                    Instant::now() < deadline,
                    "clickhouse shard {i} did not start (see {})",
                    dir.display()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            nodes.push(format!("http://127.0.0.1:{http}"));
        }
        Cluster {
            nodes,
            _servers: servers,
        }
    })
}

/// A client for one node's own (local) tables.
fn node(url: &str) -> clickhouse::Client {
    clickhouse::Client::default().with_url(url).with_database(
        std::env::var("AV_CLICKHOUSE_DATABASE").unwrap_or_else(|_| "agentvista".into()),
    )
}

/// A count on one node, every `?` bound to the organization.
async fn on_node(url: &str, sql: &str, org: Uuid) -> u64 {
    let mut q = node(url).query(sql);
    for _ in 0..sql.matches('?').count() {
        q = q.bind(org.to_string());
    }
    q.fetch_one().await.unwrap()
}

#[tokio::test]
async fn each_trace_is_stored_once_on_one_shard_and_both_shards_are_used() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let mut bodies = Vec::new();
    for _ in 0..40 {
        bodies.push(batch("sharded", 3).1);
    }
    for b in &bodies {
        assert_eq!(app.post_batch(&acct.key, b).await.0, StatusCode::OK);
    }
    // A client re-sending part of its batches changes nothing.
    for b in &bodies[..10] {
        assert_eq!(app.post_batch(&acct.key, b).await.0, StatusCode::OK);
    }
    let list = app
        .wait_for(&acct.key, "/dashboard/traces?limit=100", |b| {
            b["total"] == 40
        })
        .await;
    assert_eq!(list["traces"].as_array().unwrap().len(), 40);
    let detail = app
        .wait_for(
            &acct.key,
            &format!("/agents/{}", app.agent_id(&acct.key, "sharded").await),
            |b| b["total_runs"] == 40,
        )
        .await;
    assert_eq!(detail["total_cost"], 0.18, "40 runs at $0.0045");

    // Where the rows are: some traces on each shard, each with its spans,
    // no trace or span on both, nothing twice after FINAL.
    let nodes = &crate::shards::cluster().nodes;
    let mut traces = Vec::new();
    let mut spans = 0;
    for url in nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let stray = on_node(
                url,
                "SELECT count() FROM spans FINAL WHERE org_id = toUUID(?) \
                 AND trace_id NOT IN (SELECT trace_id FROM traces WHERE org_id = toUUID(?))",
                acct.org_id,
            )
            .await;
            if stray == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stray} spans on {url} without their trace"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ids: Vec<String> = node(url)
            .query("SELECT toString(trace_id) FROM traces FINAL WHERE org_id = toUUID(?)")
            .bind(acct.org_id.to_string())
            .fetch_all()
            .await
            .unwrap();
        assert!(!ids.is_empty(), "shard {url} holds none of 40 traces");
        traces.extend(ids);
        spans += on_node(
            url,
            "SELECT count() FROM spans FINAL WHERE org_id = toUUID(?)",
            acct.org_id,
        )
        .await;
    }
    let distinct: std::collections::HashSet<_> = traces.iter().collect();
    assert_eq!((traces.len(), distinct.len(), spans), (40, 40, 120));

    // The distributed tables answer for both shards.
    let total: u64 = app
        .query
        .0
        .ch
        .query("SELECT count() FROM spans FINAL WHERE org_id = toUUID(?)")
        .bind(acct.org_id.to_string())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(total, 120);
}

#[tokio::test]
async fn a_misconfigured_cluster_is_refused_with_the_setting_named() {
    let cluster = cluster();
    let mut common =
        agentvista_shared::config::CommonConfig::from_env().expect("test configuration");
    crate::adjust_common(&mut common);
    // A fresh database, so that nothing else's schema is touched.
    common.clickhouse_database = format!("av_misconf_{}", Uuid::new_v4().simple());
    let fails = |c: agentvista_shared::config::CommonConfig| async move {
        format!(
            "{:#}",
            writer::schema::migrate_config(&c).await.unwrap_err()
        )
    };

    let mut unknown = common.clone();
    unknown.clickhouse_cluster = Some("no_such_cluster".into());
    let e = fails(unknown).await;
    assert!(
        e.contains("\"no_such_cluster\"") && e.contains("remote_servers"),
        "{e}"
    );

    let mut no_nodes = common.clone();
    no_nodes.clickhouse_nodes.clear();
    let e = fails(no_nodes).await;
    assert!(e.contains("AV_CLICKHOUSE_NODES"), "{e}");

    let mut bad_name = common.clone();
    bad_name.clickhouse_cluster = Some("x'; DROP TABLE spans; --".into());
    let e = fails(bad_name).await;
    assert!(e.contains("AV_CLICKHOUSE_CLUSTER must be"), "{e}");

    // The same settings with the real name migrate both nodes, and the
    // distributed database has every table of the schema.
    writer::schema::migrate_config(&common).await.unwrap();
    for url in &cluster.nodes {
        let tables: u64 = clickhouse::Client::default()
            .with_url(url)
            .query(
                "SELECT count() FROM system.tables WHERE database = ? AND engine = 'Distributed'",
            )
            .bind(format!("{}_dist", common.clickhouse_database))
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(tables as usize, writer::schema::SHARDING.len(), "{url}");
    }
}
