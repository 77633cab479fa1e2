//! The group coordinator (Kafka's classic consumer-group protocol): members
//! join, the coordinator waits until every known member has (re)joined or
//! the rebalance timeout passed, hands the leader the member list, the
//! leader's assignment is handed to each member by SyncGroup, heartbeats
//! keep members alive and tell them of the next rebalance.
//!
//! Memberships live in memory only: after a broker restart members get
//! `UNKNOWN_MEMBER_ID` and join again. Offset commits are fenced by
//! generation and member id, so a consumer that lost its partitions cannot
//! move the group's offsets.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const NONE: i16 = 0;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const MEMBER_ID_REQUIRED: i16 = 79;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

/// What a JoinGroup answers.
#[derive(Clone, Debug, Default)]
pub struct Joined {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Bytes)>,
}

/// What a SyncGroup answers.
#[derive(Clone, Debug, Default)]
pub struct Synced {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

pub struct JoinRequest {
    pub group: String,
    pub member_id: String,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// Version 4 and later: a new member first gets its id with
    /// `MEMBER_ID_REQUIRED` and joins again with it.
    pub require_member_id: bool,
}

struct Member {
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    join: Option<oneshot::Sender<Joined>>,
    sync: Option<oneshot::Sender<Synced>>,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    rebalance_deadline: Instant,
}

impl Group {
    fn new() -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline: Instant::now(),
        }
    }

    fn prepare_rebalance(&mut self) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(Synced {
                        error: REBALANCE_IN_PROGRESS,
                        ..Synced::default()
                    });
                }
            }
        }
        if self.state != State::PreparingRebalance {
            let timeout = self
                .members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default();
            self.rebalance_deadline = Instant::now() + timeout;
            self.state = State::PreparingRebalance;
        }
    }

    /// Ends the join phase when every member has joined (or, with `force`,
    /// drops those that have not).
    fn maybe_complete_join(&mut self, force: bool) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if force {
            self.members.retain(|_, m| m.join.is_some());
        } else if self.members.values().any(|m| m.join.is_none()) {
            return;
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            return;
        }
        // The first protocol (in the leader's order of preference) that
        // every member supports.
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a leader");
        let protocol = self.members[&leader]
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .find(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            });
        let Some(protocol) = protocol else {
            for m in self.members.values_mut() {
                if let Some(tx) = m.join.take() {
                    let _ = tx.send(Joined {
                        error: INCONSISTENT_GROUP_PROTOCOL,
                        ..Joined::default()
                    });
                }
            }
            self.members.clear();
            self.state = State::Empty;
            return;
        };
        let members: Vec<(String, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| *n == protocol)
                    .map(|(_, meta)| meta.clone())
                    .unwrap_or_default();
                (id.clone(), meta)
            })
            .collect();
        self.protocol = Some(protocol);
        self.state = State::CompletingRebalance;
        let now = Instant::now();
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            m.last_seen = now;
            if let Some(tx) = m.join.take() {
                let _ = tx.send(Joined {
                    error: NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    fn remove_member(&mut self, id: &str) -> bool {
        if self.members.remove(id).is_none() {
            return false;
        }
        if self.members.is_empty() && self.state != State::PreparingRebalance {
            self.state = State::Empty;
            self.generation += 1;
            self.leader = None;
        } else {
            self.prepare_rebalance();
            self.maybe_complete_join(false);
        }
        true
    }
}

#[derive(Default)]
pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
}

/// Session timeouts a member may ask for (Kafka's broker defaults).
const MIN_SESSION: Duration = Duration::from_millis(1_000);
const MAX_SESSION: Duration = Duration::from_secs(300);

fn error_joined(error: i16, member_id: String) -> oneshot::Receiver<Joined> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(Joined {
        error,
        generation: -1,
        member_id,
        ..Joined::default()
    });
    rx
}

impl Coordinator {
    pub fn join(&self, req: JoinRequest) -> oneshot::Receiver<Joined> {
        if !(MIN_SESSION..=MAX_SESSION).contains(&req.session_timeout) {
            return error_joined(INVALID_SESSION_TIMEOUT, req.member_id);
        }
        let mut groups = self.groups.lock().expect("groups lock");
        let g = groups.entry(req.group.clone()).or_insert_with(Group::new);
        if g.state != State::Empty && g.protocol_type.as_deref() != Some(req.protocol_type.as_str())
        {
            return error_joined(INCONSISTENT_GROUP_PROTOCOL, req.member_id);
        }
        let member_id = if req.member_id.is_empty() {
            let id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if req.require_member_id {
                return error_joined(MEMBER_ID_REQUIRED, id);
            }
            id
        } else {
            req.member_id
        };
        let (tx, rx) = oneshot::channel();
        if g.state == State::Empty {
            g.protocol_type = Some(req.protocol_type);
        }
        let member = g.members.entry(member_id).or_insert_with(|| Member {
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen: Instant::now(),
            join: None,
            sync: None,
        });
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols;
        member.last_seen = Instant::now();
        if let Some(old) = member.join.replace(tx) {
            let _ = old.send(Joined {
                error: UNKNOWN_MEMBER_ID,
                generation: -1,
                ..Joined::default()
            });
        }
        g.prepare_rebalance();
        g.maybe_complete_join(false);
        rx
    }

    pub fn sync(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<Synced> {
        let (tx, rx) = oneshot::channel();
        let fail = |tx: oneshot::Sender<Synced>, error| {
            let _ = tx.send(Synced {
                error,
                ..Synced::default()
            });
        };
        let mut groups = self.groups.lock().expect("groups lock");
        let Some(g) = groups.get_mut(group) else {
            fail(tx, UNKNOWN_MEMBER_ID);
            return rx;
        };
        if !g.members.contains_key(member_id) {
            fail(tx, UNKNOWN_MEMBER_ID);
            return rx;
        }
        if generation != g.generation {
            fail(tx, ILLEGAL_GENERATION);
            return rx;
        }
        let done = |g: &Group, a: Bytes| Synced {
            error: NONE,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            assignment: a,
        };
        match g.state {
            State::Empty | State::PreparingRebalance => fail(tx, REBALANCE_IN_PROGRESS),
            State::Stable => {
                let a = g.members[member_id].assignment.clone();
                let _ = tx.send(done(g, a));
            }
            State::CompletingRebalance => {
                let m = g.members.get_mut(member_id).expect("member");
                m.last_seen = Instant::now();
                m.sync = Some(tx);
                if g.leader.as_deref() == Some(member_id) {
                    for (id, a) in assignments {
                        if let Some(m) = g.members.get_mut(&id) {
                            m.assignment = a;
                        }
                    }
                    g.state = State::Stable;
                    let waiting: Vec<_> = g
                        .members
                        .values_mut()
                        .filter_map(|m| Some((m.sync.take()?, m.assignment.clone())))
                        .collect();
                    for (tx, a) in waiting {
                        let _ = tx.send(done(g, a));
                    }
                }
            }
        }
        rx
    }

    pub fn heartbeat(&self, group: &str, generation: i32, member_id: &str) -> i16 {
        let mut groups = self.groups.lock().expect("groups lock");
        let Some(g) = groups.get_mut(group) else {
            return UNKNOWN_MEMBER_ID;
        };
        let Some(m) = g.members.get_mut(member_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        m.last_seen = Instant::now();
        if g.state == State::PreparingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        if generation != g.generation {
            return ILLEGAL_GENERATION;
        }
        NONE
    }

    /// Removes members that leave; returns an error code per member.
    pub fn leave(&self, group: &str, members: &[String]) -> Vec<i16> {
        let mut groups = self.groups.lock().expect("groups lock");
        let Some(g) = groups.get_mut(group) else {
            return vec![UNKNOWN_MEMBER_ID; members.len()];
        };
        members
            .iter()
            .map(|id| {
                if g.remove_member(id) {
                    NONE
                } else {
                    UNKNOWN_MEMBER_ID
                }
            })
            .collect()
    }

    /// Whether a commit by `member_id` at `generation` may move the group's
    /// offsets (`NONE`), or the error that refuses it.
    pub fn may_commit(&self, group: &str, generation: i32, member_id: &str) -> i16 {
        let groups = self.groups.lock().expect("groups lock");
        let Some(g) = groups.get(group) else {
            // A group unknown since a restart: only a simple commit (no
            // generation) or a member that must rejoin.
            return if generation < 0 {
                NONE
            } else {
                UNKNOWN_MEMBER_ID
            };
        };
        if generation < 0 {
            return if g.members.is_empty() {
                NONE
            } else {
                UNKNOWN_MEMBER_ID
            };
        }
        if !g.members.contains_key(member_id) {
            return UNKNOWN_MEMBER_ID;
        }
        if generation != g.generation {
            return ILLEGAL_GENERATION;
        }
        if g.state == State::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        NONE
    }

    /// Whether a group has members now.
    pub fn has_members(&self, group: &str) -> bool {
        let groups = self.groups.lock().expect("groups lock");
        groups.get(group).is_some_and(|g| !g.members.is_empty())
    }

    /// Expires members whose session ran out and ends join phases whose
    /// rebalance timeout passed. Run a few times a second.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.groups.lock().expect("groups lock");
        for (name, g) in groups.iter_mut() {
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| {
                    m.join.is_none() && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %name, member = %id, "member's session expired");
                g.remove_member(&id);
            }
            if g.state == State::PreparingRebalance && now >= g.rebalance_deadline {
                g.maybe_complete_join(true);
            }
        }
        groups.retain(|_, g| !(g.state == State::Empty && g.members.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(c: &Coordinator, member: &str) -> oneshot::Receiver<Joined> {
        c.join(JoinRequest {
            group: "g".into(),
            member_id: member.into(),
            client_id: "c".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_member_id: true,
        })
    }

    #[tokio::test]
    async fn a_rebalance_fences_the_previous_generation_out_of_commits() {
        let c = Coordinator::default();
        // A new member first gets its id.
        let first = join(&c, "").await.unwrap();
        assert_eq!(first.error, MEMBER_ID_REQUIRED);
        let a = first.member_id;
        let joined = join(&c, &a).await.unwrap();
        assert_eq!(
            (joined.error, joined.generation, joined.leader.as_str()),
            (NONE, 1, a.as_str())
        );
        assert_eq!(joined.members.len(), 1, "the leader gets the member list");
        let synced = c
            .sync("g", 1, &a, vec![(a.clone(), Bytes::from_static(b"p0-3"))])
            .await
            .unwrap();
        assert_eq!(&synced.assignment[..], b"p0-3");
        assert_eq!(c.may_commit("g", 1, &a), NONE);

        // A second member joins: the first learns of it by heartbeat and
        // rejoins; both get generation 2.
        let b = join(&c, "").await.unwrap().member_id;
        let b_joined = join(&c, &b);
        assert_eq!(c.heartbeat("g", 1, &a), REBALANCE_IN_PROGRESS);
        assert_eq!(
            c.may_commit("g", 1, &a),
            NONE,
            "the revoking member may still commit"
        );
        let a_joined = join(&c, &a).await.unwrap();
        let b_joined = b_joined.await.unwrap();
        assert_eq!((a_joined.generation, b_joined.generation), (2, 2));
        assert!(b_joined.members.is_empty(), "only the leader gets the list");
        assert_eq!(c.may_commit("g", 1, &a), ILLEGAL_GENERATION);
        assert_eq!(c.may_commit("g", 2, "stranger"), UNKNOWN_MEMBER_ID);
        let b_sync = c.sync("g", 2, &b, vec![]);
        let a_sync = c.sync(
            "g",
            2,
            &a,
            vec![
                (a.clone(), Bytes::from_static(b"p0-1")),
                (b.clone(), Bytes::from_static(b"p2-3")),
            ],
        );
        assert_eq!(&b_sync.await.unwrap().assignment[..], b"p2-3");
        assert_eq!(&a_sync.await.unwrap().assignment[..], b"p0-1");
        assert_eq!(c.heartbeat("g", 2, &b), NONE);

        // The leader leaves: the other rejoins and leads generation 3.
        assert_eq!(c.leave("g", std::slice::from_ref(&a)), vec![NONE]);
        assert_eq!(c.heartbeat("g", 2, &b), REBALANCE_IN_PROGRESS);
        let j = join(&c, &b).await.unwrap();
        assert_eq!((j.generation, j.leader.as_str()), (3, b.as_str()));
        assert_eq!(c.may_commit("g", 3, &a), UNKNOWN_MEMBER_ID);
    }
}
