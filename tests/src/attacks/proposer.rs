//! Attacks of validator 3 as proposer (issue 16, items 6, 7 and the
//! proposer half of 8): a body that differs between requesters, an
//! announcement that does not match its header, withheld bodies, and a
//! block carrying an honest transaction with a forged signature.
//!
//! Each block holds one transaction of the intruder that no honest node has
//! seen, so every honest validator must fetch the body from the proposer
//! (the first peer it asks) instead of rebuilding it from its mempool; the
//! rest are pending honest transactions, which every mempool holds.

use std::collections::HashMap;

use crypto::Hash;
use ledger::{Block, SignedTransaction, TxHash};
use node::network::{PeerId, SyncRequest, SyncResponse};

use crate::hostile::forge;
use crate::hostile::{Answer, Attack, Ctx};

/// Most pending honest transactions put in a hostile block.
const HONEST_TXS: usize = 50;

/// The intruder's unseen transaction followed by pending honest ones.
fn block_txs(ctx: &mut Ctx) -> Vec<SignedTransaction> {
    let mut txs = vec![ctx.own_tx()];
    txs.extend(ctx.pending_txs(HONEST_TXS));
    txs
}

/// The first transaction of `block` that is not the intruder's, if any.
fn first_honest(ctx: &Ctx, block: &Block) -> Option<usize> {
    let intruder = ctx.participant_keys[crate::cluster::INTRUDER].public();
    block.txs.iter().position(|tx| tx.tx.signer != intruder)
}

/// As proposer: one valid block, served whole to validators 0 and 1, and
/// with one honest transaction's signature forged (same header) to
/// validator 2.
#[derive(Debug, Default)]
pub struct BodyDiffersPerRequester {
    doctored: HashMap<Hash, Vec<u8>>,
}

/// The requester that gets the doctored body.
const DECEIVED: usize = 2;

impl Attack for BodyDiffersPerRequester {
    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let txs = block_txs(ctx);
        let (block, hashes) = ctx.build(&txs);
        let mut doctored = block.clone();
        if let Some(index) = first_honest(ctx, &block) {
            doctored.txs[index] = forge::with_garbage_signature(&block.txs[index], ctx.salt());
        }
        if self.doctored.len() > 64 {
            self.doctored.clear();
        }
        self.doctored.insert(block.hash(), doctored.to_bytes());
        ctx.propose(height, round, &block, hashes, true);
    }

    fn on_sync(&mut self, ctx: &mut Ctx, from: PeerId, request: &SyncRequest) -> Answer {
        match request {
            SyncRequest::BlockByHash(hash) if ctx.honest.get(&from) == Some(&DECEIVED) => {
                self.doctored.get(hash).map_or(Answer::Honest, |bytes| {
                    Answer::Reply(SyncResponse::Block(Some(bytes.clone())))
                })
            }
            _ => Answer::Honest,
        }
    }
}

/// As proposer: announces a valid block's header with transaction hashes
/// that do not match its tx root (the same pending transactions, in reverse
/// order, plus one more), which every mempool holds, so no one fetches.
#[derive(Debug, Default)]
pub struct AnnouncementMismatch;

impl Attack for AnnouncementMismatch {
    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let pending = ctx.pending_txs(HONEST_TXS);
        let (block, mut hashes) = ctx.build(&pending);
        hashes.reverse();
        if let Some(extra) = pending
            .iter()
            .map(SignedTransaction::hash)
            .find(|h| !hashes.contains(h))
        {
            hashes.push(extra);
        }
        let proposal = forge::proposal(&ctx.key, ctx.chain_id, height, round, block.hash());
        ctx.keep_block(&block);
        ctx.publish(
            node::network::Topic::Blocks,
            forge::announcement(&block, hashes, &proposal),
        );
        ctx.publish_consensus(&consensus::ConsensusMessage::Proposal(proposal));
        ctx.vote_for(height, round, Some(block.hash()));
    }
}

/// As proposer: announces and proposes (and votes for) a block no one else
/// can rebuild, and never answers for its body.
#[derive(Debug, Default)]
pub struct WithholdsBodies;

impl Attack for WithholdsBodies {
    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let txs = block_txs(ctx);
        let (block, hashes) = ctx.build(&txs);
        ctx.propose(height, round, &block, hashes, true);
    }

    fn on_sync(&mut self, _: &mut Ctx, _: PeerId, request: &SyncRequest) -> Answer {
        match request {
            SyncRequest::BlockByHash(_) => Answer::Stall,
            _ => Answer::Honest,
        }
    }
}

/// As proposer: a block (the same for everyone) whose pending honest
/// transactions all carry garbage signatures. Their hashes are those of the
/// valid transactions in every mempool: only a node that checks the signed
/// bytes, not the hash, refuses it.
#[derive(Debug, Default)]
pub struct ForgedSignatureBlock;

impl Attack for ForgedSignatureBlock {
    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let intruder = ctx.participant_keys[crate::cluster::INTRUDER].public();
        let txs: Vec<SignedTransaction> = block_txs(ctx)
            .into_iter()
            .map(|tx| {
                if tx.tx.signer == intruder {
                    tx
                } else {
                    forge::with_garbage_signature(&tx, ctx.salt())
                }
            })
            .collect();
        let (block, hashes): (Block, Vec<TxHash>) = ctx.build(&txs);
        ctx.propose(height, round, &block, hashes, true);
    }
}
