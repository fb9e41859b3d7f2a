//! The consensus driver: the single owner of the consensus engine and the
//! store's only writer.
//!
//! It runs on a thread of its own (execution and synced writes block) and
//! turns events — consensus messages and block announcements from gossip,
//! timers, sync answers — into engine inputs, and the engine's outputs into
//! effects: persist the safety record (synced, before the message it allows
//! is broadcast), broadcast, schedule a timer, build a block from the
//! mempool, check a proposed block, commit a decided block with its
//! certificate in one atomic write, then move to the next height.
//!
//! With nothing to do the chain does not grow: the next height starts only
//! when the mempool holds transactions, the genesis heartbeat interval has
//! passed, or honest validators have started it: a round-0 proposal from
//! its proposer, or votes from validators with more than f voting power
//! (one Byzantine validator alone cannot make the chain grow empty blocks).
//! Everything that reaches the driver from peers was checked by
//! [`crate::intake`] first (signatures, the engine's height/round window).
//!
//! Block content travels apart from consensus (whose messages carry only the
//! block hash): the proposer gossips a [`blocks::Announcement`] (its signed
//! proposal, the header and the transaction hashes, which peers already hold
//! from transaction gossip); peers rebuild the block from their mempool and
//! use it only if it matches the header's tx root, otherwise they fetch it
//! whole. A body that does not match its header is never kept, judged,
//! served or recorded: the node asks another peer. Block sync ([`sync`])
//! fetches committed blocks with their certificates from peers.

pub mod blocks;
pub mod bodies;
pub mod evidence;
pub mod safety_file;
pub mod sync;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consensus::{
    ConsensusMessage, Decision, Engine, EngineConfig, Height, Input, Output, Round, Timeout,
};
use crypto::{Hash, PublicKey};
use ledger::Block;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::network::{Network, PeerId, SyncedBlock, Topic};
use crate::shared::Shared;
use crate::validators::ValidatorSchedule;

use blocks::{Announcement, Candidate};

/// How often the driver wakes with nothing else to do: checks whether to
/// start a height, asks peers for their heights, refreshes the status.
const TICK: Duration = Duration::from_millis(50);
/// How often peers are asked for their height.
const STATUS_INTERVAL: Duration = Duration::from_millis(1000);
/// Messages that arrive before the engine's first height are kept for it.
const MAX_EARLY_MESSAGES: usize = 1_000;
/// How often a missing block body (decided, asked to check, or locked on
/// before a restart) is asked for again.
const REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Most block bodies wanted at once (each is an engine-checked proposal or
/// decision of the next height, so honest ones are few).
const MAX_WANTED_BODIES: usize = 16;
/// Most announcements taken per round of the next height (an equivocating
/// proposer may send two), and how many rounds ahead of ours.
const MAX_ANNOUNCEMENTS_PER_ROUND: usize = 2;
const ANNOUNCEMENT_ROUNDS_AHEAD: u32 = 2;

/// What the driver reacts to.
#[derive(Debug)]
pub enum Event {
    Consensus(ConsensusMessage),
    Announcement {
        from: PeerId,
        announcement: Box<Announcement>,
    },
    /// A whole block fetched by hash; its body matches its header.
    FetchedBlock(Block),
    /// No peer gave the body of this block (or a matching one).
    FetchFailed(Hash),
    Timeout(Timeout),
    PeerStatus {
        peer: PeerId,
        height: u64,
    },
    SyncedBlocks {
        peer: PeerId,
        blocks: Vec<SyncedBlock>,
    },
    SyncFailed {
        peer: PeerId,
    },
    /// The mempool took transactions.
    MempoolActivity,
    Shutdown,
}

/// Failures that stop the node: the store or the safety record cannot be
/// written, or a block certified by a quorum executes differently here.
/// Everything a peer can cause is logged and survived.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Safety(#[from] safety_file::SafetyFileError),
    #[error("store: {0}")]
    Store(#[from] ledger::store::StoreError),
    #[error(
        "block {height} is certified by a quorum of validators but executes differently on this node ({detail}); this node's execution is not deterministic with the others' (a different binary version, or a corrupted store): stop, compare versions, and resync this node's data from a trusted peer"
    )]
    Determinism { height: u64, detail: String },
}

pub struct Driver {
    shared: Arc<Shared>,
    network: Network,
    engine: Engine,
    /// The sets from the next height on, from committed state (see
    /// `crate::validators`); replaced after every commit.
    schedule: Arc<ValidatorSchedule>,
    my_key: Option<crypto::Keypair>,
    next_key_path: Option<PathBuf>,
    engine_config: EngineConfig,
    peer_of_validator: BTreeMap<PublicKey, PeerId>,
    /// The network's allow-list as last set.
    allowed_peers: Vec<crate::network::KnownPeer>,
    validator_of_peer: BTreeMap<PeerId, PublicKey>,
    events: mpsc::Receiver<Event>,
    sender: mpsc::Sender<Event>,
    runtime: Handle,
    safety_path: PathBuf,
    max_block_txs: usize,
    max_block_bytes: usize,
    heartbeat: Option<Duration>,
    /// The height the engine was started at, if any.
    started: Option<u64>,
    /// Honest validators have started the next height (see the module doc).
    next_height_started_by_peers: bool,
    /// Validators seen voting at the next height, with their power.
    next_height_voters: BTreeMap<PublicKey, u64>,
    early: Vec<ConsensusMessage>,
    candidates: HashMap<Hash, Candidate>,
    /// Block bodies of the next height this node needs and does not hold.
    wanted: BTreeMap<Hash, bodies::WantedBody>,
    /// Announcements taken per round of the next height.
    announced_per_round: BTreeMap<u32, usize>,
    /// Validity verdicts per block hash at the current height.
    verdicts: HashMap<Hash, bool>,
    /// Validity checks the engine asked for whose block is not here yet.
    waiting_checks: Vec<(Height, Round, Hash)>,
    /// A decision whose block is not here yet.
    waiting_decision: Option<Decision>,
    /// The block whose execution the store holds prepared.
    prepared: Option<(Hash, ledger::store::PreparedBlock)>,
    sync: sync::SyncState,
    last_commit: Instant,
    last_status_poll: Instant,
    evidence: evidence::EvidenceLog,
}

pub struct DriverSetup {
    pub shared: Arc<Shared>,
    /// Where a validator's next consensus key may be put (a key rotation).
    pub next_key_path: Option<PathBuf>,
    pub network: Network,
    pub validator_key: Option<crypto::Keypair>,
    pub safety_path: PathBuf,
    /// Where equivocation evidence is kept.
    pub evidence_path: PathBuf,
    pub events: mpsc::Receiver<Event>,
    pub sender: mpsc::Sender<Event>,
    pub runtime: Handle,
}

impl Driver {
    pub fn new(setup: DriverSetup) -> Result<Driver, DriverError> {
        let shared = setup.shared;
        let genesis = &shared.genesis;
        let schedule = shared.validator_schedule();
        let config = EngineConfig {
            timeouts: genesis.timeout_config(),
            ..EngineConfig::default()
        };
        let mut locked_before_restart = None;
        let engine = match &setup.validator_key {
            Some(key) => {
                let record = safety_file::load(&setup.safety_path)?;
                // A lock restored from the record was judged valid before
                // the restart, but its body is not here: fetch it (the
                // engine may re-propose it or a quorum may decide it).
                locked_before_restart = record
                    .as_ref()
                    .and_then(|record| record.locked.map(|locked| (record.height, locked.value)));
                Engine::validator(shared.chain_id, config, key.clone(), record)
            }
            None => Engine::observer(shared.chain_id, config),
        };
        let evidence = evidence::EvidenceLog::open(setup.evidence_path, Arc::clone(&shared));
        let peer_of_validator = schedule.peer_of_key();
        let validator_of_peer = schedule.validator_of_peer_at(schedule.committed() + 1);
        let me = setup.network.local_peer_id();
        let mut allowed_peers = schedule.allowed_peers(genesis);
        allowed_peers.retain(|peer| peer.peer_id != me);
        let params = genesis.consensus;
        let committed = shared.status.borrow().height;
        let mut wanted = BTreeMap::new();
        if let Some((height, value)) = locked_before_restart
            && height.0 == committed + 1
        {
            wanted.insert(value, bodies::WantedBody::new(height.0));
        }
        Ok(Driver {
            schedule,
            engine,
            next_key_path: setup.next_key_path,
            engine_config: config,
            my_key: setup.validator_key,
            validator_of_peer,
            peer_of_validator,
            allowed_peers,
            network: setup.network,
            events: setup.events,
            sender: setup.sender,
            runtime: setup.runtime,
            safety_path: setup.safety_path,
            max_block_txs: params.max_block_txs as usize,
            max_block_bytes: params.max_block_bytes as usize,
            heartbeat: params.heartbeat_interval_ms.map(Duration::from_millis),
            started: None,
            next_height_started_by_peers: false,
            next_height_voters: BTreeMap::new(),
            early: Vec::new(),
            candidates: HashMap::new(),
            wanted,
            announced_per_round: BTreeMap::new(),
            verdicts: HashMap::new(),
            waiting_checks: Vec::new(),
            waiting_decision: None,
            prepared: None,
            sync: sync::SyncState::default(),
            last_commit: Instant::now(),
            last_status_poll: Instant::now() - STATUS_INTERVAL,
            evidence,
            shared,
        })
    }

    /// Runs until [`Event::Shutdown`] or a fatal error.
    pub fn run(mut self) -> Result<(), DriverError> {
        info!(
            height = self.committed_height(),
            validator = self.my_key.is_some(),
            "driver started"
        );
        loop {
            let event = self.next_event();
            match event {
                Some(Event::Shutdown) => break,
                Some(event) => self.handle(event)?,
                None => {}
            }
            // Drain what is queued before the housekeeping.
            while let Ok(event) = self.events.try_recv() {
                if matches!(event, Event::Shutdown) {
                    return Ok(());
                }
                self.handle(event)?;
            }
            self.housekeeping()?;
        }
        info!("driver stopped");
        Ok(())
    }

    fn next_event(&mut self) -> Option<Event> {
        let events = &mut self.events;
        self.runtime.block_on(async {
            match tokio::time::timeout(TICK, events.recv()).await {
                Ok(Some(event)) => Some(event),
                Ok(None) => Some(Event::Shutdown),
                Err(_) => None,
            }
        })
    }

    fn handle(&mut self, event: Event) -> Result<(), DriverError> {
        match event {
            // Checked by the intake: a validator's valid signature, within
            // the engine's height and round window.
            Event::Consensus(message) => {
                self.note_next_height_activity(&message);
                if self.started.is_none() {
                    if self.early.len() < MAX_EARLY_MESSAGES {
                        self.early.push(message);
                    }
                    return Ok(());
                }
                self.feed(Input::from(message))?;
            }
            Event::Announcement { from, announcement } => {
                self.on_announcement(from, *announcement)?;
            }
            Event::FetchedBlock(block) => self.on_fetched_block(block)?,
            Event::FetchFailed(hash) => self.on_fetch_failed(hash),
            Event::Timeout(timeout) => self.feed(Input::TimeoutFired {
                kind: timeout.kind,
                height: timeout.height,
                round: timeout.round,
            })?,
            Event::PeerStatus { peer, height } => {
                self.sync.peer_height(peer, height, Instant::now())
            }
            Event::SyncedBlocks { peer, blocks } => self.on_synced_blocks(peer, blocks)?,
            Event::SyncFailed { peer } => self.sync.request_failed(peer, Instant::now()),
            // A wake-up: housekeeping after this event starts a height if
            // the pool now holds something a block could include.
            Event::MempoolActivity => {}
            Event::Shutdown => {}
        }
        Ok(())
    }

    /// Periodic work: start the next height when there is something to do,
    /// poll peers' heights, fetch missing blocks, refresh the status.
    fn housekeeping(&mut self) -> Result<(), DriverError> {
        let next = self.committed_height() + 1;
        if self.started.is_none_or(|height| height < next) && self.should_start() {
            self.start_height(next)?;
        }
        if self.last_status_poll.elapsed() >= STATUS_INTERVAL {
            self.last_status_poll = Instant::now();
            self.poll_peer_heights();
        }
        self.maybe_request_blocks();
        self.refetch_wanted();
        self.publish_status();
        Ok(())
    }

    /// Honest validators have started the next height when its round-0
    /// proposer proposes, or validators with more than f voting power vote
    /// in it. One Byzantine validator's messages alone start nothing.
    fn note_next_height_activity(&mut self, message: &ConsensusMessage) {
        let next = self.committed_height() + 1;
        if message.height().0 != next {
            return;
        }
        match message {
            ConsensusMessage::Proposal(signed) => {
                let proposal = &signed.proposal;
                if proposal.round == Round::ZERO
                    && self
                        .schedule
                        .set_at(next)
                        .proposer(proposal.height, Round::ZERO)
                        .public_key
                        == proposal.proposer
                {
                    self.next_height_started_by_peers = true;
                }
            }
            ConsensusMessage::Vote(signed) => {
                let voter = signed.vote.validator;
                let validators = self.schedule.set_at(next);
                if let Some(power) = validators.power_of(&voter) {
                    self.next_height_voters.insert(voter, power);
                }
                let power: u64 = self.next_height_voters.values().sum();
                if power >= validators.f_plus_one_power() {
                    self.next_height_started_by_peers = true;
                }
            }
        }
    }

    fn should_start(&self) -> bool {
        if self.is_behind() {
            return false;
        }
        // A transaction a block could include starts a height, however long
        // it has waited (say, accepted while quorum was lost, with only
        // empty blocks since). Transactions behind a nonce gap do not: the
        // chain would grow by empty blocks until they expire.
        self.shared.mempool.ready_count() > 0
            || self.next_height_started_by_peers
            || self
                .heartbeat
                .is_some_and(|interval| self.last_commit.elapsed() >= interval)
    }

    fn start_height(&mut self, height: u64) -> Result<(), DriverError> {
        // The set the committed state records for this height (final: the
        // store holds height - 1, and changes take effect two blocks after
        // their adoption).
        let validators = self.schedule.set_at(height).clone();
        self.maybe_rotate_key(height, &validators)?;
        debug!(
            height,
            validators = validators.len(),
            total_power = validators.total_power(),
            "starting height"
        );
        self.started = Some(height);
        self.feed(Input::StartHeight {
            height: Height(height),
            validators,
        })?;
        for message in std::mem::take(&mut self.early) {
            self.feed(Input::from(message))?;
        }
        Ok(())
    }

    /// A validator whose key the set no longer holds, but whose home holds
    /// the key the set rotated it to (`validator.next.key`), signs with that
    /// key from this height on: a new engine for the new key, given the
    /// node's safety record, which is below this height (the old key was
    /// not in this height's set, so signed nothing at it) and so starts
    /// the height fresh. Messages the old engine held for this height are
    /// lost; consensus rebroadcasts and round timeouts recover them.
    fn maybe_rotate_key(
        &mut self,
        height: u64,
        validators: &consensus::ValidatorSet,
    ) -> Result<(), DriverError> {
        let Some(current) = &self.my_key else {
            return Ok(());
        };
        if validators.contains(&current.public()) {
            return Ok(());
        }
        let Some(path) = self.next_key_path.as_ref().filter(|path| path.exists()) else {
            return Ok(());
        };
        let next = match genesis::read_key_file(path) {
            Ok(key) => key,
            Err(error) => {
                warn!(path = %path.display(), %error, "cannot read the next validator key");
                return Ok(());
            }
        };
        if !validators.contains(&next.public()) {
            return Ok(());
        }
        info!(
            height,
            old = %current.public(),
            new = %next.public(),
            "the validator set rotated this node's consensus key; signing with the new key from this height"
        );
        let record = safety_file::load(&self.safety_path)?;
        self.engine = Engine::validator(
            self.shared.chain_id,
            self.engine_config,
            next.clone(),
            record,
        );
        self.my_key = Some(next);
        Ok(())
    }

    /// Feeds one input and carries out every output, in order.
    fn feed(&mut self, input: Input) -> Result<(), DriverError> {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for output in self.engine.handle(input) {
                if let Some(next) = self.carry_out(output)? {
                    queue.push_back(next);
                }
            }
        }
        Ok(())
    }

    /// Carries out one output; returns the engine's next input if the
    /// output is answered at once (a value to propose, a validity verdict).
    fn carry_out(&mut self, output: Output) -> Result<Option<Input>, DriverError> {
        match output {
            Output::PersistSafetyRecord(record) => {
                safety_file::store(&self.safety_path, &record)?;
            }
            Output::Broadcast(message) => {
                if let ConsensusMessage::Proposal(proposal) = &message {
                    self.announce(proposal);
                }
                if let Err(error) = self.network.publish(Topic::Consensus, message.to_bytes()) {
                    debug!(%error, "consensus message not published");
                }
            }
            Output::ScheduleTimeout(timeout) => {
                let sender = self.sender.clone();
                self.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(timeout.duration_ms)).await;
                    let _ = sender.send(Event::Timeout(timeout)).await;
                });
            }
            Output::GetValue { height, round } => {
                let value = self.build_block(height.0)?;
                return Ok(Some(Input::ValueToPropose {
                    height,
                    round,
                    value,
                }));
            }
            Output::CheckValidity {
                height,
                round,
                value,
            } => {
                if let Some(valid) = self.check_block(height.0, value)? {
                    return Ok(Some(Input::ProposalValidity {
                        height,
                        round,
                        value,
                        valid,
                    }));
                }
                if !self.waiting_checks.contains(&(height, round, value)) {
                    self.waiting_checks.push((height, round, value));
                }
                // The engine checked the proposal's signature: its body is
                // worth asking for if no announcement brought it.
                self.want_body(height.0, value);
            }
            Output::Decide(decision) => self.on_decision(decision)?,
            Output::Evidence(evidence) => {
                warn!(
                    offender = %evidence.offender(),
                    height = evidence.height().0,
                    round = evidence.round().0,
                    "a validator signed two different messages for one step"
                );
                self.evidence.record(evidence);
            }
        }
        Ok(None)
    }

    /// Answers validity checks whose block just arrived.
    fn retry_waiting(&mut self) -> Result<(), DriverError> {
        let waiting = std::mem::take(&mut self.waiting_checks);
        for (height, round, value) in waiting {
            match self.check_block(height.0, value)? {
                Some(valid) => self.feed(Input::ProposalValidity {
                    height,
                    round,
                    value,
                    valid,
                })?,
                None => self.waiting_checks.push((height, round, value)),
            }
        }
        if let Some(decision) = self.waiting_decision.take() {
            self.on_decision(decision)?;
        }
        Ok(())
    }

    fn on_decision(&mut self, decision: Decision) -> Result<(), DriverError> {
        let height = decision.height.0;
        if height != self.committed_height() + 1 {
            debug!(height, "decision for a height already committed (by sync)");
            return Ok(());
        }
        // A quorum certified it: it is committed once its body (matching
        // its header) is here, whatever this node's own verdict was.
        let Some(candidate) = self.candidates.get(&decision.value) else {
            info!(height, value = %decision.value, "decided a block not received yet; fetching it");
            self.want_body(height, decision.value);
            self.waiting_decision = Some(decision);
            return Ok(());
        };
        let block = candidate.block.clone();
        let certificate = borsh::to_vec(&decision.certificate).expect("encoding to a Vec");
        self.commit(block, certificate, decision.round.0, true)
    }

    fn committed_height(&self) -> u64 {
        self.shared.status.borrow().height
    }

    fn publish_status(&self) {
        let round = self.engine.round().map_or(0, |round| round.0);
        let syncing = self.is_behind();
        let peers: Vec<String> = self
            .network
            .connected_peers()
            .iter()
            .map(ToString::to_string)
            .collect();
        self.shared.metrics.set_round(round);
        self.shared.metrics.set_peers(peers.len());
        self.shared.status.send_if_modified(|status| {
            let changed =
                status.round != round || status.syncing != syncing || status.peers != peers;
            status.round = round;
            status.syncing = syncing;
            status.peers = peers;
            changed
        });
    }

    fn peer_for_proposer(&self, proposer: &PublicKey) -> Option<PeerId> {
        self.peer_of_validator.get(proposer).copied()
    }

    /// After a commit: reads the validator sets the new state records,
    /// publishes them (the intake and the network's allow-list follow) and
    /// keeps them for the next heights. A failed read of our own state is
    /// our disk failing: fatal.
    fn refresh_validators(&mut self, height: u64) -> Result<(), DriverError> {
        let schedule = self
            .shared
            .refresh_validators()
            .map_err(|source| ledger::store::StoreError::StateReadFailed { height, source })?;
        let before = self.schedule.epoch_at(height + 1).number;
        let now = schedule.epoch_at(height + 1).number;
        if before != now {
            info!(
                height = height + 1,
                epoch = now,
                validators = schedule.set_at(height + 1).len(),
                "a new validator set is in force from this height"
            );
        }
        self.peer_of_validator = schedule.peer_of_key();
        self.validator_of_peer = schedule.validator_of_peer_at(height + 1);
        let me = self.network.local_peer_id();
        let mut peers = schedule.allowed_peers(&self.shared.genesis);
        peers.retain(|peer| peer.peer_id != me);
        if peers != self.allowed_peers {
            self.runtime.block_on(self.network.set_peers(peers.clone()));
            self.allowed_peers = peers;
        }
        self.schedule = schedule;
        Ok(())
    }
}

#[cfg(test)]
mod announcement_tests;
