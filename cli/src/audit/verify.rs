//! Verifying a whole chain from genesis: what `scf audit verify` does and
//! what the demo calls ([`verify_chain`]).
//!
//! For each height from 1 up, in this order (the first broken rule is the
//! one reported, so the order decides what a tampered chain is blamed for):
//!
//! 1. the block decodes, and its parent hash is the previous block's hash
//!    (zero for height 1: the store commits genesis with a zero block hash);
//! 2. it says it is this height, of this chain;
//! 3. its tx root is the Merkle root of its transactions;
//! 4. its certificate decodes and holds valid precommits for this height and
//!    this block's hash from more than two thirds of the power of the
//!    validator set **the replayed chain records for this height**
//!    (`ledger::governance::validator_set_at`: genesis's until a governance
//!    change takes effect), and its proposer is one of those validators;
//! 5. every transaction's signature verifies (in one batch) and every
//!    transaction is valid when replayed, in order, on the state the previous
//!    blocks left, starting from genesis's state (`Genesis::initial_state`:
//!    participants and the validator set, as the node's store starts);
//! 6. the header's app hash equals the state tree's root after the replay.
//!
//! The replay runs in memory (`ledger::MemoryState` and `ledger::StateTree`,
//! fed the same writes the store's commit applies), so it needs no disk and
//! is not slowed by a synced write per block. It shares no state with the
//! audited node: a node whose data was altered cannot make it agree.
//!
//! [`ChainVerifier`] is that check one block at a time, for callers that do
//! something with each verified block: the PostgreSQL sink (`crate::sink`)
//! writes only what it verified this way.
//!
//! The set of height H is final once block H - 2 is replayed (a change
//! adopted at H' takes effect at H' + 2), so the replay of blocks 1..H-1
//! always knows it: nothing a block's certificate claims about the set
//! counts, only what the replayed state recorded.

use std::time::Instant;

use consensus::{CertificateError, CommitCertificate, Height, ValidatorSet};
use crypto::{ChainId, Hash, PublicKey};
use genesis::Genesis;
use ledger::block::{Block, BlockError, BlockExecution};
use ledger::{MemoryState, Role, StateKey, StateTree, StateValue, TxError, TxHash};
use serde::Serialize;

use super::progress::Progress;
use super::source::{BlockSource, RawBlock, SourceError};

/// The largest certificate decoded: a signature entry is 96 bytes, and no
/// validator set comes near ten thousand members.
const MAX_CERTIFICATE_BYTES: usize = 1 << 20;

/// What is wrong with the block at one height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("no block is stored at this height, although the chain goes further")]
    Missing,
    #[error(
        "the replayed state records no validator set for this height (a chain started without one): its certificate cannot be checked"
    )]
    NoValidatorSet,
    #[error("the block does not decode: {0}")]
    Undecodable(String),
    #[error(
        "parent hash {found} is not the hash of the block below, {expected}: blocks were swapped, removed or altered"
    )]
    ParentHash { expected: Hash, found: Hash },
    #[error("the block stored here says it is height {found}")]
    WrongHeight { found: u64 },
    #[error("the block is for chain {found}, the genesis defines chain {expected}")]
    WrongChain { expected: ChainId, found: ChainId },
    #[error(
        "tx root mismatch: header says {header}, the transactions give {computed}: a transaction was altered, added or removed"
    )]
    TxRoot { header: Hash, computed: Hash },
    #[error("no certificate is stored with the block")]
    CertificateMissing,
    #[error("certificate does not decode: {0}")]
    CertificateUndecodable(String),
    #[error("certificate invalid: {0}")]
    Certificate(CertificateError),
    #[error("proposer {proposer} is not a genesis validator")]
    UnknownProposer { proposer: PublicKey },
    #[error("transaction {index} ({hash}) signature does not verify for signer {signer}")]
    BadSignature {
        index: usize,
        hash: TxHash,
        signer: PublicKey,
    },
    #[error("transaction {index} ({hash}) is invalid on replay: {error}")]
    InvalidTransaction {
        index: usize,
        hash: TxHash,
        error: Box<TxError>,
    },
    #[error("app hash mismatch: header says {header}, replay gives {replay}")]
    AppHash { header: Hash, replay: Hash },
    #[error("the block writes more than a block may: {0}")]
    TooMuchWork(String),
}

/// Why an audit did not pass.
#[derive(Debug, thiserror::Error)]
pub enum AuditFailure {
    /// The chain is wrong: the first height that breaks a rule, and how.
    #[error("height {height}: {violation}")]
    Invalid { height: u64, violation: Violation },
    /// The genesis itself cannot define a chain.
    #[error("the genesis cannot be used: {0}")]
    Genesis(String),
    /// The chain could not be read; nothing was concluded about it.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl AuditFailure {
    /// The height that failed, if the chain itself was found wrong.
    pub fn height(&self) -> Option<u64> {
        match self {
            AuditFailure::Invalid { height, .. } => Some(*height),
            _ => None,
        }
    }
}

/// One core enterprise's exposure after the last verified block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreExposure {
    pub core: PublicKey,
    pub name: String,
    /// Confirmed and not yet settled, in the chain's currency ("600000.00").
    pub outstanding: String,
    pub outstanding_minor: u64,
    /// The sum of the banks' grants.
    pub limit: String,
    pub limit_minor: u64,
}

/// What a passing audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    pub source: String,
    pub chain_id: ChainId,
    pub chain_name: String,
    pub currency_code: String,
    /// Heights 1..=heights were verified (0: genesis only).
    pub heights: u64,
    pub transactions: u64,
    /// Participants registered (genesis's and later ones), active or not.
    pub participants: usize,
    pub active_participants: usize,
    /// Every core enterprise, by key.
    pub outstanding: Vec<CoreExposure>,
    /// The last verified block's hash (zero at genesis) and app hash.
    pub block_hash: Hash,
    pub app_hash: Hash,
    pub seconds: f64,
    pub transactions_per_second: f64,
}

/// The state rebuilt from genesis by executing every block.
struct Replay {
    state: MemoryState,
    tree: StateTree,
}

impl Replay {
    /// The genesis state, as `Store::init_genesis_state` writes it on a
    /// node: the same `Genesis::initial_state`, so the same app hash.
    fn from_genesis(genesis: &Genesis) -> Result<Replay, AuditFailure> {
        let initial = genesis
            .initial_state()
            .map_err(|error| AuditFailure::Genesis(error.to_string()))?;
        let mut replay = Replay {
            state: MemoryState::new(),
            tree: StateTree::new(),
        };
        replay.write(initial.values());
        Ok(replay)
    }

    /// The validator set the replayed chain records for `height` (final
    /// for every height up to the replayed one + 2).
    fn validators_at(&self, height: u64) -> Result<ValidatorSet, Violation> {
        match ledger::governance::validator_set_at(&self.state, height) {
            Ok(Some(set)) => Ok(set),
            Ok(None) => Err(Violation::NoValidatorSet),
            Err(error) => {
                unreachable!("the replay's state is in memory and reads without failing: {error}")
            }
        }
    }

    /// Applies writes to the state and the tree, as the store's commit
    /// does, and returns the new app hash.
    fn write(&mut self, values: impl IntoIterator<Item = StateValue>) -> Hash {
        let values: Vec<StateValue> = values.into_iter().collect();
        let root = self.tree.apply(
            values
                .iter()
                .map(|value| (value.tree_key(), value.value_hash())),
        );
        self.state.apply(values);
        root
    }

    fn apply(&mut self, execution: BlockExecution) -> Hash {
        self.write(execution.writes)
    }
}

/// What stays fixed over the whole audit.
struct Chain {
    chain_id: ChainId,
}

/// A block that passed every check of the module doc, with what its replay
/// wrote.
#[derive(Debug)]
pub struct VerifiedBlock {
    pub block: Block,
    /// The keys of the state entries the block wrote, each once; their new
    /// values are in [`ChainVerifier::state`] until the next block.
    pub writes: Vec<StateKey>,
    pub app_hash: Hash,
}

/// The chain verified so far: genesis, then each next block checked and
/// replayed on the state the previous ones left.
pub struct ChainVerifier {
    chain: Chain,
    replay: Replay,
    height: u64,
    /// The hash of the last verified block (zero at genesis).
    block_hash: Hash,
    app_hash: Hash,
}

impl ChainVerifier {
    /// Starts at `genesis`'s state; refused if genesis defines no usable
    /// validator set.
    pub fn from_genesis(genesis: &Genesis) -> Result<ChainVerifier, AuditFailure> {
        genesis
            .validator_set()
            .map_err(|error| AuditFailure::Genesis(error.to_string()))?;
        let chain = Chain {
            chain_id: genesis.chain_id(),
        };
        let replay = Replay::from_genesis(genesis)?;
        let app_hash = replay.tree.root_hash();
        Ok(ChainVerifier {
            chain,
            replay,
            height: 0,
            block_hash: Hash::ZERO,
            app_hash,
        })
    }

    /// The last verified block's hash (zero at genesis).
    pub fn block_hash(&self) -> Hash {
        self.block_hash
    }

    pub fn app_hash(&self) -> Hash {
        self.app_hash
    }

    /// The replayed state after the last verified block.
    pub fn state(&self) -> &MemoryState {
        &self.replay.state
    }

    /// Checks the block stored at the next height and replays it. A
    /// block refused by rules 1 to 5 changes nothing; after an app hash
    /// mismatch (rule 6) the replayed state is the block's, not the chain's,
    /// and the verifier must not be used again.
    pub fn verify_next(&mut self, raw: &RawBlock) -> Result<VerifiedBlock, AuditFailure> {
        let height = self.height + 1;
        let block = self
            .replay
            .validators_at(height)
            .and_then(|validators| {
                check_block(&self.chain, &validators, height, self.block_hash, raw)
            })
            .map_err(|violation| AuditFailure::Invalid { height, violation })?;
        let execution = execute(&block, &self.replay)
            .map_err(|violation| AuditFailure::Invalid { height, violation })?;
        let writes = execution.writes.iter().map(StateValue::key).collect();
        let replayed = self.replay.apply(execution);
        if replayed != block.header.app_hash {
            // The replay wrote what the block executes to, not what the
            // header claims: this verifier cannot go on.
            return Err(AuditFailure::Invalid {
                height,
                violation: Violation::AppHash {
                    header: block.header.app_hash,
                    replay: replayed,
                },
            });
        }
        self.height = height;
        self.block_hash = block.hash();
        self.app_hash = replayed;
        Ok(VerifiedBlock {
            block,
            writes,
            app_hash: replayed,
        })
    }
}

/// Verifies every block of `source` from genesis, reporting each verified
/// height to `progress`. Stops at the first broken rule.
pub fn verify_chain(
    source: &mut dyn BlockSource,
    progress: &mut dyn Progress,
) -> Result<AuditReport, AuditFailure> {
    let started = Instant::now();
    let genesis = source.genesis()?;
    let mut verifier = ChainVerifier::from_genesis(&genesis)?;
    let tip = source.tip()?;
    let mut transactions: u64 = 0;
    progress.start(tip);
    for height in 1..=tip {
        let raw = source.block(height)?.ok_or(AuditFailure::Invalid {
            height,
            violation: Violation::Missing,
        })?;
        let verified = verifier.verify_next(&raw)?;
        transactions += verified.block.txs.len() as u64;
        progress.verified(height, transactions);
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let replay = &verifier.replay;
    Ok(AuditReport {
        source: source.describe(),
        chain_id: verifier.chain.chain_id,
        chain_name: genesis.chain_name.clone(),
        currency_code: genesis.currency_code.clone(),
        heights: tip,
        transactions,
        participants: replay.participants().count(),
        active_participants: replay.participants().filter(|p| p.active).count(),
        outstanding: replay.exposures(genesis.currency_decimals),
        block_hash: verifier.block_hash,
        app_hash: verifier.app_hash,
        seconds,
        transactions_per_second: if seconds > 0.0 {
            transactions as f64 / seconds
        } else {
            0.0
        },
    })
}

/// Checks one block's rules 1 to 4 (see the module doc).
fn check_block(
    chain: &Chain,
    validators: &ValidatorSet,
    height: u64,
    parent: Hash,
    raw: &RawBlock,
) -> Result<Block, Violation> {
    let block =
        Block::from_bytes(&raw.block).map_err(|error| Violation::Undecodable(error.to_string()))?;
    let header = &block.header;
    if header.parent_hash != parent {
        return Err(Violation::ParentHash {
            expected: parent,
            found: header.parent_hash,
        });
    }
    if header.height != height {
        return Err(Violation::WrongHeight {
            found: header.height,
        });
    }
    if header.chain_id != chain.chain_id {
        return Err(Violation::WrongChain {
            expected: chain.chain_id,
            found: header.chain_id,
        });
    }
    let computed = ledger::tx_root(&block.txs);
    if computed != header.tx_root {
        return Err(Violation::TxRoot {
            header: header.tx_root,
            computed,
        });
    }
    let certificate = raw
        .certificate
        .as_deref()
        .ok_or(Violation::CertificateMissing)?;
    if certificate.len() > MAX_CERTIFICATE_BYTES {
        return Err(Violation::CertificateUndecodable(format!(
            "{} bytes, more than any validator set needs",
            certificate.len()
        )));
    }
    let certificate: CommitCertificate = borsh::from_slice(certificate)
        .map_err(|error| Violation::CertificateUndecodable(error.to_string()))?;
    certificate
        .verify_for(validators, &chain.chain_id, Height(height), block.hash())
        .map_err(Violation::Certificate)?;
    if !validators.contains(&header.proposer) {
        return Err(Violation::UnknownProposer {
            proposer: header.proposer,
        });
    }
    Ok(block)
}

/// Rule 5: every signature, and every transaction replayed on `replay`'s
/// state (which it does not change).
fn execute(block: &Block, replay: &Replay) -> Result<BlockExecution, Violation> {
    ledger::execute_block(&block.header.context(), &replay.state, &block.txs).map_err(|error| {
        match error {
            BlockError::InvalidTransaction { index, hash, error } => match *error {
                TxError::BadSignature { signer } => Violation::BadSignature {
                    index,
                    hash,
                    signer,
                },
                _ => Violation::InvalidTransaction { index, hash, error },
            },
            too_much @ BlockError::TooMuchWork { .. } => {
                Violation::TooMuchWork(too_much.to_string())
            }
            BlockError::StateReadFailed { error, .. } => {
                unreachable!("the replay's state is in memory and reads without failing: {error}")
            }
        }
    })
}

impl Replay {
    fn participants(&self) -> impl Iterator<Item = &ledger::Participant> {
        self.state.entries().filter_map(|(_, value)| match value {
            StateValue::Participant(participant) => Some(participant),
            _ => None,
        })
    }

    /// Every core enterprise with its credit line (zero without one).
    fn exposures(&self, decimals: u8) -> Vec<CoreExposure> {
        use ledger::StateView;
        self.participants()
            .filter(|participant| participant.has_role(Role::CoreEnterprise))
            .map(|participant| {
                let line = self
                    .state
                    .credit_line(&participant.key)
                    .expect("the replay's state is in memory and reads without failing");
                let outstanding = line
                    .as_ref()
                    .map_or(ledger::Amount(0), |line| line.outstanding);
                let limit = line.as_ref().map_or(ledger::Amount(0), |line| line.limit());
                CoreExposure {
                    core: participant.key,
                    name: participant.name.clone(),
                    outstanding: outstanding.to_decimal_string(decimals),
                    outstanding_minor: outstanding.0,
                    limit: limit.to_decimal_string(decimals),
                    limit_minor: limit.0,
                }
            })
            .collect()
    }
}
