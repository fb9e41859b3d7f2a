//! Verifying many signatures at once: ed25519 batch verification under the
//! ZIP-215 rules (`ed25519-consensus`), split into chunks across the
//! machine's cores.
//!
//! A batch either verifies as a whole or it does not; when it does not, the
//! chunk is re-checked one by one so each bad signature is named. Honest
//! traffic therefore pays the batch price and a forger pays for the fallback.
//!
//! The results are exactly those of [`PublicKey::verify_bytes`] on each
//! message, whatever the batch holds: ZIP-215 gives the batch and the single
//! check the same cofactored equation, so a batch of signatures that each
//! verify always verifies, and a batch holding one that does not is refused
//! (up to a 2⁻¹²⁸ chance, through the batch's random coefficients) and falls
//! back to the single check. The random source only chooses those
//! coefficients; it never changes a verdict. (ed25519-dalek's batch did not
//! have this property: its single check is cofactorless, so a small-order
//! component in R failed alone but passed some batches.)

use rayon::prelude::*;

use crate::{CryptoError, PublicKey, Signature};

/// Chunks smaller than this are not worth a batch or another thread.
const MIN_CHUNK: usize = 64;

/// One signature to check: the signer's key, the signature, and the exact
/// bytes built by [`crate::signing_bytes`].
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    pub key: &'a PublicKey,
    pub signature: &'a Signature,
    pub message: &'a [u8],
}

/// Verifies every message and returns one result per message, in order.
pub fn verify_many(messages: &[SignedMessage<'_>]) -> Vec<Result<(), CryptoError>> {
    if messages.len() <= MIN_CHUNK {
        return verify_chunk(messages);
    }
    let threads = rayon::current_num_threads().max(1);
    let chunk = messages.len().div_ceil(threads).max(MIN_CHUNK);
    messages
        .par_chunks(chunk)
        .flat_map_iter(verify_chunk)
        .collect()
}

fn verify_chunk(messages: &[SignedMessage<'_>]) -> Vec<Result<(), CryptoError>> {
    if batch_verifies(messages) {
        vec![Ok(()); messages.len()]
    } else {
        one_by_one(messages)
    }
}

/// Whether every message verifies, checked as one batch (ZIP-215, see
/// `crate::zip215`). An undecodable key or R, or a non-canonical s, fails the
/// batch like a bad signature does; the fallback then says which message it
/// was. Keys come decompressed from the key cache.
pub(crate) fn batch_verifies(messages: &[SignedMessage<'_>]) -> bool {
    let mut items = Vec::with_capacity(messages.len());
    for message in messages {
        let Ok(key) = message.key.verification_key() else {
            return false;
        };
        items.push((key, &message.key.0, &message.signature.0, message.message));
    }
    crate::zip215::verify_batch(&items)
}

fn one_by_one(messages: &[SignedMessage<'_>]) -> Vec<Result<(), CryptoError>> {
    messages
        .iter()
        .map(|m| m.key.verify_bytes(m.message, m.signature))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::zip215_vectors::{RawSigner, with_s_plus_ell};
    use crate::{ChainId, Domain, Hash, Keypair, signing_bytes};

    fn signed(count: usize) -> (Vec<PublicKey>, Vec<Signature>, Vec<Vec<u8>>) {
        let chain = ChainId(Hash::digest(b"batch"));
        let mut keys = Vec::new();
        let mut signatures = Vec::new();
        let mut bodies = Vec::new();
        for i in 0..count {
            let key = Keypair::from_seed([(i % 251) as u8; 32]);
            keys.push(key.public());
            signatures.push(key.sign(Domain::Transaction, &chain, &(i as u64)));
            bodies.push(signing_bytes(Domain::Transaction, &chain, &(i as u64)));
        }
        (keys, signatures, bodies)
    }

    fn messages<'a>(
        keys: &'a [PublicKey],
        signatures: &'a [Signature],
        bodies: &'a [Vec<u8>],
    ) -> Vec<SignedMessage<'a>> {
        (0..keys.len())
            .map(|i| SignedMessage {
                key: &keys[i],
                signature: &signatures[i],
                message: &bodies[i],
            })
            .collect()
    }

    #[test]
    fn all_valid_signatures_pass_in_batches() {
        let (keys, signatures, bodies) = signed(300);
        let results = verify_many(&messages(&keys, &signatures, &bodies));
        assert_eq!(results.len(), 300);
        assert!(results.iter().all(Result::is_ok));
    }

    #[test]
    fn each_bad_signature_is_named_and_the_rest_pass() {
        let (keys, mut signatures, bodies) = signed(300);
        signatures[5].0[0] ^= 1;
        signatures[250].0[10] ^= 1;
        let results = verify_many(&messages(&keys, &signatures, &bodies));
        for (i, result) in results.iter().enumerate() {
            if i == 5 || i == 250 {
                assert_eq!(
                    result,
                    &Err(CryptoError::BadSignature { key: keys[i] }),
                    "index {i}"
                );
            } else {
                assert_eq!(result, &Ok(()), "index {i}");
            }
        }
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(verify_many(&[]).is_empty());
    }

    /// How a generated message is (or is not) altered after honest signing.
    #[derive(Debug, Clone)]
    enum Tamper {
        None,
        FlipSignatureBit(usize),
        FlipMessageBit(usize),
        OtherSignersKey,
        NonCanonicalS,
        /// Valid under ZIP-215 only: R carries an order-8 component.
        TorsionInR,
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            6 => Just(Tamper::None),
            1 => (0..512usize).prop_map(Tamper::FlipSignatureBit),
            1 => (0..(8 * 40usize)).prop_map(Tamper::FlipMessageBit),
            1 => Just(Tamper::OtherSignersKey),
            1 => Just(Tamper::NonCanonicalS),
            1 => Just(Tamper::TorsionInR),
        ]
    }

    fn build(plan: &[(usize, Tamper)]) -> (Vec<PublicKey>, Vec<Signature>, Vec<Vec<u8>>) {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::EdwardsPoint;
        use curve25519_dalek::traits::Identity;

        let chain = ChainId(Hash::digest(b"batch property"));
        let mut keys = Vec::new();
        let mut signatures = Vec::new();
        let mut bodies = Vec::new();
        for (i, (signer, tamper)) in plan.iter().enumerate() {
            let mut body = signing_bytes(Domain::Transaction, &chain, &(i as u64));
            let (mut key, mut signature) = if let Tamper::TorsionInR = tamper {
                let raw = RawSigner::new(1 + *signer as u64, EdwardsPoint::identity());
                let nonce = 7 + i as u64;
                (raw.public(), raw.sign(nonce, EIGHT_TORSION[3], &body))
            } else {
                let keypair = Keypair::from_seed([*signer as u8; 32]);
                let signature = keypair.sign(Domain::Transaction, &chain, &(i as u64));
                (keypair.public(), signature)
            };
            match tamper {
                Tamper::None | Tamper::TorsionInR => {}
                Tamper::FlipSignatureBit(bit) => signature.0[bit / 8] ^= 1 << (bit % 8),
                Tamper::FlipMessageBit(bit) => body[bit / 8] ^= 1 << (bit % 8),
                Tamper::OtherSignersKey => {
                    key = Keypair::from_seed([*signer as u8 + 1; 32]).public();
                }
                Tamper::NonCanonicalS => signature = with_s_plus_ell(signature),
            }
            keys.push(key);
            signatures.push(signature);
            bodies.push(body);
        }
        (keys, signatures, bodies)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Batching never changes a verdict: sizes from 0 to past several
        /// chunks, honest and tampered signatures mixed.
        #[test]
        fn batched_results_equal_one_by_one_results(
            plan in proptest::collection::vec((0..20usize, tamper()), 0..300),
        ) {
            let (keys, signatures, bodies) = build(&plan);
            let batch = messages(&keys, &signatures, &bodies);
            let batched = verify_many(&batch);
            let single: Vec<_> = batch
                .iter()
                .map(|m| m.key.verify_bytes(m.message, m.signature))
                .collect();
            prop_assert_eq!(&batched, &single);
            for ((_, tamper), result) in plan.iter().zip(&batched) {
                let honest = matches!(tamper, Tamper::None | Tamper::TorsionInR);
                prop_assert_eq!(result.is_ok(), honest, "{:?}", tamper);
            }
        }

        /// Our equations give the verdict of the reference implementation
        /// of ZIP-215 (`ed25519-consensus`), alone and in its batch.
        #[test]
        fn every_verdict_is_the_reference_implementations(
            plan in proptest::collection::vec((0..20usize, tamper()), 1..80),
        ) {
            let (keys, signatures, bodies) = build(&plan);
            let mut reference_batch = ed25519_consensus::batch::Verifier::new();
            for ((key, signature), body) in keys.iter().zip(&signatures).zip(&bodies) {
                let reference = ed25519_consensus::VerificationKey::try_from(key.0)
                    .and_then(|vk| vk.verify(&ed25519_consensus::Signature::from(signature.0), body))
                    .is_ok();
                prop_assert_eq!(key.verify_bytes(body, signature).is_ok(), reference);
                reference_batch.queue((
                    ed25519_consensus::VerificationKeyBytes::from(key.0),
                    ed25519_consensus::Signature::from(signature.0),
                    body,
                ));
            }
            let ours = batch_verifies(&messages(&keys, &signatures, &bodies));
            prop_assert_eq!(ours, reference_batch.verify(rand_core::OsRng).is_ok());
        }
    }
}
