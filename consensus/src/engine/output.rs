//! What the engine asks the node to do.
//!
//! **Ordering contract.** Outputs must be carried out in order. In particular
//! `PersistSafetyRecord` always comes immediately before the `Broadcast` of
//! the message it allows: the node must make the record durable (fsync)
//! before sending anything that follows it in the vector. A node that crashes
//! in between restarts with a record at least as new as any message it sent.

use crypto::Hash;

use crate::certificate::CommitCertificate;
use crate::config::TimeoutKind;
use crate::evidence::Equivocation;
use crate::messages::ConsensusMessage;
use crate::safety::SafetyRecord;
use crate::types::{Height, Round};

/// A timer to start: when `duration_ms` has passed, feed
/// `Input::TimeoutFired { kind, height, round }`. Timers are never cancelled;
/// a stale one is ignored by the engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeout {
    pub kind: TimeoutKind,
    pub height: Height,
    pub round: Round,
    pub duration_ms: u64,
}

/// A decided value and its proof.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision {
    pub height: Height,
    pub round: Round,
    /// The hash of the decided block.
    pub value: Hash,
    pub certificate: CommitCertificate,
}

/// An output of [`Engine::handle`](crate::Engine::handle).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Output {
    /// Make this record durable before carrying out any later output.
    PersistSafetyRecord(SafetyRecord),
    /// Send to every peer (including relays of others' messages).
    Broadcast(ConsensusMessage),
    ScheduleTimeout(Timeout),
    /// We propose in this round and have no valid value: build a block and
    /// answer with `Input::ValueToPropose`.
    GetValue {
        height: Height,
        round: Round,
    },
    /// Execute the block with hash `value` (fetch it first if needed) and
    /// answer with `Input::ProposalValidity`.
    CheckValidity {
        height: Height,
        round: Round,
        value: Hash,
    },
    /// `value` is decided at `height`. Commit it with the certificate, then
    /// send `Input::StartHeight` for the next height.
    Decide(Decision),
    /// A validator signed two conflicting messages.
    Evidence(Equivocation),
}
