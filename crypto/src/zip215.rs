//! The ZIP-215 verification equations on curve25519-dalek 4, with the
//! signer's decompressed point taken from the key cache.
//!
//! ZIP-215 (the rule `ed25519-consensus` implements, and the chain's rule):
//! A and R are accepted in any encoding that decodes to a curve point
//! (small-order and non-canonical ones included), s must be canonical
//! (s < ℓ), k = SHA-512(R ‖ A ‖ M) over the bytes as given, and the check is
//! the cofactored equation `[8]([s]B − R − [k]A) = 0`. A batch checks
//! `[8](Σ zᵢ(Rᵢ + kᵢAᵢ) − (Σ zᵢsᵢ)B) = 0` with random 128-bit zᵢ, which holds
//! for a set of signatures exactly when each holds alone (up to a 2⁻¹²⁸
//! chance): the same verdict alone or in any batch.
//!
//! Why not `ed25519-consensus` itself: its batch decompresses every key
//! anew and runs on curve25519-dalek-ng's serial backend, which made the
//! node's admission of transactions ~20 % slower. It stays as a
//! dev-dependency: the tests check that both give the same verdict on every
//! edge case.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_core::RngCore;
use sha2::{Digest, Sha512};

/// A public key's point, or `None` if the bytes decode to no point.
pub(crate) fn decode_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

/// One signature ready to check: the key's point, R's point, s and k.
struct Prepared {
    key: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn prepare(
    key: EdwardsPoint,
    key_bytes: &[u8; 32],
    signature: &[u8; 64],
    message: &[u8],
) -> Option<Prepared> {
    let r_bytes: [u8; 32] = signature[..32].try_into().expect("64 bytes");
    let s_bytes: [u8; 32] = signature[32..].try_into().expect("64 bytes");
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = decode_point(&r_bytes)?;
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key_bytes);
    hash.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    Some(Prepared { key, r, s, k })
}

/// One signature, alone.
pub(crate) fn verify_one(
    key: EdwardsPoint,
    key_bytes: &[u8; 32],
    signature: &[u8; 64],
    message: &[u8],
) -> bool {
    let Some(p) = prepare(key, key_bytes, signature, message) else {
        return false;
    };
    // R + [k]A − [s]B, times the cofactor, must be the identity.
    let ka_minus_sb = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &p.key, &-p.s);
    (ka_minus_sb + p.r).mul_by_cofactor().is_identity()
}

/// One signature in a batch: the key's point and bytes, the signature and
/// the message.
pub(crate) type BatchItem<'a> = (EdwardsPoint, &'a [u8; 32], &'a [u8; 64], &'a [u8]);

/// Signatures to check as one batch; `true` only if every one verifies.
pub(crate) fn verify_batch(items: &[BatchItem<'_>]) -> bool {
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut b_coefficient = Scalar::ZERO;
    // Every coefficient's 128 random bits from one read of the OS's
    // generator: one system call per batch instead of one per signature.
    let mut randomness = vec![0u8; 16 * items.len()];
    rand_core::OsRng.fill_bytes(&mut randomness);
    for ((key, key_bytes, signature, message), random) in
        items.iter().zip(randomness.chunks_exact(16))
    {
        let Some(p) = prepare(*key, key_bytes, signature, message) else {
            return false;
        };
        let mut z_bytes = [0u8; 32];
        z_bytes[..16].copy_from_slice(random);
        let z = Scalar::from_bytes_mod_order(z_bytes);
        b_coefficient -= z * p.s;
        scalars.push(z);
        points.push(p.r);
        scalars.push(z * p.k);
        points.push(p.key);
    }
    scalars.push(b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}
