//! A deterministic simulator: n validators, each running its own `Engine`,
//! over a simulated network with seeded random delays, reordering,
//! duplication, drops and partitions; timers on simulated time (a priority
//! queue of events); crashes and restarts from the persisted safety record;
//! pluggable Byzantine strategies (`byzantine`); a block sync stand-in so
//! validators that fell behind by whole heights catch up, as the node will;
//! and validator sets that change at heights (`membership`), keys included.
//!
//! The simulated application: the value proposed by validator `i` at
//! (height, round) is `hash("value", height, round, i)`; a value is valid at a
//! height if it was created for that height by an honest proposer or an
//! equivocator, invalid if created by the invalid-value strategy, and unknown
//! hashes are invalid. Each validator judges a value only once it holds its
//! true body, so verdicts may differ for a while (`validity`). A validator
//! key may also run twice (Twins): both instances count as Byzantine.
//!
//! Properties checked on every event, ending the run at the first violation:
//! agreement (no two honest validators decide different values at a height),
//! validity (only valid values decided, and by consensus only after the
//! validator was told so), every certificate verifies, no
//! honest validator signs two different messages at one (height, round,
//! step), every honest broadcast is covered by an already persisted safety
//! record, and no evidence ever names an honest validator.
//!
//! Every run is bounded by simulated time and by event count.

#![allow(dead_code)]

pub mod byzantine;
mod checks;
mod lifecycle;
pub mod membership;
pub mod rng;
mod scenario;
pub mod seeds;
pub mod validity;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

pub use byzantine::Behaviour;
use consensus::{
    CommitCertificate, ConsensusMessage, Engine, Height, Input, Output, Round, SafetyRecord, Step,
    TimeoutKind,
};
use crypto::{ChainId, Hash, Keypair, PublicKey};
use rng::Rng;
#[allow(unused_imports)]
pub use scenario::{
    Crash, DecisionRecord, HealSnapshot, NetworkConfig, Partition, RandomRestarts, Report, Scenario,
};

pub fn chain_id() -> ChainId {
    ChainId(Hash::digest(b"scfledger consensus simulator"))
}

pub fn key(index: usize) -> Keypair {
    Keypair::from_seed(Hash::of(&("validator", index as u64)).0)
}

enum Event {
    Boot {
        node: usize,
    },
    Deliver {
        to: usize,
        message: ConsensusMessage,
    },
    Timer {
        node: usize,
        incarnation: u64,
        kind: TimeoutKind,
        height: Height,
        round: Round,
    },
    Value {
        node: usize,
        incarnation: u64,
        height: Height,
        round: Round,
    },
    Validity {
        node: usize,
        incarnation: u64,
        height: Height,
        round: Round,
        value: Hash,
        /// The validator holds a tampered body, not the true one: invalid.
        tampered: bool,
    },
    SyncTick {
        node: usize,
        incarnation: u64,
    },
    SyncRequest {
        from: usize,
        to: usize,
        height: Height,
    },
    SyncResponse {
        to: usize,
        blocks: Vec<(Height, Hash, CommitCertificate)>,
    },
    Crash {
        node: usize,
    },
    Heal,
}

struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

struct Node {
    key: Keypair,
    behaviour: Option<Behaviour>,
    engine: Option<Engine>,
    incarnation: u64,
    /// What survives a crash: the safety record and the committed blocks.
    record: Option<SafetyRecord>,
    blocks: BTreeMap<Height, (Hash, CommitCertificate)>,
    history: VecDeque<ConsensusMessage>,
}

const HISTORY: usize = 256;

struct Sim<'a> {
    scenario: &'a Scenario,
    chain: ChainId,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<Node>,
    keys: BTreeMap<PublicKey, usize>,
    /// The application: value → (height it is for, valid).
    values: BTreeMap<Hash, (Height, bool)>,
    /// When each honest validator holds each value's true body (`validity`).
    bodies: BTreeMap<(usize, Hash), validity::BodyPlan>,
    /// The last verdict each validator was given on each value.
    told: BTreeMap<(usize, Hash), bool>,
    /// Draws body plans apart from `rng`, so scenarios without late bodies
    /// replay as before.
    validity_rng: Rng,
    proposed: BTreeMap<(Height, Round), Vec<Hash>>,
    decided: BTreeMap<Height, Hash>,
    signed: BTreeMap<(usize, Height, Round, Step), ConsensusMessage>,
    /// Certificates already verified (validators often build the same one).
    verified: BTreeSet<Hash>,
    down_for_good: BTreeSet<usize>,
    report: Report,
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario) -> Sim<'a> {
        let nodes: Vec<Node> = (0..scenario.nodes())
            .map(|i| Node {
                key: key(scenario.key_of(i)),
                behaviour: scenario.behaviour(i),
                engine: None,
                incarnation: 0,
                record: None,
                blocks: BTreeMap::new(),
                history: VecDeque::new(),
            })
            .collect();
        let mut keys: BTreeMap<PublicKey, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.public(), i))
            .collect();
        if let Some(membership) = &scenario.membership {
            keys.extend(membership.all_keys());
        }
        let honest = (0..scenario.nodes())
            .filter(|i| scenario.behaviour(*i).is_none())
            .collect();
        Sim {
            scenario,
            chain: chain_id(),
            rng: Rng::new(scenario.seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            keys,
            values: BTreeMap::new(),
            bodies: BTreeMap::new(),
            told: BTreeMap::new(),
            validity_rng: Rng::new(scenario.seed ^ 0xB0D7),
            proposed: BTreeMap::new(),
            decided: BTreeMap::new(),
            signed: BTreeMap::new(),
            verified: BTreeSet::new(),
            down_for_good: scenario
                .crashes
                .iter()
                .filter(|c| c.restart_at_ms.is_none())
                .map(|c| c.node)
                .collect(),
            report: Report {
                seed: scenario.seed,
                honest,
                ..Report::default()
            },
        }
    }

    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            time,
            seq: self.seq,
            event,
        });
    }

    fn is_honest(&self, node: usize) -> bool {
        self.nodes[node].behaviour.is_none()
    }

    fn run(mut self) -> Report {
        for node in 0..self.nodes.len() {
            if self.nodes[node].behaviour != Some(Behaviour::Silent) {
                self.at(0, Event::Boot { node });
            }
        }
        for crash in self.scenario.crashes.clone() {
            self.at(crash.at_ms, Event::Crash { node: crash.node });
            if let Some(when) = crash.restart_at_ms {
                self.at(when, Event::Boot { node: crash.node });
            }
        }
        for partition in self.scenario.partitions.clone() {
            self.at(partition.until_ms, Event::Heal);
        }
        while let Some(next) = self.queue.pop() {
            if next.time > self.scenario.max_time_ms
                || self.report.events >= self.scenario.max_events
            {
                break;
            }
            self.now = next.time;
            self.report.events += 1;
            self.dispatch(next.event);
            if !self.report.violations.is_empty() {
                break;
            }
            if self.all_reached_target() {
                self.report.finished = true;
                break;
            }
        }
        self.report.time_ms = self.now;
        if std::env::var("SIM_DUMP").is_ok() {
            for (i, n) in self.nodes.iter().enumerate() {
                let e = n.engine.as_ref();
                eprintln!(
                    "node {i} {:?}: h={:?} r={:?} s={:?} locked={:?} valid={:?} blocks={} stats={:?}",
                    n.behaviour,
                    e.and_then(Engine::height),
                    e.and_then(Engine::round),
                    e.and_then(Engine::step),
                    e.and_then(Engine::locked),
                    e.and_then(Engine::valid_value),
                    n.blocks.len(),
                    e.map(Engine::stats)
                );
            }
        }
        self.report.stats = self
            .nodes
            .iter()
            .map(|n| n.engine.as_ref().map(|e| e.stats().clone()))
            .collect();
        self.report
    }

    fn all_reached_target(&self) -> bool {
        let target = Height(self.scenario.target_height);
        self.report
            .honest
            .iter()
            .filter(|i| !self.down_for_good.contains(i))
            .all(|i| self.nodes[*i].blocks.contains_key(&target))
    }

    fn alive(&self, node: usize, incarnation: Option<u64>) -> bool {
        let n = &self.nodes[node];
        n.engine.is_some() && incarnation.is_none_or(|i| i == n.incarnation)
    }

    fn handle(&mut self, node: usize, input: Input) {
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let outputs = engine.handle(input);
        self.apply(node, outputs);
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Boot { node } => self.boot(node),
            Event::Deliver { to, message } => {
                if !self.alive(to, None) {
                    return;
                }
                self.report.messages_delivered += 1;
                if self.nodes[to].behaviour == Some(Behaviour::Replay) {
                    let history = &mut self.nodes[to].history;
                    history.push_back(message);
                    if history.len() > HISTORY {
                        history.pop_front();
                    }
                }
                self.handle(to, Input::from(message));
            }
            Event::Timer {
                node,
                incarnation,
                kind,
                height,
                round,
            } => {
                if self.alive(node, Some(incarnation)) {
                    self.handle(
                        node,
                        Input::TimeoutFired {
                            kind,
                            height,
                            round,
                        },
                    );
                }
            }
            Event::Value {
                node,
                incarnation,
                height,
                round,
            } => {
                if self.alive(node, Some(incarnation)) {
                    let value = Hash::of(&("value", height.0, round.0, node as u64));
                    self.values.insert(value, (height, true));
                    self.told.insert((node, value), true);
                    self.handle(
                        node,
                        Input::ValueToPropose {
                            height,
                            round,
                            value,
                        },
                    );
                }
            }
            Event::Validity {
                node,
                incarnation,
                height,
                round,
                value,
                tampered,
            } => {
                if self.alive(node, Some(incarnation)) {
                    self.answer_validity(node, height, round, value, tampered);
                }
            }
            Event::SyncTick { node, incarnation } => {
                if !self.alive(node, Some(incarnation)) {
                    return;
                }
                let peer = (node + 1 + self.rng.index(self.nodes.len() - 1)) % self.nodes.len();
                if let Some(height) = self.nodes[node].engine.as_ref().and_then(Engine::height) {
                    self.transmit(
                        node,
                        peer,
                        Event::SyncRequest {
                            from: node,
                            to: peer,
                            height,
                        },
                    );
                }
                self.at(
                    self.now + self.scenario.sync_interval_ms,
                    Event::SyncTick { node, incarnation },
                );
            }
            Event::SyncRequest { from, to, height } => {
                if !self.alive(to, None) {
                    return;
                }
                let blocks: Vec<_> = self.nodes[to]
                    .blocks
                    .range(height..)
                    .take(4)
                    .map(|(h, (v, c))| (*h, *v, c.clone()))
                    .collect();
                if !blocks.is_empty() {
                    self.transmit(to, from, Event::SyncResponse { to: from, blocks });
                }
            }
            Event::SyncResponse { to, blocks } => self.synced(to, blocks),
            Event::Crash { node } => self.crash(node),
            Event::Heal => {
                let engines = self
                    .report
                    .honest
                    .iter()
                    .filter_map(|i| self.nodes[*i].engine.as_ref());
                let (rounds, heights): (Vec<Round>, Vec<Height>) = engines
                    .filter_map(|e| Some((e.round()?, e.height()?)))
                    .unzip();
                self.report.heals.push(HealSnapshot {
                    at_ms: self.now,
                    max_round: rounds.into_iter().max().unwrap_or_default(),
                    max_height: heights.into_iter().max().unwrap_or_default(),
                });
            }
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.scenario.partitions.iter().all(|p| {
            if self.now < p.from_ms || self.now >= p.until_ms {
                return true;
            }
            let group = |node: usize| p.groups.iter().position(|g| g.contains(&node));
            group(a) == group(b)
        })
    }

    /// Puts `event` on the wire from `from` to `to`: partitions, drops,
    /// random delay (hence reordering) and duplication.
    fn transmit(&mut self, from: usize, to: usize, event: Event) {
        if from == to
            || !self.connected(from, to)
            || self.rng.chance(self.scenario.network.drop_per_mille)
        {
            return;
        }
        let network = &self.scenario.network;
        let delay = self.rng.between(network.min_delay_ms, network.max_delay_ms);
        if let Event::Deliver { message, .. } = &event
            && self.rng.chance(network.duplicate_per_mille)
        {
            let again = self.rng.between(network.min_delay_ms, network.max_delay_ms);
            let copy = Event::Deliver {
                to,
                message: *message,
            };
            self.at(self.now + again, copy);
        }
        self.at(self.now + delay, event);
    }

    fn violation(&mut self, text: String) {
        self.report.violations.push(text);
    }

    /// Carries out outputs in order, as the node must.
    fn apply(&mut self, node: usize, outputs: Vec<Output>) {
        let mut pending: VecDeque<Output> = outputs.into();
        while let Some(output) = pending.pop_front() {
            if self.maybe_crash_now(node) {
                return;
            }
            let incarnation = self.nodes[node].incarnation;
            match output {
                Output::PersistSafetyRecord(record) => self.nodes[node].record = Some(record),
                Output::Broadcast(message) => self.broadcast(node, message),
                Output::ScheduleTimeout(t) => {
                    let event = Event::Timer {
                        node,
                        incarnation,
                        kind: t.kind,
                        height: t.height,
                        round: t.round,
                    };
                    self.at(self.now + t.duration_ms, event);
                }
                Output::GetValue { height, round } => {
                    let delay = self.rng.between(1, 20);
                    self.at(
                        self.now + delay,
                        Event::Value {
                            node,
                            incarnation,
                            height,
                            round,
                        },
                    );
                }
                Output::CheckValidity {
                    height,
                    round,
                    value,
                } => self.check_validity(node, height, round, value),
                Output::Decide(decision) => {
                    if let Some(next) = self.decided(node, decision, false) {
                        pending.extend(self.start_height(node, next));
                    }
                }
                Output::Evidence(evidence) => self.evidence(node, evidence),
            }
        }
    }

    fn broadcast(&mut self, node: usize, message: ConsensusMessage) {
        if let ConsensusMessage::Proposal(p) = &message {
            let here = self
                .proposed
                .entry((p.proposal.height, p.proposal.round))
                .or_default();
            if !here.contains(&p.proposal.value) {
                here.push(p.proposal.value);
            }
        }
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|p| *p != node).collect();
        let Some(behaviour) = self.nodes[node].behaviour else {
            if message.signer() == self.nodes[node].key.public() {
                self.check_own_signature(node, message);
            }
            for peer in peers {
                self.transmit(node, peer, Event::Deliver { to: peer, message });
            }
            return;
        };
        let n = &self.nodes[node];
        let history: Vec<ConsensusMessage> = n.history.iter().copied().collect();
        let proposed_here = self
            .proposed
            .get(&(message.height(), message.round()))
            .cloned()
            .unwrap_or_default();
        let colluders: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].behaviour == Some(Behaviour::Collude))
            .collect();
        let forger = byzantine::Forger {
            node,
            key: &n.key,
            chain: &self.chain,
            proposed_here: &proposed_here,
            history: &history,
            colluders: &colluders,
        };
        let mut registrations = byzantine::Registrations::default();
        let sends = byzantine::rewrite(
            behaviour,
            &forger,
            message,
            &peers,
            &mut self.rng,
            self.now,
            &mut registrations,
        );
        for (value, height, valid) in registrations.values {
            self.values.entry(value).or_insert((height, valid));
        }
        for (peer, value, plan) in registrations.bodies {
            self.plan_body(peer, value, plan);
        }
        for (peer, message) in sends {
            if let ConsensusMessage::Proposal(p) = &message {
                let here = self
                    .proposed
                    .entry((p.proposal.height, p.proposal.round))
                    .or_default();
                if !here.contains(&p.proposal.value) {
                    here.push(p.proposal.value);
                }
            }
            self.transmit(node, peer, Event::Deliver { to: peer, message });
        }
    }
}
