//! A validator node's libp2p peer id, as the ledger records it: the bytes
//! of the peer id's multihash, checked when made or decoded, so a recorded
//! peer id is always one libp2p accepts (`PeerId::from_bytes`).
//!
//! The ledger does not depend on libp2p: it checks the multihash shape that
//! libp2p requires of a peer id (an identity multihash of at most 42 bytes,
//! which inlines a public key, or a SHA-256 multihash), and prints and
//! parses the usual base58btc text (`12D3KooW…`). Whether the node behind
//! it is reachable is the node's business.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};

/// Multihash code of the identity "hash" (the digest is the input itself).
const IDENTITY: u8 = 0x00;
/// Multihash code of SHA-256.
const SHA2_256: u8 = 0x12;
/// Longest public key libp2p inlines in an identity peer id.
const MAX_INLINE_KEY_BYTES: usize = 42;

/// A libp2p peer id (its multihash bytes). Every value is valid: made by
/// [`PeerId::from_bytes`] or parsing, and decoding checks the same way.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize)]
pub struct PeerId(Vec<u8>);

/// Bytes or text that are not a libp2p peer id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a libp2p peer id ({reason}); give the id `scf node init` printed, e.g. 12D3KooW…"
)]
pub struct PeerIdError {
    /// The text, or the bytes in hex.
    pub input: String,
    pub reason: &'static str,
}

impl PeerId {
    /// Checks that `bytes` are a peer id's multihash: code and length each
    /// one byte (every valid peer id's are), identity of at most 42 bytes or
    /// SHA-256 of 32, nothing after the digest.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PeerId, PeerIdError> {
        let error = |reason| PeerIdError {
            input: hex::encode(&bytes),
            reason,
        };
        let [code, length, digest @ ..] = bytes.as_slice() else {
            return Err(error("shorter than a multihash header"));
        };
        if usize::from(*length) != digest.len() {
            return Err(error("the multihash length does not match its digest"));
        }
        match *code {
            IDENTITY if digest.is_empty() => Err(error("the inlined key is empty")),
            IDENTITY if digest.len() > MAX_INLINE_KEY_BYTES => {
                Err(error("an inlined key of more than 42 bytes"))
            }
            SHA2_256 if digest.len() != 32 => Err(error("a SHA-256 digest is 32 bytes")),
            IDENTITY | SHA2_256 => Ok(PeerId(bytes)),
            _ => Err(error("neither an identity nor a SHA-256 multihash")),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.0).into_string())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl FromStr for PeerId {
    type Err = PeerIdError;
    fn from_str(text: &str) -> Result<PeerId, PeerIdError> {
        let error = |reason| PeerIdError {
            input: text.chars().take(80).collect(),
            reason,
        };
        // A multihash of 2 + 42 bytes is at most 60 base58 digits.
        if text.len() > 64 {
            return Err(error("too long"));
        }
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|_| error("not base58"))?;
        PeerId::from_bytes(bytes).map_err(|invalid| error(invalid.reason))
    }
}

/// Decoding checks like [`PeerId::from_bytes`]: a recorded or transmitted
/// peer id is always valid.
impl BorshDeserialize for PeerId {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = Vec::<u8>::deserialize_reader(reader)?;
        PeerId::from_bytes(bytes).map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
        })
    }
}

impl serde::Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer id libp2p derives from the ed25519 key whose 32 bytes are
    /// all 1 (an identity multihash of its protobuf encoding).
    fn ed25519_peer() -> Vec<u8> {
        let mut bytes = vec![IDENTITY, 36, 0x08, 0x01, 0x12, 0x20];
        bytes.extend_from_slice(&[1; 32]);
        bytes
    }

    #[test]
    fn an_ed25519_peer_id_round_trips_as_12d3koow_text() {
        let peer = PeerId::from_bytes(ed25519_peer()).unwrap();
        let text = peer.to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<PeerId>(), Ok(peer.clone()));
        let encoded = borsh::to_vec(&peer).unwrap();
        assert_eq!(borsh::from_slice::<PeerId>(&encoded).unwrap(), peer);
        let json = serde_json::to_string(&peer).unwrap();
        assert_eq!(json, format!("\"{text}\""));
    }

    #[test]
    fn a_sha256_peer_id_is_accepted() {
        let mut bytes = vec![SHA2_256, 32];
        bytes.extend_from_slice(&[7; 32]);
        let peer = PeerId::from_bytes(bytes).unwrap();
        assert!(peer.to_string().starts_with("Qm"));
    }

    #[test]
    fn what_is_not_a_peer_id_is_refused_with_the_reason() {
        let mut long_identity = vec![IDENTITY, 43];
        long_identity.extend_from_slice(&[1; 43]);
        let mut short_sha = vec![SHA2_256, 31];
        short_sha.extend_from_slice(&[1; 31]);
        let mut trailing = ed25519_peer();
        trailing.push(0);
        for (bytes, reason) in [
            (vec![], "shorter than a multihash header"),
            (vec![IDENTITY, 0], "the inlined key is empty"),
            (long_identity, "an inlined key of more than 42 bytes"),
            (short_sha, "a SHA-256 digest is 32 bytes"),
            (trailing, "the multihash length does not match its digest"),
            (
                vec![0x13, 1, 1],
                "neither an identity nor a SHA-256 multihash",
            ),
        ] {
            assert_eq!(PeerId::from_bytes(bytes).unwrap_err().reason, reason);
        }
        for text in ["peer0", "", "0OIl", &"1".repeat(65)] {
            assert!(text.parse::<PeerId>().is_err(), "{text:?}");
        }
        // Decoding refuses what construction refuses.
        let bad = borsh::to_vec(&vec![0x13u8, 1, 1]).unwrap();
        assert!(borsh::from_slice::<PeerId>(&bad).is_err());
        assert!(serde_json::from_str::<PeerId>("\"peer0\"").is_err());
    }
}
