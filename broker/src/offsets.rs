//! Consumer groups' committed offsets, kept in `<data>/offsets.json`.
//!
//! Offsets of a group that has no members and has not committed for the
//! offsets retention are forgotten ([`Offsets::expire`]), so an abandoned
//! group does not hold a topic's data on disk for ever.
//!
//! Every commit rewrites the file (a temporary file renamed over it, so a
//! kill leaves either the old or the new whole file) before it is
//! acknowledged; the map is small (groups × partitions).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Committed {
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// group → topic → partition → committed offset.
type Map = BTreeMap<String, Group>;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Group {
    /// Seconds since the epoch of the group's last commit.
    #[serde(default)]
    committed_at: u64,
    topics: BTreeMap<String, BTreeMap<i32, Committed>>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct Offsets {
    path: PathBuf,
    fsync: bool,
    map: Mutex<Map>,
}

impl Offsets {
    pub fn open(path: PathBuf, fsync: bool) -> std::io::Result<Offsets> {
        let map = match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e),
        };
        Ok(Offsets {
            path,
            fsync,
            map: Mutex::new(map),
        })
    }

    /// Stores the offsets of one commit (all or none) and persists them.
    pub fn commit(
        &self,
        group: &str,
        offsets: Vec<(String, i32, Committed)>,
    ) -> std::io::Result<()> {
        let mut map = self.map.lock().expect("offsets lock");
        let mut next = map.clone();
        let g = next.entry(group.to_string()).or_default();
        g.committed_at = now_secs();
        for (topic, partition, c) in offsets {
            g.topics.entry(topic).or_default().insert(partition, c);
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    fn persist(&self, map: &Map) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(map).expect("json"))?;
        if self.fsync {
            std::fs::File::open(&tmp)?.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        let map = self.map.lock().expect("offsets lock");
        map.get(group)?.topics.get(topic)?.get(&partition).cloned()
    }

    /// Every committed offset of a group: (topic, partition, committed).
    pub fn of_group(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let map = self.map.lock().expect("offsets lock");
        map.get(group)
            .into_iter()
            .flat_map(|g| g.topics.iter())
            .flat_map(|(topic, ps)| ps.iter().map(move |(p, c)| (topic.clone(), *p, c.clone())))
            .collect()
    }

    /// The lowest offset committed on a partition over the groups that
    /// committed anything on its topic; a group that committed on the topic
    /// but not on this partition counts as offset 0.
    pub fn min_committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let map = self.map.lock().expect("offsets lock");
        map.values()
            .filter_map(|g| g.topics.get(topic))
            .map(|ps| ps.get(&partition).map_or(0, |c| c.offset))
            .min()
    }

    /// Forgets the offsets of groups without members whose last commit is
    /// older than `retention`.
    pub fn expire(
        &self,
        retention: std::time::Duration,
        has_members: impl Fn(&str) -> bool,
    ) -> std::io::Result<()> {
        let mut map = self.map.lock().expect("offsets lock");
        let cutoff = now_secs().saturating_sub(retention.as_secs());
        let expired: Vec<String> = map
            .iter()
            .filter(|(name, g)| g.committed_at < cutoff && !has_members(name))
            .map(|(name, _)| name.clone())
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        let mut next = map.clone();
        for name in &expired {
            tracing::info!(group = %name, "committed offsets expired (no members, no recent commit)");
            next.remove(name);
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }

    /// Forgets a deleted topic's offsets.
    pub fn remove_topic(&self, topic: &str) -> std::io::Result<()> {
        let mut map = self.map.lock().expect("offsets lock");
        let mut next = map.clone();
        for g in next.values_mut() {
            g.topics.remove(topic);
        }
        next.retain(|_, g| !g.topics.is_empty());
        self.persist(&next)?;
        *map = next;
        Ok(())
    }
}
