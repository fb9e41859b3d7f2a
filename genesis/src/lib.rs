//! The consortium definition of an scfledger chain, and key files.
//!
//! A genesis file (JSON, [`Genesis`]) names the chain, its currency, its start
//! time, the validators and observer nodes allowed on the network, the
//! participants registered at the start (at least one operator) and the
//! consensus parameters. Its chain id ([`Genesis::chain_id`]) is the SHA-256
//! of a canonical borsh form, so every node that loads the same definition
//! signs for the same chain, whatever the JSON's layout. Loading always
//! validates ([`ValidationError`] names the rule and the entry).
//!
//! Key files ([`write_key_file`], [`read_key_file`]) hold one ed25519 secret.
//!
//! This crate does no networking: `node` dials the listed peers. It converts
//! the definition into what `ledger` and `consensus` take (`convert.rs`).
//!
//! ```json
//! {
//!   "chain_name": "acme-supply-chain",
//!   "currency_code": "CNY",
//!   "currency_decimals": 2,
//!   "genesis_time_ms": 1767225600000,
//!   "validators": [
//!     { "name": "bank-a", "public_key": "<64 hex digits>", "peer_id": "12D3KooW...",
//!       "address": "/ip4/10.0.0.1/tcp/26656", "voting_power": 1 }
//!   ],
//!   "observers": [
//!     { "name": "auditor-node", "peer_id": "12D3KooW...", "address": "/ip4/10.0.0.9/tcp/26656" }
//!   ],
//!   "participants": [
//!     { "name": "consortium-admin", "public_key": "<64 hex digits>", "roles": ["operator"] }
//!   ],
//!   "consensus": { "timeout_propose_ms": 3000, "max_block_txs": 2000 }
//! }
//! ```

mod chain_id;
mod convert;
mod file;
mod keyfile;
mod params;
mod roles;
mod validate;

pub use chain_id::CHAIN_ID_DOMAIN;
pub use convert::InitialStateError;
pub use file::{
    Genesis, GenesisError, InitialParticipant, MAX_GENESIS_FILE_BYTES, Observer, Validator,
};
pub use keyfile::{KeyFileError, Overwrite, read_key_file, write_key_file};
pub use params::ConsensusParams;
pub use roles::{OPERATOR, ROLE_NAMES, is_role_name};
pub use validate::{MAX_CURRENCY_DECIMALS, MAX_TOTAL_VOTING_POWER, ValidationError};
