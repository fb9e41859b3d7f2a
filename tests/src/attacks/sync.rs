//! Attacks on block sync (issue 16, items 1 and 2): lying about the height,
//! and answering block requests with empty, truncated, reordered or
//! re-signed blocks.
//!
//! Honest nodes ask a peer for blocks only when it claims to be ahead, so
//! the tampering attack claims a plausible lead (two blocks) and serves
//! doctored copies of the real committed blocks and certificates.

use ledger::Block;
use node::network::{PeerId, SyncRequest, SyncResponse, SyncedBlock};

use crate::hostile::forge;
use crate::hostile::{Answer, Attack, Ctx};

/// Claims an unreachable height — alternately `u64::MAX` and the tip plus
/// 1000 — and answers every block request with nothing.
#[derive(Debug, Default)]
pub struct ClaimsHeights {
    answers: u64,
}

impl Attack for ClaimsHeights {
    fn on_sync(&mut self, ctx: &mut Ctx, _from: PeerId, request: &SyncRequest) -> Answer {
        match request {
            SyncRequest::Status => {
                self.answers += 1;
                let height = if self.answers.is_multiple_of(2) {
                    u64::MAX
                } else {
                    ctx.committed() + 1_000
                };
                Answer::Reply(SyncResponse::Status { height })
            }
            SyncRequest::Blocks { .. } => Answer::Reply(SyncResponse::Blocks(Vec::new())),
            SyncRequest::BlockByHash(_) => Answer::Honest,
        }
    }
}

/// The ways [`TamperedBlocks`] doctors a sync answer, in turn.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// The first block's bytes cut in half.
    TruncatedBytes,
    /// The first block without its last transaction (header unchanged).
    DroppedTransaction,
    /// The blocks in reverse order.
    Reordered,
    /// One transaction carrying another valid signature of its signer:
    /// valid-looking, but not the block the certificate signed.
    ResignedTransaction,
    /// One transaction carrying a garbage signature.
    ForgedSignature,
    /// The certificate of the next block instead of its own.
    SwappedCertificate,
}

const TAMPERS: [Tamper; 6] = [
    Tamper::TruncatedBytes,
    Tamper::DroppedTransaction,
    Tamper::Reordered,
    Tamper::ResignedTransaction,
    Tamper::ForgedSignature,
    Tamper::SwappedCertificate,
];

/// Claims to be two blocks ahead and serves doctored real blocks.
#[derive(Debug, Default)]
pub struct TamperedBlocks {
    answers: usize,
}

impl Attack for TamperedBlocks {
    fn on_sync(&mut self, ctx: &mut Ctx, _from: PeerId, request: &SyncRequest) -> Answer {
        match request {
            SyncRequest::Status => Answer::Reply(SyncResponse::Status {
                height: ctx.committed() + 2,
            }),
            SyncRequest::Blocks { from, to } => {
                let (from, to) = (*from, (*to).min(from.saturating_add(63)));
                let mut blocks: Vec<SyncedBlock> = {
                    let shadow = ctx.shadow();
                    (from.max(1)..=to)
                        .map_while(|height| shadow.synced(height))
                        .collect()
                };
                let tamper = TAMPERS[self.answers % TAMPERS.len()];
                self.answers += 1;
                doctor(ctx, &mut blocks, tamper);
                Answer::Reply(SyncResponse::Blocks(blocks))
            }
            SyncRequest::BlockByHash(_) => Answer::Honest,
        }
    }
}

fn doctor(ctx: &mut Ctx, blocks: &mut [SyncedBlock], tamper: Tamper) {
    let Some(first) = blocks.first_mut() else {
        return;
    };
    let Ok(mut block) = Block::from_bytes(&first.block) else {
        return;
    };
    match tamper {
        Tamper::TruncatedBytes => {
            first.block.truncate(first.block.len() / 2);
            return;
        }
        Tamper::DroppedTransaction => {
            block.txs.pop();
        }
        Tamper::Reordered => {
            blocks.reverse();
            return;
        }
        Tamper::ResignedTransaction => {
            if let Some(tx) = block.txs.first_mut() {
                let signer = ctx
                    .participant_keys
                    .values()
                    .find(|key| key.public() == tx.tx.signer)
                    .cloned();
                if let Some(key) = signer {
                    *tx = forge::second_signature(&key, tx, ctx.salt());
                }
            }
        }
        Tamper::ForgedSignature => {
            if let Some(tx) = block.txs.first_mut() {
                *tx = forge::with_garbage_signature(tx, ctx.salt());
            }
        }
        Tamper::SwappedCertificate => {
            if blocks.len() > 1 {
                let second = blocks[1].certificate.clone();
                blocks[0].certificate = second;
            }
            return;
        }
    }
    first.block = block.to_bytes();
}
