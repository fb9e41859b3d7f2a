//! The consensus engine: a pure state machine, `handle(input) -> outputs`.
//!
//! The engine holds the state of the current height, a bounded buffer for the
//! next few heights, the signer behind its safety record, and drop counters.
//! It reads no clock, socket or disk and starts no thread: the node feeds it
//! messages, timer expiries and block verdicts, and carries out its outputs
//! in order (see [`Output`] for the persistence contract).
//!
//! Checks that do not depend on the height's state (chain, height window,
//! buffering) are here; membership and signatures are in `intake`, the
//! algorithm in `rules`.

mod buffer;
mod input;
mod intake;
mod output;
mod rules;
mod stats;

use std::fmt;

use crypto::{ChainId, PublicKey};

pub use input::Input;
pub use output::{Decision, Output, Timeout};
pub use stats::{DropReason, EngineStats};

use crate::config::EngineConfig;
use crate::messages::ConsensusMessage;
use crate::safety::{GuardedSigner, RoundValue, SafetyRecord, Signer};
use crate::types::{Height, Round, Step};
use crate::validator_set::ValidatorSet;
use buffer::FutureBuffer;
use rules::{Context, HeightState};

/// One validator's (or observer's) consensus state machine.
pub struct Engine {
    chain_id: ChainId,
    config: EngineConfig,
    guard: GuardedSigner,
    state: Option<HeightState>,
    buffer: FutureBuffer,
    stats: EngineStats,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("chain_id", &self.chain_id)
            .field("key", &self.guard.public_key())
            .field("height", &self.height())
            .field("round", &self.round())
            .field("step", &self.step())
            .finish()
    }
}

impl Engine {
    /// An engine that signs with `signer` (a validator) or, with `None`,
    /// only follows and decides (an observer). `record` is the last
    /// persisted safety record, reloaded after a restart; `None` on first start.
    pub fn new(
        chain_id: ChainId,
        config: EngineConfig,
        signer: Option<Box<dyn Signer + Send>>,
        record: Option<SafetyRecord>,
    ) -> Engine {
        Engine {
            chain_id,
            config,
            guard: GuardedSigner::new(signer, record),
            state: None,
            buffer: FutureBuffer::default(),
            stats: EngineStats::default(),
        }
    }

    /// A validator engine.
    pub fn validator(
        chain_id: ChainId,
        config: EngineConfig,
        signer: impl Signer + Send + 'static,
        record: Option<SafetyRecord>,
    ) -> Engine {
        Engine::new(chain_id, config, Some(Box::new(signer)), record)
    }

    /// An engine that never signs: follows consensus and decides.
    pub fn observer(chain_id: ChainId, config: EngineConfig) -> Engine {
        Engine::new(chain_id, config, None, None)
    }

    /// Feeds one input; returns what the node must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, &mut out)
            }
            Input::Proposal(p) => self.receive(ConsensusMessage::Proposal(p), false, &mut out),
            Input::Vote(v) => self.receive(ConsensusMessage::Vote(v), false, &mut out),
            Input::TimeoutFired {
                kind,
                height,
                round,
            } => {
                if let Some(state) = self.state.as_mut().filter(|s| s.height == height) {
                    let mut ctx = context(
                        &self.chain_id,
                        &self.config,
                        &mut self.guard,
                        &mut self.stats,
                    );
                    state.on_timeout(kind, round, &mut ctx, &mut out);
                }
            }
            Input::ValueToPropose {
                height,
                round,
                value,
            } => {
                if let Some(state) = self.state.as_mut().filter(|s| s.height == height) {
                    let mut ctx = context(
                        &self.chain_id,
                        &self.config,
                        &mut self.guard,
                        &mut self.stats,
                    );
                    state.on_value_to_propose(round, value, &mut ctx, &mut out);
                }
            }
            Input::ProposalValidity {
                height,
                round: _,
                value,
                valid,
            } => {
                if let Some(state) = self.state.as_mut().filter(|s| s.height == height) {
                    let mut ctx = context(
                        &self.chain_id,
                        &self.config,
                        &mut self.guard,
                        &mut self.stats,
                    );
                    state.on_validity(value, valid, &mut ctx, &mut out);
                }
            }
        }
        out
    }

    fn start_height(&mut self, height: Height, validators: ValidatorSet, out: &mut Vec<Output>) {
        if self.state.as_ref().is_some_and(|s| s.height >= height) {
            self.stats.count(DropReason::StaleStartHeight);
            return;
        }
        let me = self
            .guard
            .public_key()
            .filter(|key| validators.contains(key));
        let mut state = HeightState::new(height, validators, me);
        let record = self.guard.record().copied();
        let mut ctx = context(
            &self.chain_id,
            &self.config,
            &mut self.guard,
            &mut self.stats,
        );
        match record {
            // Restarted in the middle of this height: continue where we signed.
            Some(record) if record.height == height => state.resume(&record, &mut ctx, out),
            _ => state.start_round(Round::ZERO, &mut ctx, out),
        }
        state.process(&mut ctx, out);
        self.state = Some(state);
        for message in self.buffer.take(height) {
            self.receive(message, true, out);
        }
    }

    /// A message from the network (`verified`: from the buffer, signature
    /// already checked). Drops are counted, never returned.
    fn receive(&mut self, message: ConsensusMessage, verified: bool, out: &mut Vec<Output>) {
        if let Err(reason) = self.admit(message, verified, out) {
            self.stats.count(reason);
        }
    }

    fn admit(
        &mut self,
        message: ConsensusMessage,
        verified: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let Some(state) = self.state.as_mut() else {
            return Err(DropReason::NotStarted);
        };
        if message.chain_id() != self.chain_id {
            return Err(DropReason::WrongChain);
        }
        let height = message.height();
        if height < state.height {
            return Err(DropReason::PastHeight);
        }
        if height > state.height {
            if height.0 - state.height.0 > self.config.future_heights {
                return Err(DropReason::FarFutureHeight);
            }
            // The next height's set is unknown yet; today's is the best filter.
            if !state.validators.contains(&message.signer()) {
                return Err(DropReason::NonValidator);
            }
            if self.buffer.contains(&message) {
                return Err(DropReason::Duplicate);
            }
            if !verified {
                message
                    .verify(&self.chain_id)
                    .map_err(|_| DropReason::BadSignature)?;
            }
            return self.buffer.push(
                message,
                self.config.max_buffered_messages,
                self.config.max_buffered_per_signer,
            );
        }
        if state.decided {
            return Err(DropReason::AlreadyDecided);
        }
        let mut ctx = context(
            &self.chain_id,
            &self.config,
            &mut self.guard,
            &mut self.stats,
        );
        match message {
            ConsensusMessage::Proposal(p) => state.receive_proposal(p, verified, &mut ctx, out),
            ConsensusMessage::Vote(v) => state.receive_vote(v, verified, &mut ctx, out),
        }
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Our validator key; `None` for an observer.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.guard.public_key()
    }

    /// The height being decided, once started.
    pub fn height(&self) -> Option<Height> {
        self.state.as_ref().map(|s| s.height)
    }

    pub fn round(&self) -> Option<Round> {
        self.state.as_ref().map(|s| s.round)
    }

    pub fn step(&self) -> Option<Step> {
        self.state.as_ref().map(|s| s.step)
    }

    /// The lock at the current height (`lockedValue_p`, `lockedRound_p`).
    pub fn locked(&self) -> Option<RoundValue> {
        self.state.as_ref().and_then(|s| s.locked)
    }

    /// The valid value at the current height (`validValue_p`, `validRound_p`).
    pub fn valid_value(&self) -> Option<RoundValue> {
        self.state.as_ref().and_then(|s| s.valid)
    }

    /// Whether the current height is decided (waiting for the next `StartHeight`).
    pub fn is_decided(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.decided)
    }

    /// The last safety record emitted (or loaded).
    pub fn safety_record(&self) -> Option<SafetyRecord> {
        self.guard.record().copied()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Messages held for future heights.
    pub fn buffered_messages(&self) -> usize {
        self.buffer.len()
    }
}

fn context<'a>(
    chain_id: &'a ChainId,
    config: &'a EngineConfig,
    guard: &'a mut GuardedSigner,
    stats: &'a mut EngineStats,
) -> Context<'a> {
    Context {
        chain_id,
        config,
        guard,
        stats,
    }
}
