//! The mempool's entry checks and its fairness policy: limits per signer,
//! expiry behind a gap, eviction order, and a property test that no
//! sequence of submissions by a few signers keeps another signer's next
//! transaction out.

use std::cell::RefCell;

use super::*;
use crypto::{Hash, Keypair};
use ledger::{Amount, BlockHeader, Output, Role, Timestamp, TokenId, Transaction, TxBody};

fn chain() -> ChainId {
    ChainId(Hash::digest(b"mempool test chain"))
}

fn key(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

fn sign(key: &Keypair, nonce: u64, body: TxBody) -> SignedTransaction {
    Transaction {
        chain_id: chain(),
        signer: key.public(),
        nonce,
        body,
    }
    .sign(key)
}

/// A small transaction (about 150 bytes) any auditor may sign.
fn tx(key: &Keypair, nonce: u64) -> SignedTransaction {
    sign(
        key,
        nonce,
        TxBody::Unfreeze {
            token: TokenId(Hash::digest(&nonce.to_le_bytes())),
        },
    )
}

/// A registration by an operator, padded with repeated roles to about
/// `size` bytes (the roles list is the one field without a length rule
/// of its own; the encoded size is bounded by `MAX_TX_BYTES`).
fn big_tx(key: &Keypair, nonce: u64, size: usize) -> SignedTransaction {
    sign(
        key,
        nonce,
        TxBody::RegisterParticipant {
            key: PublicKey([nonce as u8; 32]),
            name: format!("padding-{nonce}"),
            roles: vec![Role::Supplier; size.saturating_sub(200).max(1)],
        },
    )
}

fn size_of(tx: &SignedTransaction) -> usize {
    borsh::object_length(tx).unwrap()
}

/// The committed state the pool reads: participants by key.
struct World {
    participants: RefCell<BTreeMap<PublicKey, Participant>>,
    fail_reads: std::cell::Cell<bool>,
}

impl World {
    fn new(keys: &[(&Keypair, Role)]) -> World {
        let participants = keys
            .iter()
            .map(|(key, role)| {
                (
                    key.public(),
                    Participant::new(key.public(), "someone", [*role]),
                )
            })
            .collect();
        World {
            participants: RefCell::new(participants),
            fail_reads: std::cell::Cell::new(false),
        }
    }

    fn lookup(&self, key: &PublicKey) -> Result<Option<Participant>, StateError> {
        if self.fail_reads.get() {
            return Err(StateError {
                key: ledger::StateKey::Participant(*key),
                reason: "disk on fire".into(),
            });
        }
        Ok(self.participants.borrow().get(key).cloned())
    }

    fn next_nonce(&self, key: &PublicKey) -> u64 {
        self.participants.borrow()[key].next_nonce
    }

    fn admit(&self, pool: &Mempool, txs: Vec<SignedTransaction>) -> AdmitResults {
        let screened = pool.screen(txs);
        pool.insert_screened(screened, &|key| self.lookup(key), &|_, _| Ok(()))
    }

    fn admit_one(&self, pool: &Mempool, tx: SignedTransaction) -> Result<TxHash, MempoolError> {
        self.admit(pool, vec![tx]).pop().unwrap()
    }

    /// Commits a block at `height` holding `txs` (already known valid):
    /// advances their signers' nonces, then tells the pool.
    fn commit(&self, pool: &Mempool, height: u64, txs: Vec<SignedTransaction>) {
        for tx in &txs {
            let mut participants = self.participants.borrow_mut();
            let signer = participants.get_mut(&tx.tx.signer).unwrap();
            assert_eq!(signer.next_nonce, tx.tx.nonce, "a valid block");
            signer.next_nonce += 1;
        }
        let hashes: Vec<TxHash> = txs.iter().map(SignedTransaction::hash).collect();
        let block = Block {
            header: BlockHeader {
                chain_id: chain(),
                height,
                time: Timestamp(height),
                parent_hash: Hash::ZERO,
                proposer: PublicKey([0; 32]),
                tx_root: Hash::ZERO,
                app_hash: Hash::ZERO,
            },
            txs,
        };
        pool.after_commit(&block, &hashes, &|key| self.lookup(key))
            .expect("reads succeed");
        pool.check_invariants();
    }

    /// Commits what a proposer would take now: the candidates, each if its
    /// nonce is its signer's next.
    fn commit_candidates(&self, pool: &Mempool, height: u64, max_txs: usize) -> usize {
        let mut nonces: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut block = Vec::new();
        for pending in pool.candidates(max_txs, usize::MAX) {
            let signer = pending.tx.tx.signer;
            let next = nonces
                .entry(signer)
                .or_insert_with(|| self.next_nonce(&signer));
            if pending.tx.tx.nonce == *next {
                *next += 1;
                block.push((*pending.tx).clone());
            }
        }
        let count = block.len();
        self.commit(pool, height, block);
        count
    }
}

fn small_pool(max_txs: usize, max_bytes: usize) -> MempoolConfig {
    MempoolConfig {
        max_txs,
        max_bytes,
        max_per_sender: max_txs,
        max_bytes_per_sender: max_bytes,
        max_nonce_gap: 1_000,
        gap_expiry_blocks: 20,
    }
}

fn registered(key: &Keypair, next_nonce: u64) -> impl Fn(&PublicKey) -> Option<Participant> {
    let public = key.public();
    move |asked: &PublicKey| {
        (*asked == public).then(|| Participant {
            key: public,
            signing_key: public,
            name: "auditor".into(),
            roles: vec![Role::Auditor],
            active: true,
            next_nonce,
        })
    }
}

// ---- entry checks -------------------------------------------------------

#[test]
fn admits_once_and_refuses_a_duplicate() {
    let key = key(1);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    let first = pool.admit(vec![tx(&key, 0)], registered(&key, 0));
    assert!(first[0].is_ok());
    let again = pool.admit(vec![tx(&key, 0)], registered(&key, 0));
    assert!(matches!(again[0], Err(MempoolError::Duplicate { .. })));
    assert_eq!(pool.size().0, 1);
}

#[test]
fn refuses_wrong_chain_bad_signature_unknown_signer_and_used_nonce() {
    let key = key(2);
    let stranger = self::key(3);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    let mut other_chain = tx(&key, 0);
    other_chain.tx.chain_id = ChainId(Hash::digest(b"other"));
    let mut forged = tx(&key, 1);
    forged.tx.nonce = 2;
    let results = pool.admit(
        vec![other_chain, forged, tx(&stranger, 0), tx(&key, 4)],
        registered(&key, 5),
    );
    assert!(matches!(
        results[0],
        Err(MempoolError::Rule(TxError::WrongChain { .. }))
    ));
    assert!(matches!(
        results[1],
        Err(MempoolError::Rule(TxError::BadSignature { .. }))
    ));
    assert!(matches!(
        results[2],
        Err(MempoolError::Rule(TxError::UnknownParticipant { .. }))
    ));
    assert!(matches!(
        results[3],
        Err(MempoolError::Rule(TxError::Replay {
            expected: 5,
            got: 4,
            ..
        }))
    ));
    assert_eq!(pool.size().0, 0);
}

#[test]
fn stateless_rules_and_the_signer_role_are_checked_for_gapped_transactions() {
    let supplier = key(10);
    let auditor = key(11);
    let world = World::new(&[(&supplier, Role::Supplier), (&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    let transfer = |nonce: u64, amounts: &[u64]| {
        sign(
            &supplier,
            nonce,
            TxBody::Transfer {
                token: TokenId(Hash([1; 32])),
                outputs: amounts
                    .iter()
                    .map(|amount| Output {
                        recipient: auditor.public(),
                        amount: Amount(*amount),
                    })
                    .collect(),
            },
        )
    };
    // Nonces far past the next one (0): none of these is dry-run.
    let rows: Vec<(&str, SignedTransaction, TxError)> = vec![
        (
            "65 outputs",
            transfer(7, &[1; 65]),
            TxError::OutputCount { got: 65, limit: 64 },
        ),
        ("a zero output", transfer(8, &[3, 0]), TxError::ZeroAmount),
        (
            "outputs overflowing",
            transfer(9, &[u64::MAX, 1]),
            TxError::AmountOverflow,
        ),
        (
            "a long freeze reason",
            sign(
                &auditor,
                5,
                TxBody::Freeze {
                    token: TokenId(Hash([1; 32])),
                    reason: "r".repeat(300),
                },
            ),
            TxError::TextTooLong {
                what: "freeze reason",
                len: 300,
                limit: 256,
            },
        ),
        (
            "a blank payment reference",
            sign(
                &auditor,
                6,
                TxBody::Settle {
                    root: TokenId(Hash([1; 32])),
                    payment_ref: " ".into(),
                },
            ),
            TxError::EmptyText {
                what: "payment reference",
            },
        ),
        (
            "a role the signer lacks",
            sign(
                &auditor,
                7,
                TxBody::GrantCreditLine {
                    core: supplier.public(),
                    limit: Amount(5),
                },
            ),
            TxError::MissingRole {
                key: auditor.public(),
                needed: Role::Bank,
            },
        ),
    ];
    for (what, tx, expected) in rows {
        assert_eq!(
            world.admit_one(&pool, tx),
            Err(MempoolError::Rule(expected)),
            "{what}"
        );
    }
    assert_eq!(pool.size(), (0, 0));
    // The same gapped transfer, well formed, waits.
    assert!(world.admit_one(&pool, transfer(7, &[1, 2])).is_ok());
}

#[test]
fn a_state_read_failure_is_a_temporary_refusal_and_drops_nothing() {
    let auditor = key(12);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    assert!(world.admit_one(&pool, tx(&auditor, 0)).is_ok());
    world.fail_reads.set(true);
    let refused = world.admit_one(&pool, tx(&auditor, 1)).unwrap_err();
    assert!(matches!(refused, MempoolError::StateUnavailable { .. }));
    assert!(refused.is_temporary());
    assert_eq!(refused.code(), "state_unavailable");

    let block = Block {
        header: BlockHeader {
            chain_id: chain(),
            height: 1,
            time: Timestamp(1),
            parent_hash: Hash::ZERO,
            proposer: PublicKey([0; 32]),
            tx_root: Hash::ZERO,
            app_hash: Hash::ZERO,
        },
        txs: vec![tx(&auditor, 0)],
    };
    assert!(
        pool.after_commit(&block, &[], &|key| world.lookup(key))
            .is_err()
    );
    assert_eq!(pool.size().0, 1, "nothing is judged on a failed read");

    // A dry run that cannot read the state is no verdict either.
    world.fail_reads.set(false);
    let screened = pool.screen(vec![tx(&key(13), 0)]);
    let other = key(13);
    world.participants.borrow_mut().insert(
        other.public(),
        Participant::new(other.public(), "x", [Role::Auditor]),
    );
    let results = pool.insert_screened(screened, &|key| world.lookup(key), &|_, _| {
        Err(ExecError::State(StateError {
            key: ledger::StateKey::Participant(other.public()),
            reason: "disk on fire".into(),
        }))
    });
    assert!(matches!(
        results[0],
        Err(MempoolError::StateUnavailable { .. })
    ));
}

// ---- limits per signer ----------------------------------------------------

#[test]
fn a_signer_is_held_to_its_byte_limit() {
    let operator = key(20);
    let world = World::new(&[(&operator, Role::Operator)]);
    let one = size_of(&big_tx(&operator, 0, 4_000));
    let config = MempoolConfig {
        max_bytes_per_sender: 3 * one + one / 2,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    for nonce in 0..3 {
        assert!(
            world
                .admit_one(&pool, big_tx(&operator, nonce, 4_000))
                .is_ok()
        );
    }
    let refused = world
        .admit_one(&pool, big_tx(&operator, 3, 4_000))
        .unwrap_err();
    assert_eq!(
        refused,
        MempoolError::SenderQueueFull {
            signer: operator.public(),
            pending: 3,
            bytes: 3 * one,
            max_txs: config.max_per_sender,
            max_bytes: config.max_bytes_per_sender,
        }
    );
    assert!(refused.is_temporary());
    // Small ones still fit in what is left.
    assert!(world.admit_one(&pool, big_tx(&operator, 3, 300)).is_ok());
    assert_eq!(pool.sender_usage(&operator.public()).0, 4);
}

#[test]
fn a_signer_is_held_to_its_count_limit() {
    let auditor = key(21);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let config = MempoolConfig {
        max_per_sender: 5,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    let results = world.admit(&pool, (0..7).map(|nonce| tx(&auditor, nonce)).collect());
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 5);
    assert!(matches!(
        results[5],
        Err(MempoolError::SenderQueueFull { pending: 5, .. })
    ));
}

#[test]
fn a_signers_next_transaction_displaces_its_own_farthest_gapped_ones() {
    let auditor = key(22);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let config = MempoolConfig {
        max_per_sender: 4,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    for nonce in [1, 2, 5, 9] {
        assert!(world.admit_one(&pool, tx(&auditor, nonce)).is_ok());
    }
    // Another gapped one does not get in...
    assert!(matches!(
        world.admit_one(&pool, tx(&auditor, 3)),
        Err(MempoolError::SenderQueueFull { .. })
    ));
    // ...the next one does, in place of nonce 9.
    let next = world.admit_one(&pool, tx(&auditor, 0)).unwrap();
    assert!(pool.contains(&next));
    assert!(!pool.contains(&tx(&auditor, 9).hash()));
    assert!(pool.contains(&tx(&auditor, 5).hash()));
    assert_eq!(pool.counts().evicted, 1);
    let ready: Vec<u64> = pool
        .candidates(100, usize::MAX)
        .iter()
        .map(|pending| pending.tx.tx.nonce)
        .collect();
    assert_eq!(ready, vec![0, 1, 2], "5 still waits for 3 and 4");
}

#[test]
fn a_nonce_too_far_ahead_is_refused() {
    let auditor = key(23);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    assert!(matches!(
        world.admit_one(&pool, tx(&auditor, 513)),
        Err(MempoolError::NonceTooFar { max_gap: 512, .. })
    ));
    assert!(world.admit_one(&pool, tx(&auditor, 512)).is_ok());
}

// ---- expiry ---------------------------------------------------------------

#[test]
fn gapped_transactions_expire_after_the_configured_blocks() {
    let waiting = key(30);
    let filled = key(31);
    let world = World::new(&[(&waiting, Role::Auditor), (&filled, Role::Auditor)]);
    let config = MempoolConfig {
        gap_expiry_blocks: 3,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    pool.observe_height(10);
    let stuck = world.admit_one(&pool, tx(&waiting, 2)).unwrap();
    assert!(world.admit_one(&pool, tx(&filled, 1)).is_ok());
    world.commit(&pool, 11, vec![]);
    // The gap of `filled` is filled before expiry: its clock stops.
    assert!(world.admit_one(&pool, tx(&filled, 0)).is_ok());
    world.commit(&pool, 12, vec![]);
    assert!(pool.contains(&stuck), "two blocks: still waiting");
    world.commit(&pool, 13, vec![]);
    assert!(!pool.contains(&stuck), "three blocks: expired");
    assert_eq!(pool.counts().expired, 1);
    assert_eq!(
        pool.take_dropped(),
        vec![(
            stuck,
            TxError::NonceTooHigh {
                signer: waiting.public(),
                expected: 0,
                got: 2
            }
        )]
    );
    for height in 14..40 {
        world.commit(&pool, height, vec![]);
    }
    assert_eq!(pool.size().0, 2, "ready transactions never expire");
}

#[test]
fn a_transaction_put_behind_a_gap_by_a_refusal_starts_its_clock_then() {
    let auditor = key(32);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let config = MempoolConfig {
        gap_expiry_blocks: 2,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    let hashes: Vec<TxHash> = world
        .admit(&pool, (0..3).map(|nonce| tx(&auditor, nonce)).collect())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    world.commit(&pool, 1, vec![]);
    world.commit(&pool, 2, vec![]);
    // The proposer finds nonce 0 invalid: 1 and 2 now wait for a new 0.
    let error = TxError::UnknownToken {
        token: TokenId(Hash::ZERO),
    };
    pool.reject(&[(hashes[0], error)]);
    assert!(pool.candidates(10, usize::MAX).is_empty());
    world.commit(&pool, 3, vec![]);
    assert_eq!(pool.size().0, 2);
    world.commit(&pool, 4, vec![]);
    assert_eq!(pool.size().0, 0, "two blocks after the refusal");
}

// ---- after a commit -------------------------------------------------------

#[test]
fn after_commit_drops_included_and_stale_nonces() {
    let auditor = key(40);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    let results = world.admit(&pool, (0..3).map(|nonce| tx(&auditor, nonce)).collect());
    assert!(results.iter().all(Result::is_ok));
    // Nonces 0 and 1 are used now (1 by a transaction this pool never saw).
    let other_one = sign(
        &auditor,
        1,
        TxBody::Unfreeze {
            token: TokenId(Hash([9; 32])),
        },
    );
    world.commit(&pool, 1, vec![tx(&auditor, 0), other_one]);
    assert_eq!(pool.size().0, 1);
    let dropped = pool.take_dropped();
    assert_eq!(dropped.len(), 1);
    assert!(matches!(dropped[0].1, TxError::Replay { got: 1, .. }));
}

#[test]
fn a_nonce_committed_from_elsewhere_makes_a_gapped_transaction_ready() {
    let auditor = key(41);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    let later = world.admit_one(&pool, tx(&auditor, 1)).unwrap();
    assert!(pool.candidates(10, usize::MAX).is_empty(), "gapped");
    world.commit(&pool, 1, vec![tx(&auditor, 0)]);
    let ready = pool.candidates(10, usize::MAX);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].hash, later);
}

/// The driver starts a height when a block could include something
/// (`ready_count`), however long it waited, and never for gapped ones alone.
#[test]
fn ready_count_counts_what_a_block_could_include_and_nothing_gapped() {
    let auditor = key(42);
    let world = World::new(&[(&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    world.admit_one(&pool, tx(&auditor, 2)).unwrap();
    world.admit_one(&pool, tx(&auditor, 1)).unwrap();
    assert_eq!(pool.ready_count(), 0, "both wait behind nonce 0");
    world.admit_one(&pool, tx(&auditor, 0)).unwrap();
    assert_eq!(pool.ready_count(), 3);
    // Empty blocks (say, while quorum was lost and regained) change nothing.
    for height in 1..=3 {
        world.commit(&pool, height, vec![]);
        assert_eq!(pool.ready_count(), 3, "at height {height}");
    }
    world.commit(&pool, 4, vec![tx(&auditor, 0)]);
    assert_eq!(pool.ready_count(), 2);
    pool.check_invariants();
}

#[test]
fn a_deactivation_drops_the_deactivated_signers_transactions() {
    let operator = key(42);
    let auditor = key(43);
    let world = World::new(&[(&operator, Role::Operator), (&auditor, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    assert!(world.admit_one(&pool, tx(&auditor, 0)).is_ok());
    assert!(world.admit_one(&pool, tx(&auditor, 4)).is_ok());
    world
        .participants
        .borrow_mut()
        .get_mut(&auditor.public())
        .unwrap()
        .active = false;
    let deactivate = sign(
        &operator,
        0,
        TxBody::DeactivateParticipant {
            key: auditor.public(),
        },
    );
    world.commit(&pool, 1, vec![deactivate]);
    assert_eq!(pool.size().0, 0);
    assert!(
        pool.take_dropped()
            .iter()
            .all(|(_, error)| matches!(error, TxError::ParticipantInactive { .. }))
    );
}

#[test]
fn every_signer_is_rechecked_within_a_few_commits() {
    // Signers whose state changed without a transaction of theirs in a
    // block this pool saw (here: edited behind its back) are found by the
    // rolling recheck.
    let keys: Vec<Keypair> = (0..(RECHECKED_PER_COMMIT as u8 * 2 + 5))
        .map(|seed| key(100u8.wrapping_add(seed)))
        .collect();
    let roles: Vec<(&Keypair, Role)> = keys.iter().map(|key| (key, Role::Auditor)).collect();
    let world = World::new(&roles);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    for key in &keys {
        assert!(world.admit_one(&pool, tx(key, 0)).is_ok());
    }
    for participant in world.participants.borrow_mut().values_mut() {
        participant.next_nonce = 1;
    }
    for height in 1..=3 {
        world.commit(&pool, height, vec![]);
    }
    assert_eq!(pool.size().0, 0);
}

// ---- candidates -----------------------------------------------------------

#[test]
fn candidates_take_senders_in_turn_ready_nonces_in_order() {
    let a = key(5);
    let b = key(6);
    let world = World::new(&[(&a, Role::Auditor), (&b, Role::Auditor)]);
    let pool = Mempool::new(chain(), MempoolConfig::default());
    world.admit(&pool, vec![tx(&a, 2), tx(&a, 0), tx(&a, 1), tx(&a, 7)]);
    world.admit(&pool, vec![tx(&b, 0)]);
    let picked = pool.candidates(3, usize::MAX);
    let order: Vec<(PublicKey, u64)> = picked
        .iter()
        .map(|p| (p.tx.tx.signer, p.tx.tx.nonce))
        .collect();
    assert_eq!(order.len(), 3);
    // Both senders appear before `a`'s second transaction.
    assert!(order.contains(&(b.public(), 0)));
    let a_nonces: Vec<u64> = order
        .iter()
        .filter(|(signer, _)| *signer == a.public())
        .map(|(_, nonce)| *nonce)
        .collect();
    assert_eq!(a_nonces, vec![0, 1]);
    let all = pool.candidates(100, usize::MAX);
    assert_eq!(
        all.len(),
        4,
        "nonce 7 waits behind a gap: never a candidate"
    );
}

// ---- eviction -------------------------------------------------------------

#[test]
fn full_pool_answers_full_to_its_only_signer() {
    let key = key(4);
    let config = MempoolConfig {
        max_txs: 2,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    let results = pool.admit(
        vec![tx(&key, 0), tx(&key, 1), tx(&key, 2)],
        registered(&key, 0),
    );
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(
        results[2],
        Err(MempoolError::Full { max_txs: 2, .. })
    ));
    assert!(results[2].as_ref().unwrap_err().is_temporary());
}

#[test]
fn eviction_takes_the_farthest_gap_first_then_the_largest_signer() {
    let near = key(50);
    let far = key(51);
    let big = key(52);
    let small = key(53);
    let honest = key(54);
    let world = World::new(&[
        (&near, Role::Auditor),
        (&far, Role::Auditor),
        (&big, Role::Auditor),
        (&small, Role::Auditor),
        (&honest, Role::Auditor),
    ]);
    let pool = Mempool::new(chain(), small_pool(13, usize::MAX / 2));
    // Gapped: `near` at distance 3, `far` at 5 and 9. Ready: `big` 8, `small` 1.
    let near3 = world.admit_one(&pool, tx(&near, 3)).unwrap();
    let far5 = world.admit_one(&pool, tx(&far, 5)).unwrap();
    let far9 = world.admit_one(&pool, tx(&far, 9)).unwrap();
    let big_txs: Vec<TxHash> = (0..8)
        .map(|nonce| world.admit_one(&pool, tx(&big, nonce)).unwrap())
        .collect();
    let small0 = world.admit_one(&pool, tx(&small, 0)).unwrap();
    assert!(world.admit_one(&pool, tx(&honest, 0)).is_ok());
    assert_eq!(pool.size().0, 13, "full");

    let gone = |hash: &TxHash| !pool.contains(hash);
    // Each next transaction of `honest` evicts one, in this order: the
    // gapped ones, farthest first; then the tail of `big` while it holds
    // more than `honest` would.
    let order = [far9, far5, near3, big_txs[7], big_txs[6]];
    for (index, victim) in order.iter().enumerate() {
        assert!(
            world
                .admit_one(&pool, tx(&honest, 1 + index as u64))
                .is_ok(),
            "honest transaction {index}"
        );
        assert!(gone(victim), "victim {index}");
        assert_eq!(pool.size().0, 13);
        pool.check_invariants();
    }
    // Now `honest` and `big` hold 6 each: no one holds more than `honest`
    // would with a 7th, so it is told the pool is full.
    assert!(matches!(
        world.admit_one(&pool, tx(&honest, 6)),
        Err(MempoolError::Full { .. })
    ));
    // A newcomer still gets in, at the expense of one of the two largest.
    let newcomer = key(55);
    world.participants.borrow_mut().insert(
        newcomer.public(),
        Participant::new(newcomer.public(), "n", [Role::Auditor]),
    );
    assert!(world.admit_one(&pool, tx(&newcomer, 0)).is_ok());
    assert_eq!(
        pool.sender_usage(&honest.public()).0 + pool.sender_usage(&big.public()).0,
        11
    );
    assert!(pool.contains(&small0) && pool.contains(&big_txs[0]));
    assert_eq!(pool.counts().evicted, 6);
    assert_eq!(pool.take_new_counts().evicted, 6);
    assert_eq!(
        pool.take_new_counts(),
        MempoolCounts::default(),
        "each counted once"
    );
}

#[test]
fn a_gapped_transaction_never_evicts() {
    let attacker = key(56);
    let honest = key(57);
    let world = World::new(&[(&attacker, Role::Auditor), (&honest, Role::Auditor)]);
    let pool = Mempool::new(chain(), small_pool(3, usize::MAX / 2));
    for nonce in 1..=3 {
        assert!(world.admit_one(&pool, tx(&attacker, nonce)).is_ok());
    }
    assert!(matches!(
        world.admit_one(&pool, tx(&honest, 1)),
        Err(MempoolError::Full { .. })
    ));
    assert!(world.admit_one(&pool, tx(&honest, 0)).is_ok());
    assert_eq!(pool.counts().evicted, 1);
}

#[test]
fn big_gapped_transactions_of_one_signer_cannot_fill_the_pool_against_others() {
    // The flood of issue 17 at a small scale: one operator sends big
    // transactions with nonces next+1, next+2, ... until refused.
    let flooder = key(58);
    let honest = key(59);
    let world = World::new(&[(&flooder, Role::Operator), (&honest, Role::Auditor)]);
    let config = MempoolConfig {
        max_txs: 10_000,
        max_bytes: 1 << 20,
        max_bytes_per_sender: 1 << 14,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(chain(), config);
    let mut admitted = 0;
    for nonce in 1..200 {
        if world
            .admit_one(&pool, big_tx(&flooder, nonce, 4_000))
            .is_ok()
        {
            admitted += 1;
        }
    }
    assert!(admitted <= 4, "at most its 16 KiB: {admitted}");
    assert!(pool.size().1 <= 1 << 14);
    assert!(world.admit_one(&pool, tx(&honest, 0)).is_ok());
}

// ---- the property ---------------------------------------------------------

mod property {
    use super::*;
    use proptest::prelude::*;

    /// What an attacker does: submit a transaction `ahead` past its next
    /// nonce, of about `size` bytes; or a block commits.
    #[derive(Clone, Debug)]
    enum Step {
        Submit {
            attacker: usize,
            ahead: u64,
            size: usize,
        },
        Commit {
            max_txs: usize,
        },
    }

    fn step(attackers: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (0..attackers, 0u64..40, 150usize..6_000).prop_map(|(attacker, ahead, size)| {
                Step::Submit { attacker, ahead, size }
            }),
            1 => (0usize..8).prop_map(|max_txs| Step::Commit { max_txs }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No sequence of submissions (and commits) by up to three signers
        /// keeps a fourth signer's valid next transaction out, whatever the
        /// limits per signer; and the pool's bookkeeping stays consistent.
        #[test]
        fn no_submissions_keep_another_signers_next_transaction_out(
            attackers in 1usize..=3,
            steps in proptest::collection::vec(step(3), 1..300),
            per_sender_share in 1usize..=4,
            honest_next in 0u64..3,
        ) {
            let attacker_keys: Vec<Keypair> = (0..attackers).map(|index| key(200 + index as u8)).collect();
            let honest = key(250);
            let mut roles: Vec<(&Keypair, Role)> =
                attacker_keys.iter().map(|key| (key, Role::Operator)).collect();
            roles.push((&honest, Role::Auditor));
            let world = World::new(&roles);
            world.participants.borrow_mut().get_mut(&honest.public()).unwrap().next_nonce = honest_next;
            // A pool of 48 transactions or 64 KiB; a signer may hold up to
            // all of it (per_sender_share 1) or a quarter.
            let config = MempoolConfig {
                max_txs: 48,
                max_bytes: 64 * 1024,
                max_per_sender: 48 / per_sender_share,
                max_bytes_per_sender: 64 * 1024 / per_sender_share,
                max_nonce_gap: 64,
                gap_expiry_blocks: 5,
            };
            let pool = Mempool::new(chain(), config);
            let mut height = 0;
            for step in steps {
                match step {
                    Step::Submit { attacker, ahead, size } => {
                        let key = &attacker_keys[attacker % attackers];
                        let nonce = world.next_nonce(&key.public()) + ahead;
                        let _ = world.admit_one(&pool, big_tx(key, nonce, size));
                    }
                    Step::Commit { max_txs } => {
                        height += 1;
                        // Only attackers' transactions: the honest one comes last.
                        world.commit_candidates(&pool, height, max_txs);
                    }
                }
                pool.check_invariants();
                let (count, bytes) = pool.size();
                prop_assert!(count <= config.max_txs && bytes <= config.max_bytes);
                for key in &attacker_keys {
                    let (count, bytes) = pool.sender_usage(&key.public());
                    prop_assert!(count <= config.max_per_sender);
                    prop_assert!(bytes <= config.max_bytes_per_sender);
                }
            }
            let result = world.admit_one(&pool, tx(&honest, honest_next));
            prop_assert!(result.is_ok(), "the honest next transaction was refused: {:?}", result);
            pool.check_invariants();
            // And it is a candidate for the next block.
            let hash = result.unwrap();
            prop_assert!(pool.candidates(usize::MAX, usize::MAX).iter().any(|p| p.hash == hash));
        }
    }
}
