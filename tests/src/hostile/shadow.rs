//! The hostile peer's own copy of the ledger: a RocksDB store that follows
//! the committed chain, so the peer can serve real blocks and certificates
//! (to tamper with them) and build blocks whose app hash honest validators
//! compute too.
//!
//! It trusts the honest validators it copies from (it only executes what
//! they committed) and it checks nothing a node should: it is an attacker's
//! tool, not a node.

use std::path::Path;

use crypto::{ChainId, Hash, PublicKey};
use ledger::block::{select_transactions, tx_root_with_hashes};
use ledger::store::Store;
use ledger::{Block, BlockContext, BlockHeader, SignedTransaction, Timestamp, TxHash, VerifiedTx};
use node::network::SyncedBlock;

pub struct Shadow {
    store: Store,
    chain_id: ChainId,
    genesis_time_ms: u64,
}

impl Shadow {
    /// Opens a fresh store at `dir` holding the genesis state.
    pub fn open(dir: &Path, genesis: &genesis::Genesis) -> Shadow {
        let chain_id = genesis.chain_id();
        let mut store = Store::open(dir).expect("the shadow store opens");
        store
            .init_genesis_state(
                chain_id,
                &genesis
                    .initial_state()
                    .expect("the genesis records a validator set"),
            )
            .expect("the shadow store takes the genesis state");
        Shadow {
            store,
            chain_id,
            genesis_time_ms: genesis.genesis_time_ms,
        }
    }

    pub fn height(&self) -> u64 {
        self.store.height().unwrap_or(0)
    }

    pub fn block_hash(&self) -> Hash {
        self.store.meta().map_or(Hash::ZERO, |meta| meta.block_hash)
    }

    pub fn block(&self, height: u64) -> Option<Block> {
        self.store.block(height).ok().flatten()
    }

    pub fn certificate(&self, height: u64) -> Option<Vec<u8>> {
        self.store.certificate(height).ok().flatten()
    }

    /// The committed block and certificate at `height`, as sync sends them.
    pub fn synced(&self, height: u64) -> Option<SyncedBlock> {
        Some(SyncedBlock {
            block: self.block(height)?.to_bytes(),
            certificate: self.certificate(height)?,
        })
    }

    /// The nonce `key`'s next transaction must carry.
    pub fn next_nonce(&self, key: &PublicKey) -> u64 {
        node::shared::participant_in(&self.store, key)
            .expect("the shadow store reads its own state")
            .map_or(0, |participant| participant.next_nonce)
    }

    /// Commits the next block as an honest peer served it.
    pub fn commit_synced(&mut self, synced: &SyncedBlock) -> Result<(), String> {
        let block = Block::from_bytes(&synced.block).map_err(|error| error.to_string())?;
        if block.header.height != self.height() + 1 {
            return Err(format!(
                "block {} does not follow {}",
                block.header.height,
                self.height()
            ));
        }
        let execution = ledger::execute_block(&block.header.context(), &self.store, &block.txs)
            .map_err(|error| error.to_string())?;
        self.store
            .commit_execution(&block, &synced.certificate, execution)
            .map_err(|error| error.to_string())
    }

    /// A block at the next height proposed by `proposer`, holding those of
    /// `txs` that execute, in order, with the app hash honest validators will
    /// compute. Signatures are *not* checked: a forged one goes in as it is.
    pub fn build(
        &mut self,
        txs: &[SignedTransaction],
        proposer: PublicKey,
    ) -> (Block, Vec<TxHash>) {
        let height = self.height() + 1;
        let parent_time = self
            .block(height - 1)
            .map_or(self.genesis_time_ms, |block| block.header.time.0);
        let context = BlockContext {
            chain_id: self.chain_id,
            height,
            time: Timestamp(node::shared::now_ms().max(parent_time + 1)),
        };
        let hashes: Vec<TxHash> = txs.iter().map(SignedTransaction::hash).collect();
        let verified: Vec<VerifiedTx<'_>> = txs
            .iter()
            .zip(&hashes)
            .map(|(tx, hash)| VerifiedTx::assume_verified(tx, *hash))
            .collect();
        let (kept, execution, _refused) = select_transactions(&context, &self.store, &verified)
            .expect("the shadow store reads its own state");
        let block_txs: Vec<SignedTransaction> = kept.iter().map(|tx| tx.tx().clone()).collect();
        let kept_hashes: Vec<TxHash> = kept.iter().map(VerifiedTx::hash).collect();
        let app_hash = self.store.prepare(execution).app_hash();
        self.store.discard_prepared();
        let header = BlockHeader {
            chain_id: self.chain_id,
            height,
            time: context.time,
            parent_hash: self.block_hash(),
            proposer,
            tx_root: tx_root_with_hashes(&block_txs, &kept_hashes),
            app_hash,
        };
        (
            Block {
                header,
                txs: block_txs,
            },
            kept_hashes,
        )
    }
}
