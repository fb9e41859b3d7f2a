//! What the node tells the engine.
//!
//! Every input is a fact the node observed (a message arrived, a timer fired,
//! a block was executed); the engine never fetches anything itself.

use crypto::Hash;

use crate::config::TimeoutKind;
use crate::messages::{ConsensusMessage, SignedProposal, SignedVote};
use crate::types::{Height, Round};
use crate::validator_set::ValidatorSet;

/// An input to [`Engine::handle`](crate::Engine::handle).
#[derive(Clone, Debug)]
pub enum Input {
    /// Begin deciding `height` with its validator set. Sent once at start-up
    /// and after each decision (once the block is committed), or to jump
    /// ahead after the node synced blocks from peers (paper lines 52-54 are
    /// the node's job: it knows when the block is durably committed).
    StartHeight {
        height: Height,
        validators: ValidatorSet,
    },
    /// A proposal received from the network.
    Proposal(SignedProposal),
    /// A vote received from the network.
    Vote(SignedVote),
    /// A timer the engine scheduled has fired.
    TimeoutFired {
        kind: TimeoutKind,
        height: Height,
        round: Round,
    },
    /// Answer to `Output::GetValue`: the hash of the block the node built.
    ValueToPropose {
        height: Height,
        round: Round,
        value: Hash,
    },
    /// Answer to `Output::CheckValidity`: the node executed the block whose
    /// hash is `value` (`valid(v)` in the paper).
    ProposalValidity {
        height: Height,
        round: Round,
        value: Hash,
        valid: bool,
    },
}

impl From<ConsensusMessage> for Input {
    fn from(message: ConsensusMessage) -> Input {
        match message {
            ConsensusMessage::Proposal(p) => Input::Proposal(p),
            ConsensusMessage::Vote(v) => Input::Vote(v),
        }
    }
}
