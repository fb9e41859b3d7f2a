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
//! when the mempool holds transactions, a peer has started it, or the
//! genesis heartbeat interval has passed.
//!
//! Block content travels apart from consensus (whose messages carry only the
//! block hash): the proposer gossips a [`blocks::Announcement`] (header and
//! transaction hashes, which peers already hold from transaction gossip);
//! peers rebuild the block from their mempool and fetch it whole from the
//! proposer only when some transactions are missing. Block sync
//! ([`sync`]) fetches committed blocks with their certificates from peers.

pub mod blocks;
pub mod safety_file;
pub mod sync;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consensus::{
    ConsensusMessage, Decision, Engine, EngineConfig, Height, Input, Output, Round, Timeout,
    ValidatorSet,
};
use crypto::{Hash, PublicKey};
use ledger::Block;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::network::{Network, PeerId, SyncedBlock, Topic};
use crate::shared::Shared;

use blocks::{Announcement, Candidate};

/// How often the driver wakes with nothing else to do: checks whether to
/// start a height, asks peers for their heights, refreshes the status.
const TICK: Duration = Duration::from_millis(50);
/// How often peers are asked for their height.
const STATUS_INTERVAL: Duration = Duration::from_millis(1000);
/// Messages that arrive before the engine's first height are kept for it.
const MAX_EARLY_MESSAGES: usize = 10_000;

/// What the driver reacts to.
#[derive(Debug)]
pub enum Event {
    Consensus(ConsensusMessage),
    Announcement {
        from: PeerId,
        announcement: Announcement,
    },
    /// A whole block fetched by hash.
    FetchedBlock(Block),
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
/// written. Everything a peer can cause is logged and survived.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Safety(#[from] safety_file::SafetyFileError),
    #[error("store: {0}")]
    Store(#[from] ledger::store::StoreError),
}

pub struct Driver {
    shared: Arc<Shared>,
    network: Network,
    engine: Engine,
    validators: ValidatorSet,
    my_key: Option<crypto::Keypair>,
    peer_of_validator: HashMap<PublicKey, PeerId>,
    events: mpsc::UnboundedReceiver<Event>,
    sender: mpsc::UnboundedSender<Event>,
    runtime: Handle,
    safety_path: PathBuf,
    max_block_txs: usize,
    max_block_bytes: usize,
    heartbeat: Option<Duration>,
    /// The height the engine was started at, if any.
    started: Option<u64>,
    /// The highest height at which a peer has shown consensus activity.
    activity_height: u64,
    /// The mempool took something since the last height started.
    mempool_changed: bool,
    /// The last committed block carried transactions.
    last_block_busy: bool,
    early: Vec<ConsensusMessage>,
    candidates: HashMap<Hash, Candidate>,
    /// Announcements waiting for the whole block.
    fetching: HashMap<Hash, Announcement>,
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
}

pub struct DriverSetup {
    pub shared: Arc<Shared>,
    pub network: Network,
    pub validator_key: Option<crypto::Keypair>,
    pub safety_path: PathBuf,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub sender: mpsc::UnboundedSender<Event>,
    pub runtime: Handle,
}

impl Driver {
    pub fn new(setup: DriverSetup) -> Result<Driver, DriverError> {
        let shared = setup.shared;
        let genesis = &shared.genesis;
        let validators = genesis
            .validator_set()
            .expect("genesis was validated when loaded");
        let config = EngineConfig {
            timeouts: genesis.timeout_config(),
            ..EngineConfig::default()
        };
        let engine = match &setup.validator_key {
            Some(key) => {
                let record = safety_file::load(&setup.safety_path)?;
                Engine::validator(shared.chain_id, config, key.clone(), record)
            }
            None => Engine::observer(shared.chain_id, config),
        };
        let peer_of_validator = genesis
            .validators
            .iter()
            .filter_map(|validator| {
                validator
                    .peer_id
                    .parse::<PeerId>()
                    .ok()
                    .map(|peer| (validator.public_key, peer))
            })
            .collect();
        let params = genesis.consensus;
        Ok(Driver {
            validators,
            engine,
            my_key: setup.validator_key,
            peer_of_validator,
            network: setup.network,
            events: setup.events,
            sender: setup.sender,
            runtime: setup.runtime,
            safety_path: setup.safety_path,
            max_block_txs: params.max_block_txs as usize,
            max_block_bytes: params.max_block_bytes as usize,
            heartbeat: params.heartbeat_interval_ms.map(Duration::from_millis),
            started: None,
            activity_height: 0,
            mempool_changed: true,
            last_block_busy: false,
            early: Vec::new(),
            candidates: HashMap::new(),
            fetching: HashMap::new(),
            verdicts: HashMap::new(),
            waiting_checks: Vec::new(),
            waiting_decision: None,
            prepared: None,
            sync: sync::SyncState::default(),
            last_commit: Instant::now(),
            last_status_poll: Instant::now() - STATUS_INTERVAL,
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
            Event::Consensus(message) => {
                self.activity_height = self.activity_height.max(message.height().0);
                if self.started.is_none() {
                    if self.early.len() < MAX_EARLY_MESSAGES {
                        self.early.push(message);
                    }
                    return Ok(());
                }
                self.feed(Input::from(message))?;
            }
            Event::Announcement { from, announcement } => {
                self.on_announcement(from, announcement)?;
            }
            Event::FetchedBlock(block) => self.on_fetched_block(block)?,
            Event::Timeout(timeout) => self.feed(Input::TimeoutFired {
                kind: timeout.kind,
                height: timeout.height,
                round: timeout.round,
            })?,
            Event::PeerStatus { peer, height } => self.sync.peer_height(peer, height),
            Event::SyncedBlocks { peer, blocks } => self.on_synced_blocks(peer, blocks)?,
            Event::SyncFailed { peer } => self.sync.request_failed(peer),
            Event::MempoolActivity => self.mempool_changed = true,
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
        self.publish_status();
        Ok(())
    }

    fn should_start(&self) -> bool {
        if self.sync.is_behind(self.committed_height()) {
            return false;
        }
        // Pending transactions start a height only if they might fit in a
        // block: something arrived, or the last block took some. Otherwise
        // (say, only nonces waiting for a gap) the chain would grow by
        // empty blocks forever.
        let mempool_ready =
            self.shared.mempool.size().0 > 0 && (self.mempool_changed || self.last_block_busy);
        mempool_ready
            || self.activity_height > self.committed_height()
            || self
                .heartbeat
                .is_some_and(|interval| self.last_commit.elapsed() >= interval)
    }

    fn start_height(&mut self, height: u64) -> Result<(), DriverError> {
        debug!(height, "starting height");
        self.started = Some(height);
        self.mempool_changed = false;
        self.feed(Input::StartHeight {
            height: Height(height),
            validators: self.validators.clone(),
        })?;
        for message in std::mem::take(&mut self.early) {
            self.feed(Input::from(message))?;
        }
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
                if let Err(error) = self.network.publish(Topic::Consensus, message.to_bytes()) {
                    debug!(%error, "consensus message not published");
                }
            }
            Output::ScheduleTimeout(timeout) => {
                let sender = self.sender.clone();
                self.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(timeout.duration_ms)).await;
                    let _ = sender.send(Event::Timeout(timeout));
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
                self.waiting_checks.push((height, round, value));
            }
            Output::Decide(decision) => self.on_decision(decision)?,
            Output::Evidence(evidence) => {
                warn!(
                    ?evidence,
                    "a validator signed two different messages for one step"
                );
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
        let Some(candidate) = self.candidates.get(&decision.value) else {
            info!(height, value = %decision.value, "decided a block not received yet; fetching it");
            self.fetch_block(decision.value, None);
            self.waiting_decision = Some(decision);
            return Ok(());
        };
        let block = candidate.block.clone();
        let certificate = borsh::to_vec(&decision.certificate).expect("encoding to a Vec");
        self.commit(block, certificate, decision.round.0)
    }

    fn committed_height(&self) -> u64 {
        self.shared.status.borrow().height
    }

    fn publish_status(&self) {
        let round = self.engine.round().map_or(0, |round| round.0);
        let syncing = self.sync.is_behind(self.committed_height());
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
}
