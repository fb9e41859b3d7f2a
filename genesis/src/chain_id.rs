//! The chain id: SHA-256 of the genesis's canonical form.
//!
//! The canonical form is [`CHAIN_ID_DOMAIN`] followed by the borsh encoding of
//! [`CanonicalGenesis`], a struct written out here field by field so that the
//! encoding is explicit and does not drift when the public structs change.
//! It is normalized, so text that means the same thing gets the same id:
//!
//! - JSON whitespace and key order play no part (the parsed values are encoded);
//! - keys are their 32 bytes, whatever the hex case or `0x` prefix;
//! - omitted consensus parameters are encoded with their default values;
//! - a participant's roles are a set: sorted and deduplicated.
//!
//! Lists of validators, observers and participants keep file order, and the id
//! changes if they are reordered: validator order may decide proposer order,
//! and participants are registered in that order. Every other field is encoded,
//! so any change to it changes the id. The layout is pinned by a golden vector
//! (`tests/chain_id.rs`); changing it is a new chain format and needs a new
//! domain tag.
//!
//! This module does not validate: an invalid genesis has an id too, but no
//! tool accepts it.

use borsh::BorshSerialize;
use crypto::{ChainId, Hash, PublicKey};

use crate::file::Genesis;

/// Prefix of the canonical form, so a genesis hash can never be mistaken for
/// the hash of anything else the system encodes with borsh.
pub const CHAIN_ID_DOMAIN: &[u8] = b"scfledger/genesis/v1";

/// What the chain id covers, field by field, in this order.
#[derive(BorshSerialize)]
struct CanonicalGenesis<'a> {
    chain_name: &'a str,
    currency_code: &'a str,
    currency_decimals: u8,
    genesis_time_ms: u64,
    validators: Vec<CanonicalValidator<'a>>,
    observers: Vec<CanonicalObserver<'a>>,
    participants: Vec<CanonicalParticipant<'a>>,
    consensus: CanonicalParams,
}

#[derive(BorshSerialize)]
struct CanonicalValidator<'a> {
    name: &'a str,
    public_key: PublicKey,
    peer_id: &'a str,
    address: &'a str,
    voting_power: u64,
}

#[derive(BorshSerialize)]
struct CanonicalObserver<'a> {
    name: &'a str,
    peer_id: &'a str,
    address: &'a str,
}

#[derive(BorshSerialize)]
struct CanonicalParticipant<'a> {
    name: &'a str,
    public_key: PublicKey,
    /// Sorted bytewise, without duplicates.
    roles: Vec<&'a str>,
}

#[derive(BorshSerialize)]
struct CanonicalParams {
    timeout_propose_ms: u64,
    timeout_prevote_ms: u64,
    timeout_precommit_ms: u64,
    timeout_delta_ms: u64,
    max_block_txs: u64,
    max_block_bytes: u64,
    heartbeat_interval_ms: Option<u64>,
}

impl Genesis {
    /// The chain id every signed message of this chain carries.
    pub fn chain_id(&self) -> ChainId {
        ChainId(Hash::digest(&self.canonical_bytes()))
    }

    /// The bytes the chain id hashes: [`CHAIN_ID_DOMAIN`] then the borsh
    /// encoding of the normalized genesis. Public so auditors can recompute it.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = CHAIN_ID_DOMAIN.to_vec();
        canonical(self)
            .serialize(&mut bytes)
            .expect("writing into a Vec cannot fail");
        bytes
    }
}

fn canonical(genesis: &Genesis) -> CanonicalGenesis<'_> {
    let params = &genesis.consensus;
    CanonicalGenesis {
        chain_name: &genesis.chain_name,
        currency_code: &genesis.currency_code,
        currency_decimals: genesis.currency_decimals,
        genesis_time_ms: genesis.genesis_time_ms,
        validators: genesis
            .validators
            .iter()
            .map(|validator| CanonicalValidator {
                name: &validator.name,
                public_key: validator.public_key,
                peer_id: &validator.peer_id,
                address: &validator.address,
                voting_power: validator.voting_power,
            })
            .collect(),
        observers: genesis
            .observers
            .iter()
            .map(|observer| CanonicalObserver {
                name: &observer.name,
                peer_id: &observer.peer_id,
                address: &observer.address,
            })
            .collect(),
        participants: genesis
            .participants
            .iter()
            .map(|participant| {
                let mut roles: Vec<&str> = participant.roles.iter().map(String::as_str).collect();
                roles.sort_unstable();
                roles.dedup();
                CanonicalParticipant {
                    name: &participant.name,
                    public_key: participant.public_key,
                    roles,
                }
            })
            .collect(),
        consensus: CanonicalParams {
            timeout_propose_ms: params.timeout_propose_ms,
            timeout_prevote_ms: params.timeout_prevote_ms,
            timeout_precommit_ms: params.timeout_precommit_ms,
            timeout_delta_ms: params.timeout_delta_ms,
            max_block_txs: params.max_block_txs,
            max_block_bytes: params.max_block_bytes,
            heartbeat_interval_ms: params.heartbeat_interval_ms,
        },
    }
}
