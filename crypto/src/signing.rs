//! The one function that builds signed bytes.
//!
//! Layout: `"scfledger/" tag` (ASCII, per message kind), a zero byte, the
//! 32-byte chain id, then the borsh encoding of the message body. The tag is
//! distinct per kind, so a prevote can never be replayed as a precommit or a
//! transaction; the chain id stops replays across chains.

use borsh::BorshSerialize;

use crate::hash::ChainId;

/// The kinds of signed message. Each has its own tag in the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    Transaction,
    Proposal,
    Prevote,
    Precommit,
}

impl Domain {
    pub fn tag(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"scfledger/tx/v1",
            Domain::Proposal => b"scfledger/proposal/v1",
            Domain::Prevote => b"scfledger/prevote/v1",
            Domain::Precommit => b"scfledger/precommit/v1",
        }
    }
}

/// The bytes a signature of `body` as a `domain` message on `chain_id` covers.
pub fn signing_bytes<T: BorshSerialize + ?Sized>(
    domain: Domain,
    chain_id: &ChainId,
    body: &T,
) -> Vec<u8> {
    let tag = domain.tag();
    let mut bytes = Vec::with_capacity(tag.len() + 1 + 32 + 128);
    bytes.extend_from_slice(tag);
    bytes.push(0);
    bytes.extend_from_slice(chain_id.0.as_bytes());
    body.serialize(&mut bytes)
        .expect("writing into a Vec cannot fail");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hash;

    /// Golden vector: changing the layout of signed bytes must fail here.
    #[test]
    fn signing_bytes_layout_is_pinned() {
        let chain = ChainId(Hash([0xab; 32]));
        let bytes = signing_bytes(Domain::Prevote, &chain, &(1u64, 2u32));
        assert_eq!(
            hex::encode(bytes),
            concat!(
                "7363666c65646765722f707265766f74652f7631", // "scfledger/prevote/v1"
                "00",
                "abababababababababababababababababababababababababababababababab",
                "0100000000000000", // 1u64 little endian
                "02000000"          // 2u32 little endian
            )
        );
    }

    #[test]
    fn every_domain_has_a_distinct_tag() {
        let all = [
            Domain::Transaction,
            Domain::Proposal,
            Domain::Prevote,
            Domain::Precommit,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.tag(), b.tag());
            }
        }
    }
}
