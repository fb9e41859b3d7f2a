//! Cryptographic primitives shared by every scfledger crate: SHA-256 hashes,
//! ed25519 keys and signatures, and the single function that builds the bytes
//! a signature covers (domain tag, chain id, borsh body).
//!
//! Nothing else in the workspace constructs signed bytes: consensus messages
//! and ledger transactions both go through [`signing_bytes`], so a signature
//! made for one chain or one message kind can never be valid for another.
//!
//! Every signature is verified under the ZIP-215 rules (`ed25519-consensus`),
//! whether alone or in a batch: one verdict everywhere is part of the
//! protocol (see `keys` and `batch`).
//!
//! This crate does no I/O: key files are read and written by `genesis` and the
//! CLI.

mod batch;
mod hash;
mod keys;
mod signing;
mod zip215;
#[cfg(test)]
mod zip215_vectors;

pub use batch::{SignedMessage, verify_many};
pub use hash::{ChainId, Hash, ParseHexError};
pub use keys::{Keypair, PublicKey, Signature};
pub use signing::{Domain, signing_bytes};

/// Why a signature or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("public key {key} is not a valid ed25519 point")]
    InvalidPublicKey { key: PublicKey },
    #[error("signature does not verify for public key {key}")]
    BadSignature { key: PublicKey },
}
