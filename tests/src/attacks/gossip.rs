//! Attacks through gossip alone (issue 16, items 3–5): forged block
//! announcements, consensus messages for far heights and rounds (signed,
//! unsigned and impersonating), and equivocation. Also the crashed
//! validator, as a control: silence is the mildest Byzantine behaviour.

use consensus::{ConsensusMessage, Height, Round, SignedVote, Vote, VoteKind};
use crypto::{Hash, Signature};
use ledger::{Block, BlockHeader, Timestamp, TxHash};
use node::network::{PeerId, SyncRequest, Topic};

use crate::hostile::forge;
use crate::hostile::{Answer, Attack, Ctx};

/// Announcements per tick (a tick is 50 ms) and transaction hashes in each.
const ANNOUNCEMENTS_PER_TICK: usize = 5;
const JUNK_HASHES: usize = 2_000;
/// Consensus messages per tick.
const VOTES_PER_TICK: usize = 40;

/// A crashed validator: sends nothing, refuses every request.
#[derive(Debug, Default)]
pub struct Silent;

impl Attack for Silent {
    fn on_sync(&mut self, _: &mut Ctx, _: PeerId, _: &SyncRequest) -> Answer {
        Answer::Refuse
    }

    fn on_proposer_turn(&mut self, _: &mut Ctx, _: u64, _: u32) {}

    fn says_yes(&self) -> bool {
        false
    }
}

fn junk_hash(ctx: &mut Ctx) -> Hash {
    Hash::digest(&ctx.salt().to_le_bytes())
}

/// A header no validator signed off on, at `height`.
fn forged_header(ctx: &mut Ctx, height: u64) -> BlockHeader {
    BlockHeader {
        chain_id: ctx.chain_id,
        height,
        time: Timestamp(node::shared::now_ms()),
        parent_hash: junk_hash(ctx),
        proposer: ctx.key.public(),
        tx_root: junk_hash(ctx),
        app_hash: junk_hash(ctx),
    }
}

/// Floods forged announcements: random near heights, far-future heights and
/// `u64::MAX`, with thousands of junk transaction hashes, or none.
#[derive(Debug, Default)]
pub struct ForgedAnnouncements;

impl Attack for ForgedAnnouncements {
    fn on_tick(&mut self, ctx: &mut Ctx) {
        let committed = ctx.committed();
        for index in 0..ANNOUNCEMENTS_PER_TICK {
            let salt = ctx.salt();
            let height = match index % 4 {
                0 => committed + 1,
                1 => committed + 2 + salt % 10,
                2 => committed + 1_000 + salt % 1_000_000,
                _ => u64::MAX - salt % 2,
            };
            let header = forged_header(ctx, height);
            let hashes: Vec<TxHash> = if index % 5 == 4 {
                Vec::new()
            } else {
                (0..JUNK_HASHES).map(|_| TxHash(junk_hash(ctx))).collect()
            };
            let block = Block {
                header,
                txs: Vec::new(),
            };
            let proposal = forge::proposal(&ctx.key, ctx.chain_id, height, 0, block.hash());
            ctx.publish(
                Topic::Blocks,
                forge::announcement(&block, hashes, &proposal),
            );
        }
    }
}

/// Proposals and votes for far heights (`u64::MAX`, the tip plus 3 to
/// 1000) and far rounds (`u32::MAX`), signed with the real key, with
/// garbage signatures, and impersonating the honest validators with garbage
/// signatures at the current height.
#[derive(Debug, Default)]
pub struct FarFutureMessages;

impl Attack for FarFutureMessages {
    fn on_tick(&mut self, ctx: &mut Ctx) {
        let next = ctx.committed() + 1;
        let honest_keys: Vec<crypto::PublicKey> = ctx
            .validators
            .validators()
            .iter()
            .map(|validator| validator.public_key)
            .filter(|key| *key != ctx.key.public())
            .collect();
        for index in 0..VOTES_PER_TICK {
            let salt = ctx.salt();
            let (height, round) = match index % 5 {
                0 => (u64::MAX, u32::MAX),
                1 => (next + 3 + salt % 1_000, 0),
                2 => (next, u32::MAX - (salt % 3) as u32),
                3 => (next, 101 + (salt % 100_000) as u32),
                _ => (next + 1, (salt % 50) as u32),
            };
            let block = junk_hash(ctx);
            let value = Some(block);
            let kind = if salt.is_multiple_of(2) {
                VoteKind::Prevote
            } else {
                VoteKind::Precommit
            };
            let message = match salt % 4 {
                0 => forge::vote(&ctx.key, ctx.chain_id, kind, height, round, value),
                1 => ConsensusMessage::Proposal(forge::proposal(
                    &ctx.key,
                    ctx.chain_id,
                    height,
                    round,
                    block,
                )),
                2 => garbage_vote(
                    ctx.chain_id,
                    ctx.key.public(),
                    kind,
                    height,
                    round,
                    value,
                    salt,
                ),
                _ => {
                    let victim = honest_keys[salt as usize % honest_keys.len()];
                    garbage_vote(
                        ctx.chain_id,
                        victim,
                        kind,
                        next,
                        (salt % 3) as u32,
                        value,
                        salt,
                    )
                }
            };
            ctx.publish_consensus(&message);
        }
    }
}

fn garbage_vote(
    chain_id: crypto::ChainId,
    validator: crypto::PublicKey,
    kind: VoteKind,
    height: u64,
    round: u32,
    value: Option<Hash>,
    salt: u64,
) -> ConsensusMessage {
    let signature: Signature = forge::garbage_signature(salt);
    ConsensusMessage::Vote(SignedVote {
        chain_id,
        vote: Vote {
            kind,
            height: Height(height),
            round: Round(round),
            value,
            validator,
        },
        signature,
    })
}

/// Two different prevotes and precommits for every round it sees (the
/// proposal's value and another), and two different proposals (two
/// different valid blocks, both announced) when it is the proposer.
#[derive(Debug, Default)]
pub struct Equivocates;

impl Attack for Equivocates {
    fn on_gossip(&mut self, ctx: &mut Ctx, topic: Topic, _from: PeerId, bytes: &[u8]) {
        if topic != Topic::Consensus {
            return;
        }
        let Ok(ConsensusMessage::Proposal(proposal)) = ConsensusMessage::decode(bytes) else {
            return;
        };
        let p = proposal.proposal;
        let other = Some(junk_hash(ctx));
        ctx.vote_for(p.height.0, p.round.0, other);
        ctx.vote_for(p.height.0, p.round.0, None);
    }

    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let mut pending = ctx.pending_txs(100);
        let (first, first_hashes) = ctx.build(&pending);
        pending.push(ctx.own_tx());
        let (second, second_hashes) = ctx.build(&pending);
        ctx.propose(height, round, &first, first_hashes, true);
        ctx.propose(height, round, &second, second_hashes, true);
        ctx.vote_for(height, round, None);
    }
}
