//! Ledger benchmarks (issue 3):
//!
//! (a) transfers executed per second in memory, in blocks of 5,000 (one core);
//! (b) transfers committed per second to RocksDB with sync, blocks of 5,000
//!     (execution + state tree + one synced WriteBatch). A commit returns
//!     once its block is durable; writing each value under its own key runs
//!     on the store's own thread while the next block executes, and a commit
//!     waits for it when it falls two blocks behind, so the rate is what the
//!     store sustains;
//! (c) ed25519 verifications per second: one by one, batched on one core,
//!     and batched across all cores;
//! (d) the commit rate of (b) with 1,000,000 tokens already in the store.
//!
//! `state_tree` isolates the app hash's part of (b) and (d): one block's
//! 20,000 updates (15,000 of them new keys) applied to trees of 200,000 and
//! 3,000,000 entries.
//!
//! Signatures are checked by the mempool before execution, so (a), (b) and
//! (d) execute pre-verified transactions; (c) is that check's cost. The
//! mempool also computes each transaction's hash when it takes it in, so the
//! hashes are computed before the clock starts here too.
//!
//! Run: `make bench` (`cargo bench --profile dev --workspace --bench ledger`). Set `SCF_BENCH_BIG_TOKENS`
//! to change the size of (d)'s store (default 1,000,000).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crypto::{ChainId, Domain, Hash, Keypair, PublicKey, SignedMessage, signing_bytes};
use ledger::block::execute_verified_block;
use ledger::block::tx_root_with_hashes;
use ledger::store::Store;
use ledger::{
    Amount, Block, BlockContext, BlockHeader, MemoryState, Origin, Output, Participant, Role,
    SignedTransaction, StateTree, StateValue, Timestamp, Token, TokenId, TokenStatus, Transaction,
    TxBody, VerifiedTx, execute_block, tx_root,
};
use rayon::prelude::*;

const BLOCK_TXS: usize = 5_000;
const START: u64 = 1_798_761_600_000;
const YEAR_MS: u64 = 365 * 86_400_000;

/// 5,000 senders, each holding one token and paying part of it to the next
/// sender every block (two outputs: the payment and the change).
struct Senders {
    chain: ChainId,
    keys: Vec<Keypair>,
    /// Each sender's current token and its amount.
    current: Vec<(TokenId, u64)>,
    nonces: Vec<u64>,
}

impl Senders {
    fn new() -> Senders {
        let keys: Vec<Keypair> = (0..BLOCK_TXS as u32)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                seed[31] = 1;
                Keypair::from_seed(seed)
            })
            .collect();
        let current = (0..BLOCK_TXS)
            .map(|i| {
                (
                    TokenId(Hash::digest(&(i as u64).to_le_bytes())),
                    u64::MAX / 8,
                )
            })
            .collect();
        Senders {
            chain: ChainId(Hash::digest(b"bench")),
            keys,
            current,
            nonces: vec![0; BLOCK_TXS],
        }
    }

    /// Genesis participants and each sender's first token.
    fn initial_state(&self) -> (Vec<Participant>, Vec<Token>) {
        let participants = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, key)| Participant::new(key.public(), format!("s{i}"), [Role::Supplier]))
            .collect();
        let issuer = self.keys[0].public();
        let tokens = self
            .current
            .iter()
            .zip(&self.keys)
            .map(|((id, amount), key)| Token {
                id: *id,
                root_id: *id,
                parent_id: None,
                issuer,
                holder: key.public(),
                amount: Amount(*amount),
                maturity: Timestamp(START + YEAR_MS),
                invoice_ref: id.0,
                status: TokenStatus::Active,
                frozen: false,
                origin: Origin::Confirmed,
                created_at: 0,
            })
            .collect();
        (participants, tokens)
    }

    /// A bank and a core enterprise for [`Senders::confirmations`].
    fn financiers() -> (Keypair, Keypair) {
        (
            Keypair::from_seed([0xba; 32]),
            Keypair::from_seed([0xce; 32]),
        )
    }

    /// Genesis participants for a store: the senders, the bank and the core
    /// enterprise.
    fn genesis_participants(&self) -> Vec<Participant> {
        let (bank, core) = Senders::financiers();
        let mut participants = self.initial_state().0;
        participants.push(Participant::new(bank.public(), "bank", [Role::Bank]));
        participants.push(Participant::new(
            core.public(),
            "core",
            [Role::CoreEnterprise],
        ));
        participants
    }

    /// The block that gives every sender its first token in a store: the
    /// bank grants the core enterprise a credit line and the core confirms
    /// one receivable to each sender. Sets the senders' current tokens.
    fn confirmations(&mut self) -> Vec<SignedTransaction> {
        let (bank, core) = Senders::financiers();
        let amount = 1_000_000_000_000u64;
        let mut txs = vec![
            Transaction {
                chain_id: self.chain,
                signer: bank.public(),
                nonce: 0,
                body: TxBody::GrantCreditLine {
                    core: core.public(),
                    limit: Amount(amount * BLOCK_TXS as u64),
                },
            }
            .sign(&bank),
        ];
        for (i, key) in self.keys.iter().enumerate() {
            txs.push(
                Transaction {
                    chain_id: self.chain,
                    signer: core.public(),
                    nonce: i as u64,
                    body: TxBody::ConfirmReceivable {
                        supplier: key.public(),
                        amount: Amount(amount),
                        maturity: Timestamp(START + YEAR_MS),
                        invoice_ref: Hash::digest(&(i as u64).to_le_bytes()),
                    },
                }
                .sign(&core),
            );
        }
        for (current, tx) in self.current.iter_mut().zip(&txs[1..]) {
            *current = (TokenId::derive(&tx.hash(), 0), amount);
        }
        txs
    }

    /// The next block of 5,000 signed transfers (signed in parallel).
    fn next_block(&mut self) -> Vec<SignedTransaction> {
        let n = self.keys.len();
        let txs: Vec<SignedTransaction> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (token, amount) = self.current[i];
                let payee = self.keys[(i + 1) % n].public();
                let body = TxBody::Transfer {
                    token,
                    outputs: vec![
                        Output {
                            recipient: payee,
                            amount: Amount(1),
                        },
                        Output {
                            recipient: self.keys[i].public(),
                            amount: Amount(amount - 1),
                        },
                    ],
                };
                Transaction {
                    chain_id: self.chain,
                    signer: self.keys[i].public(),
                    nonce: self.nonces[i],
                    body,
                }
                .sign(&self.keys[i])
            })
            .collect();
        for (i, tx) in txs.iter().enumerate() {
            self.current[i] = (TokenId::derive(&tx.hash(), 1), self.current[i].1 - 1);
            self.nonces[i] += 1;
        }
        txs
    }
}

fn assume_verified(txs: &[SignedTransaction]) -> Vec<VerifiedTx<'_>> {
    txs.iter()
        .map(|tx| VerifiedTx::assume_verified(tx, tx.hash()))
        .collect()
}

fn hashes(txs: &[VerifiedTx<'_>]) -> Vec<ledger::TxHash> {
    txs.iter().map(VerifiedTx::hash).collect()
}

fn bench_execute(c: &mut Criterion) {
    let mut senders = Senders::new();
    let (participants, tokens) = senders.initial_state();
    let mut state = MemoryState::new();
    state.apply(participants.into_iter().map(StateValue::Participant));
    state.apply(tokens.into_iter().map(StateValue::Token));
    let mut tree = StateTree::new();
    tree.apply(
        state
            .entries()
            .map(|(_, value)| (value.tree_key(), value.value_hash())),
    );
    let txs = senders.next_block();
    let context = BlockContext {
        chain_id: senders.chain,
        height: 1,
        time: Timestamp(START + 1_000),
    };

    let mut group = c.benchmark_group("a_execute_in_memory");
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    group.sample_size(20);
    let verified = assume_verified(&txs);
    group.bench_function("transfers_block_of_5000", |b| {
        b.iter(|| execute_verified_block(&context, &state, &verified).expect("valid block"))
    });
    group.bench_function("transfers_block_of_5000_with_app_hash", |b| {
        b.iter(|| {
            let execution =
                execute_verified_block(&context, &state, &verified).expect("valid block");
            tree.begin();
            let root = tree.apply(
                execution
                    .writes
                    .iter()
                    .map(|value| (value.tree_key(), value.value_hash())),
            );
            tree.rollback();
            root
        })
    });
    group.finish();
}

/// A store with the senders' genesis, grown by `blocks` blocks of transfers.
struct CommitBench {
    _dir: tempfile::TempDir,
    store: Store,
    senders: Senders,
    parent: Hash,
    height: u64,
}

impl CommitBench {
    fn new() -> CommitBench {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut senders = Senders::new();
        let mut store = Store::open(dir.path()).expect("open store");
        store
            .init_genesis(senders.chain, &senders.genesis_participants())
            .expect("genesis");
        let confirmations = senders.confirmations();
        let mut bench = CommitBench {
            _dir: dir,
            store,
            senders,
            parent: Hash::ZERO,
            height: 0,
        };
        // The senders' first tokens arrive in a block of their own.
        bench.height = 1;
        let context = BlockContext {
            chain_id: bench.senders.chain,
            height: 1,
            time: Timestamp(START + 1_000),
        };
        let execution =
            execute_block(&context, &bench.store, &confirmations).expect("valid confirmations");
        let prepared = bench.store.prepare(execution);
        let header = BlockHeader {
            chain_id: context.chain_id,
            height: context.height,
            time: context.time,
            parent_hash: bench.parent,
            proposer: PublicKey([0; 32]),
            tx_root: tx_root(&confirmations),
            app_hash: prepared.app_hash(),
        };
        bench.parent = header.hash();
        let block = Block {
            header,
            txs: confirmations,
        };
        bench
            .store
            .commit(&block, b"certificate", &prepared)
            .expect("commit");
        bench
    }

    /// Executes and commits one block of transfers; returns the time taken
    /// from execution to the synced write (signing excluded).
    fn timed_block(&mut self) -> Duration {
        let txs = self.senders.next_block();
        let (execution, tx_hashes, started) = {
            let verified = assume_verified(&txs);
            let tx_hashes = hashes(&verified);
            let started = Instant::now();
            let context = BlockContext {
                chain_id: self.senders.chain,
                height: self.height + 1,
                time: Timestamp(START + (self.height + 1) * 1_000),
            };
            let execution =
                execute_verified_block(&context, &self.store, &verified).expect("valid block");
            (execution, tx_hashes, started)
        };
        let time = Timestamp(START + (self.height + 1) * 1_000);
        self.height += 1;
        // As a proposer would: prepare (the tree update the commit keeps),
        // put the app hash in the header, commit.
        let prepared = self.store.prepare(execution);
        let header = BlockHeader {
            chain_id: self.senders.chain,
            height: self.height,
            time,
            parent_hash: self.parent,
            proposer: PublicKey([0; 32]),
            tx_root: tx_root_with_hashes(&txs, &tx_hashes),
            app_hash: prepared.app_hash(),
        };
        self.parent = header.hash();
        let block = Block { header, txs };
        self.store
            .commit(&block, b"certificate", &prepared)
            .expect("commit");
        started.elapsed()
    }

    fn token_count(&self) -> u64 {
        BLOCK_TXS as u64 * (1 + 2 * (self.height - 1))
    }
}

fn bench_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_to_rocksdb_synced");
    group.throughput(Throughput::Elements(BLOCK_TXS as u64));
    // Every measured block grows the store by 10,000 tokens: keep the
    // number of blocks small so that (b) measures a small store and (d) a
    // store of the size it names. Flat sampling with a target time far
    // below one block's makes every sample one block (criterion warns that
    // it cannot finish in that time): about 3 warm-up blocks and 10
    // measured ones, so (b) runs from 5,000 to about 140,000 tokens and (d)
    // from 1,000,000 to about 1,130,000.
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(150));
    group.measurement_time(Duration::from_millis(100));

    let mut bench = CommitBench::new();
    group.bench_function(
        BenchmarkId::new("b_transfers_block_of_5000", "small_store"),
        |b| b.iter_custom(|iterations| (0..iterations).map(|_| bench.timed_block()).sum()),
    );

    let small = bench.token_count();
    let target: u64 = std::env::var("SCF_BENCH_BIG_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let filling = Instant::now();
    while bench.token_count() < target {
        bench.timed_block();
    }
    eprintln!(
        "(b) ended with {small} tokens; filled the store to {} tokens in {:.1?}",
        bench.token_count(),
        filling.elapsed()
    );
    group.bench_function(
        BenchmarkId::new(
            "d_transfers_block_of_5000",
            format!("{}_tokens", bench.token_count()),
        ),
        |b| b.iter_custom(|iterations| (0..iterations).map(|_| bench.timed_block()).sum()),
    );
    eprintln!("(d) ended with {} tokens", bench.token_count());
    group.finish();
}

fn bench_verify(c: &mut Criterion) {
    let chain = ChainId(Hash::digest(b"bench"));
    let keys: Vec<Keypair> = (0..256u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    let count = 4_096usize;
    let publics: Vec<PublicKey> = (0..count).map(|i| keys[i % keys.len()].public()).collect();
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|i| signing_bytes(Domain::Transaction, &chain, &(i as u64, [9u8; 150])))
        .collect();
    let signatures: Vec<crypto::Signature> = (0..count)
        .map(|i| keys[i % keys.len()].sign(Domain::Transaction, &chain, &(i as u64, [9u8; 150])))
        .collect();
    let messages: Vec<SignedMessage<'_>> = (0..count)
        .map(|i| SignedMessage {
            key: &publics[i],
            signature: &signatures[i],
            message: &bodies[i],
        })
        .collect();

    let mut group = c.benchmark_group("c_ed25519_verify");
    group.throughput(Throughput::Elements(count as u64));
    group.sample_size(10);
    group.bench_function("one_by_one", |b| {
        b.iter(|| {
            messages
                .iter()
                .all(|m| m.key.verify_bytes(m.message, m.signature).is_ok())
        })
    });
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    group.bench_function("batched_one_core", |b| {
        b.iter(|| {
            one_thread
                .install(|| crypto::verify_many(&messages))
                .iter()
                .all(Result::is_ok)
        })
    });
    group.bench_function("batched_all_cores", |b| {
        b.iter(|| crypto::verify_many(&messages).iter().all(Result::is_ok))
    });
    group.finish();
}

fn bench_state_tree(c: &mut Criterion) {
    let key = |n: u64| Hash::digest(&n.to_le_bytes());
    let mut group = c.benchmark_group("state_tree");
    group.throughput(Throughput::Elements(20_000));
    group.sample_size(20);
    for size in [200_000u64, 3_000_000] {
        let mut entries: Vec<(Hash, Hash)> = (0..size).map(|n| (key(n), key(n + 1))).collect();
        entries.sort_unstable();
        let mut tree = StateTree::from_sorted(&entries);
        // A block of transfers: 5,000 existing keys change, 15,000 are new.
        let updates: Vec<(Hash, Hash)> = (0..5_000u64)
            .map(|n| (key(n * (size / 5_000)), key(n)))
            .chain((0..15_000u64).map(|n| (key(size + n), key(n))))
            .collect();
        group.bench_function(BenchmarkId::new("apply_20000_updates", size), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    tree.begin();
                    let started = Instant::now();
                    tree.apply(updates.iter().copied());
                    total += started.elapsed();
                    tree.rollback();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_verify,
    bench_execute,
    bench_state_tree,
    bench_commit
);
criterion_main!(benches);
