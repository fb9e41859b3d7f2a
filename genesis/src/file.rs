//! The genesis file: the JSON document that defines a consortium chain, and
//! reading and writing it.
//!
//! Parsing goes through private mirror structs in which keys are still text,
//! so a malformed key is reported with the field and the entry that hold it
//! (serde alone would only give a line and a column). Every [`Genesis`] that
//! comes out of JSON, by [`Genesis::from_json`], [`Genesis::load`] or serde, has
//! passed [`Genesis::validate`]. Unknown fields are refused, so a misspelled
//! optional field cannot silently fall back to its default.
//!
//! This module does not hold the rules (`validate.rs`) nor compute the chain id
//! (`chain_id.rs`).

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::params::ConsensusParams;
use crate::validate::ValidationError;

/// The definition of one consortium chain. Its chain id is the hash of its
/// canonical form ([`Genesis::chain_id`]).
///
/// Fields are public so tools can build a genesis; such a value is checked by
/// [`Genesis::validate`], which [`Genesis::save`] calls before writing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGenesis")]
pub struct Genesis {
    /// Human-readable chain name, e.g. `"acme-supply-chain"`.
    pub chain_name: String,
    /// The currency amounts are denominated in: 3–12 uppercase ASCII letters, e.g. `"CNY"`.
    pub currency_code: String,
    /// Digits after the decimal point: amounts are integers in units of
    /// 10^-decimals (`2` for fen or cents). At most 18.
    pub currency_decimals: u8,
    /// The chain's start: UTC Unix time in milliseconds. The first block's time.
    pub genesis_time_ms: u64,
    /// The validator set, in file order (which may decide proposer order).
    pub validators: Vec<Validator>,
    /// Non-voting nodes allowed to connect and follow the chain (e.g. an auditor's).
    pub observers: Vec<Observer>,
    /// Keys registered in the ledger's initial state; at least one operator.
    pub participants: Vec<InitialParticipant>,
    pub consensus: ConsensusParams,
}

/// A voting member of the consortium and the node it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validator {
    pub name: String,
    /// The ed25519 key the validator signs proposals and votes with.
    pub public_key: PublicKey,
    /// The libp2p peer id of its node, e.g. `"12D3KooW..."`.
    pub peer_id: String,
    /// The multiaddr its node listens on, e.g. `"/ip4/10.0.0.1/tcp/26656"`.
    pub address: String,
    pub voting_power: u64,
}

/// A node that may connect and follow the chain but does not vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observer {
    pub name: String,
    pub peer_id: String,
    pub address: String,
}

/// A participant registered at genesis. Later participants are registered by
/// an operator's transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InitialParticipant {
    pub name: String,
    pub public_key: PublicKey,
    /// Role names from [`crate::ROLE_NAMES`]; a set (order does not matter).
    pub roles: Vec<String>,
}

/// Largest genesis file [`Genesis::load`] reads: far above any consortium's
/// (a participant takes about 200 bytes), and small enough that a file
/// handed over by someone else cannot make a node or `scf` allocate without
/// bound before a single rule is checked.
pub const MAX_GENESIS_FILE_BYTES: u64 = 16 << 20;

/// Why a genesis could not be read, parsed, accepted or written.
///
/// Messages are complete on their own (they include the inner error), so
/// printing the top-level error says everything.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("malformed genesis JSON: {0}")]
    Json(serde_json::Error),
    #[error("invalid genesis: {0}")]
    Invalid(ValidationError),
    #[error("cannot read genesis file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "genesis file {} is {size} bytes or more; a genesis file is at most {max} bytes, so this is not one",
        path.display()
    )]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("cannot write genesis file {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A [`GenesisError::Json`] or [`GenesisError::Invalid`] found in a file.
    #[error("genesis file {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<GenesisError>,
    },
}

impl GenesisError {
    /// The broken rule, if that is what went wrong (also inside a file).
    pub fn validation_error(&self) -> Option<&ValidationError> {
        match self {
            GenesisError::Invalid(error) => Some(error),
            GenesisError::InFile { error, .. } => error.validation_error(),
            _ => None,
        }
    }
}

impl Genesis {
    /// Parses and validates a genesis document.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let raw: RawGenesis = serde_json::from_str(text).map_err(GenesisError::Json)?;
        Genesis::try_from(raw).map_err(GenesisError::Invalid)
    }

    /// Reads, parses and validates the genesis file at `path`; every error
    /// names the path. A file over [`MAX_GENESIS_FILE_BYTES`] is refused
    /// before it is read into memory.
    pub fn load(path: impl AsRef<Path>) -> Result<Genesis, GenesisError> {
        let path = path.as_ref();
        let read_error = |error| GenesisError::Read {
            path: path.to_owned(),
            error,
        };
        let too_large = |size| GenesisError::TooLarge {
            path: path.to_owned(),
            size,
            max: MAX_GENESIS_FILE_BYTES,
        };
        let file = fs::File::open(path).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        if size > MAX_GENESIS_FILE_BYTES {
            return Err(too_large(size));
        }
        // The length is checked again while reading: a file that grows
        // after the check (or a device that reports no length) is cut off.
        let mut text = String::new();
        file.take(MAX_GENESIS_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_GENESIS_FILE_BYTES {
            return Err(too_large(text.len() as u64));
        }
        Genesis::from_json(&text).map_err(|error| GenesisError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// The document as indented JSON, every field written out (consensus
    /// defaults included). Does not validate.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a genesis is only strings, integers and lists, which always serialize")
    }

    /// Validates, then writes the document to `path`, replacing any file there.
    /// An invalid genesis is refused with [`GenesisError::Invalid`], so a node
    /// never meets a file that its own tools wrote but it would reject.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GenesisError> {
        let path = path.as_ref();
        self.validate().map_err(GenesisError::Invalid)?;
        let mut text = self.to_json_pretty();
        text.push('\n');
        fs::write(path, text).map_err(|error| GenesisError::Write {
            path: path.to_owned(),
            error,
        })
    }
}

/// The document as written, keys still text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenesis {
    chain_name: String,
    currency_code: String,
    currency_decimals: u8,
    genesis_time_ms: u64,
    validators: Vec<RawValidator>,
    #[serde(default)]
    observers: Vec<Observer>,
    participants: Vec<RawParticipant>,
    #[serde(default)]
    consensus: ConsensusParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    name: String,
    public_key: String,
    peer_id: String,
    address: String,
    voting_power: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParticipant {
    name: String,
    public_key: String,
    roles: Vec<String>,
}

impl TryFrom<RawGenesis> for Genesis {
    type Error = ValidationError;

    fn try_from(raw: RawGenesis) -> Result<Genesis, ValidationError> {
        let validators = raw
            .validators
            .into_iter()
            .enumerate()
            .map(|(index, validator)| {
                Ok(Validator {
                    public_key: parse_key(
                        &validator.public_key,
                        "validators",
                        index,
                        &validator.name,
                    )?,
                    name: validator.name,
                    peer_id: validator.peer_id,
                    address: validator.address,
                    voting_power: validator.voting_power,
                })
            })
            .collect::<Result<_, ValidationError>>()?;
        let participants = raw
            .participants
            .into_iter()
            .enumerate()
            .map(|(index, participant)| {
                Ok(InitialParticipant {
                    public_key: parse_key(
                        &participant.public_key,
                        "participants",
                        index,
                        &participant.name,
                    )?,
                    name: participant.name,
                    roles: participant.roles,
                })
            })
            .collect::<Result<_, ValidationError>>()?;
        let genesis = Genesis {
            chain_name: raw.chain_name,
            currency_code: raw.currency_code,
            currency_decimals: raw.currency_decimals,
            genesis_time_ms: raw.genesis_time_ms,
            validators,
            observers: raw.observers,
            participants,
            consensus: raw.consensus,
        };
        genesis.validate()?;
        Ok(genesis)
    }
}

fn parse_key(
    text: &str,
    list: &str,
    index: usize,
    entry: &str,
) -> Result<PublicKey, ValidationError> {
    text.parse()
        .map_err(|error: crypto::ParseHexError| ValidationError::BadKey {
            field: format!("{list}[{index}].public_key"),
            entry: entry.to_owned(),
            reason: error.to_string(),
        })
}
