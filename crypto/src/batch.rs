//! Verifying many signatures at once: ed25519 batch verification, split into
//! chunks across the machine's cores.
//!
//! A batch either verifies as a whole or it does not; when it does not, the
//! chunk is re-checked one by one so each bad signature is named. Honest
//! traffic therefore pays the batch price and a forger pays for the fallback.

use ed25519_dalek::VerifyingKey;
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
    let mut keys = Vec::with_capacity(messages.len());
    for message in messages {
        match message.key.verifying_key() {
            Ok(key) => keys.push(key),
            // An invalid key cannot take part in a batch: check one by one.
            Err(_) => return one_by_one(messages),
        }
    }
    if batch_verifies(messages, &keys) {
        vec![Ok(()); messages.len()]
    } else {
        one_by_one(messages)
    }
}

fn batch_verifies(messages: &[SignedMessage<'_>], keys: &[VerifyingKey]) -> bool {
    let bytes: Vec<&[u8]> = messages.iter().map(|m| m.message).collect();
    let signatures: Vec<ed25519_dalek::Signature> = messages
        .iter()
        .map(|m| ed25519_dalek::Signature::from_bytes(&m.signature.0))
        .collect();
    ed25519_dalek::verify_batch(&bytes, &signatures, keys).is_ok()
}

fn one_by_one(messages: &[SignedMessage<'_>]) -> Vec<Result<(), CryptoError>> {
    messages
        .iter()
        .map(|m| m.key.verify_bytes(m.message, m.signature))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
