//! The Kafka wire protocol over TCP: one task per connection reads a
//! request, answers it, then reads the next (as Kafka does: a connection's
//! responses come in the order of its requests), and a handler per API
//! maps the request onto the [`Store`], the [`Offsets`] and the
//! [`Coordinator`]. The versions offered ([`VERSIONS`]) are the
//! non-flexible ones librdkafka and the Java client both speak.

use crate::groups::{self, Coordinator, JoinRequest};
use crate::log::AppendError;
use crate::offsets::{Committed, Offsets};
use crate::store::{CreateError, Store};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const UNKNOWN_SERVER_ERROR: i16 = -1;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const UNSUPPORTED_VERSION: i16 = 35;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const KAFKA_STORAGE_ERROR: i16 = 56;

/// The APIs and versions this broker answers.
pub const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 7),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 5),
    (ApiKey::Metadata, 1, 8),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::OffsetFetch, 1, 5),
    (ApiKey::FindCoordinator, 0, 2),
    (ApiKey::JoinGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 3),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 4),
    (ApiKey::DeleteTopics, 1, 3),
];

pub struct Broker {
    pub store: Store,
    pub offsets: Offsets,
    pub groups: Coordinator,
    /// host and port clients are told to connect to.
    pub advertised: (String, i32),
    pub max_request_bytes: usize,
    /// Partitions of a topic created with `num_partitions = -1`.
    pub default_partitions: i32,
    /// Connections served at once; more are closed on accept.
    pub connections: Arc<tokio::sync::Semaphore>,
    /// Bytes of request frames held at once across connections (each frame
    /// takes its length before it is read): many connections that each
    /// declare a large frame wait instead of exhausting memory.
    pub frame_budget: Arc<tokio::sync::Semaphore>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Accepts connections until the process ends.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    // Connections end with the server (an in-process restart in tests).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = broker.connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: at the connection limit");
                    drop(stream);
                    continue;
                };
                let broker = broker.clone();
                connections.spawn(async move {
                    if let Err(e) = broker.connection(stream).await {
                        tracing::debug!(%peer, error = %e, "connection closed");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Broker {
    async fn connection(&self, mut stream: TcpStream) -> anyhow::Result<()> {
        stream.set_nodelay(true)?;
        loop {
            let len = match stream.read_i32().await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if len < 8 || len as usize > self.max_request_bytes {
                anyhow::bail!(
                    "request of {len} bytes refused (limit {})",
                    self.max_request_bytes
                );
            }
            let _budget = self
                .frame_budget
                .acquire_many(u32::try_from(len).unwrap_or(u32::MAX))
                .await?;
            let mut frame = BytesMut::zeroed(len as usize);
            stream.read_exact(&mut frame).await?;
            let Some(response) = self.request(frame.freeze()).await? else {
                continue;
            };
            stream.write_all(&response).await?;
        }
    }

    /// Answers one request frame; `None` for a produce with `acks = 0`.
    async fn request(&self, mut frame: Bytes) -> anyhow::Result<Option<BytesMut>> {
        let key = ApiKey::try_from(frame.clone().get_i16())
            .map_err(|_| anyhow::anyhow!("unknown API key"))?;
        let version = frame.clone().slice(2..4).get_i16();
        let supported = VERSIONS
            .iter()
            .find(|(k, _, _)| *k == key)
            .is_some_and(|(_, min, max)| (*min..=*max).contains(&version));
        if key == ApiKey::ApiVersions && !supported {
            // Answered in version 0 so that any client can read it.
            let header = RequestHeader::decode(&mut frame, 1)?;
            let mut response = self.api_versions();
            response.error_code = UNSUPPORTED_VERSION;
            return Ok(Some(encode(
                header.correlation_id,
                key,
                0,
                ResponseKind::ApiVersions(response),
            )?));
        }
        if !supported {
            anyhow::bail!("{key:?} version {version} is not supported");
        }
        let header = RequestHeader::decode(&mut frame, key.request_header_version(version))?;
        let request = RequestKind::decode(key, &mut frame, version)?;
        let response = match request {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(self.api_versions()),
            RequestKind::Metadata(r) => ResponseKind::Metadata(self.metadata(r)),
            RequestKind::Produce(r) => {
                let acks = r.acks;
                let response = self.produce(r);
                if acks == 0 {
                    return Ok(None);
                }
                ResponseKind::Produce(response)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(self.fetch(r).await),
            RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(self.list_offsets(r)),
            RequestKind::FindCoordinator(_) => {
                ResponseKind::FindCoordinator(self.find_coordinator())
            }
            RequestKind::JoinGroup(r) => {
                ResponseKind::JoinGroup(self.join_group(r, version, &header).await)
            }
            RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(self.sync_group(r).await),
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(
                HeartbeatResponse::default().with_error_code(self.groups.heartbeat(
                    &r.group_id.0,
                    r.generation_id,
                    &r.member_id,
                )),
            ),
            RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(self.leave_group(r, version)),
            RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(self.offset_commit(r)),
            RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(self.offset_fetch(r)),
            RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(self.create_topics(r)),
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(self.delete_topics(r, version))
            }
            other => anyhow::bail!("unexpected request {:?}", std::mem::discriminant(&other)),
        };
        Ok(Some(encode(header.correlation_id, key, version, response)?))
    }

    fn api_versions(&self) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            VERSIONS
                .iter()
                .map(|(k, min, max)| {
                    api_versions_response::ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
    }

    fn metadata(&self, r: MetadataRequest) -> MetadataResponse {
        let topics: Vec<(String, Option<Arc<crate::store::Topic>>)> = match r.topics {
            None => self
                .store
                .topics()
                .into_iter()
                .map(|t| (t.name.clone(), Some(t)))
                .collect(),
            Some(wanted) => wanted
                .into_iter()
                .filter_map(|t| t.name)
                .map(|n| (n.0.to_string(), self.store.topic(&n.0)))
                .collect(),
        };
        let topics = topics
            .into_iter()
            .map(|(name, topic)| {
                let t = metadata_response::MetadataResponseTopic::default()
                    .with_name(Some(topic_name(&name)));
                match topic {
                    None => t.with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
                    Some(topic) => t.with_topic_id(topic.id).with_partitions(
                        (0..topic.partitions.len() as i32)
                            .map(|p| {
                                metadata_response::MetadataResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_leader_id(BrokerId(0))
                                    .with_leader_epoch(-1)
                                    .with_replica_nodes(vec![BrokerId(0)])
                                    .with_isr_nodes(vec![BrokerId(0)])
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(0))
                .with_host(s(&self.advertised.0))
                .with_port(self.advertised.1)])
            .with_cluster_id(Some(s("agentvista-local")))
            .with_controller_id(BrokerId(0))
            .with_topics(topics)
    }

    fn produce(&self, r: ProduceRequest) -> ProduceResponse {
        let responses = r
            .topic_data
            .into_iter()
            .map(|t| {
                let topic = self.store.topic(&t.name.0);
                let partitions = t
                    .partition_data
                    .into_iter()
                    .map(|p| {
                        let resp = produce_response::PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1);
                        let Some(topic) = topic.as_ref().filter(|t| t.has_partition(p.index))
                        else {
                            return resp.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let Some(records) = p.records.filter(|r| !r.is_empty()) else {
                            return resp.with_error_code(CORRUPT_MESSAGE);
                        };
                        match self.store.append(topic, p.index as usize, &records) {
                            Ok(base) => resp.with_base_offset(base).with_log_start_offset(0),
                            Err(AppendError::Corrupt(why)) => {
                                tracing::warn!(topic = %topic.name, partition = p.index, why, "produce refused");
                                resp.with_error_code(CORRUPT_MESSAGE).with_error_message(Some(s(why)))
                            }
                            Err(AppendError::Io(e)) => {
                                tracing::error!(topic = %topic.name, partition = p.index, error = %e, "append failed");
                                resp.with_error_code(KAFKA_STORAGE_ERROR)
                            }
                        }
                    })
                    .collect();
                produce_response::TopicProduceResponse::default()
                    .with_name(t.name)
                    .with_partition_responses(partitions)
            })
            .collect();
        ProduceResponse::default().with_responses(responses)
    }

    async fn fetch(&self, r: FetchRequest) -> FetchResponse {
        let wait = Duration::from_millis(r.max_wait_ms.clamp(0, 30_000) as u64);
        let deadline = tokio::time::Instant::now() + wait;
        let mut appended = self.store.watch_appends();
        loop {
            appended.borrow_and_update();
            let (response, bytes, errors) = self.fetch_once(&r);
            if errors
                || bytes >= r.min_bytes.max(1) as usize
                || tokio::time::Instant::now() >= deadline
            {
                return response;
            }
            if tokio::time::timeout_at(deadline, appended.changed())
                .await
                .is_err()
            {
                return self.fetch_once(&r).0;
            }
        }
    }

    /// One pass over the fetched partitions: the response, the bytes it
    /// carries and whether a partition answered with an error.
    fn fetch_once(&self, r: &FetchRequest) -> (FetchResponse, usize, bool) {
        let mut budget = r.max_bytes.max(1) as usize;
        let (mut total, mut errors) = (0usize, false);
        let responses = r
            .topics
            .iter()
            .map(|t| {
                let topic = self.store.topic(&t.topic.0);
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let data = fetch_response::PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1)
                            .with_preferred_read_replica(BrokerId(-1))
                            .with_aborted_transactions(Some(Vec::new()))
                            .with_records(Some(Bytes::new()));
                        let Some(topic) = topic.as_ref().filter(|t| t.has_partition(p.partition))
                        else {
                            errors = true;
                            return data.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let max = (p.partition_max_bytes.max(1) as usize).min(budget.max(1));
                        let (read, start, next) =
                            self.store
                                .read(topic, p.partition as usize, p.fetch_offset, max);
                        let data = data
                            .with_high_watermark(next)
                            .with_last_stable_offset(next)
                            .with_log_start_offset(start);
                        match read {
                            Err(()) => {
                                errors = true;
                                data.with_error_code(OFFSET_OUT_OF_RANGE)
                            }
                            Ok(None) => data,
                            // Past the request's budget: the next fetch gets it.
                            Ok(Some(_)) if total > 0 && budget == 0 => data,
                            Ok(Some(slice)) => match slice.read() {
                                Ok(bytes) => {
                                    total += bytes.len();
                                    budget = budget.saturating_sub(bytes.len());
                                    data.with_records(Some(Bytes::from(bytes)))
                                }
                                Err(e) => {
                                    tracing::error!(topic = %topic.name, error = %e, "read failed");
                                    errors = true;
                                    data.with_error_code(KAFKA_STORAGE_ERROR)
                                }
                            },
                        }
                    })
                    .collect();
                fetch_response::FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions)
            })
            .collect();
        (
            FetchResponse::default().with_responses(responses),
            total,
            errors,
        )
    }

    fn list_offsets(&self, r: ListOffsetsRequest) -> ListOffsetsResponse {
        let topics = r
            .topics
            .into_iter()
            .map(|t| {
                let topic = self.store.topic(&t.name.0);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let resp = list_offsets_response::ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_timestamp(-1)
                            .with_offset(-1)
                            .with_leader_epoch(-1);
                        let Some(topic) = topic
                            .as_ref()
                            .filter(|t| t.has_partition(p.partition_index))
                        else {
                            return resp.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let log = topic.partitions[p.partition_index as usize]
                            .lock()
                            .expect("partition lock");
                        let offset = match p.timestamp {
                            -2 => log.start_offset(),
                            -1 | -3 => log.next_offset(),
                            ts => log.offset_for_timestamp(ts),
                        };
                        resp.with_offset(offset)
                    })
                    .collect();
                list_offsets_response::ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    }

    fn find_coordinator(&self) -> FindCoordinatorResponse {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(0))
            .with_host(s(&self.advertised.0))
            .with_port(self.advertised.1)
    }

    async fn join_group(
        &self,
        r: JoinGroupRequest,
        version: i16,
        header: &RequestHeader,
    ) -> JoinGroupResponse {
        let rx = self.groups.join(JoinRequest {
            group: r.group_id.0.to_string(),
            member_id: r.member_id.to_string(),
            client_id: header.client_id.as_deref().unwrap_or("client").to_string(),
            session_timeout: Duration::from_millis(r.session_timeout_ms.max(0) as u64),
            rebalance_timeout: Duration::from_millis(
                if version == 0 {
                    r.session_timeout_ms
                } else {
                    r.rebalance_timeout_ms
                }
                .max(0) as u64,
            ),
            protocol_type: r.protocol_type.to_string(),
            protocols: r
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_member_id: version >= 4,
        });
        let joined = rx.await.unwrap_or(groups::Joined {
            error: COORDINATOR_NOT_AVAILABLE,
            generation: -1,
            ..Default::default()
        });
        JoinGroupResponse::default()
            .with_error_code(joined.error)
            .with_generation_id(joined.generation)
            .with_protocol_type(joined.protocol_type.as_deref().map(s))
            .with_protocol_name(Some(s(joined.protocol.as_deref().unwrap_or(""))))
            .with_leader(s(&joined.leader))
            .with_member_id(s(&joined.member_id))
            .with_members(
                joined
                    .members
                    .into_iter()
                    .map(|(id, meta)| {
                        join_group_response::JoinGroupResponseMember::default()
                            .with_member_id(s(&id))
                            .with_metadata(meta)
                    })
                    .collect(),
            )
    }

    async fn sync_group(&self, r: SyncGroupRequest) -> SyncGroupResponse {
        let rx = self.groups.sync(
            &r.group_id.0,
            r.generation_id,
            &r.member_id,
            r.assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        );
        let synced = rx.await.unwrap_or(groups::Synced {
            error: COORDINATOR_NOT_AVAILABLE,
            ..Default::default()
        });
        SyncGroupResponse::default()
            .with_error_code(synced.error)
            .with_protocol_type(synced.protocol_type.as_deref().map(s))
            .with_protocol_name(synced.protocol.as_deref().map(s))
            .with_assignment(synced.assignment)
    }

    fn leave_group(&self, r: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        if version < 3 {
            let error = self.groups.leave(&r.group_id.0, &[r.member_id.to_string()])[0];
            return LeaveGroupResponse::default().with_error_code(error);
        }
        let ids: Vec<String> = r.members.iter().map(|m| m.member_id.to_string()).collect();
        let errors = self.groups.leave(&r.group_id.0, &ids);
        LeaveGroupResponse::default().with_members(
            r.members
                .into_iter()
                .zip(errors)
                .map(|(m, e)| {
                    leave_group_response::MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(e)
                })
                .collect(),
        )
    }

    fn offset_commit(&self, r: OffsetCommitRequest) -> OffsetCommitResponse {
        let group = r.group_id.0.to_string();
        let mut error =
            self.groups
                .may_commit(&group, r.generation_id_or_member_epoch, &r.member_id);
        let unknown = |t: &offset_commit_request::OffsetCommitRequestTopic, p: i32| {
            self.store
                .topic(&t.name.0)
                .is_none_or(|topic| !topic.has_partition(p))
        };
        if error == groups::NONE {
            let offsets = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                .filter(|(t, p)| !unknown(t, p.partition_index))
                .map(|(t, p)| {
                    (
                        t.name.0.to_string(),
                        p.partition_index,
                        Committed {
                            offset: p.committed_offset,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        },
                    )
                })
                .collect();
            if let Err(e) = self.offsets.commit(&group, offsets) {
                tracing::error!(group, error = %e, "offsets not stored");
                error = COORDINATOR_NOT_AVAILABLE;
            }
        }
        let topics = r
            .topics
            .iter()
            .map(|t| {
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                let e = if error == groups::NONE && unknown(t, p.partition_index) {
                                    UNKNOWN_TOPIC_OR_PARTITION
                                } else {
                                    error
                                };
                                offset_commit_response::OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(e)
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }

    fn offset_fetch(&self, r: OffsetFetchRequest) -> OffsetFetchResponse {
        let group = r.group_id.0.to_string();
        let wanted: Vec<(String, Vec<i32>)> = match r.topics {
            Some(topics) => topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect(),
            None => {
                let mut all: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                for (topic, p, _) in self.offsets.of_group(&group) {
                    all.entry(topic).or_default().push(p);
                }
                all.into_iter().collect()
            }
        };
        let topics = wanted
            .into_iter()
            .map(|(topic, partitions)| {
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                let c = self.offsets.get(&group, &topic, p);
                                offset_fetch_response::OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(s(c
                                        .and_then(|c| c.metadata)
                                        .as_deref()
                                        .unwrap_or(""))))
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetFetchResponse::default().with_topics(topics)
    }

    fn create_topics(&self, r: CreateTopicsRequest) -> CreateTopicsResponse {
        let topics = r
            .topics
            .into_iter()
            .map(|t| {
                let partitions = if t.num_partitions == -1 {
                    self.default_partitions
                } else {
                    t.num_partitions
                };
                let result = create_topics_response::CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_num_partitions(partitions)
                    .with_replication_factor(1);
                let (code, message) = if !(t.replication_factor == -1 || t.replication_factor == 1)
                {
                    (
                        INVALID_REPLICATION_FACTOR,
                        "this broker is a single node: replication factor 1",
                    )
                } else if r.validate_only {
                    (groups::NONE, "")
                } else {
                    match self.store.create_topic(&t.name.0, partitions) {
                        Ok(()) => (groups::NONE, ""),
                        Err(CreateError::Exists) => (TOPIC_ALREADY_EXISTS, "topic already exists"),
                        Err(CreateError::InvalidName) => {
                            (INVALID_TOPIC_EXCEPTION, "invalid topic name")
                        }
                        Err(CreateError::InvalidPartitions) => {
                            (INVALID_PARTITIONS, "partitions must be 1 to 1024")
                        }
                        Err(CreateError::Io(e)) => {
                            tracing::error!(topic = %t.name.0, error = %e, "topic not created");
                            (
                                UNKNOWN_SERVER_ERROR,
                                "the broker could not create the topic's files",
                            )
                        }
                    }
                };
                result
                    .with_error_code(code)
                    .with_error_message((code != groups::NONE).then(|| s(message)))
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }

    fn delete_topics(&self, r: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
        let names: Vec<TopicName> = if version >= 6 {
            r.topics.into_iter().filter_map(|t| t.name).collect()
        } else {
            r.topic_names
        };
        let responses = names
            .into_iter()
            .map(|name| {
                let deleted = self.store.delete_topic(&name.0);
                if deleted {
                    if let Err(e) = self.offsets.remove_topic(&name.0) {
                        tracing::warn!(topic = %name.0, error = %e, "deleted topic's offsets not forgotten");
                    }
                }
                delete_topics_response::DeletableTopicResult::default()
                    .with_name(Some(name))
                    .with_error_code(if deleted { groups::NONE } else { UNKNOWN_TOPIC_OR_PARTITION })
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    }
}

/// A response frame: length, header, body.
fn encode(
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    response: ResponseKind,
) -> anyhow::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, key.response_header_version(version))?;
    response.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn offered_versions_are_within_the_protocol_crate_and_not_flexible() {
        for (key, min, max) in super::VERSIONS {
            let valid = key.valid_versions();
            assert!(valid.min <= *min && *max <= valid.max, "{key:?}");
            // Flexible versions use header version 2; not offered (but
            // ApiVersions, whose v3 clients send first).
            if *key != super::ApiKey::ApiVersions {
                assert!(
                    key.request_header_version(*max) < 2,
                    "{key:?} v{max} is flexible"
                );
            }
        }
    }
}
