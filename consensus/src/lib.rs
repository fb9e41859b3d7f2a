//! BFT consensus for scfledger: Tendermint-style rounds (propose, prevote,
//! precommit; locking; growing timeouts) as a pure state machine.
//!
//! The node drives an [`Engine`] with [`Input`]s (messages, timer expiries,
//! block verdicts) and carries out its [`Output`]s (broadcast, schedule a
//! timer, check a block, persist the safety record, commit a decision with
//! its [`CommitCertificate`]). The algorithm is Algorithm 1 of "The latest
//! gossip on BFT consensus" (Buchman, Kwon, Milosevic, 2018); with validator
//! power n = 3f + 1 it tolerates f Byzantine.
//!
//! This crate does no I/O and has no clock, thread or random source; it
//! depends on no other scfledger crate but `crypto`. Blocks are opaque here:
//! a value is a block hash, and the node answers whether a block is valid.

mod certificate;
mod config;
mod engine;
mod evidence;
mod messages;
mod safety;
mod types;
mod validator_set;
mod votekeeper;

pub use certificate::{CertificateError, CommitCertificate, CommitSignature};
pub use config::{EngineConfig, TimeoutConfig, TimeoutKind};
pub use engine::{Decision, DropReason, Engine, EngineStats, Input, Output, Timeout};
pub use evidence::Equivocation;
pub use messages::{
    ConsensusMessage, DecodeError, MAX_MESSAGE_BYTES, Proposal, SignedProposal, SignedVote, Vote,
};
pub use safety::{Refused, RoundValue, SafetyRecord, Signer};
pub use types::{Height, Round, Step, VoteKind};
pub use validator_set::{MAX_TOTAL_POWER, Validator, ValidatorSet, ValidatorSetError};
pub use votekeeper::{AddOutcome, MAX_VOTES_PER_STEP, VoteKeeper, VoteStatus};
