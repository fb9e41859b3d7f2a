//! Bounded work per transaction and per block (issue 17).
//!
//! A root confirmed to one supplier is split over three levels of blocks
//! into 102,400 tokens held by 64 suppliers (1 → 64 → 4,096 → 102,400;
//! blocks of at most 5,000 transfers, the local network's block limit, and
//! at most `MAX_BLOCK_WRITES` writes, as a proposer builds them), then
//! settled. Each block is executed the way a validator does before it
//! votes: the transactions against the state, then the state tree for the
//! app hash. The set-up prints every block's time; criterion measures:
//!
//! - `settle/root_with_tokens/1` and `/102400`: the settlement block of a
//!   root with one token and with 102,400;
//! - `heaviest_block/transfers_of_64_outputs/992`: the most a block within
//!   the write budget (`MAX_BLOCK_WRITES`) can hold of the widest
//!   transaction (992 transfers of 64 outputs: 66 writes each), the worst
//!   case of any block, settlement or not.
//!
//! Run: `cargo bench --profile dev --workspace --bench settle` (about two
//! minutes).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use crypto::{ChainId, Hash, Keypair, PublicKey};
use ledger::block::{MAX_BLOCK_WRITES, execute_verified_block};
use ledger::{
    Amount, BlockContext, MemoryState, Output, Participant, Role, SignedTransaction, StateTree,
    StateValue, Timestamp, TokenId, Transaction, TxBody, VerifiedTx,
};

const START: u64 = 1_798_761_600_000;
const DAY_MS: u64 = 86_400_000;
const BLOCK_LIMIT: usize = 5_000;
const HOLDERS: usize = 64;

struct Chain {
    id: ChainId,
    state: MemoryState,
    tree: StateTree,
    height: u64,
    time: u64,
    nonces: Vec<u64>,
    bank: Keypair,
    core: Keypair,
    core_nonce: u64,
    holders: Vec<Keypair>,
}

impl Chain {
    fn new(holder_count: usize) -> Chain {
        let holders: Vec<Keypair> = (0..holder_count as u32)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                Keypair::from_seed(seed)
            })
            .collect();
        let bank = Keypair::from_seed([0xba; 32]);
        let core = Keypair::from_seed([0xce; 32]);
        let mut participants: Vec<Participant> = holders
            .iter()
            .enumerate()
            .map(|(i, key)| Participant::new(key.public(), format!("s{i}"), [Role::Supplier]))
            .collect();
        participants.push(Participant::new(bank.public(), "bank", [Role::Bank]));
        participants.push(Participant::new(
            core.public(),
            "core",
            [Role::CoreEnterprise],
        ));
        let mut state = MemoryState::new();
        state.apply(participants.into_iter().map(StateValue::Participant));
        let mut tree = StateTree::new();
        tree.apply(
            state
                .entries()
                .map(|(_, value)| (value.tree_key(), value.value_hash())),
        );
        let mut chain = Chain {
            id: ChainId(Hash::digest(b"settle bench")),
            state,
            tree,
            height: 1,
            time: START,
            nonces: vec![0; holder_count],
            bank,
            core,
            core_nonce: 0,
            holders,
        };
        let grant = Transaction {
            chain_id: chain.id,
            signer: chain.bank.public(),
            nonce: 0,
            body: TxBody::GrantCreditLine {
                core: chain.core.public(),
                limit: Amount(u64::MAX / 2),
            },
        }
        .sign(&chain.bank);
        chain.block(&[grant]);
        chain
    }

    fn context(&self) -> BlockContext {
        BlockContext {
            chain_id: self.id,
            height: self.height,
            time: Timestamp(self.time),
        }
    }

    /// Executes one block as a validator does and applies it; returns its
    /// writes and how long it took.
    fn block(&mut self, txs: &[SignedTransaction]) -> (Vec<StateValue>, Duration) {
        let verified: Vec<VerifiedTx<'_>> = txs
            .iter()
            .map(|tx| VerifiedTx::assume_verified(tx, tx.hash()))
            .collect();
        let context = self.context();
        let started = Instant::now();
        let execution =
            execute_verified_block(&context, &self.state, &verified).expect("a valid block");
        self.tree.apply(
            execution
                .writes
                .iter()
                .map(|value| (value.tree_key(), value.value_hash())),
        );
        let took = started.elapsed();
        self.state.apply(execution.writes.iter().cloned());
        self.height += 1;
        self.time += 1_000;
        (execution.writes, took)
    }

    /// The core confirms `amount` to holder 0; returns the root.
    fn confirm(&mut self, amount: u64, invoice: &str) -> TokenId {
        let tx = self.core_tx(TxBody::ConfirmReceivable {
            supplier: self.holders[0].public(),
            amount: Amount(amount),
            maturity: Timestamp(self.time + 30 * DAY_MS),
            invoice_ref: Hash::digest(invoice.as_bytes()),
        });
        let (writes, _) = self.block(&[tx]);
        writes
            .iter()
            .find_map(|value| match value {
                StateValue::Token(token) => Some(token.id),
                _ => None,
            })
            .expect("the root")
    }

    fn core_tx(&mut self, body: TxBody) -> SignedTransaction {
        let tx = Transaction {
            chain_id: self.id,
            signer: self.core.public(),
            nonce: self.core_nonce,
            body,
        }
        .sign(&self.core);
        self.core_nonce += 1;
        tx
    }

    /// `holder` splits `token` of `amount` into `parts` tokens spread over
    /// the holders, starting at `first_recipient`.
    fn split(
        &mut self,
        holder: usize,
        token: TokenId,
        amount: u64,
        parts: usize,
        first_recipient: usize,
    ) -> SignedTransaction {
        let share = amount / parts as u64;
        let outputs = (0..parts)
            .map(|i| Output {
                recipient: self.holders[(first_recipient + i) % self.holders.len()].public(),
                amount: Amount(if i + 1 == parts {
                    amount - share * (parts as u64 - 1)
                } else {
                    share
                }),
            })
            .collect();
        let key = &self.holders[holder];
        let tx = Transaction {
            chain_id: self.id,
            signer: key.public(),
            nonce: self.nonces[holder],
            body: TxBody::Transfer { token, outputs },
        }
        .sign(key);
        self.nonces[holder] += 1;
        tx
    }

    /// Every unspent token a block wrote, with its holder's index and amount.
    fn created(&self, writes: &[StateValue]) -> Vec<(usize, TokenId, u64)> {
        let index: std::collections::BTreeMap<PublicKey, usize> = self
            .holders
            .iter()
            .enumerate()
            .map(|(i, key)| (key.public(), i))
            .collect();
        writes
            .iter()
            .filter_map(|value| match value {
                StateValue::Token(token) if token.is_unspent() => {
                    Some((index[&token.holder], token.id, token.amount.0))
                }
                _ => None,
            })
            .collect()
    }
}

/// Splits `root` (held by holder 0) level by level with these fan-outs;
/// returns the number of tokens and every block's execution time.
fn split_root(
    chain: &mut Chain,
    root: TokenId,
    amount: u64,
    fan_outs: &[usize],
) -> (usize, Vec<Duration>) {
    let mut level = vec![(0usize, root, amount)];
    let mut times = Vec::new();
    for (depth, &parts) in fan_outs.iter().enumerate() {
        let mut next = Vec::new();
        // As a proposer fills blocks: up to the block limit and the write
        // budget (a transfer writes its input, its outputs and a nonce).
        let per_block = BLOCK_LIMIT.min(MAX_BLOCK_WRITES / (parts + 2));
        for chunk in level.chunks(per_block) {
            let txs: Vec<SignedTransaction> = chunk
                .iter()
                .enumerate()
                .map(|(i, (holder, token, amount))| {
                    chain.split(*holder, *token, *amount, parts, i + depth)
                })
                .collect();
            let (writes, took) = chain.block(&txs);
            next.extend(chain.created(&writes));
            times.push(took);
        }
        level = next;
    }
    (level.len(), times)
}

/// Times executing `verified` on `chain`'s state and updating a copy of its
/// state tree, as a validator does before it votes.
fn bench_block(
    b: &mut criterion::Bencher<'_>,
    chain: &Chain,
    context: &BlockContext,
    verified: &[VerifiedTx<'_>],
) {
    b.iter_batched(
        || chain.tree.clone(),
        |mut tree| {
            let execution =
                execute_verified_block(context, &chain.state, verified).expect("a valid block");
            tree.apply(
                execution
                    .writes
                    .iter()
                    .map(|value| (value.tree_key(), value.value_hash())),
            );
            (execution, tree)
        },
        criterion::BatchSize::LargeInput,
    )
}

fn settle_block(chain: &Chain, root: TokenId) -> (Vec<SignedTransaction>, BlockContext) {
    let tx = Transaction {
        chain_id: chain.id,
        signer: chain.core.public(),
        nonce: chain.core_nonce,
        body: TxBody::Settle {
            root,
            payment_ref: "WIRE-1".into(),
        },
    }
    .sign(&chain.core);
    let mut context = chain.context();
    context.time = Timestamp(chain.time + 31 * DAY_MS);
    (vec![tx], context)
}

fn bench_settle(c: &mut Criterion) {
    let mut chain = Chain::new(HOLDERS);
    let small = chain.confirm(1_000_000, "INV-small");
    let big_amount = 1_000_000_000_000u64;
    let big = chain.confirm(big_amount, "INV-big");
    let (tokens, times) = split_root(&mut chain, big, big_amount, &[64, 64, 25]);
    assert!(tokens >= 100_000, "{tokens} tokens");
    let slowest = times.iter().max().expect("blocks");
    eprintln!(
        "split into {tokens} tokens in {} blocks; slowest block {:.0} ms; blocks: {:?}",
        times.len(),
        slowest.as_secs_f64() * 1e3,
        times
            .iter()
            .map(|time| format!("{:.0} ms", time.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
    );

    let mut group = c.benchmark_group("settle");
    group.sample_size(20);
    for (label, root) in [(1, small), (tokens, big)] {
        let (txs, context) = settle_block(&chain, root);
        let verified: Vec<VerifiedTx<'_>> = txs
            .iter()
            .map(|tx| VerifiedTx::assume_verified(tx, tx.hash()))
            .collect();
        group.bench_with_input(
            BenchmarkId::new("root_with_tokens", label),
            &root,
            |b, _| bench_block(b, &chain, &context, &verified),
        );
    }
    group.finish();
}

fn bench_heaviest_block(c: &mut Criterion) {
    let mut chain = Chain::new(BLOCK_LIMIT);
    // One root per sender: confirmations to holder 0, then one split to
    // give each of the 5,000 holders a token.
    let amount = 1_000_000_000_000u64;
    let root = chain.confirm(amount * BLOCK_LIMIT as u64, "INV-heavy");
    let mut tokens: Vec<(usize, TokenId, u64)> = vec![(0, root, amount * BLOCK_LIMIT as u64)];
    while tokens.len() < BLOCK_LIMIT {
        let parts = (BLOCK_LIMIT / tokens.len()).clamp(2, 64);
        let txs: Vec<SignedTransaction> = tokens
            .iter()
            .enumerate()
            .map(|(i, (holder, token, amount))| {
                chain.split(*holder, *token, *amount, parts, i * parts)
            })
            .collect();
        let (writes, _) = chain.block(&txs);
        tokens = chain.created(&writes);
    }
    // One token per holder: keep the first token each holder got.
    let mut by_holder: std::collections::BTreeMap<usize, (TokenId, u64)> = Default::default();
    for (holder, token, amount) in tokens {
        by_holder.entry(holder).or_insert((token, amount));
    }
    let txs: Vec<SignedTransaction> = by_holder
        .iter()
        .take(MAX_BLOCK_WRITES / 66)
        .map(|(holder, (token, amount))| chain.split(*holder, *token, *amount, 64, *holder))
        .collect();
    let verified: Vec<VerifiedTx<'_>> = txs
        .iter()
        .map(|tx| VerifiedTx::assume_verified(tx, tx.hash()))
        .collect();
    let context = chain.context();
    let mut group = c.benchmark_group("heaviest_block");
    group.sample_size(10);
    group.bench_function(
        BenchmarkId::new("transfers_of_64_outputs", verified.len()),
        |b| bench_block(b, &chain, &context, &verified),
    );
    group.finish();
}

criterion_group!(benches, bench_settle, bench_heaviest_block);
criterion_main!(benches);
