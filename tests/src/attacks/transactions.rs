//! Attacks with transactions (issue 16, item 8): honest transactions
//! re-gossiped with forged signatures, and one transaction submitted with
//! different valid signatures to different honest nodes.
//!
//! A transaction's hash covers only the unsigned transaction, so the
//! forged and the re-signed copies all share the honest one's id.

use node::network::{PeerId, Topic};

use crate::client;
use crate::cluster::HONEST;
use crate::hostile::forge;
use crate::hostile::{Attack, Ctx};

/// Pending transactions re-gossiped with fresh garbage signatures per tick.
const FORGED_PER_TICK: usize = 50;

/// Re-gossips every honest transaction it sees, and the newest pending ones
/// every tick, with garbage signatures.
#[derive(Debug, Default)]
pub struct RegossipsForgedSignatures;

impl Attack for RegossipsForgedSignatures {
    fn on_gossip(&mut self, ctx: &mut Ctx, topic: Topic, _from: PeerId, bytes: &[u8]) {
        if topic != Topic::Transactions {
            return;
        }
        let Ok(batch) = borsh::from_slice::<Vec<Vec<u8>>>(bytes) else {
            return;
        };
        let forged: Vec<Vec<u8>> = batch
            .iter()
            .filter_map(|bytes| ledger::SignedTransaction::from_bytes(bytes).ok())
            .map(|tx| forge::with_garbage_signature(&tx, ctx.salt()).to_bytes())
            .collect();
        ctx.publish(
            Topic::Transactions,
            borsh::to_vec(&forged).expect("encoding"),
        );
    }

    fn on_tick(&mut self, ctx: &mut Ctx) {
        let newest: Vec<_> = ctx
            .pending
            .iter()
            .rev()
            .take(FORGED_PER_TICK)
            .cloned()
            .collect();
        let forged: Vec<Vec<u8>> = newest
            .iter()
            .map(|tx| forge::with_garbage_signature(tx, ctx.salt()).to_bytes())
            .collect();
        if !forged.is_empty() {
            ctx.publish(
                Topic::Transactions,
                borsh::to_vec(&forged).expect("encoding"),
            );
        }
    }
}

/// Submits one intruder transaction at a time, each honest validator's API
/// getting its own valid signature of it; the next once it is committed.
#[derive(Debug, Default)]
pub struct TwoValidSignatures {
    /// The intruder's committed nonce when the last one was sent.
    sent_at: Option<u64>,
}

impl Attack for TwoValidSignatures {
    fn on_tick(&mut self, ctx: &mut Ctx) {
        let key = ctx.participant_keys[crate::cluster::INTRUDER].clone();
        let committed = ctx.shadow().next_nonce(&key.public());
        if self.sent_at.is_some_and(|sent| sent >= committed) {
            return;
        }
        self.sent_at = Some(committed);
        let tx = ctx.own_tx();
        // Each copy is checked valid: the attack is about valid signatures
        // (the unit tests of `forge` pin that too).
        let copies: Vec<_> = (0..HONEST.len() as u64)
            .map(|salt| {
                if salt == 0 {
                    tx.clone()
                } else {
                    forge::second_signature(&key, &tx, salt)
                }
            })
            .filter(|copy| copy.verify_signature().is_ok())
            .collect();
        let targets: Vec<(String, ledger::SignedTransaction)> = HONEST
            .iter()
            .zip(copies)
            .map(|(&index, copy)| (ctx.apis[&index].clone(), copy))
            .collect();
        // Blocking HTTP off the peer's event loop.
        std::thread::spawn(move || {
            for (api, copy) in targets {
                client::submit(&api, &copy);
            }
        });
    }
}
