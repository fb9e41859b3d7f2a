//! Consortium governance of the validator set: the records that make the
//! set part of the authenticated state, the rules of a change, and the
//! queries the node, sync and audit use to learn the set in force at a
//! height.
//!
//! # The rules (also in the README)
//!
//! - A validator proposes a change ([`ValidatorChange`]: add, remove, set a
//!   power, rotate a consensus key) with `ProposeValidatorChange`, signed
//!   with its consensus key; proposing counts as its approval. Validators
//!   approve with `ApproveValidatorChange`, also signed with their
//!   consensus keys. Only validators of the set in force at the block's
//!   height may propose or approve: the operator runs the participants'
//!   registry, the validators run the validator set.
//! - A change is **adopted** by the transaction that brings its approvals to
//!   **more than 2/3 of the voting power of the set in force** at that
//!   block's height H (approvals are counted with the powers in force at H,
//!   and those of validators no longer in the set are dropped). It **takes
//!   effect at height H + [`ACTIVATION_DISTANCE`]** (H + 2): every node has
//!   executed H before it starts H + 1, so every node knows the set of H + 2
//!   before anyone needs it, and all switch at the same height.
//! - A proposal expires unapproved at its expiry height: from that height on
//!   nothing can approve it. Its expiry is at most [`MAX_PROPOSAL_LIFETIME`]
//!   blocks ahead, and a validator may have at most
//!   [`MAX_OPEN_PROPOSALS_PER_VALIDATOR`] open proposals, so a faulty
//!   validator cannot crowd out the others'.
//! - A change must apply to the newest scheduled set (including changes
//!   adopted but not yet in force), when proposed and again when adopted
//!   ([`ValidatorChange::apply`]): no duplicate consensus key, peer id or
//!   name; at most [`MAX_VALIDATORS`] validators and [`MAX_TOTAL_POWER`] of
//!   power; a removal may not leave fewer than [`MIN_VALIDATORS`]; and a
//!   removal or a power cut may take away less than a third of the power at
//!   once, so the validators that keep their place hold a quorum (more than
//!   2/3) of the set that approved the change.
//!
//! # What is recorded
//!
//! - [`ValidatorEpoch`]s, numbered from 0 (genesis): each the full set in
//!   force from its `from_height` until the next epoch's. Never deleted, so
//!   the set of any past height is in the state ([`epoch_in_force`]).
//! - One [`GovernanceSummary`]: the newest epoch's number and the open
//!   proposals.
//! - A [`ValidatorProposal`] per proposal, by the hash of the transaction
//!   that made it; adoption is recorded in it and it never changes after.
//! - Each validator's account: a participant with [`Role::Validator`] whose
//!   identity is its first consensus key and whose signing key is its
//!   current one (`participant`). Governance transactions carry the nonce of
//!   that account, so the mempool, replay protection and key rotation treat
//!   them like any other transaction.
//!
//! Not here: the transactions' execution (`execute::validators`), and
//! anything a node does with the set (connecting peers, starting heights).
//!
//! [`Role::Validator`]: crate::participant::Role::Validator

mod change;
mod genesis;
mod peer_id;

pub use change::{ValidatorChange, check_address};
pub use consensus::MAX_TOTAL_POWER;
pub use genesis::{GenesisState, GenesisStateError, GenesisValidator};
pub use peer_id::{PeerId, PeerIdError};

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{Validator, ValidatorSet};
use crypto::PublicKey;

use crate::error::StateError;
use crate::state::{StateKey, StateView};
use crate::transaction::TxHash;

/// Blocks between the block that adopts a change and the first height it
/// is in force at.
pub const ACTIVATION_DISTANCE: u64 = 2;
/// Fewest validators a removal may leave: 3f + 1 with f = 1.
pub const MIN_VALIDATORS: usize = 4;
/// Most validators in a set (bounds every set-sized record and loop).
pub const MAX_VALIDATORS: usize = 128;
/// Furthest a proposal's expiry may be, in blocks after its proposal.
pub const MAX_PROPOSAL_LIFETIME: u64 = 100_000;
/// Most open proposals one validator may have.
pub const MAX_OPEN_PROPOSALS_PER_VALIDATOR: usize = 4;
/// Most open proposals altogether (validators that left the set may still
/// have some until they expire).
pub const MAX_OPEN_PROPOSALS: usize = MAX_VALIDATORS * MAX_OPEN_PROPOSALS_PER_VALIDATOR;

/// One validator as the ledger records it.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ValidatorInfo {
    /// Its account's identity (its first consensus key): the same across
    /// key rotations.
    pub identity: PublicKey,
    pub name: String,
    /// The key its proposals and votes are signed with in this set.
    pub consensus_key: PublicKey,
    pub peer_id: PeerId,
    /// The multiaddr its node listens on.
    pub address: String,
    pub power: u64,
}

/// The number of a [`ValidatorEpoch`]. As a state key it takes 32 bytes
/// like every other (24 zero bytes, then the number big-endian).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EpochNumber(pub u64);

impl EpochNumber {
    pub fn to_key_bytes(self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&self.0.to_be_bytes());
        bytes
    }
}

impl BorshSerialize for EpochNumber {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(&self.to_key_bytes())
    }
}

impl BorshDeserialize for EpochNumber {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = <[u8; 32]>::deserialize_reader(reader)?;
        if bytes[..24] != [0u8; 24] {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "an epoch number key has 24 leading zero bytes",
            ));
        }
        let number: [u8; 8] = bytes[24..].try_into().expect("8 bytes");
        Ok(EpochNumber(u64::from_be_bytes(number)))
    }
}

/// The key of the one [`GovernanceSummary`]: 32 zero bytes as a state key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SummaryKey;

impl BorshSerialize for SummaryKey {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(&[0u8; 32])
    }
}

impl BorshDeserialize for SummaryKey {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        if <[u8; 32]>::deserialize_reader(reader)? != [0u8; 32] {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the governance summary's key is 32 zero bytes",
            ));
        }
        Ok(SummaryKey)
    }
}

/// The validator set in force from `from_height` until the next epoch's
/// `from_height`.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ValidatorEpoch {
    pub number: u64,
    pub from_height: u64,
    /// Sorted by consensus key (the consensus set's order), at least one,
    /// every power positive, total at most [`MAX_TOTAL_POWER`].
    pub validators: Vec<ValidatorInfo>,
}

impl ValidatorEpoch {
    pub fn total_power(&self) -> u64 {
        // Bounded by MAX_TOTAL_POWER whenever an epoch is written.
        self.validators.iter().map(|v| v.power).sum()
    }

    pub fn by_consensus_key(&self, key: &PublicKey) -> Option<&ValidatorInfo> {
        self.validators
            .binary_search_by_key(key, |v| v.consensus_key)
            .ok()
            .map(|index| &self.validators[index])
    }

    pub fn by_identity(&self, identity: &PublicKey) -> Option<&ValidatorInfo> {
        self.validators.iter().find(|v| v.identity == *identity)
    }

    /// The set as the consensus engine takes it (`Input::StartHeight`) and
    /// certificates are checked against.
    pub fn consensus_set(&self) -> ValidatorSet {
        ValidatorSet::new(self.validators.iter().map(|v| Validator {
            public_key: v.consensus_key,
            power: v.power,
        }))
        .expect("an epoch is checked against the consensus set's rules when written")
    }
}

/// An open proposal as the summary lists it.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct OpenProposal {
    pub id: TxHash,
    /// The proposer's identity.
    pub proposer: PublicKey,
    pub expires_at: u64,
}

/// What governance keeps in one place.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct GovernanceSummary {
    /// The newest epoch: in force now, or scheduled.
    pub latest_epoch: u64,
    /// Proposals neither adopted nor known to have expired, oldest first
    /// (expired ones are dropped whenever the summary is written).
    pub open: Vec<OpenProposal>,
}

/// When and by which transaction a change was adopted.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Adoption {
    /// The height of the block that adopted it.
    pub at: u64,
    /// The approval (or proposal) whose approval crossed the threshold.
    pub by: TxHash,
    /// `at + ACTIVATION_DISTANCE`: the first height of the new set.
    pub effective_from: u64,
    /// The epoch that holds the new set.
    pub epoch: u64,
}

/// A proposed change of the validator set.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ValidatorProposal {
    /// The hash of the proposing transaction.
    pub id: TxHash,
    pub change: ValidatorChange,
    /// The proposer's identity.
    pub proposer: PublicKey,
    pub proposed_at: u64,
    /// From this height on it can no longer be approved.
    pub expires_at: u64,
    /// Identities of the validators that approved it, sorted.
    pub approvals: Vec<PublicKey>,
    pub adopted: Option<Adoption>,
}

impl ValidatorProposal {
    /// Open at `height`: not adopted, not expired.
    pub fn is_open_at(&self, height: u64) -> bool {
        self.adopted.is_none() && height < self.expires_at
    }
}

fn missing(key: StateKey, what: String) -> StateError {
    StateError {
        key,
        reason: format!("{what} is not in the state"),
    }
}

/// The summary, or `None` on a chain whose genesis recorded no validator
/// set (see [`GenesisState`]).
pub fn summary(state: &impl StateView) -> Result<Option<GovernanceSummary>, StateError> {
    state.governance_summary()
}

/// Epoch `number`, which must exist (every number up to the summary's
/// newest does).
pub fn epoch(state: &impl StateView, number: u64) -> Result<ValidatorEpoch, StateError> {
    state.validator_epoch(number)?.ok_or_else(|| {
        missing(
            StateKey::ValidatorEpoch(EpochNumber(number)),
            format!("validator epoch {number}"),
        )
    })
}

/// The newest epoch: the set that will be in force once every adopted
/// change has taken effect.
pub fn latest_epoch(state: &impl StateView) -> Result<Option<ValidatorEpoch>, StateError> {
    match summary(state)? {
        Some(summary) => epoch(state, summary.latest_epoch).map(Some),
        None => Ok(None),
    }
}

/// The epoch in force at `height`: the newest whose `from_height` is at
/// most `height` (epoch 0 for height 0). Reads O(log epochs) entries.
///
/// Final for every height up to the last executed block's height +
/// [`ACTIVATION_DISTANCE`]; a later height may still get a newer set from
/// a change adopted meanwhile. `None` if no set is recorded.
pub fn epoch_in_force(
    state: &impl StateView,
    height: u64,
) -> Result<Option<ValidatorEpoch>, StateError> {
    let Some(summary) = summary(state)? else {
        return Ok(None);
    };
    let latest = epoch(state, summary.latest_epoch)?;
    if latest.from_height <= height || latest.number == 0 {
        return Ok(Some(latest));
    }
    // Epoch `low` starts at or before `height`, epoch `high` after it.
    let (mut low, mut high) = (0, latest.number);
    let mut found = epoch(state, 0)?;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        let candidate = epoch(state, middle)?;
        if candidate.from_height <= height {
            low = middle;
            found = candidate;
        } else {
            high = middle;
        }
    }
    Ok(Some(found))
}

/// The consensus validator set in force at `height` (see
/// [`epoch_in_force`]): what a certificate of block `height` must be
/// checked against, and what `Input::StartHeight` takes.
pub fn validator_set_at(
    state: &impl StateView,
    height: u64,
) -> Result<Option<ValidatorSet>, StateError> {
    Ok(epoch_in_force(state, height)?.map(|epoch| epoch.consensus_set()))
}

/// One proposal, open or not.
pub fn proposal(
    state: &impl StateView,
    id: &TxHash,
) -> Result<Option<ValidatorProposal>, StateError> {
    state.validator_proposal(id)
}

/// The proposals still open at `height` (not adopted, not expired), oldest
/// first; at most [`MAX_OPEN_PROPOSALS`].
pub fn pending_proposals(
    state: &impl StateView,
    height: u64,
) -> Result<Vec<ValidatorProposal>, StateError> {
    let Some(summary) = summary(state)? else {
        return Ok(Vec::new());
    };
    let mut pending = Vec::new();
    for open in summary.open.iter().filter(|open| open.expires_at > height) {
        let proposal = state.validator_proposal(&open.id)?.ok_or_else(|| {
            missing(
                StateKey::ValidatorProposal(open.id),
                format!("open proposal {}", open.id),
            )
        })?;
        if proposal.is_open_at(height) {
            pending.push(proposal);
        }
    }
    Ok(pending)
}
