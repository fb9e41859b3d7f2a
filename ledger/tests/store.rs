//! The RocksDB store: atomic commits, reopening to exactly the committed
//! state, refusing blocks that do not follow, detecting tampered data,
//! queries, proofs, and surviving a kill -9 in the middle of committing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{DAY, World};
use crypto::{Hash, Keypair};
use ledger::store::{Store, StoreError, TxLocation};
use ledger::{
    Amount, Block, BlockExecution, BlockHeader, Participant, SignedTransaction, StateKey,
    StateTree, StateValue, StateView, Timestamp, TokenId, TokenStatus, TxBody, execute_block,
    tx_root,
};

/// Builds blocks of a deterministic history and keeps the in-memory truth.
struct Chain {
    world: World,
    tree: StateTree,
    parent: Hash,
    genesis: Vec<Participant>,
}

impl Chain {
    fn new() -> Chain {
        let world = World::new();
        let genesis: Vec<Participant> = world
            .state
            .entries()
            .filter_map(|(_, value)| match value {
                StateValue::Participant(participant) => Some(participant.clone()),
                _ => None,
            })
            .collect();
        let mut tree = StateTree::new();
        for participant in &genesis {
            let value = StateValue::Participant(participant.clone());
            tree.update(value.tree_key(), value.value_hash());
        }
        Chain {
            world,
            tree,
            parent: Hash::ZERO,
            genesis,
        }
    }

    fn open_store(&self, path: &std::path::Path) -> Store {
        let mut store = Store::open(path).expect("open store");
        store
            .init_genesis(self.world.chain, &self.genesis)
            .expect("genesis");
        store
    }

    /// The next block's transactions: at height 1 a credit line and a
    /// receivable; after that each supplier splits its first active token,
    /// passing a part to the next supplier.
    fn next_txs(&self) -> Vec<SignedTransaction> {
        let world = &self.world;
        if world.height == 1 {
            let mut nonce_world_txs = vec![world.sign(
                "bank",
                TxBody::GrantCreditLine {
                    core: world.key("core"),
                    limit: Amount(u64::MAX / 4),
                },
            )];
            let core = &world.keys["core"];
            let confirm = TxBody::ConfirmReceivable {
                supplier: world.key("supplier1"),
                amount: Amount(1_000_000_000),
                maturity: Timestamp(world.now.0 + 365 * DAY),
                invoice_ref: Hash::digest(b"INV-1"),
            };
            nonce_world_txs.push(
                ledger::Transaction {
                    chain_id: world.chain,
                    signer: core.public(),
                    nonce: 0,
                    body: confirm,
                }
                .sign(core),
            );
            return nonce_world_txs;
        }
        let suppliers = ["supplier1", "supplier2", "supplier3"];
        let mut txs = Vec::new();
        for (index, name) in suppliers.iter().enumerate() {
            let holdings: Vec<_> = world
                .state
                .entries()
                .filter_map(|(_, value)| match value {
                    StateValue::Token(token)
                        if token.holder == world.key(name)
                            && token.status == TokenStatus::Active =>
                    {
                        Some(token.clone())
                    }
                    _ => None,
                })
                .collect();
            if let Some(token) = holdings.into_iter().find(|token| token.amount.0 >= 10) {
                let next = suppliers[(index + 1) % suppliers.len()];
                let part = token.amount.0 / 10;
                let outputs = vec![
                    ledger::Output {
                        recipient: world.key(next),
                        amount: Amount(part),
                    },
                    ledger::Output {
                        recipient: world.key(name),
                        amount: Amount(token.amount.0 - part),
                    },
                ];
                txs.push(world.sign(
                    name,
                    TxBody::Transfer {
                        token: token.id,
                        outputs,
                    },
                ));
            }
        }
        txs
    }

    /// Executes the next block in memory and returns it with its execution.
    fn produce(&mut self) -> (Block, BlockExecution) {
        let txs = self.next_txs();
        self.produce_with(txs)
    }

    /// Executes a block of `txs` in memory and returns it with its execution.
    fn produce_with(&mut self, txs: Vec<SignedTransaction>) -> (Block, BlockExecution) {
        self.world.now = Timestamp(self.world.now.0 + 1_000);
        let context = self.world.context();
        let execution =
            execute_block(&context, &self.world.state, &txs).expect("generated block is valid");
        for value in execution.writes.iter() {
            self.tree.update(value.tree_key(), value.value_hash());
        }
        let header = BlockHeader {
            chain_id: self.world.chain,
            height: self.world.height,
            time: self.world.now,
            parent_hash: self.parent,
            proposer: Keypair::from_seed([77; 32]).public(),
            tx_root: tx_root(&txs),
            app_hash: self.tree.root_hash(),
        };
        self.parent = header.hash();
        self.world.state.apply(execution.writes.iter().cloned());
        self.world.height += 1;
        (Block { header, txs }, execution)
    }

    fn produce_and_commit(&mut self, store: &mut Store) -> Block {
        let (block, execution) = self.produce();
        store
            .commit_execution(&block, &certificate_for(&block), execution)
            .expect("commit");
        block
    }
}

#[test]
fn a_settled_roots_tokens_read_as_settled_and_leave_their_holders_holdings() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    for _ in 0..5 {
        chain.produce_and_commit(&mut store);
    }
    let tokens: Vec<ledger::Token> = chain
        .world
        .state
        .entries()
        .filter_map(|(_, value)| match value {
            StateValue::Token(token) => Some(token.clone()),
            _ => None,
        })
        .collect();
    let root = tokens
        .iter()
        .find(|token| token.parent_id.is_none())
        .expect("a root")
        .id;
    let unspent: Vec<_> = tokens.iter().filter(|token| token.is_unspent()).collect();
    assert!(unspent.len() >= 3, "{} unspent tokens", unspent.len());
    for name in ["supplier1", "supplier2", "supplier3"] {
        let key = chain.world.key(name);
        assert!(!store.tokens_by_holder(&key).unwrap().is_empty(), "{name}");
    }

    chain.world.now = Timestamp(chain.world.now.0 + 366 * DAY);
    let settle = chain.world.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY-9".into(),
        },
    );
    let (block, execution) = chain.produce_with(vec![settle]);
    // The receivable, the credit line and the issuer's nonce, however many
    // tokens the root has.
    assert_eq!(execution.writes.len(), 3, "{:?}", execution.writes);
    store
        .commit_execution(&block, &certificate_for(&block), execution)
        .expect("commit");

    let settled = TokenStatus::Settled {
        payment_ref: "PAY-9".into(),
    };
    for token in &unspent {
        let read = store.token_by_id(&token.id).unwrap().expect("stored");
        assert_eq!(read.status, settled, "token {}", token.id);
    }
    for name in ["supplier1", "supplier2", "supplier3"] {
        let key = chain.world.key(name);
        assert_eq!(store.tokens_by_holder(&key).unwrap(), vec![], "{name}");
    }
    let lineage = store.lineage(&root).unwrap().expect("root exists");
    assert_eq!(
        lineage.token.status,
        tokens.iter().find(|t| t.id == root).unwrap().status
    );
    for token in &lineage.descendants {
        let was = tokens.iter().find(|t| t.id == token.id).expect("known");
        if was.is_unspent() {
            assert_eq!(token.status, settled, "descendant {}", token.id);
        } else {
            assert_eq!(token.status, was.status, "descendant {}", token.id);
        }
    }
}

fn certificate_for(block: &Block) -> Vec<u8> {
    format!("certificate of {}", block.header.height).into_bytes()
}

/// A store with `blocks` blocks committed, closed, and the chain's truth.
fn committed_and_closed(blocks: usize) -> (tempfile::TempDir, Chain) {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    for _ in 0..blocks {
        chain.produce_and_commit(&mut store);
    }
    drop(store);
    (dir, chain)
}

/// Every committed state entry in the store equals the in-memory truth.
fn assert_same_state(store: &Store, world: &World) {
    for (key, value) in world.state.entries() {
        assert_eq!(
            store.state(key).expect("read").as_ref(),
            Some(value),
            "entry {key:?}"
        );
    }
}

#[test]
fn reopening_returns_the_last_committed_height_and_exactly_that_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let mut last = None;
    for _ in 0..6 {
        last = Some(chain.produce_and_commit(&mut store));
    }
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    let last = last.unwrap();
    let meta = store.meta().expect("initialised");
    assert_eq!(meta.height, 6);
    assert_eq!(meta.app_hash, last.header.app_hash);
    assert_eq!(meta.block_hash, last.hash());
    assert_same_state(&store, &chain.world);
    assert_eq!(store.block(6).unwrap().as_ref(), Some(&last));
    assert_eq!(store.certificate(6).unwrap(), Some(certificate_for(&last)));
}

#[test]
fn dropping_the_store_mid_sequence_keeps_exactly_the_committed_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    for _ in 0..4 {
        chain.produce_and_commit(&mut store);
    }
    let snapshot = chain.world.state.clone();
    let committed = store.meta().unwrap().clone();
    // A block that is executed and hashed but whose batch is never written.
    let (block, execution) = chain.produce();
    let tx_hashes = execution.tx_hashes.clone();
    let prepared = store.prepare(execution);
    assert_eq!(prepared.app_hash(), block.header.app_hash);
    // And one refused on the way in (its app hash is wrong).
    let mut bad = block.clone();
    bad.header.app_hash = Hash::digest(b"wrong");
    assert!(matches!(
        store.commit(&bad, b"", &prepared),
        Err(StoreError::AppHashMismatch { .. })
    ));
    drop(store);

    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.meta(), Some(&committed));
    assert!(store.block(5).unwrap().is_none());
    for (key, value) in snapshot.entries() {
        assert_eq!(store.state(key).unwrap().as_ref(), Some(value));
    }
    for hash in tx_hashes {
        assert_eq!(store.tx_location(&hash).unwrap(), None);
    }
}

#[test]
fn blocks_that_do_not_follow_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    chain.produce_and_commit(&mut store);
    let (block, execution) = chain.produce();
    let before = store.meta().unwrap().clone();
    let prepared = store.prepare(execution);

    let mut wrong_height = block.clone();
    wrong_height.header.height = 5;
    assert!(matches!(
        store.commit(&wrong_height, b"", &prepared),
        Err(StoreError::WrongHeight {
            expected: 2,
            got: 5
        })
    ));
    let mut wrong_parent = block.clone();
    wrong_parent.header.parent_hash = Hash::digest(b"elsewhere");
    assert!(matches!(
        store.commit(&wrong_parent, b"", &prepared),
        Err(StoreError::WrongParent { height: 2, .. })
    ));
    let mut wrong_chain = block.clone();
    wrong_chain.header.chain_id = crypto::ChainId(Hash::digest(b"other"));
    assert!(matches!(
        store.commit(&wrong_chain, b"", &prepared),
        Err(StoreError::WrongChain { .. })
    ));
    let mut wrong_app = block.clone();
    wrong_app.header.app_hash = Hash::digest(b"wrong");
    assert!(matches!(
        store.commit(&wrong_app, b"", &prepared),
        Err(StoreError::AppHashMismatch { height: 2, .. })
    ));
    assert_eq!(store.meta(), Some(&before));

    store
        .commit(&block, b"cert", &prepared)
        .expect("the right block still commits");
    assert_eq!(store.meta().unwrap().app_hash, block.header.app_hash);
}

#[test]
fn a_store_with_a_column_family_this_version_no_longer_uses_still_opens() {
    let (dir, chain) = committed_and_closed(2);
    {
        // Earlier versions kept a children index in a column family of its own.
        let mut options = rocksdb::Options::default();
        options.create_missing_column_families(true);
        let mut cfs: Vec<&str> = ledger::store::schema::ALL.to_vec();
        cfs.push("children");
        rocksdb::DB::open_cf(&options, dir.path(), cfs).unwrap();
    }
    let store = Store::open(dir.path()).expect("reopen with the extra column family");
    assert_eq!(store.meta().expect("initialised").height, 2);
    assert_same_state(&store, &chain.world);
}

#[test]
fn a_store_whose_data_was_tampered_with_refuses_to_open() {
    let (dir, _chain) = committed_and_closed(3);
    {
        // Raise one token's amount behind the store's back.
        let cfs = ledger::store::schema::ALL;
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cfs).unwrap();
        let tokens = db.cf_handle(ledger::store::schema::TOKENS).unwrap();
        let (key, value) = db
            .iterator_cf(tokens, rocksdb::IteratorMode::Start)
            .next()
            .unwrap()
            .unwrap();
        let mut token: ledger::Token = borsh::from_slice(&value).unwrap();
        token.amount = Amount(token.amount.0 + 1);
        db.put_cf(tokens, key, borsh::to_vec(&token).unwrap())
            .unwrap();
    }
    match Store::open(dir.path()) {
        Err(StoreError::Corrupt { what }) => assert!(what.contains("committed app hash"), "{what}"),
        other => panic!("expected a corrupt-store error, got {other:?}"),
    }
}

#[test]
fn a_corrupt_value_read_while_replaying_on_open_is_a_state_read_error() {
    let (dir, _chain) = committed_and_closed(3);
    let signer = {
        // As a crash leaves it: block 3 committed but not materialized, and
        // (a failing disk) its first signer's entry no longer decodes.
        let cfs = ledger::store::schema::ALL;
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cfs).unwrap();
        let metadata = db.cf_handle(ledger::store::schema::METADATA).unwrap();
        db.put_cf(
            metadata,
            ledger::store::schema::MATERIALIZED_KEY,
            2u64.to_be_bytes(),
        )
        .unwrap();
        let blocks = db.cf_handle(ledger::store::schema::BLOCKS).unwrap();
        let bytes = db
            .get_cf(blocks, ledger::store::schema::height_key(3))
            .unwrap()
            .unwrap();
        let signer = Block::from_bytes(&bytes).unwrap().txs[0].tx.signer;
        let (name, _, raw_key) =
            ledger::store::schema::state_location(&StateKey::Participant(signer));
        db.put_cf(db.cf_handle(name).unwrap(), raw_key, b"\xff garbage")
            .unwrap();
        signer
    };
    match Store::open(dir.path()) {
        Err(StoreError::StateReadFailed { height, source }) => {
            assert_eq!(height, 3);
            assert_eq!(source.key, StateKey::Participant(signer));
        }
        other => panic!("expected a state read error for block 3, got {other:?}"),
    }
}

#[test]
fn queries_answer_from_the_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let first = chain.produce_and_commit(&mut store);
    for _ in 0..4 {
        chain.produce_and_commit(&mut store);
    }
    let world = &chain.world;

    // Participant and credit line.
    let core = world.key("core");
    assert_eq!(store.participant(&core).unwrap().unwrap().name, "core");
    assert_eq!(
        store.credit_line(&core).unwrap().unwrap().outstanding,
        Amount(1_000_000_000)
    );

    // Location of a transaction.
    let confirm_hash = first.txs[1].hash();
    assert_eq!(
        store.tx_location(&confirm_hash).unwrap(),
        Some(TxLocation {
            height: 1,
            index: 1
        })
    );

    // Holdings: exactly the unspent tokens of each holder.
    for name in ["supplier1", "supplier2", "supplier3", "bank"] {
        let mut from_store: Vec<TokenId> = store
            .tokens_by_holder(&world.key(name))
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        let mut expected: Vec<TokenId> = world
            .state
            .entries()
            .filter_map(|(_, value)| match value {
                StateValue::Token(token)
                    if token.holder == world.key(name) && token.is_unspent() =>
                {
                    Some(token.id)
                }
                _ => None,
            })
            .collect();
        from_store.sort();
        expected.sort();
        assert_eq!(from_store, expected, "holdings of {name}");
    }

    // Lineage: from the root, every token is a descendant; from a leaf, the
    // ancestors lead to the root.
    let root = TokenId::derive(&confirm_hash, 0);
    let lineage = store.lineage(&root).unwrap().unwrap();
    let token_count = world
        .state
        .entries()
        .filter(|(key, _)| matches!(key, StateKey::Token(_)))
        .count();
    assert_eq!(lineage.descendants.len() + 1, token_count);
    let leaf = lineage.descendants.last().unwrap().clone();
    let leaf_lineage = store.lineage(&leaf.id).unwrap().unwrap();
    assert_eq!(leaf_lineage.ancestors.last().unwrap().id, root);
    for pair in std::iter::once(&leaf)
        .chain(&leaf_lineage.ancestors)
        .collect::<Vec<_>>()
        .windows(2)
    {
        assert_eq!(pair[0].parent_id, Some(pair[1].id));
    }
    assert!(
        store
            .lineage(&TokenId(Hash::digest(b"none")))
            .unwrap()
            .is_none()
    );

    // A proof of one token verifies against the app hash, and only for its value.
    let app_hash = store.meta().unwrap().app_hash;
    let key = StateKey::Token(leaf.id);
    let (value, proof) = store.prove(&key).unwrap().unwrap();
    assert!(proof.verify_value(&app_hash, &value));
    assert!(proof.verify(&app_hash, &value.tree_key(), &value.value_hash()));
    let mut forged = leaf.clone();
    forged.amount = Amount(forged.amount.0 + 1);
    assert!(!proof.verify_value(&app_hash, &StateValue::Token(forged)));
    // A token's height is part of its place: the same token claimed at
    // another height does not verify either.
    let mut moved = leaf.clone();
    moved.created_at += 1;
    assert!(!proof.verify_value(&app_hash, &StateValue::Token(moved)));
}

#[test]
fn stored_bytes_hash_to_the_same_values_as_the_state_tree_expects() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    for _ in 0..3 {
        chain.produce_and_commit(&mut store);
    }
    // Reopening rebuilds the tree from raw bytes; matching the app hash
    // proves `schema::value_hash` equals `StateValue::value_hash`.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.meta().unwrap().app_hash, chain.tree.root_hash());
}

const CRASH_DIR: &str = "SCF_LEDGER_CRASH_DIR";

/// Entry point of the child process in the kill -9 test; does nothing when
/// run as an ordinary test.
#[test]
fn crash_child_process_entry_point() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let mut chain = Chain::new();
    let mut store = chain.open_store(std::path::Path::new(&dir));
    for _ in 0..2_000 {
        let block = chain.produce_and_commit(&mut store);
        println!("committed {}", block.header.height);
    }
}

#[test]
fn kill_dash_nine_while_committing_leaves_exactly_a_committed_prefix() {
    let mut replayed = 0;
    for (round, kill_after) in [7u64, 23, 41].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_process_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let mut last_reported = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(height) = line.strip_prefix("committed ") {
                last_reported = height.trim().parse().unwrap();
                if last_reported >= kill_after {
                    break;
                }
            }
        }
        // SIGKILL while it is in the middle of the next commits.
        child.kill().expect("kill child");
        child.wait().unwrap();
        assert!(
            last_reported >= kill_after,
            "round {round}: child stopped early at {last_reported}"
        );

        let store = Store::open(dir.path()).expect("reopen after kill -9");
        replayed += store.replayed_on_open();
        let height = store.meta().unwrap().height;
        assert!(
            height >= last_reported,
            "round {round}: lost committed block {last_reported}, store at {height}"
        );
        // The store is exactly the deterministic history up to its height.
        let mut truth = Chain::new();
        let mut last = None;
        for _ in 0..height {
            last = Some(truth.produce().0);
        }
        let last = last.unwrap();
        assert_eq!(
            store.meta().unwrap().app_hash,
            last.header.app_hash,
            "round {round}"
        );
        assert_eq!(
            store.meta().unwrap().block_hash,
            last.hash(),
            "round {round}"
        );
        assert_same_state(&store, &truth.world);
        assert!(store.block(height + 1).unwrap().is_none());
        // The indexes, which blocks get when they are materialized, are
        // whole too: replayed on open for what the kill left out.
        assert_same_indexes(&store, &truth.world, &last, round);
    }
    // Materialized values reach the disk only when memtables flush: a kill
    // leaves the newest blocks to be executed again on open, which is what
    // the checks above covered.
    assert!(replayed > 0, "no kill left a block to replay");
}

/// The transaction index knows every transaction of `last`, and the holder
/// index gives each holder exactly its unspent tokens.
fn assert_same_indexes(store: &Store, world: &World, last: &Block, round: usize) {
    for (index, tx) in last.txs.iter().enumerate() {
        assert_eq!(
            store.tx_location(&tx.hash()).unwrap(),
            Some(TxLocation {
                height: last.header.height,
                index: index as u32
            }),
            "round {round}: transaction {index} of the last block"
        );
    }
    let mut expected: std::collections::BTreeMap<crypto::PublicKey, Vec<ledger::TokenId>> =
        Default::default();
    for (_, value) in world.state.entries() {
        if let ledger::StateValue::Token(token) = value
            && token.is_unspent()
        {
            expected.entry(token.holder).or_default().push(token.id);
        }
    }
    for (holder, mut tokens) in expected {
        tokens.sort();
        let held: Vec<ledger::TokenId> = store
            .tokens_by_holder(&holder)
            .unwrap()
            .iter()
            .map(|token| token.id)
            .collect();
        assert_eq!(held, tokens, "round {round}: holdings of {holder}");
    }
}

#[test]
fn genesis_is_written_once_and_refuses_another_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let meta = store
        .init_genesis(chain.world.chain, &chain.genesis)
        .unwrap()
        .clone();
    assert_eq!(meta.height, 0);
    let other = crypto::ChainId(Hash::digest(b"another chain"));
    assert!(matches!(
        store.init_genesis(other, &chain.genesis),
        Err(StoreError::OtherChain { .. })
    ));
    let participant = store
        .participant(&chain.world.key("operator"))
        .unwrap()
        .unwrap();
    assert!(participant.active);
    assert_eq!(
        chain.world.state.participant(&chain.world.key("operator")),
        Ok(Some(participant))
    );
    let _ = Block::from_bytes(&[]).unwrap_err();
}
