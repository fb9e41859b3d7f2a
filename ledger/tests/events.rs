//! Events derived from committed blocks in a real RocksDB store: one per
//! transaction kind (a settlement one per holder), pages that never skip or
//! repeat, the same events after a reopen, a backfill and a kill -9, and
//! retention's refusal of an expired cursor.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{DAY, World};
use crypto::{Hash, Keypair, PublicKey};
use ledger::store::{EventFilter, EventLog, EventsError, Store};
use ledger::{
    Amount, Block, BlockHeader, Cursor, Event, EventKind, GenesisState, Output, Role,
    SignedTransaction, StateTree, StateValue, Timestamp, TokenId, TokenStatus, TransferredOutput,
    TxBody, TxError, ValidatorChange, execute_block, tx_root,
};

/// Builds blocks of explicit transactions and commits them to a store.
struct Chain {
    world: World,
    tree: StateTree,
    parent: Hash,
    genesis: GenesisState,
}

impl Chain {
    /// Genesis: the test world's participants and four validators.
    fn new() -> Chain {
        let world = World::with_validators(&[1, 1, 1, 1]);
        let genesis = world.genesis.clone().expect("a genesis with validators");
        let mut tree = StateTree::new();
        for value in genesis.values() {
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
            .init_genesis_state(self.world.chain, &self.genesis)
            .expect("genesis");
        store
    }

    /// Executes `txs` as the next block (one second later) and commits it.
    fn commit(&mut self, store: &mut Store, txs: Vec<SignedTransaction>) -> Block {
        self.world.now = Timestamp(self.world.now.0 + 1_000);
        let context = self.world.context();
        let execution = execute_block(&context, &self.world.state, &txs).expect("valid block");
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
        let block = Block { header, txs };
        store
            .commit_execution(&block, b"certificate", execution)
            .expect("commit");
        block
    }

    fn sign(&self, signer: &str, body: TxBody) -> SignedTransaction {
        self.world.sign(signer, body)
    }

    /// The unspent tokens `name` holds, by id.
    fn held(&self, name: &str) -> Vec<ledger::Token> {
        let key = self.world.key(name);
        self.world
            .state
            .entries()
            .filter_map(|(_, value)| match value {
                StateValue::Token(token) if token.holder == key && token.is_unspent() => {
                    Some(token.clone())
                }
                _ => None,
            })
            .collect()
    }
}

fn all_events(log: &EventLog) -> Vec<Event> {
    let page = log
        .page(None, usize::MAX, usize::MAX, &EventFilter::default())
        .expect("page");
    page.events
}

fn derived(store: &Store) -> EventLog {
    let log = store.events();
    let height = store.height().expect("initialised");
    assert!(
        log.wait_for(height, Duration::from_secs(20))
            .expect("derive"),
        "events of block {height} not derived within 20 s"
    );
    log
}

fn output(chain: &Chain, to: &str, amount: u64) -> Output {
    Output {
        recipient: chain.world.key(to),
        amount: Amount(amount),
    }
}

/// Heights 1–7: every transaction kind once, ending with a settlement that
/// pays three holders. Returns the root.
fn whole_lifecycle(chain: &mut Chain, store: &mut Store) -> TokenId {
    let newcomer = Keypair::from_seed([200; 32]).public();
    let grant = chain.sign(
        "bank",
        TxBody::GrantCreditLine {
            core: chain.world.key("core"),
            limit: Amount(100_000_000),
        },
    );
    let register = chain.sign(
        "operator",
        TxBody::RegisterParticipant {
            key: newcomer,
            name: "newcomer".into(),
            roles: vec![Role::Supplier],
        },
    );
    chain.commit(store, vec![grant, register]);
    let confirm = chain.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: chain.world.key("supplier1"),
            amount: Amount(10_000_000),
            maturity: Timestamp(chain.world.now.0 + 90 * DAY),
            invoice_ref: Hash::digest(b"INV-1"),
        },
    );
    let root = TokenId::derive(&confirm.hash(), 0);
    chain.commit(store, vec![confirm]);
    let split = chain.sign(
        "supplier1",
        TxBody::Transfer {
            token: root,
            outputs: vec![
                output(chain, "supplier2", 4_000_000),
                output(chain, "supplier1", 6_000_000),
            ],
        },
    );
    let (to_supplier2, kept) = (
        TokenId::derive(&split.hash(), 0),
        TokenId::derive(&split.hash(), 1),
    );
    chain.commit(store, vec![split]);
    let request = chain.sign(
        "supplier2",
        TxBody::RequestFinancing {
            token: to_supplier2,
            bank: chain.world.key("bank"),
            rate_bps: 435,
        },
    );
    let split_again = chain.sign(
        "supplier1",
        TxBody::Transfer {
            token: kept,
            outputs: vec![
                output(chain, "supplier3", 1_000_000),
                output(chain, "supplier1", 5_000_000),
            ],
        },
    );
    let (to_supplier3, kept) = (
        TokenId::derive(&split_again.hash(), 0),
        TokenId::derive(&split_again.hash(), 1),
    );
    chain.commit(store, vec![request, split_again]);
    let accept = chain.sign(
        "bank",
        TxBody::AcceptFinancing {
            token: to_supplier2,
        },
    );
    let request2 = chain.sign(
        "supplier3",
        TxBody::RequestFinancing {
            token: to_supplier3,
            bank: chain.world.key("bank2"),
            rate_bps: 500,
        },
    );
    chain.commit(store, vec![accept, request2]);
    let reject = chain.sign(
        "bank2",
        TxBody::RejectFinancing {
            token: to_supplier3,
        },
    );
    let freeze = chain.sign(
        "auditor",
        TxBody::Freeze {
            token: kept,
            reason: "disputed delivery".into(),
        },
    );
    chain.commit(store, vec![reject, freeze]);
    let unfreeze = chain.sign("auditor", TxBody::Unfreeze { token: kept });
    let deactivate = chain.sign("operator", TxBody::DeactivateParticipant { key: newcomer });
    chain.commit(store, vec![unfreeze, deactivate]);
    chain.world.now = Timestamp(chain.world.now.0 + 91 * DAY);
    let settle = chain.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "WIRE-7781".into(),
        },
    );
    chain.commit(store, vec![settle]);
    keys_and_validators(chain, store);
    root
}

/// Heights 8–10: a key rotation, a lost-key recovery, and a validator-set
/// change proposed and approved until adopted.
fn keys_and_validators(chain: &mut Chain, store: &mut Store) {
    let fresh = common::key;
    let rotate = chain.sign(
        "supplier3",
        TxBody::RotateParticipantKey {
            new_key: fresh("fresh0"),
        },
    );
    let recover = chain.sign(
        "operator",
        TxBody::RequestKeyRecovery {
            participant: chain.world.key("supplier2"),
            new_key: fresh("fresh1"),
        },
    );
    chain.commit(store, vec![rotate, recover]);
    let approve_recovery = chain.sign(
        "auditor",
        TxBody::ApproveKeyRecovery {
            participant: chain.world.key("supplier2"),
            new_key: fresh("fresh1"),
        },
    );
    let propose = chain.sign(
        "v0",
        TxBody::ProposeValidatorChange {
            change: ValidatorChange::SetPower {
                consensus_key: chain.world.key("v1"),
                power: 2,
            },
            expires_at: chain.world.height + 100,
        },
    );
    let proposal = propose.hash();
    chain.commit(store, vec![approve_recovery, propose]);
    let approvals = ["v1", "v2"]
        .iter()
        .map(|name| chain.sign(name, TxBody::ApproveValidatorChange { proposal }))
        .collect();
    chain.commit(store, approvals);
}

#[test]
fn every_transaction_kind_yields_its_events_and_a_settlement_pays_each_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let root = whole_lifecycle(&mut chain, &mut store);
    let events = all_events(&derived(&store));
    let names: Vec<&str> = events.iter().map(|event| event.kind.name()).collect();
    assert_eq!(
        names,
        [
            "credit_line_granted",
            "participant_registered",
            "receivable_confirmed",
            "token_transferred",
            "financing_requested",
            "token_transferred",
            "financing_accepted",
            "financing_requested",
            "financing_rejected",
            "token_frozen",
            "token_unfrozen",
            "participant_deactivated",
            "receivable_settled",
            "receivable_settled",
            "receivable_settled",
            "participant_key_rotated",
            "key_recovery_requested",
            "participant_key_recovered",
            "validator_change_proposed",
            "validator_change_approved",
            "validator_change_approved",
            "validator_change_adopted",
        ]
    );
    // Every kind is covered.
    for name in EventKind::NAMES {
        assert!(names.contains(&name), "no {name} event");
    }
    // A rotation names the identity; an adoption its activation height.
    assert_eq!(
        events[15].kind,
        EventKind::ParticipantKeyRotated {
            participant: chain.world.key("supplier3"),
            new_key: common::key("fresh0"),
        }
    );
    let adopted = events.last().unwrap();
    assert!(matches!(
        adopted.kind,
        EventKind::ValidatorChangeAdopted { effective_from, epoch: 1, .. }
            if effective_from == adopted.cursor.height + 2
    ));
    assert_eq!(adopted.cursor.tx_index, 1, "the second approval adopted it");
    // Cursors strictly increase; each carries its block's time and tx.
    for pair in events.windows(2) {
        assert!(pair[0].cursor < pair[1].cursor);
    }
    for event in &events {
        let block = store.block(event.cursor.height).unwrap().unwrap();
        let tx = &block.txs[event.cursor.tx_index as usize];
        assert_eq!(event.time, block.header.time);
        assert_eq!(event.tx_hash, tx.hash());
        assert_eq!(event.signer, tx.tx.signer);
    }
    let key = |name: &str| chain.world.key(name);
    // The first split: input, holder and outputs.
    let split = &events[3];
    assert_eq!(
        split.kind,
        EventKind::TokenTransferred {
            input: root,
            root,
            holder: key("supplier1"),
            amount: Amount(10_000_000),
            outputs: vec![
                TransferredOutput {
                    token: TokenId::derive(&split.tx_hash, 0),
                    holder: key("supplier2"),
                    amount: Amount(4_000_000),
                },
                TransferredOutput {
                    token: TokenId::derive(&split.tx_hash, 1),
                    holder: key("supplier1"),
                    amount: Amount(6_000_000),
                },
            ],
        }
    );
    // Financing: 4,000,000 at 4.35 % over the days left.
    let EventKind::FinancingAccepted {
        seller,
        bank,
        amount,
        price,
        rate_bps,
        days,
        ..
    } = &events[6].kind
    else {
        panic!("not an acceptance: {:?}", events[6]);
    };
    assert_eq!((*seller, *bank), (key("supplier2"), key("bank")));
    assert_eq!((*amount, *rate_bps, *days), (Amount(4_000_000), 435, 90));
    assert_eq!(*price, Amount(4_000_000 - 4_000_000 * 435 * 90 / 3_600_000));
    // The settlement: one payout per holder of an unspent token, in key
    // order, adding up to the receivable.
    let mut expected = vec![
        (key("bank"), Amount(4_000_000)),
        (key("supplier1"), Amount(5_000_000)),
        (key("supplier3"), Amount(1_000_000)),
    ];
    expected.sort();
    let payouts: Vec<(PublicKey, Amount)> = events[12..15]
        .iter()
        .map(|event| match &event.kind {
            EventKind::ReceivableSettled {
                root: paid_root,
                issuer,
                holder,
                amount,
                tokens,
                payment_ref,
            } => {
                assert_eq!(
                    (*paid_root, *issuer, *tokens, payment_ref.as_str()),
                    (root, key("core"), 1, "WIRE-7781")
                );
                (*holder, *amount)
            }
            other => panic!("not a payout: {other:?}"),
        })
        .collect();
    assert_eq!(payouts, expected);
    assert_eq!(
        events[12..15]
            .iter()
            .map(|event| event.cursor.event_index)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn a_holder_with_several_tokens_gets_one_payout_of_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let grant = chain.sign(
        "bank",
        TxBody::GrantCreditLine {
            core: chain.world.key("core"),
            limit: Amount(100_000_000),
        },
    );
    chain.commit(&mut store, vec![grant]);
    let confirm = chain.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: chain.world.key("supplier1"),
            amount: Amount(900),
            maturity: Timestamp(chain.world.now.0 + DAY),
            invoice_ref: Hash::digest(b"INV-9"),
        },
    );
    let root = TokenId::derive(&confirm.hash(), 0);
    chain.commit(&mut store, vec![confirm]);
    let outputs = (0..9)
        .map(|index| output(&chain, ["supplier2", "supplier3"][index % 2], 100))
        .collect();
    let split = chain.sign(
        "supplier1",
        TxBody::Transfer {
            token: root,
            outputs,
        },
    );
    chain.commit(&mut store, vec![split]);
    chain.world.now = Timestamp(chain.world.now.0 + 2 * DAY);
    let settle = chain.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY".into(),
        },
    );
    chain.commit(&mut store, vec![settle]);
    let events = all_events(&derived(&store));
    let mut expected = vec![
        (chain.world.key("supplier2"), 500, 5),
        (chain.world.key("supplier3"), 400, 4),
    ];
    expected.sort();
    let payouts: Vec<(PublicKey, u64, u64)> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ReceivableSettled {
                holder,
                amount,
                tokens,
                ..
            } => Some((*holder, amount.0, *tokens)),
            _ => None,
        })
        .collect();
    assert_eq!(payouts, expected);
}

#[test]
fn a_settlement_refused_for_a_frozen_token_commits_nothing_and_yields_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    let grant = chain.sign(
        "bank",
        TxBody::GrantCreditLine {
            core: chain.world.key("core"),
            limit: Amount(100_000_000),
        },
    );
    let confirm = chain.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: chain.world.key("supplier1"),
            amount: Amount(1_000),
            maturity: Timestamp(chain.world.now.0 + DAY),
            invoice_ref: Hash::digest(b"INV-3"),
        },
    );
    let root = TokenId::derive(&confirm.hash(), 0);
    chain.commit(&mut store, vec![grant, confirm]);
    let freeze = chain.sign(
        "auditor",
        TxBody::Freeze {
            token: root,
            reason: "dispute".into(),
        },
    );
    chain.commit(&mut store, vec![freeze]);
    chain.world.now = Timestamp(chain.world.now.0 + 2 * DAY);
    let settle = chain.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY".into(),
        },
    );
    let context = chain.world.context();
    match execute_block(&context, &chain.world.state, &[settle]) {
        Err(ledger::BlockError::InvalidTransaction { error, .. }) => assert!(
            matches!(
                *error,
                TxError::DisputedTokens { root: disputed, frozen: 1 } if disputed == root
            ),
            "{error:?}"
        ),
        other => panic!("a settlement around a frozen token was not refused: {other:?}"),
    }
    let names: Vec<&str> = all_events(&derived(&store))
        .iter()
        .map(|event| event.kind.name())
        .collect();
    assert_eq!(
        names,
        [
            "credit_line_granted",
            "receivable_confirmed",
            "token_frozen"
        ]
    );
}

/// A deterministic history of `blocks` blocks with many events per block:
/// a credit line and a receivable, then each supplier splits a token of its
/// own into three every block.
fn busy_history(chain: &mut Chain, store: &mut Store, blocks: u64) {
    busy_start(chain, store);
    while chain.world.height <= blocks {
        busy_block(chain, store);
    }
}

fn busy_start(chain: &mut Chain, store: &mut Store) {
    let grant = chain.sign(
        "bank",
        TxBody::GrantCreditLine {
            core: chain.world.key("core"),
            limit: Amount(u64::MAX / 4),
        },
    );
    chain.commit(store, vec![grant]);
    let confirm = chain.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: chain.world.key("supplier1"),
            amount: Amount(1_000_000_000),
            maturity: Timestamp(chain.world.now.0 + 365 * DAY),
            invoice_ref: Hash::digest(b"INV-BUSY"),
        },
    );
    chain.commit(store, vec![confirm]);
}

fn busy_block(chain: &mut Chain, store: &mut Store) {
    let suppliers = ["supplier1", "supplier2", "supplier3"];
    {
        let mut txs = Vec::new();
        for (index, name) in suppliers.iter().enumerate() {
            let mut held = chain.held(name);
            held.sort_by_key(|token| (std::cmp::Reverse(token.amount), token.id));
            if let Some(token) = held
                .into_iter()
                .find(|token| token.amount.0 >= 3 && matches!(token.status, TokenStatus::Active))
            {
                let part = token.amount.0 / 3;
                let next = suppliers[(index + 1) % suppliers.len()];
                txs.push(chain.sign(
                    name,
                    TxBody::Transfer {
                        token: token.id,
                        outputs: vec![
                            output(chain, next, part),
                            output(chain, name, part),
                            output(chain, name, token.amount.0 - 2 * part),
                        ],
                    },
                ));
            }
        }
        chain.commit(store, txs);
    }
}

#[test]
fn pages_of_any_size_and_filter_never_skip_or_repeat_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    busy_history(&mut chain, &mut store, 30);
    let log = derived(&store);
    let everything = all_events(&log);
    assert!(everything.len() > 60, "{} events", everything.len());
    let supplier3 = chain.world.key("supplier3");
    let filters = [
        EventFilter::default(),
        EventFilter {
            kinds: Some(vec!["receivable_confirmed", "credit_line_granted"]),
            party: None,
        },
        EventFilter {
            kinds: None,
            party: Some(supplier3),
        },
    ];
    for filter in &filters {
        let expected: Vec<&Event> = everything
            .iter()
            .filter(|event| {
                filter
                    .kinds
                    .as_ref()
                    .is_none_or(|kinds| kinds.contains(&event.kind.name()))
                    && filter.party.is_none_or(|party| event.involves(&party))
            })
            .collect();
        assert!(!expected.is_empty());
        // Every page size and scan bound from 1 to 7: walking the feed by
        // `next` gives exactly the filtered events, in order.
        for limit in 1..=7 {
            for max_scan in [1, 2, 5, 7, usize::MAX] {
                let mut got = Vec::new();
                let mut after = None;
                let mut ended = false;
                for _ in 0..10_000 {
                    let page = log.page(after, limit, max_scan, filter).expect("page");
                    assert!(page.events.len() <= limit);
                    assert!(page.events.len() <= max_scan);
                    if let Some(last) = page.events.last() {
                        assert!(last.cursor <= page.next);
                    }
                    // A page that says more may follow has moved on.
                    assert!(page.at_end || Some(page.next) != after);
                    got.extend(page.events);
                    after = Some(page.next);
                    if page.at_end {
                        ended = true;
                        break;
                    }
                }
                assert!(ended, "the walk did not reach the end");
                // At the end, nothing more.
                let last = log.page(after, limit, max_scan, filter).expect("page");
                assert!(last.events.is_empty() && last.at_end && Some(last.next) == after);
                let got: Vec<&Event> = got.iter().collect();
                assert_eq!(got, expected, "limit {limit}, max_scan {max_scan}");
            }
        }
    }
}

#[test]
fn events_are_the_same_after_reopening_and_after_a_backfill_of_an_old_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let before = {
        let mut store = chain.open_store(dir.path());
        whole_lifecycle(&mut chain, &mut store);
        all_events(&derived(&store))
    };
    {
        let store = chain.open_store(dir.path());
        assert_eq!(all_events(&derived(&store)), before);
    }
    // As a store written before events existed: no events, no record of
    // them.
    {
        let mut db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            dir.path(),
            ledger::store::schema::ALL,
        )
        .expect("open raw");
        let metadata = db.cf_handle("metadata").unwrap();
        db.delete_cf(metadata, b"events_derived").unwrap();
        db.drop_cf("events").unwrap();
    }
    let store = chain.open_store(dir.path());
    assert_eq!(all_events(&derived(&store)), before);
}

#[test]
fn an_expired_cursor_is_refused_once_retention_pruned_its_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let mut store = chain.open_store(dir.path());
    store.events().set_retention(Some(5));
    busy_history(&mut chain, &mut store, 20);
    let log = derived(&store);
    let height = store.height().unwrap();
    assert_eq!(log.retained_from(), height + 1 - 5);
    let kept = all_events(&log);
    assert_eq!(kept[0].cursor.height, height + 1 - 5);
    let old = Cursor {
        height: 3,
        tx_index: 0,
        event_index: 0,
    };
    match log.page(Some(old), 10, 10, &EventFilter::default()) {
        Err(EventsError::CursorExpired {
            cursor,
            retained_from,
        }) => assert_eq!((cursor, retained_from), (old, height + 1 - 5)),
        other => panic!("an expired cursor was answered: {other:?}"),
    }
    // A cursor inside what is kept still pages on, and the bound survives
    // a reopen.
    let page = log
        .page(Some(kept[0].cursor), 10, 10, &EventFilter::default())
        .unwrap();
    assert_eq!(page.events[0], kept[1]);
    drop(store);
    let store = chain.open_store(dir.path());
    assert_eq!(store.events().retained_from(), height + 1 - 5);
    assert!(matches!(
        store
            .events()
            .page(Some(old), 10, 10, &EventFilter::default()),
        Err(EventsError::CursorExpired { .. })
    ));
}

const CRASH_DIR: &str = "SCF_EVENTS_CRASH_DIR";

/// Entry point of the child process in the kill -9 test; does nothing when
/// run as an ordinary test.
#[test]
fn events_crash_child_process_entry_point() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let mut chain = Chain::new();
    let mut store = chain.open_store(std::path::Path::new(&dir));
    busy_start(&mut chain, &mut store);
    for _ in 0..10_000 {
        busy_block(&mut chain, &mut store);
        println!("committed {}", chain.world.height - 1);
    }
}

#[test]
fn kill_dash_nine_while_committing_then_reopening_gives_the_events_of_a_node_that_never_crashed() {
    for kill_after in [9u64, 27] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "events_crash_child_process_entry_point",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(height) = line.strip_prefix("committed ")
                && height.trim().parse::<u64>().unwrap() >= kill_after
            {
                break;
            }
        }
        child.kill().expect("kill child");
        child.wait().unwrap();

        let crashed = Store::open(dir.path()).expect("reopen after kill -9");
        let height = crashed.height().unwrap();
        assert!(height >= kill_after);
        let crashed_events = all_events(&derived(&crashed));
        // The same history in a store that never crashed.
        let clean_dir = tempfile::tempdir().unwrap();
        let mut chain = Chain::new();
        let mut clean = chain.open_store(clean_dir.path());
        busy_history(&mut chain, &mut clean, height);
        assert_eq!(clean.height(), Some(height));
        let clean_events = all_events(&derived(&clean));
        assert!(!clean_events.is_empty());
        assert_eq!(crashed_events, clean_events, "killed after {kill_after}");
    }
}
