//! Decoding untrusted bytes as a transaction or a block: arbitrary, truncated
//! or mutated input gives an error, never a panic, and an oversize input is
//! refused before anything is decoded.

use crypto::{ChainId, Hash, Keypair};
use ledger::block::MAX_BLOCK_BYTES;
use ledger::transaction::{DecodeError, MAX_TX_BYTES};
use ledger::{
    Amount, Block, BlockHeader, Output, SignedTransaction, Timestamp, TokenId, Transaction, TxBody,
};
use proptest::prelude::*;

fn sample_tx(nonce: u64) -> SignedTransaction {
    let key = Keypair::from_seed([5; 32]);
    Transaction {
        chain_id: ChainId(Hash::digest(b"decode")),
        signer: key.public(),
        nonce,
        body: TxBody::Transfer {
            token: TokenId(Hash::digest(b"t")),
            outputs: vec![
                Output {
                    recipient: Keypair::from_seed([6; 32]).public(),
                    amount: Amount(10),
                },
                Output {
                    recipient: key.public(),
                    amount: Amount(90),
                },
            ],
        },
    }
    .sign(&key)
}

fn sample_block() -> Block {
    Block {
        header: BlockHeader {
            chain_id: ChainId(Hash::digest(b"decode")),
            height: 3,
            time: Timestamp(1_000),
            parent_hash: Hash::digest(b"parent"),
            proposer: Keypair::from_seed([7; 32]).public(),
            tx_root: Hash::ZERO,
            app_hash: Hash::ZERO,
        },
        txs: (0..3).map(sample_tx).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedTransaction::from_bytes(&bytes);
        let _ = Block::from_bytes(&bytes);
    }

    #[test]
    fn mutated_transactions_decode_or_fail_cleanly(position in 0usize..400, value in any::<u8>(), cut in 0usize..400) {
        let mut bytes = sample_tx(1).to_bytes();
        let position = position % bytes.len();
        bytes[position] = value;
        bytes.truncate(cut.max(1).min(bytes.len()));
        if let Ok(tx) = SignedTransaction::from_bytes(&bytes) {
            // Whatever decodes re-encodes to exactly the same bytes.
            prop_assert_eq!(tx.to_bytes(), bytes);
        }
    }

    #[test]
    fn mutated_blocks_decode_or_fail_cleanly(position in 0usize..2_000, value in any::<u8>()) {
        let mut bytes = sample_block().to_bytes();
        let position = position % bytes.len();
        bytes[position] = value;
        if let Ok(block) = Block::from_bytes(&bytes) {
            prop_assert_eq!(block.to_bytes(), bytes);
        }
    }
}

#[test]
fn every_truncation_of_a_block_is_an_error() {
    let bytes = sample_block().to_bytes();
    for len in 0..bytes.len() {
        assert!(
            Block::from_bytes(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
}

#[test]
fn oversize_inputs_are_refused_before_decoding() {
    let tx = vec![0u8; MAX_TX_BYTES + 1];
    assert!(matches!(
        SignedTransaction::from_bytes(&tx),
        Err(DecodeError::TooLarge { .. })
    ));
    let block = vec![0u8; MAX_BLOCK_BYTES + 1];
    assert!(matches!(
        Block::from_bytes(&block),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn a_block_claiming_billions_of_transactions_is_an_error_not_an_allocation() {
    let mut bytes = borsh::to_vec(&sample_block().header).unwrap();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[1u8; 100]);
    assert!(matches!(
        Block::from_bytes(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}
