//! Golden vectors for the signature rule (ZIP-215): edge-case signatures
//! built with curve25519-dalek, each with its verdict written down here, and
//! checked alone ([`PublicKey::verify`], [`PublicKey::verify_bytes`]) and
//! inside several different batches ([`crate::verify_many`]). Every place
//! must give the same verdict: that is the protocol's rule.
//!
//! The verdicts are ZIP-215's (<https://zips.z.cash/zip-0215>): the
//! cofactored equation `[8][s]B = [8]R + [8][k]A`, any decodable encoding of
//! A and R (small-order and non-canonical ones included), s < ℓ. They are
//! not computed by the code under test.
//!
//! Test-only; it does not test signing, which stays ed25519-dalek's.

use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity};
use sha2::{Digest, Sha512};

use crate::batch::batch_verifies;
use crate::{
    ChainId, CryptoError, Domain, Hash, Keypair, PublicKey, Signature, SignedMessage,
    signing_bytes, verify_many,
};

/// A signer whose secret scalar is known, so tests can build signatures no
/// honest signer makes: a small-order part in R or in the key.
pub(crate) struct RawSigner {
    secret: Scalar,
    key: [u8; 32],
}

impl RawSigner {
    /// The key `[secret]B + key_torsion`; signatures use `secret` for the
    /// prime-order part, which is all the cofactored equation sees.
    pub(crate) fn new(secret: u64, key_torsion: EdwardsPoint) -> RawSigner {
        let secret = Scalar::from(secret);
        let point = EdwardsPoint::mul_base(&secret) + key_torsion;
        RawSigner {
            secret,
            key: point.compress().to_bytes(),
        }
    }

    pub(crate) fn public(&self) -> PublicKey {
        PublicKey(self.key)
    }

    /// Signs with R = `[nonce]B + r_torsion` (canonically encoded).
    pub(crate) fn sign(&self, nonce: u64, r_torsion: EdwardsPoint, message: &[u8]) -> Signature {
        let nonce = Scalar::from(nonce);
        let r = (EdwardsPoint::mul_base(&nonce) + r_torsion).compress();
        self.sign_with_r_bytes(nonce, r.to_bytes(), message)
    }

    /// Signs with R given as bytes, which must decode to `[nonce]B` plus
    /// small-order points.
    fn sign_with_r_bytes(&self, nonce: Scalar, r: [u8; 32], message: &[u8]) -> Signature {
        let digest = Sha512::new()
            .chain_update(r)
            .chain_update(self.key)
            .chain_update(message)
            .finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&digest);
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = nonce + k * self.secret;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature(bytes)
    }
}

/// A point of order 8 (not 1, 2 or 4).
fn torsion() -> EdwardsPoint {
    let point = EIGHT_TORSION[1];
    let times_four = point + point + point + point;
    assert!(!times_four.is_identity() && point.mul_by_cofactor().is_identity());
    point
}

/// 32 bytes that are not the y of any curve point (y = 2).
fn not_a_point() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[0] = 2;
    assert!(CompressedEdwardsY(bytes).decompress().is_none());
    bytes
}

/// ℓ, the order of the base point, little endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with s replaced by s + ℓ (same value mod ℓ, but not
/// canonical; s < ℓ < 2²⁵³ so the sum fits).
pub(crate) fn with_s_plus_ell(signature: Signature) -> Signature {
    let mut bytes = signature.0;
    let mut carry = 0u16;
    for (byte, ell) in bytes[32..].iter_mut().zip(ELL) {
        let sum = u16::from(*byte) + u16::from(ell) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    Signature(bytes)
}

fn chain() -> ChainId {
    ChainId(Hash::digest(b"zip215 vectors"))
}

fn message(body: u64) -> Vec<u8> {
    signing_bytes(Domain::Transaction, &chain(), &body)
}

/// One signed message and the verdict ZIP-215 gives it.
struct Vector {
    name: &'static str,
    key: PublicKey,
    signature: Signature,
    /// Signed as a [`Domain::Transaction`] on [`chain`].
    body: u64,
    expected: Result<(), CryptoError>,
}

fn valid_ordinary_signature() -> Vector {
    let signer = Keypair::from_seed([1; 32]);
    Vector {
        name: "valid_ordinary_signature",
        key: signer.public(),
        signature: signer.sign(Domain::Transaction, &chain(), &1u64),
        body: 1,
        expected: Ok(()),
    }
}

/// R = [r]B + T with T of order 8: the cofactored equation ignores T
/// (a cofactorless check refuses it, and dalek's batch accepted it).
fn torsion_component_in_r() -> Vector {
    let signer = RawSigner::new(0x5eed, EdwardsPoint::identity());
    let signature = signer.sign(77, torsion(), &message(2));
    let r = CompressedEdwardsY(signature.0[..32].try_into().unwrap());
    assert!(!r.decompress().unwrap().is_torsion_free());
    Vector {
        name: "torsion_component_in_r",
        key: signer.public(),
        signature,
        body: 2,
        expected: Ok(()),
    }
}

/// A = T of order 8 and s = r: valid under ZIP-215 (for any message).
/// Genesis refuses to register such a key; the signature rule does not.
fn small_order_public_key() -> Vector {
    let signer = RawSigner::new(0, torsion());
    assert!(signer.public().verifying_key().unwrap().is_weak());
    Vector {
        name: "small_order_public_key",
        key: signer.public(),
        signature: signer.sign(99, EdwardsPoint::identity(), &message(3)),
        body: 3,
        expected: Ok(()),
    }
}

/// A = [a]B + T: a full-order key with a small-order component.
fn mixed_order_public_key() -> Vector {
    let signer = RawSigner::new(0xabcdef, torsion());
    let key = signer.public();
    assert!(!key.verifying_key().unwrap().is_weak());
    assert!(
        !CompressedEdwardsY(key.0)
            .decompress()
            .unwrap()
            .is_torsion_free()
    );
    Vector {
        name: "mixed_order_public_key",
        key,
        signature: signer.sign(5, EdwardsPoint::identity(), &message(4)),
        body: 4,
        expected: Ok(()),
    }
}

/// R is the identity encoded with y = p + 1 instead of y = 1: ZIP-215
/// accepts non-canonical encodings of R (and k hashes the bytes as sent).
fn non_canonical_r_encoding() -> Vector {
    let mut r = [0xff; 32];
    r[0] = 0xee;
    r[31] = 0x7f;
    let point = CompressedEdwardsY(r).decompress().unwrap();
    assert!(point.is_identity() && point.compress().to_bytes() != r);
    let signer = RawSigner::new(0x1234, EdwardsPoint::identity());
    Vector {
        name: "non_canonical_r_encoding",
        key: signer.public(),
        signature: signer.sign_with_r_bytes(Scalar::ZERO, r, &message(5)),
        body: 5,
        expected: Ok(()),
    }
}

/// A valid signature with s + ℓ in place of s: ZIP-215 requires s < ℓ.
fn non_canonical_s() -> Vector {
    let signer = Keypair::from_seed([6; 32]);
    let valid = signer.sign(Domain::Transaction, &chain(), &6u64);
    Vector {
        name: "non_canonical_s",
        key: signer.public(),
        signature: with_s_plus_ell(valid),
        body: 6,
        expected: Err(CryptoError::BadSignature {
            key: signer.public(),
        }),
    }
}

/// R's bytes decode to no point.
fn r_not_on_the_curve() -> Vector {
    let signer = Keypair::from_seed([7; 32]);
    let mut signature = signer.sign(Domain::Transaction, &chain(), &7u64);
    signature.0[..32].copy_from_slice(&not_a_point());
    Vector {
        name: "r_not_on_the_curve",
        key: signer.public(),
        signature,
        body: 7,
        expected: Err(CryptoError::BadSignature {
            key: signer.public(),
        }),
    }
}

/// The key's bytes decode to no point.
fn public_key_not_on_the_curve() -> Vector {
    let signature = Keypair::from_seed([8; 32]).sign(Domain::Transaction, &chain(), &8u64);
    let key = PublicKey(not_a_point());
    Vector {
        name: "public_key_not_on_the_curve",
        key,
        signature,
        body: 8,
        expected: Err(CryptoError::InvalidPublicKey { key }),
    }
}

/// An honest signature presented with another body.
fn signature_over_another_message() -> Vector {
    let signer = Keypair::from_seed([9; 32]);
    Vector {
        name: "signature_over_another_message",
        key: signer.public(),
        signature: signer.sign(Domain::Transaction, &chain(), &9u64),
        body: 10,
        expected: Err(CryptoError::BadSignature {
            key: signer.public(),
        }),
    }
}

fn all_vectors() -> Vec<Vector> {
    vec![
        valid_ordinary_signature(),
        torsion_component_in_r(),
        small_order_public_key(),
        mixed_order_public_key(),
        non_canonical_r_encoding(),
        non_canonical_s(),
        r_not_on_the_curve(),
        public_key_not_on_the_curve(),
        signature_over_another_message(),
    ]
}

/// A message to check with the result it must get.
struct Item {
    key: PublicKey,
    signature: Signature,
    message: Vec<u8>,
    expected: Result<(), CryptoError>,
}

impl Item {
    fn of(vector: &Vector) -> Item {
        Item {
            key: vector.key,
            signature: vector.signature,
            message: message(vector.body),
            expected: vector.expected.clone(),
        }
    }
}

/// Honest signatures by 50 keys that no vector uses.
fn valid_items(count: usize) -> Vec<Item> {
    static SIGNERS: OnceLock<Vec<Keypair>> = OnceLock::new();
    let signers = SIGNERS.get_or_init(|| {
        (0..50u8)
            .map(|i| Keypair::from_seed([100 + i; 32]))
            .collect()
    });
    (0..count)
        .map(|i| {
            let signer = &signers[i % signers.len()];
            let body = 1_000 + i as u64;
            Item {
                key: signer.public(),
                signature: signer.sign(Domain::Transaction, &chain(), &body),
                message: message(body),
                expected: Ok(()),
            }
        })
        .collect()
}

/// An honest signature with one bit of s flipped.
fn tampered_item() -> Item {
    let mut item = valid_items(1).remove(0);
    item.signature.0[40] ^= 0x10;
    item.expected = Err(CryptoError::BadSignature { key: item.key });
    item
}

fn signed_messages(items: &[Item]) -> Vec<SignedMessage<'_>> {
    items
        .iter()
        .map(|item| SignedMessage {
            key: &item.key,
            signature: &item.signature,
            message: &item.message,
        })
        .collect()
}

/// `verify_many` gives every item its expected result.
fn assert_batch(context: &str, items: &[Item]) {
    let results = verify_many(&signed_messages(items));
    let expected: Vec<_> = items.iter().map(|item| item.expected.clone()).collect();
    assert_eq!(results, expected, "{context}");
}

/// The vector's verdict alone and in batches of different sizes, positions
/// and company (batches above 64 messages are split across threads).
fn check_everywhere(vector: Vector) {
    let name = vector.name;
    let chain = chain();
    assert_eq!(
        vector
            .key
            .verify(Domain::Transaction, &chain, &vector.body, &vector.signature),
        vector.expected,
        "{name}: verify"
    );
    assert_eq!(
        vector
            .key
            .verify_bytes(&message(vector.body), &vector.signature),
        vector.expected,
        "{name}: verify_bytes"
    );

    assert_batch(&format!("{name}: alone in a batch"), &[Item::of(&vector)]);

    let mut among_ten = valid_items(10);
    among_ten.insert(5, Item::of(&vector));
    assert_batch(&format!("{name}: among 10 valid"), &among_ten);

    let mut first_of_hundred = valid_items(100);
    first_of_hundred.insert(0, Item::of(&vector));
    assert_batch(
        &format!("{name}: before 100 valid of other keys"),
        &first_of_hundred,
    );

    let mut last_of_hundred = valid_items(100);
    last_of_hundred.push(Item::of(&vector));
    assert_batch(
        &format!("{name}: after 100 valid of other keys"),
        &last_of_hundred,
    );

    let mut with_bad = valid_items(20);
    with_bad.insert(10, Item::of(&vector));
    with_bad.insert(3, tampered_item());
    assert_batch(
        &format!("{name}: with another bad signature among 20 valid"),
        &with_bad,
    );
}

#[test]
fn valid_ordinary_signature_is_accepted_everywhere() {
    check_everywhere(valid_ordinary_signature());
}

#[test]
fn torsion_component_in_r_is_accepted_everywhere() {
    check_everywhere(torsion_component_in_r());
}

#[test]
fn small_order_public_key_is_accepted_everywhere() {
    check_everywhere(small_order_public_key());
}

#[test]
fn mixed_order_public_key_is_accepted_everywhere() {
    check_everywhere(mixed_order_public_key());
}

#[test]
fn non_canonical_r_encoding_is_accepted_everywhere() {
    check_everywhere(non_canonical_r_encoding());
}

#[test]
fn non_canonical_s_is_refused_everywhere() {
    check_everywhere(non_canonical_s());
}

#[test]
fn r_not_on_the_curve_is_refused_everywhere() {
    check_everywhere(r_not_on_the_curve());
}

#[test]
fn public_key_not_on_the_curve_is_refused_everywhere() {
    check_everywhere(public_key_not_on_the_curve());
}

#[test]
fn signature_over_another_message_is_refused_everywhere() {
    check_everywhere(signature_over_another_message());
}

#[test]
fn every_vector_keeps_its_verdict_in_one_batch_with_all_the_others() {
    let mut items = valid_items(200);
    for (i, vector) in all_vectors().iter().enumerate() {
        items.insert(i * 23, Item::of(vector));
    }
    assert_batch("all vectors among 200 valid", &items);
}

/// The accepted vectors pass the batch equation itself, not only the
/// one-by-one fallback: a batch of honest traffic holding them stays one
/// batch check, and a refused vector always fails the batch.
#[test]
fn the_batch_equation_accepts_exactly_the_accepted_vectors() {
    for vector in all_vectors() {
        let mut items = valid_items(10);
        items.push(Item::of(&vector));
        assert_eq!(
            batch_verifies(&signed_messages(&items)),
            vector.expected.is_ok(),
            "{}",
            vector.name
        );
    }
}
