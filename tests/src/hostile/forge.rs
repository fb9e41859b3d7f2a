//! What the hostile peer signs and forges: consensus messages signed with
//! validator 3's real key, block announcements, garbage and second valid
//! transaction signatures.
//!
//! Everything here builds bytes in the node's real wire formats (the
//! `consensus` and `node` types themselves, borsh-encoded); nothing here
//! sends anything.

use consensus::{
    ConsensusMessage, Height, Proposal, Round, SignedProposal, SignedVote, Vote, VoteKind,
};
use crypto::{ChainId, Domain, Hash, Keypair, Signature};
use curve25519_dalek::{EdwardsPoint, Scalar};
use ledger::{Block, SignedTransaction, TxHash};
use node::driver::blocks::Announcement;
use sha2::{Digest, Sha512};

/// A proposal for `value` at (`height`, `round`), signed by `key`.
pub fn proposal(
    key: &Keypair,
    chain_id: ChainId,
    height: u64,
    round: u32,
    value: Hash,
) -> SignedProposal {
    let proposal = Proposal {
        height: Height(height),
        round: Round(round),
        value,
        pol_round: None,
        proposer: key.public(),
    };
    SignedProposal {
        chain_id,
        proposal,
        signature: key.sign(Domain::Proposal, &chain_id, &proposal),
    }
}

/// A prevote or precommit, signed by `key` (`value: None` is nil).
pub fn vote(
    key: &Keypair,
    chain_id: ChainId,
    kind: VoteKind,
    height: u64,
    round: u32,
    value: Option<Hash>,
) -> ConsensusMessage {
    let vote = Vote {
        kind,
        height: Height(height),
        round: Round(round),
        value,
        validator: key.public(),
    };
    ConsensusMessage::Vote(SignedVote {
        chain_id,
        vote,
        signature: key.sign(kind.domain(), &chain_id, &vote),
    })
}

/// The one place a block announcement is built: bound to its proposer by
/// the signed proposal it carries.
pub fn announcement(block: &Block, tx_hashes: Vec<TxHash>, proposal: &SignedProposal) -> Vec<u8> {
    let announcement = Announcement {
        proposal: *proposal,
        header: block.header.clone(),
        tx_hashes,
    };
    borsh::to_vec(&announcement).expect("encoding to a Vec")
}

/// 64 bytes that are not a signature of anything: a pseudo-random function
/// of `salt`.
pub fn garbage_signature(salt: u64) -> Signature {
    let low = Hash::digest(&salt.to_le_bytes());
    let high = Hash::digest(low.as_bytes());
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(low.as_bytes());
    bytes[32..].copy_from_slice(high.as_bytes());
    Signature(bytes)
}

/// `tx` with its signature replaced by garbage: the same transaction hash.
pub fn with_garbage_signature(tx: &SignedTransaction, salt: u64) -> SignedTransaction {
    SignedTransaction {
        tx: tx.tx.clone(),
        signature: garbage_signature(salt),
    }
}

/// Another *valid* signature of the same transaction by its signer's key.
///
/// An ed25519 signature is (R, s) with R = r·B, s = r + H(R ‖ A ‖ M)·a, and
/// the nonce r is SHA-512(prefix ‖ M), the prefix being the second half of
/// SHA-512(seed). Any other prefix gives another nonce, hence another
/// signature that verifies just as well (RFC 8032 §5.1.6, done by hand). A
/// key holder can make as many as they like, so a node may never treat "same
/// transaction hash" as "same signed bytes".
pub fn second_signature(key: &Keypair, tx: &SignedTransaction, salt: u64) -> SignedTransaction {
    let expanded = Sha512::digest(key.seed());
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    // RFC 8032's clamping of the secret scalar.
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let secret = Scalar::from_bytes_mod_order(secret);
    let prefix = Hash::digest_parts(&[&expanded[32..], &salt.to_le_bytes()]);
    let message = tx.tx.signing_bytes();
    let wide = |parts: &[&[u8]]| {
        let mut hasher = Sha512::new();
        for part in parts {
            hasher.update(part);
        }
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(&hasher.finalize());
        Scalar::from_bytes_mod_order_wide(&bytes)
    };
    let nonce = wide(&[prefix.as_bytes(), &message]);
    let commitment = EdwardsPoint::mul_base(&nonce).compress();
    let challenge = wide(&[commitment.as_bytes(), &key.public().0, &message]);
    let response = nonce + challenge * secret;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(commitment.as_bytes());
    signature[32..].copy_from_slice(response.as_bytes());
    SignedTransaction {
        tx: tx.tx.clone(),
        signature: Signature(signature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{Transaction, TxBody};

    fn transaction() -> (Keypair, SignedTransaction) {
        let key = Keypair::from_seed([5; 32]);
        let tx = Transaction {
            chain_id: ChainId(Hash::digest(b"forge")),
            signer: key.public(),
            nonce: 3,
            body: TxBody::DeactivateParticipant { key: key.public() },
        }
        .sign(&key);
        (key, tx)
    }

    #[test]
    fn a_second_signature_is_different_and_valid() {
        let (key, tx) = transaction();
        let second = second_signature(&key, &tx, 1);
        let third = second_signature(&key, &tx, 2);
        assert_eq!(second.hash(), tx.hash());
        assert_ne!(second.signature, tx.signature);
        assert_ne!(second.signature, third.signature);
        assert!(tx.verify_signature().is_ok());
        assert!(second.verify_signature().is_ok());
        assert!(third.verify_signature().is_ok());
    }

    #[test]
    fn a_garbage_signature_keeps_the_hash_and_fails() {
        let (_, tx) = transaction();
        let forged = with_garbage_signature(&tx, 9);
        assert_eq!(forged.hash(), tx.hash());
        assert!(forged.verify_signature().is_err());
    }

    #[test]
    fn signed_consensus_messages_verify() {
        let key = Keypair::from_seed([6; 32]);
        let chain = ChainId(Hash::digest(b"forge"));
        let signed = proposal(&key, chain, 4, 1, Hash::digest(b"block"));
        assert!(ConsensusMessage::Proposal(signed).verify(&chain).is_ok());
        let prevote = vote(&key, chain, VoteKind::Prevote, 4, 1, None);
        assert!(prevote.verify(&chain).is_ok());
    }
}
