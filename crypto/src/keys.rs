//! ed25519 public keys, signatures and key pairs.
//!
//! Public keys and signatures are kept as plain bytes so they encode, compare
//! and sort cheaply; they are parsed into curve points only when verified
//! (and the points of valid keys are cached).
//!
//! Signing uses ed25519-dalek (standard RFC 8032 signatures). Verification
//! follows the ZIP-215 rules (`crate::zip215`, checked against
//! `ed25519-consensus` in the tests): a signature gets
//! the same verdict checked alone here or inside any batch of
//! [`crate::verify_many`], on every node and at every replay. That is part of
//! the protocol: dalek's own single check is cofactorless while a batch is
//! not, so a signature whose R carries a small-order component could fail
//! alone yet pass a batch, and nodes would disagree on a block. ZIP-215 checks
//! the cofactored equation `[8][s]B = [8]R + [8][k]A`, accepts any decodable
//! encoding of A and R (small-order and non-canonical ones included) and
//! requires a canonical s (s < ℓ). Refusing weak keys is a registration rule
//! (genesis), not a signature rule.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use curve25519_dalek::edwards::EdwardsPoint;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::CryptoError;
use crate::hash::{ChainId, ParseHexError, parse_hex_array};
use crate::signing::{Domain, signing_bytes};

/// An ed25519 public key (32 bytes, compressed point). Identifies a
/// participant or a validator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// Valid keys kept decompressed (about 200 bytes each); emptied when full.
const DECOMPRESSED_CACHE_KEYS: usize = 16_384;

fn decompressed_cache() -> &'static Mutex<HashMap<[u8; 32], EdwardsPoint>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], EdwardsPoint>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

impl PublicKey {
    pub fn to_hex(&self) -> String {
        crate::hash::lower_hex(&self.0)
    }

    /// The curve point as ed25519-dalek sees it, or an error if the bytes are
    /// not a point. For inspecting a key (genesis refuses small-order ones
    /// with `is_weak`); signatures are never verified with it. Both crates
    /// decode a point the same way, so they agree on which keys are points.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidPublicKey { key: *self })
    }

    /// The key ZIP-215 verification uses, or an error if the bytes are not a
    /// point.
    ///
    /// Decompressing a point costs about a third of a signature check, and a
    /// ledger sees the same few thousand signers over and over, so valid keys
    /// are kept decompressed in a bounded process-wide cache.
    pub(crate) fn verification_key(&self) -> Result<EdwardsPoint, CryptoError> {
        if let Some(key) = decompressed_cache()
            .lock()
            .ok()
            .and_then(|cache| cache.get(&self.0).copied())
        {
            return Ok(key);
        }
        let key = crate::zip215::decode_point(&self.0)
            .ok_or(CryptoError::InvalidPublicKey { key: *self })?;
        if let Ok(mut cache) = decompressed_cache().lock() {
            if cache.len() >= DECOMPRESSED_CACHE_KEYS {
                cache.clear();
            }
            cache.insert(self.0, key);
        }
        Ok(key)
    }

    /// Verifies `signature` over `body` signed for `domain` on `chain_id`.
    pub fn verify<T: BorshSerialize + ?Sized>(
        &self,
        domain: Domain,
        chain_id: &ChainId,
        body: &T,
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        self.verify_bytes(&signing_bytes(domain, chain_id, body), signature)
    }

    /// Verifies a signature over bytes already built by [`signing_bytes`],
    /// under the ZIP-215 rules (see the module documentation).
    pub fn verify_bytes(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let key = self.verification_key()?;
        if crate::zip215::verify_one(key, &self.0, &signature.0, message) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature { key: *self })
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..16])
    }
}

impl FromStr for PublicKey {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_array(s).map(PublicKey)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn to_hex(&self) -> String {
        crate::hash::lower_hex(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &self.to_hex()[..16])
    }
}

impl FromStr for Signature {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_array(s).map(Signature)
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A secret ed25519 key with its public key. The only way to sign is
/// [`Keypair::sign`], which always goes through [`signing_bytes`].
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Keypair {
        Keypair {
            signing: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// The key whose 32-byte secret seed is `seed` (deterministic: tests and key files).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte secret seed, for writing a key file.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `body` for `domain` on `chain_id`.
    pub fn sign<T: BorshSerialize + ?Sized>(
        &self,
        domain: Domain,
        chain_id: &ChainId,
        body: &T,
    ) -> Signature {
        Signature(
            self.signing
                .sign(&signing_bytes(domain, chain_id, body))
                .to_bytes(),
        )
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({:?})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;

    #[test]
    fn cached_keys_decompress_as_fresh_ones_and_bad_keys_stay_bad() {
        let keypair = Keypair::from_seed([42; 32]);
        let public = keypair.public();
        let fresh = crate::zip215::decode_point(&public.0).unwrap();
        assert_eq!(public.verification_key().unwrap(), fresh);
        assert_eq!(public.verification_key().unwrap(), fresh, "from the cache");

        let chain = ChainId(Hash::digest(b"cache"));
        let signature = keypair.sign(Domain::Transaction, &chain, &7u64);
        assert!(
            public
                .verify(Domain::Transaction, &chain, &7u64, &signature)
                .is_ok()
        );
        assert!(
            public
                .verify(Domain::Transaction, &chain, &8u64, &signature)
                .is_err()
        );

        // Not a point on the curve: refused every time, never cached.
        let bad = (0u8..=255)
            .map(|byte| PublicKey([byte; 32]))
            .find(|key| ed25519_consensus::VerificationKey::try_from(key.0).is_err())
            .expect("some repeated byte is not a valid point");
        for _ in 0..2 {
            assert!(matches!(
                bad.verification_key(),
                Err(CryptoError::InvalidPublicKey { key }) if key == bad
            ));
        }
    }

    /// Genesis inspects keys through dalek and signatures are checked through
    /// ed25519-consensus: a key one calls a point the other must too.
    #[test]
    fn dalek_and_zip215_agree_on_which_bytes_are_points() {
        let mut candidates: Vec<[u8; 32]> = (0u8..=255).map(|byte| [byte; 32]).collect();
        for low in 0u8..=255 {
            let mut bytes = [0u8; 32];
            bytes[0] = low;
            candidates.push(bytes);
            // The same y with the sign bit set, and y ≥ p (non-canonical).
            bytes[31] = 0x80;
            candidates.push(bytes);
            let mut high = [0xff; 32];
            high[0] = low;
            high[31] = 0x7f;
            candidates.push(high);
        }
        candidates.push(Keypair::from_seed([3; 32]).public().0);
        let mut points = 0;
        for bytes in candidates {
            let key = PublicKey(bytes);
            let dalek = key.verifying_key().is_ok();
            assert_eq!(dalek, key.verification_key().is_ok(), "{key}");
            assert_eq!(
                dalek,
                ed25519_consensus::VerificationKey::try_from(bytes).is_ok(),
                "{key}"
            );
            points += usize::from(dalek);
        }
        assert!(points > 100, "the sample holds points and non-points");
    }

    fn chain(tag: &[u8]) -> ChainId {
        ChainId(Hash::digest(tag))
    }

    #[test]
    fn signature_verifies_only_for_its_domain_chain_and_body() {
        let key = Keypair::from_seed([7; 32]);
        let signature = key.sign(Domain::Transaction, &chain(b"a"), &42u64);
        let public = key.public();
        assert_eq!(
            public.verify(Domain::Transaction, &chain(b"a"), &42u64, &signature),
            Ok(())
        );
        let bad = Err(CryptoError::BadSignature { key: public });
        assert_eq!(
            public.verify(Domain::Prevote, &chain(b"a"), &42u64, &signature),
            bad
        );
        assert_eq!(
            public.verify(Domain::Transaction, &chain(b"b"), &42u64, &signature),
            bad
        );
        assert_eq!(
            public.verify(Domain::Transaction, &chain(b"a"), &43u64, &signature),
            bad
        );
    }

    #[test]
    fn invalid_public_key_bytes_are_reported() {
        // y = 2 is not on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let key = PublicKey(bytes);
        let signature = Signature([0; 64]);
        assert_eq!(
            key.verify(Domain::Transaction, &chain(b"a"), &1u8, &signature),
            Err(CryptoError::InvalidPublicKey { key })
        );
    }

    #[test]
    fn seed_round_trips() {
        let key = Keypair::generate();
        assert_eq!(Keypair::from_seed(key.seed()).public(), key.public());
    }

    #[test]
    fn public_key_hex_round_trips() {
        let key = Keypair::from_seed([1; 32]).public();
        assert_eq!(key.to_hex().parse::<PublicKey>().unwrap(), key);
        assert!(key.to_hex()[..62].parse::<PublicKey>().is_err());
    }
}
