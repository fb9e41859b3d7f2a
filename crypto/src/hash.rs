//! The 32-byte SHA-256 hash used for every identifier and commitment, and the
//! chain id derived from the genesis file.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest. Ordered bytewise, so sorted collections of hashes are
/// deterministic.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// SHA-256 of raw bytes.
    pub fn digest(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }

    /// SHA-256 of several byte strings, concatenated.
    pub fn digest_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    /// SHA-256 of the canonical borsh encoding of `value`.
    pub fn of<T: BorshSerialize + ?Sized>(value: &T) -> Hash {
        let mut hasher = HashWriter(Sha256::new());
        value
            .serialize(&mut hasher)
            .expect("writing into a hasher cannot fail");
        Hash(hasher.0.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        lower_hex(&self.0)
    }
}

/// Streams borsh output straight into the hasher instead of allocating a buffer.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

/// A hex string that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_len} bytes as hex ({} hex digits), got {input:?}", expected_len * 2)]
pub struct ParseHexError {
    pub input: String,
    pub expected_len: usize,
}

/// Lowercase hex of `bytes`. `hex::encode` collects an iterator of `char`s
/// into its `String`, several times slower than this table lookup into a
/// buffer; the API and the sink print millions of hashes and keys.
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut digits).expect("the buffer holds two digits per byte");
    String::from_utf8(digits).expect("hex digits are ASCII")
}

pub(crate) fn parse_hex_array<const N: usize>(input: &str) -> Result<[u8; N], ParseHexError> {
    let error = || ParseHexError {
        input: input.chars().take(140).collect(),
        expected_len: N,
    };
    let trimmed = input.trim();
    let trimmed = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    if trimmed.len() != N * 2 {
        return Err(error());
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(trimmed, &mut out).map_err(|_| error())?;
    Ok(out)
}

impl FromStr for Hash {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_array(s).map(Hash)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Identifies one chain: the hash of its genesis file's canonical form. Every
/// signed message includes it.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct ChainId(pub Hash);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", &self.0.to_hex()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_the_standard_vector() {
        assert_eq!(
            Hash::digest(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hash_of_borsh_value_equals_hash_of_its_bytes() {
        let value = (7u64, String::from("inv"));
        assert_eq!(
            Hash::of(&value),
            Hash::digest(&borsh::to_vec(&value).unwrap())
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_wrong_lengths() {
        let hash = Hash::digest(b"x");
        assert_eq!(hash.to_hex().parse::<Hash>().unwrap(), hash);
        let error = "abcd".parse::<Hash>().unwrap_err();
        assert_eq!(error.expected_len, 32);
        assert!("zz".repeat(32).parse::<Hash>().is_err());
    }
}
