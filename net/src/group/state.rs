//! The classic group membership protocol for one group, as Kafka's group coordinator runs it:
//! Empty → PreparingRebalance → CompletingRebalance → Stable (→ Dead), generations, a leader
//! that computes the assignment, member ids handed out by the coordinator, static members.
//!
//! No I/O and no clock: time comes in as milliseconds on a monotonic scale, deferred answers
//! (a JoinGroup that waits for the rebalance, a SyncGroup that waits for the leader) go out
//! over oneshot channels, and a group whose stored form changed says so
//! ([`Group::take_dirty`]); the coordinator around it persists and runs the timers.

use std::collections::HashMap;

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::error::ResponseError;

use super::records::{StoredGroup, StoredMember};

/// Milliseconds on a monotonic scale.
pub type Millis = u64;

/// Where a group is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (offsets may exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment handed out; members heartbeat.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses (DescribeGroups, ListGroups).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Coordinator settings that shape membership.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// How long the first rebalance of an empty group waits for more members
    /// (`group.initial.rebalance.delay.ms`).
    pub initial_rebalance_delay_ms: Millis,
    /// A new member that never completes its join is dropped after this.
    pub new_member_join_timeout_ms: Millis,
    /// Smallest session timeout accepted (`group.min.session.timeout.ms`).
    pub min_session_timeout_ms: i32,
    /// Largest session timeout accepted (`group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            new_member_join_timeout_ms: 300_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
        }
    }
}

/// A JoinGroup, decoded.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Empty on a first join.
    pub member_id: String,
    /// `group.instance.id` (static membership).
    pub instance_id: Option<String>,
    /// v4+: a first join gets MEMBER_ID_REQUIRED and a member id to come back with.
    pub require_known_member_id: bool,
    /// Client id from the request header.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// How long a rebalance waits for this member.
    pub rebalance_timeout_ms: i32,
    /// How long without a heartbeat before the member is dropped.
    pub session_timeout_ms: i32,
    /// `consumer` for consumers.
    pub protocol_type: String,
    /// Supported protocols (assignors) in preference order, each with its metadata.
    pub protocols: Vec<(String, Bytes)>,
}

/// A member as the leader sees it in the JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Kafka error code.
    pub error: i16,
    /// The new generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member id of the asker (assigned by the coordinator on a first join).
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    /// A refusal with `error`, addressed to `member_id`.
    #[must_use]
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: error.code(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// The SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Kafka error code.
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    /// A refusal with `error`.
    #[must_use]
    pub fn error(error: ResponseError) -> Self {
        Self {
            error: error.code(),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer now, or one that comes when the group gets there.
#[derive(Debug)]
pub enum Reply<T> {
    /// Ready.
    Now(T),
    /// Comes later (the sender is held by the group).
    Later(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    /// Waits for the answer; `gone` if the group dropped the waiter (it was deleted or the
    /// coordinator stopped).
    pub async fn wait(self, gone: T) -> T {
        match self {
            Self::Now(value) => value,
            Self::Later(receiver) => receiver.await.unwrap_or(gone),
        }
    }
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Protocol type it joined with.
    pub protocol_type: String,
    /// Its protocols in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Its current assignment.
    pub assignment: Bytes,
    last_heard: Millis,
    is_new: bool,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    fn expired(&self, now: Millis, config: &GroupConfig) -> bool {
        if self.awaiting_join.is_some() || self.awaiting_sync.is_some() {
            return false; // a rebalance timeout governs members inside a rebalance
        }
        let limit = if self.is_new {
            config.new_member_join_timeout_ms
        } else {
            Millis::try_from(self.session_timeout_ms).unwrap_or(0)
        };
        now >= self.last_heard.saturating_add(limit)
    }
}

/// Per-member outcome of a LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveOutcome {
    /// Member id asked to leave.
    pub member_id: String,
    /// Instance id asked to leave.
    pub instance_id: Option<String>,
    /// Kafka error code.
    pub error: i16,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Metadata for the chosen protocol (Stable groups only).
    pub metadata: Bytes,
    /// Assignment (Stable groups only).
    pub assignment: Bytes,
}

/// One group's membership.
#[derive(Debug)]
pub struct Group {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order (the first member to join leads a new group).
    members: Vec<Member>,
    /// Pending members: handed a member id (MEMBER_ID_REQUIRED), not yet joined; value is
    /// the deadline to join by.
    pending: HashMap<String, Millis>,
    /// PreparingRebalance: when the join phase ends regardless.
    join_deadline: Option<Millis>,
    /// The first rebalance of an empty group: the delay's hard limit, and whether a member
    /// joined during the current delay.
    initial_delay: Option<(Millis, bool)>,
    /// CompletingRebalance: when members that have not synced are dropped.
    sync_deadline: Option<Millis>,
    dirty: bool,
}

impl Group {
    /// A new empty group.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: HashMap::new(),
            join_deadline: None,
            initial_delay: None,
            sync_deadline: None,
            dirty: false,
        }
    }

    /// Rebuilds a group from its stored form (coordinator load). Members come back with a
    /// fresh session, as if they had just heartbeated.
    #[must_use]
    pub fn from_stored(id: impl Into<String>, stored: StoredGroup, now: Millis) -> Self {
        let mut group = Self::new(id);
        group.generation = stored.generation_id;
        group.protocol_type = stored.protocol_type;
        group.protocol = stored.protocol_name;
        group.leader = stored.leader;
        for stored_member in stored.members {
            let protocol = group.protocol.clone().unwrap_or_default();
            group.members.push(Member {
                member_id: stored_member.member_id,
                instance_id: stored_member.group_instance_id,
                client_id: stored_member.client_id,
                client_host: stored_member.client_host,
                rebalance_timeout_ms: stored_member.rebalance_timeout_ms,
                session_timeout_ms: stored_member.session_timeout_ms,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol, stored_member.subscription)],
                assignment: stored_member.assignment,
                last_heard: now,
                is_new: false,
                awaiting_join: None,
                awaiting_sync: None,
            });
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        if group
            .leader
            .as_ref()
            .is_none_or(|leader| group.member(leader).is_none())
        {
            group.leader = group.members.first().map(|m| m.member_id.clone());
        }
        group
    }

    /// The stored form.
    #[must_use]
    pub fn to_stored(&self, now_wall_ms: i64) -> StoredGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone(),
            generation_id: self.generation,
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: now_wall_ms,
            members: self
                .members
                .iter()
                .map(|member| StoredMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    session_timeout_ms: member.session_timeout_ms,
                    subscription: member.metadata_for(&protocol),
                    assignment: member.assignment.clone(),
                })
                .collect(),
        }
    }

    /// The group id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// Current generation.
    #[must_use]
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The protocol type (`consumer`), once a member joined.
    #[must_use]
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The chosen protocol of the current generation.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The leader's member id.
    #[must_use]
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The members, in join order.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Whether the group has no members (and none about to join).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// Whether the stored form changed since the last call (then the caller persists it).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the group deleted: every waiter is told the coordinator moved on.
    pub fn mark_dead(&mut self) {
        for member in &mut self.members {
            if let Some(waiter) = member.awaiting_join.take() {
                let _ = waiter.send(JoinResult::error(
                    ResponseError::CoordinatorNotAvailable,
                    &member.member_id,
                ));
            }
            if let Some(waiter) = member.awaiting_sync.take() {
                let _ = waiter.send(SyncResult::error(ResponseError::CoordinatorNotAvailable));
            }
        }
        self.members.clear();
        self.pending.clear();
        self.state = GroupState::Dead;
    }

    fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// FENCED_INSTANCE_ID when `instance_id` belongs to another member id.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|instance| self.static_member(instance))
            .is_some_and(|member| member.member_id != member_id)
    }

    /// Protocols every member supports, in the first member's preference order.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect()
    }

    /// Whether a member with these protocols may join.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    /// The protocol with most first-choice votes among those everyone supports.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            if let Some(index) = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| c == name))
            {
                votes[index] += 1;
            }
        }
        let mut best: Option<usize> = None;
        for (index, count) in votes.iter().enumerate() {
            if best.is_none_or(|b| *count > votes[b]) {
                best = Some(index);
            }
        }
        best.map(|index| candidates[index].clone())
    }

    fn max_rebalance_timeout(&self) -> Millis {
        self.members
            .iter()
            .map(|m| Millis::try_from(m.rebalance_timeout_ms).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    fn current_result(&self, member_id: &str, leader_view: bool) -> JoinResult {
        let members = if leader_view {
            self.member_list()
        } else {
            Vec::new()
        };
        JoinResult {
            error: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    fn member_list(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    /// JoinGroup. `new_member_id` is the id a first join gets (the caller makes it unique).
    pub fn join(
        &mut self,
        request: JoinRequest,
        new_member_id: String,
        now: Millis,
        config: &GroupConfig,
    ) -> Reply<JoinResult> {
        let member_id = request.member_id.clone();
        let refuse = |error: ResponseError| Reply::Now(JoinResult::error(error, &member_id));
        if self.state == GroupState::Dead {
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return refuse(ResponseError::InvalidSessionTimeout);
        }
        if !self.supports(&request.protocol_type, &request.protocols) {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if member_id.is_empty() {
            if let Some(instance) = request.instance_id.clone() {
                if let Some(old_id) = self.static_member(&instance).map(|m| m.member_id.clone()) {
                    return self.replace_static_member(&old_id, new_member_id, request, now);
                }
                return self.add_member_and_rebalance(new_member_id, request, now, config);
            }
            if request.require_known_member_id {
                let deadline =
                    now.saturating_add(Millis::try_from(request.session_timeout_ms).unwrap_or(0));
                self.pending.insert(new_member_id.clone(), deadline);
                return Reply::Now(JoinResult::error(
                    ResponseError::MemberIdRequired,
                    &new_member_id,
                ));
            }
            return self.add_member_and_rebalance(new_member_id, request, now, config);
        }
        if self.pending.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(member_id, request, now, config);
        }
        if self.fenced(&member_id, request.instance_id.as_deref()) {
            return refuse(ResponseError::FencedInstanceId);
        }
        let Some(member) = self.member(&member_id) else {
            return refuse(ResponseError::UnknownMemberId);
        };
        let same_protocols = member.matches(&request.protocols);
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(request, now),
            GroupState::CompletingRebalance if same_protocols => {
                Reply::Now(self.current_result(&member_id, is_leader))
            }
            GroupState::Stable if same_protocols && !is_leader => {
                if let Some(member) = self.member_mut(&member_id) {
                    member.last_heard = now;
                }
                Reply::Now(self.current_result(&member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(request, now)
            }
            GroupState::Empty | GroupState::Dead => refuse(ResponseError::UnknownMemberId),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Millis,
        config: &GroupConfig,
    ) -> Reply<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        if let Some((_, added)) = &mut self.initial_delay {
            *added = true;
        }
        self.members.push(Member {
            member_id,
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            last_heard: now,
            is_new: true,
            awaiting_join: Some(sender),
            awaiting_sync: None,
        });
        self.maybe_prepare_rebalance(now, config);
        self.try_complete_join(now);
        Reply::Later(receiver)
    }

    fn update_member_and_rebalance(
        &mut self,
        request: JoinRequest,
        now: Millis,
    ) -> Reply<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        let Some(member) = self.member_mut(&request.member_id) else {
            return Reply::Now(JoinResult::error(
                ResponseError::UnknownMemberId,
                &request.member_id,
            ));
        };
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.last_heard = now;
        if let Some(previous) = member.awaiting_join.replace(sender) {
            let _ = previous.send(JoinResult::error(
                ResponseError::RebalanceInProgress,
                &request.member_id,
            ));
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, None);
        }
        self.try_complete_join(now);
        Reply::Later(receiver)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        request: JoinRequest,
        now: Millis,
    ) -> Reply<JoinResult> {
        let previous_leader = self.leader.clone().unwrap_or_default();
        let Some(member) = self.member_mut(old_id) else {
            return Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, old_id));
        };
        if let Some(waiter) = member.awaiting_join.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(waiter) = member.awaiting_sync.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        member.member_id = new_id.clone();
        let protocols_changed = !member.matches(&request.protocols);
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.last_heard = now;
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.dirty = true;
        match self.state {
            GroupState::Stable if !protocols_changed || self.select_protocol() == self.protocol => {
                // Rejoin without a rebalance. The answer names the previous leader id so a
                // returning leader does not compute an assignment a stable group would not
                // hand out; the member then syncs and gets its existing assignment.
                let mut result = self.current_result(&new_id, false);
                result.leader = previous_leader;
                Reply::Now(result)
            }
            _ => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.member_mut(&new_id) {
                    member.awaiting_join = Some(sender);
                }
                if self.state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(now, None);
                }
                self.try_complete_join(now);
                Reply::Later(receiver)
            }
        }
    }

    fn maybe_prepare_rebalance(&mut self, now: Millis, config: &GroupConfig) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now, Some(config));
        }
    }

    /// Starts a rebalance. `config` is given when the first rebalance of an empty group may
    /// be delayed for more members.
    fn prepare_rebalance(&mut self, now: Millis, config: Option<&GroupConfig>) {
        if self.state == GroupState::CompletingRebalance {
            for member in &mut self.members {
                member.assignment = Bytes::new();
                if let Some(waiter) = member.awaiting_sync.take() {
                    let _ = waiter.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = self.max_rebalance_timeout();
        match config {
            Some(config) if self.state == GroupState::Empty => {
                let delay = config.initial_rebalance_delay_ms.min(rebalance_timeout);
                self.join_deadline = Some(now.saturating_add(delay));
                self.initial_delay = Some((now.saturating_add(rebalance_timeout), false));
            }
            _ => {
                self.join_deadline = Some(now.saturating_add(rebalance_timeout));
                self.initial_delay = None;
            }
        }
        self.sync_deadline = None;
        self.state = GroupState::PreparingRebalance;
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    fn try_complete_join(&mut self, now: Millis) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_joined()
        {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin leave (static members stay), a new
    /// generation starts, and every waiting member gets its answer.
    fn complete_join(&mut self, now: Millis) {
        let before = self.members.len();
        self.members
            .retain(|m| m.awaiting_join.is_some() || m.instance_id.is_some());
        if self.members.len() != before
            && self
                .leader
                .as_ref()
                .is_some_and(|leader| !self.members.iter().any(|m| &m.member_id == leader))
        {
            self.leader = None;
        }
        self.initial_delay = None;
        if self.members.is_empty() {
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            self.join_deadline = None;
            self.state = GroupState::Empty;
            self.dirty = true;
            return;
        }
        // The leader must be a member that rejoined.
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|leader| self.member(leader))
            .is_some_and(|m| m.awaiting_join.is_some());
        if !leader_joined {
            match self.members.iter().find(|m| m.awaiting_join.is_some()) {
                Some(member) => self.leader = Some(member.member_id.clone()),
                None => {
                    // Only static members that have not come back: wait another round for
                    // them to rejoin or for their sessions to end.
                    self.join_deadline = Some(now.saturating_add(self.max_rebalance_timeout()));
                    return;
                }
            }
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        self.join_deadline = None;
        self.sync_deadline = Some(now.saturating_add(self.max_rebalance_timeout()));
        let leader = self.leader.clone().unwrap_or_default();
        let member_list = self.member_list();
        let base = self.current_result("", false);
        for member in &mut self.members {
            member.is_new = false;
            member.last_heard = now;
            if let Some(waiter) = member.awaiting_join.take() {
                let mut result = base.clone();
                result.member_id = member.member_id.clone();
                if member.member_id == leader {
                    result.members = member_list.clone();
                }
                let _ = waiter.send(result);
            }
        }
    }

    /// SyncGroup. `assignments` is non-empty from the leader only.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Millis,
    ) -> Reply<SyncResult> {
        let refuse = |error: ResponseError| Reply::Now(SyncResult::error(error));
        if self.state == GroupState::Dead {
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
        if self.fenced(member_id, instance_id) {
            return refuse(ResponseError::FencedInstanceId);
        }
        if self.member(member_id).is_none() {
            return refuse(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return refuse(ResponseError::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => refuse(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => refuse(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let protocol_type = self.protocol_type.clone();
                let protocol_name = self.protocol.clone();
                let Some(member) = self.member_mut(member_id) else {
                    return refuse(ResponseError::UnknownMemberId);
                };
                member.last_heard = now;
                Reply::Now(SyncResult {
                    error: 0,
                    protocol_type,
                    protocol_name,
                    assignment: member.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.member_mut(member_id) {
                    member.last_heard = now;
                    if let Some(previous) = member.awaiting_sync.replace(sender) {
                        let _ =
                            previous.send(SyncResult::error(ResponseError::RebalanceInProgress));
                    }
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in &mut self.members {
                        member.assignment =
                            assignments.remove(&member.member_id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.sync_deadline = None;
                    self.dirty = true;
                    let protocol_type = self.protocol_type.clone();
                    let protocol_name = self.protocol.clone();
                    for member in &mut self.members {
                        if let Some(waiter) = member.awaiting_sync.take() {
                            let _ = waiter.send(SyncResult {
                                error: 0,
                                protocol_type: protocol_type.clone(),
                                protocol_name: protocol_name.clone(),
                                assignment: member.assignment.clone(),
                            });
                        }
                    }
                }
                Reply::Later(receiver)
            }
        }
    }

    /// Heartbeat: the Kafka error code (0: none).
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> i16 {
        if let Err(error) = self.check_member(member_id, instance_id, generation) {
            return error.code();
        }
        if let Some(member) = self.member_mut(member_id) {
            member.last_heard = now;
        }
        if self.state == GroupState::PreparingRebalance {
            ResponseError::RebalanceInProgress.code()
        } else {
            0
        }
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        match self.state {
            GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(ResponseError::UnknownMemberId),
            _ => {}
        }
        if self.fenced(member_id, instance_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if self.member(member_id).is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Whether an OffsetCommit from this member may commit. A commit with generation -1
    /// and no member is a "simple" consumer storing offsets, allowed while the group has no
    /// members.
    ///
    /// # Errors
    /// The Kafka error for every partition of the commit.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Millis,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if self.fenced(member_id, instance_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        let Some(member) = self.member_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        member.last_heard = now;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// LeaveGroup for each `(member id, instance id)`.
    pub fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        now: Millis,
    ) -> Vec<LeaveOutcome> {
        let mut outcomes = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let error = self.leave_one(member_id, instance_id.as_deref(), now);
            outcomes.push(LeaveOutcome {
                member_id: member_id.clone(),
                instance_id: instance_id.clone(),
                error: error.map_or(0, |error| error.code()),
            });
        }
        outcomes
    }

    fn leave_one(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> Option<ResponseError> {
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(instance) = instance_id {
            let found = self.static_member(instance).map(|m| m.member_id.clone());
            return match found {
                None => Some(ResponseError::UnknownMemberId),
                Some(found) if !member_id.is_empty() && found != member_id => {
                    Some(ResponseError::FencedInstanceId)
                }
                Some(found) => {
                    self.remove_member(&found, now);
                    None
                }
            };
        }
        if self.pending.remove(member_id).is_some() {
            return None;
        }
        if self.member(member_id).is_none() {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(member_id, now);
        None
    }

    fn remove_member(&mut self, member_id: &str, now: Millis) {
        let Some(index) = self.members.iter().position(|m| m.member_id == member_id) else {
            return;
        };
        let mut member = self.members.remove(index);
        if let Some(waiter) = member.awaiting_join.take() {
            let _ = waiter.send(JoinResult::error(ResponseError::UnknownMemberId, member_id));
        }
        if let Some(waiter) = member.awaiting_sync.take() {
            let _ = waiter.send(SyncResult::error(ResponseError::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.first().map(|m| m.member_id.clone());
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, None);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Runs the timers: members whose session ended leave, a join phase past its deadline
    /// completes, members that did not sync in time leave.
    pub fn tick(&mut self, now: Millis, config: &GroupConfig) {
        if self.state == GroupState::Dead {
            return;
        }
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.expired(now, config))
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            tracing::info!(group = %self.id, member = %member_id, "member session expired");
            self.remove_member(&member_id, now);
        }
        if self.state == GroupState::PreparingRebalance {
            if let Some(deadline) = self.join_deadline
                && now >= deadline
            {
                match self.initial_delay {
                    Some((limit, true)) if now < limit => {
                        // Members keep arriving: wait one more delay, up to the limit.
                        let delay = config.initial_rebalance_delay_ms;
                        self.join_deadline = Some(now.saturating_add(delay).min(limit));
                        self.initial_delay = Some((limit, false));
                    }
                    _ => {
                        self.initial_delay = None;
                        self.complete_join(now);
                    }
                }
            } else {
                self.try_complete_join(now);
            }
        }
        if self.state == GroupState::CompletingRebalance
            && let Some(deadline) = self.sync_deadline
            && now >= deadline
        {
            let late: Vec<String> = self
                .members
                .iter()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            tracing::info!(group = %self.id, ?late, "members did not sync in time");
            for member_id in late {
                self.remove_member(&member_id, now);
            }
            if self.state == GroupState::CompletingRebalance {
                self.prepare_rebalance(now, None);
                self.try_complete_join(now);
            }
        }
    }

    /// DescribeGroups' view of the members: metadata and assignment only when Stable.
    #[must_use]
    pub fn describe_members(&self) -> Vec<MemberSummary> {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|m| MemberSummary {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Millis = 100;

    fn config() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: DELAY,
            new_member_join_timeout_ms: 300_000,
            min_session_timeout_ms: 1_000,
            max_session_timeout_ms: 60_000,
        }
    }

    fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            instance_id: None,
            require_known_member_id: true,
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            rebalance_timeout_ms: 5_000,
            session_timeout_ms: 10_000,
            protocol_type: "consumer".to_string(),
            protocols: protocols
                .iter()
                .map(|name| ((*name).to_string(), Bytes::from(format!("meta-{name}"))))
                .collect(),
        }
    }

    fn now<T: std::fmt::Debug>(reply: Reply<T>) -> T {
        match reply {
            Reply::Now(value) => value,
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }

    fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
        match reply {
            Reply::Later(receiver) => receiver,
            Reply::Now(_) => panic!("expected a deferred answer"),
        }
    }

    fn ready<T>(receiver: &mut oneshot::Receiver<T>) -> Option<T> {
        receiver.try_recv().expect("waiter kept")
    }

    /// Joins a new member the v4+ way (MEMBER_ID_REQUIRED first); returns its id and the
    /// pending JoinGroup answer.
    fn join_new(
        group: &mut Group,
        name: &str,
        at: Millis,
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = now(group.join(request("", &["range"]), name.to_string(), at, &config()));
        assert_eq!(first.error, ResponseError::MemberIdRequired.code());
        assert_eq!(first.member_id, name);
        let receiver = later(group.join(request(name, &["range"]), "unused".into(), at, &config()));
        (name.to_string(), receiver)
    }

    /// A Stable group with `names` as members at generation 1 (the first is the leader).
    fn stable_group(names: &[&str]) -> Group {
        let mut group = Group::new("g");
        let mut waiting: Vec<_> = names.iter().map(|n| join_new(&mut group, n, 0).1).collect();
        group.tick(DELAY, &config());
        group.tick(2 * DELAY, &config());
        for receiver in &mut waiting {
            assert_eq!(ready(receiver).expect("joined").generation_id, 1);
        }
        let assignments = names
            .iter()
            .map(|n| ((*n).to_string(), Bytes::from(format!("assign-{n}"))))
            .collect();
        let mut sync = later(group.sync(names[0], None, 1, None, None, assignments, DELAY));
        assert_eq!(ready(&mut sync).expect("synced").error, 0);
        for name in &names[1..] {
            let result = now(group.sync(name, None, 1, None, None, Vec::new(), DELAY));
            assert_eq!(result.assignment, Bytes::from(format!("assign-{name}")));
        }
        assert_eq!(group.state(), GroupState::Stable);
        group
    }

    #[test]
    fn first_rebalance_waits_for_the_initial_delay_then_elects_the_first_member() {
        let mut group = Group::new("g");
        let (a, mut join_a) = join_new(&mut group, "a", 0);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        let (_, mut join_b) = join_new(&mut group, "b", 10);
        group.tick(DELAY - 1, &config());
        assert!(
            ready(&mut join_a).is_none(),
            "still inside the initial delay"
        );
        // A member joined during the delay: one more delay, bounded by the rebalance timeout.
        group.tick(DELAY, &config());
        assert!(ready(&mut join_a).is_none());
        group.tick(2 * DELAY, &config());
        let leader = ready(&mut join_a).expect("answered");
        let follower = ready(&mut join_b).expect("answered");
        assert_eq!(leader.generation_id, 1);
        assert_eq!(leader.leader, a);
        assert_eq!(leader.protocol_name.as_deref(), Some("range"));
        assert_eq!(leader.members.len(), 2, "the leader sees every member");
        assert!(follower.members.is_empty());
        assert_eq!(group.state(), GroupState::CompletingRebalance);
    }

    #[test]
    fn followers_wait_for_the_leaders_assignment() {
        let mut group = Group::new("g");
        let (_, mut join_a) = join_new(&mut group, "a", 0);
        let (_, mut join_b) = join_new(&mut group, "b", 0);
        group.tick(DELAY, &config());
        group.tick(2 * DELAY, &config());
        ready(&mut join_a).expect("a joined");
        ready(&mut join_b).expect("b joined");
        let mut sync_b = later(group.sync("b", None, 1, None, None, Vec::new(), DELAY));
        assert!(ready(&mut sync_b).is_none());
        assert_eq!(group.heartbeat("b", None, 1, DELAY), 0);
        let assignments = vec![
            ("a".to_string(), Bytes::from_static(b"A")),
            ("b".to_string(), Bytes::from_static(b"B")),
        ];
        let mut sync_a = later(group.sync(
            "a",
            None,
            1,
            Some("consumer"),
            Some("range"),
            assignments,
            DELAY,
        ));
        assert_eq!(
            ready(&mut sync_a).expect("a").assignment,
            Bytes::from_static(b"A")
        );
        assert_eq!(
            ready(&mut sync_b).expect("b").assignment,
            Bytes::from_static(b"B")
        );
        assert_eq!(group.state(), GroupState::Stable);
        assert!(group.take_dirty(), "a new assignment is stored");
    }

    #[test]
    fn a_new_member_rebalances_a_stable_group() {
        let mut group = stable_group(&["a", "b"]);
        let (_, mut join_c) = join_new(&mut group, "c", 1_000);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(
            group.heartbeat("a", None, 1, 1_000),
            ResponseError::RebalanceInProgress.code()
        );
        let mut join_a =
            later(group.join(request("a", &["range"]), String::new(), 1_001, &config()));
        assert!(ready(&mut join_c).is_none(), "b has not rejoined");
        let mut join_b =
            later(group.join(request("b", &["range"]), String::new(), 1_002, &config()));
        for receiver in [&mut join_a, &mut join_b, &mut join_c] {
            let result = ready(receiver).expect("rebalanced");
            assert_eq!(result.generation_id, 2);
            assert_eq!(result.leader, "a");
        }
        assert_eq!(
            group
                .sync("a", None, 1, None, None, Vec::new(), 1_003)
                .wait_now()
                .error,
            ResponseError::IllegalGeneration.code()
        );
    }

    #[test]
    fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
        let mut group = stable_group(&["a", "b"]);
        let mut join_a =
            later(group.join(request("a", &["range"]), String::new(), 1_000, &config()));
        group.tick(5_999, &config());
        assert!(ready(&mut join_a).is_none());
        group.tick(6_000, &config());
        let result = ready(&mut join_a).expect("completed without b");
        assert_eq!(result.generation_id, 2);
        assert_eq!(result.members.len(), 1);
        assert_eq!(group.members().len(), 1);
    }

    #[test]
    fn session_expiry_removes_a_silent_member() {
        let mut group = stable_group(&["a", "b"]);
        assert_eq!(group.heartbeat("a", None, 1, 9_000), 0);
        group.tick(2 * DELAY + 10_000, &config());
        // b was last heard at 2 * DELAY: gone; a rebalance started for a.
        assert_eq!(group.members().len(), 1);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(
            group.heartbeat("b", None, 1, 2 * DELAY + 10_000),
            ResponseError::UnknownMemberId.code()
        );
    }

    #[test]
    fn the_last_member_leaving_empties_the_group() {
        let mut group = stable_group(&["a", "b"]);
        let outcomes = group.leave(&[("b".to_string(), None), ("zz".to_string(), None)], 500);
        assert_eq!(outcomes[0].error, 0);
        assert_eq!(outcomes[1].error, ResponseError::UnknownMemberId.code());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        group.leave(&[("a".to_string(), None)], 600);
        assert_eq!(group.state(), GroupState::Empty);
        assert_eq!(group.generation(), 2);
        assert!(group.is_empty());
        assert!(group.take_dirty());
    }

    #[test]
    fn static_member_rejoins_without_a_rebalance_and_fences_the_old_id() {
        let mut group = Group::new("g");
        let mut static_request = request("", &["range"]);
        static_request.instance_id = Some("host-1".to_string());
        let mut join = later(group.join(static_request.clone(), "s1".into(), 0, &config()));
        group.tick(DELAY, &config());
        assert_eq!(ready(&mut join).expect("joined").member_id, "s1");
        let assignments = vec![("s1".to_string(), Bytes::from_static(b"P0"))];
        let mut sync = later(group.sync("s1", Some("host-1"), 1, None, None, assignments, DELAY));
        assert_eq!(ready(&mut sync).expect("synced").error, 0);
        // Restart: same instance id, no member id.
        let result = now(group.join(static_request, "s2".into(), 1_000, &config()));
        assert_eq!(
            (
                result.error,
                result.member_id.as_str(),
                result.generation_id
            ),
            (0, "s2", 1)
        );
        assert_eq!(
            result.leader, "s1",
            "the previous leader id: no assignment to compute"
        );
        assert_eq!(group.state(), GroupState::Stable);
        let again = now(group.sync("s2", Some("host-1"), 1, None, None, Vec::new(), 1_000));
        assert_eq!(again.assignment, Bytes::from_static(b"P0"));
        assert_eq!(
            group.heartbeat("s1", Some("host-1"), 1, 1_000),
            ResponseError::FencedInstanceId.code()
        );
        let leave = group.leave(&[("s1".to_string(), Some("host-1".to_string()))], 1_000);
        assert_eq!(leave[0].error, ResponseError::FencedInstanceId.code());
    }

    #[test]
    fn refusals() {
        let mut group = stable_group(&["a"]);
        let mut short = request("", &["range"]);
        short.session_timeout_ms = 10;
        assert_eq!(
            now(group.join(short, "x".into(), 0, &config())).error,
            ResponseError::InvalidSessionTimeout.code()
        );
        assert_eq!(
            now(group.join(request("", &["other"]), "x".into(), 0, &config())).error,
            ResponseError::InconsistentGroupProtocol.code()
        );
        assert_eq!(
            now(group.join(request("ghost", &["range"]), "x".into(), 0, &config())).error,
            ResponseError::UnknownMemberId.code()
        );
        assert_eq!(
            group.heartbeat("a", None, 7, 0),
            ResponseError::IllegalGeneration.code()
        );
        assert_eq!(
            group.check_commit("a", None, 7, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(group.check_commit("a", None, 1, 0), Ok(()));
        assert_eq!(
            group.check_commit("", None, -1, 0),
            Err(ResponseError::UnknownMemberId)
        );
        let mut empty = Group::new("simple");
        assert_eq!(
            empty.check_commit("", None, -1, 0),
            Ok(()),
            "standalone commits"
        );
        empty.mark_dead();
        assert_eq!(
            empty.heartbeat("a", None, 1, 0),
            ResponseError::CoordinatorNotAvailable.code()
        );
    }

    #[test]
    fn commits_wait_out_the_assignment_phase() {
        let mut group = Group::new("g");
        let (_, mut join) = join_new(&mut group, "a", 0);
        group.tick(DELAY, &config());
        ready(&mut join).expect("joined");
        assert_eq!(
            group.check_commit("a", None, 1, DELAY),
            Err(ResponseError::RebalanceInProgress)
        );
    }

    #[test]
    fn members_that_never_sync_are_dropped() {
        let mut group = Group::new("g");
        let (_, mut join_a) = join_new(&mut group, "a", 0);
        let (_, mut join_b) = join_new(&mut group, "b", 0);
        group.tick(DELAY, &config());
        group.tick(2 * DELAY, &config());
        ready(&mut join_a).expect("a");
        ready(&mut join_b).expect("b");
        let mut sync_b = later(group.sync("b", None, 1, None, None, Vec::new(), DELAY));
        group.tick(2 * DELAY + 5_000, &config());
        // The leader never synced: it is dropped, b's sync is told to rejoin.
        assert_eq!(
            ready(&mut sync_b).expect("told").error,
            ResponseError::RebalanceInProgress.code()
        );
        assert_eq!(group.members().len(), 1);
        assert_eq!(group.members()[0].member_id, "b");
    }

    #[test]
    fn protocol_is_the_most_voted_common_one() {
        let mut group = Group::new("g");
        let mut waiting = Vec::new();
        for (name, protocols) in [
            ("a", vec!["roundrobin", "range"]),
            ("b", vec!["range", "roundrobin"]),
            ("c", vec!["range", "sticky"]),
        ] {
            let mut join = request("", &protocols);
            join.require_known_member_id = false;
            waiting.push(later(group.join(join, name.into(), 0, &config())));
        }
        group.tick(2 * DELAY, &config());
        group.tick(3 * DELAY, &config());
        let result = ready(&mut waiting[0]).expect("joined");
        assert_eq!(result.protocol_name.as_deref(), Some("range"));
        let metadata: Vec<_> = result.members.iter().map(|m| m.metadata.clone()).collect();
        assert!(
            metadata
                .iter()
                .all(|m| m == &Bytes::from_static(b"meta-range"))
        );
    }

    #[test]
    fn stored_form_round_trips_into_a_stable_group() {
        let group = stable_group(&["a", "b"]);
        let stored = group.to_stored(1234);
        let restored = Group::from_stored("g", stored.clone(), 50);
        assert_eq!(restored.state(), GroupState::Stable);
        assert_eq!(restored.generation(), 1);
        assert_eq!(restored.leader(), Some("a"));
        assert_eq!(restored.to_stored(1234), stored);
        let empty = Group::from_stored("g", Group::new("g").to_stored(0), 0);
        assert_eq!(empty.state(), GroupState::Empty);
    }

    impl<T: std::fmt::Debug> Reply<T> {
        fn wait_now(self) -> T {
            now(self)
        }
    }
}
