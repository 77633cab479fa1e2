//! The topics and their partitions on disk under `<data>/topics/<name>/`:
//! `topic.json` (partition count and id, written last when a topic is
//! created, so a half-created topic is not loaded) and a directory of
//! segments per partition ([`crate::log`]).
//!
//! Retention ([`Store::retain`]), the bound on disk and memory: a closed
//! segment is deleted once every consumer group that committed offsets on
//! the topic has committed past it and it is older than
//! `retention_consumed`; or when it is older than `retention`; or when the
//! partition holds more than `retention_bytes` (oldest first). The last two
//! may drop unread data, as Kafka's retention does; they are the hard bound.
//! An active segment is closed once its first write is `segment_age` old,
//! so a topic no longer written to is emptied too.

use crate::log::{AppendError, PartitionLog, Slice};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data: PathBuf,
    pub segment_bytes: u64,
    pub retention_bytes: u64,
    pub retention: Duration,
    pub retention_consumed: Duration,
    /// Age at which an active segment is closed (Kafka's `segment.ms`).
    pub segment_age: Duration,
    pub fsync: bool,
}

#[derive(Serialize, Deserialize)]
struct TopicFile {
    id: Uuid,
    partitions: i32,
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Mutex<PartitionLog>>,
    dir: PathBuf,
}

impl Topic {
    /// Whether `p` is one of the topic's partitions.
    pub fn has_partition(&self, p: i32) -> bool {
        usize::try_from(p).is_ok_and(|p| p < self.partitions.len())
    }
}

pub struct Store {
    config: StoreConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Bumped on every append: long-polling fetches wait on it.
    appended: tokio::sync::watch::Sender<u64>,
}

/// Kafka's rule for topic names (also what keeps them safe as paths).
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[derive(Debug)]
pub enum CreateError {
    Exists,
    InvalidName,
    InvalidPartitions,
    Io(std::io::Error),
}

/// What a deleted topic's directory is renamed with before its files go:
/// `~` is not allowed in topic names, so it is never taken for a topic.
const DELETED: &str = "~deleted-";

/// The name a deleted topic's directory is renamed to before its files are
/// removed: never a valid topic name, so an interrupted deletion is never
/// loaded back as a topic.
fn deleted_dir_name(name: &str) -> String {
    format!("{name}{DELETED}{}", Uuid::new_v4())
}

/// Partitions a topic may have.
pub const MAX_PARTITIONS: i32 = 1024;

impl Store {
    pub fn open(config: StoreConfig) -> std::io::Result<Store> {
        let root = config.data.join("topics");
        std::fs::create_dir_all(&root)?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_topic_name(&name) {
                // A topic whose deletion a stop interrupted (renamed with a
                // suffix no topic name can have), or a stray file.
                if name.contains(DELETED) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                continue;
            }
            let meta = match std::fs::read(entry.path().join("topic.json")) {
                Ok(m) => m,
                Err(_) => {
                    tracing::warn!(topic = %name, "topic without topic.json (creation interrupted): removed");
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
            };
            let meta: TopicFile = serde_json::from_slice(&meta)
                .map_err(|e| std::io::Error::other(format!("{name}/topic.json: {e}")))?;
            let topic = Self::load_topic(&config, &name, &entry.path(), meta)?;
            topics.insert(name, Arc::new(topic));
        }
        Ok(Store {
            config,
            topics: RwLock::new(topics),
            appended: tokio::sync::watch::Sender::new(0),
        })
    }

    fn load_topic(
        config: &StoreConfig,
        name: &str,
        dir: &Path,
        meta: TopicFile,
    ) -> std::io::Result<Topic> {
        let partitions = (0..meta.partitions)
            .map(|p| {
                PartitionLog::open(&dir.join(p.to_string()), config.segment_bytes, config.fsync)
                    .map(Mutex::new)
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Topic {
            name: name.to_string(),
            id: meta.id,
            partitions,
            dir: dir.to_path_buf(),
        })
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().expect("topics lock").get(name).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .expect("topics lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), CreateError> {
        if !valid_topic_name(name) {
            return Err(CreateError::InvalidName);
        }
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(CreateError::InvalidPartitions);
        }
        let mut topics = self.topics.write().expect("topics lock");
        if topics.contains_key(name) {
            return Err(CreateError::Exists);
        }
        let dir = self.config.data.join("topics").join(name);
        let meta = TopicFile {
            id: Uuid::new_v4(),
            partitions,
        };
        let created = (|| {
            std::fs::create_dir_all(&dir)?;
            for p in 0..partitions {
                std::fs::create_dir_all(dir.join(p.to_string()))?;
            }
            let tmp = dir.join("topic.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&meta).expect("json"))?;
            if self.config.fsync {
                std::fs::File::open(&tmp)?.sync_all()?;
            }
            std::fs::rename(&tmp, dir.join("topic.json"))?;
            Self::load_topic(&self.config, name, &dir, meta)
        })();
        match created {
            Ok(topic) => {
                tracing::info!(topic = name, partitions, "topic created");
                topics.insert(name.to_string(), Arc::new(topic));
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(CreateError::Io(e))
            }
        }
    }

    /// Removes a topic; its files go in the background.
    pub fn delete_topic(&self, name: &str) -> bool {
        let Some(topic) = self.topics.write().expect("topics lock").remove(name) else {
            return false;
        };
        let gone = topic.dir.with_file_name(deleted_dir_name(name));
        match std::fs::rename(&topic.dir, &gone) {
            Ok(()) => {
                std::thread::spawn(move || {
                    let _ = std::fs::remove_dir_all(gone);
                });
            }
            Err(e) => tracing::warn!(topic = name, error = %e, "deleted topic's files not removed"),
        }
        tracing::info!(topic = name, "topic deleted");
        true
    }

    pub fn append(
        &self,
        topic: &Topic,
        partition: usize,
        records: &[u8],
    ) -> Result<i64, AppendError> {
        let base = topic.partitions[partition]
            .lock()
            .expect("partition lock")
            .append(records)?;
        self.appended.send_modify(|n| *n += 1);
        Ok(base)
    }

    /// What a fetch at `offset` returns (see [`PartitionLog::read`]), with
    /// the partition's start and next offsets.
    #[allow(clippy::result_unit_err)]
    pub fn read(
        &self,
        topic: &Topic,
        partition: usize,
        offset: i64,
        max_bytes: usize,
    ) -> (Result<Option<Slice>, ()>, i64, i64) {
        let log = topic.partitions[partition].lock().expect("partition lock");
        (
            log.read(offset, max_bytes),
            log.start_offset(),
            log.next_offset(),
        )
    }

    pub fn watch_appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// One retention pass; `consumed(topic, partition)` is the lowest offset
    /// committed for that partition by every group that committed on the
    /// topic (`None` if no group did). Returns the bytes freed.
    pub fn retain(&self, consumed: impl Fn(&str, i32) -> Option<i64>) -> u64 {
        let now = SystemTime::now();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        let mut freed = 0;
        for topic in self.topics() {
            for (p, log) in topic.partitions.iter().enumerate() {
                let mut log = log.lock().expect("partition lock");
                if let Err(e) = log.roll_if_older(self.config.segment_age) {
                    tracing::warn!(topic = %topic.name, partition = p, error = %e, "segment not rolled");
                }
                let committed = consumed(&topic.name, p as i32);
                let mut excess = log.size().saturating_sub(self.config.retention_bytes);
                freed += log.delete_segments_below(|end, size, modified| {
                    let read_by_all = committed.is_some_and(|c| c >= end)
                        && age(modified) >= self.config.retention_consumed;
                    let too_old = age(modified) >= self.config.retention;
                    let over = excess > 0;
                    if over && !read_by_all && !too_old {
                        tracing::warn!(topic = %topic.name, partition = p, "partition over its retention bytes: oldest segment deleted unread");
                    }
                    if read_by_all || too_old || over {
                        excess = excess.saturating_sub(size);
                        true
                    } else {
                        false
                    }
                });
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data: PathBuf) -> StoreConfig {
        StoreConfig {
            data,
            segment_bytes: 1 << 20,
            retention_bytes: 1 << 30,
            retention: Duration::from_secs(3600),
            retention_consumed: Duration::from_secs(0),
            segment_age: Duration::from_secs(3600),
            fsync: false,
        }
    }

    #[test]
    fn topics_survive_a_reopen_and_a_half_deleted_or_half_created_one_does_not() {
        let data = std::env::temp_dir().join(format!("av-broker-store-{}", Uuid::new_v4()));
        let store = Store::open(config(data.clone())).unwrap();
        store.create_topic("keep.me", 2).unwrap();
        store.create_topic("gone", 1).unwrap();
        assert!(matches!(
            store.create_topic("keep.me", 2),
            Err(CreateError::Exists)
        ));
        assert!(matches!(
            store.create_topic("../x", 1),
            Err(CreateError::InvalidName)
        ));
        assert!(matches!(
            store.create_topic("x", 0),
            Err(CreateError::InvalidPartitions)
        ));
        drop(store);
        // A deletion interrupted after the rename, and a creation before
        // topic.json was written.
        let topics = data.join("topics");
        // The rename delete_topic makes, its removal interrupted.
        let renamed = deleted_dir_name("gone");
        assert!(!valid_topic_name(&renamed));
        std::fs::rename(topics.join("gone"), topics.join(&renamed)).unwrap();
        std::fs::create_dir_all(topics.join("half").join("0")).unwrap();
        let store = Store::open(config(data.clone())).unwrap();
        let names: Vec<String> = store.topics().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, vec!["keep.me".to_string()]);
        assert_eq!(store.topic("keep.me").unwrap().partitions.len(), 2);
        assert!(!topics.join(&renamed).exists());
        assert!(!topics.join("half").exists());
        assert!(store.delete_topic("keep.me"));
        assert!(store.topic("keep.me").is_none());
        // Reopened at once (its files' removal perhaps not done): the
        // deleted topic does not come back.
        drop(store);
        let store = Store::open(config(data.clone())).unwrap();
        assert!(store.topics().is_empty());
        drop(store);
        std::fs::remove_dir_all(data).unwrap();
    }
}
