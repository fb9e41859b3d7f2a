//! A real chain for the audit tests, built without a running node: a
//! genesis with four validators, blocks executed by the ledger, certificates
//! signed by three of the four validator keys, all committed into a RocksDB
//! `Store` inside a node-like home (`HOME/genesis.json`, `HOME/data/ledger`).
//!
//! Shared by `cli/tests/audit.rs` and the audit module's unit tests (which
//! include this file by path), so it uses only the workspace's library
//! crates.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use consensus::{CommitCertificate, CommitSignature, Height, Round, Vote};
use crypto::{ChainId, Domain, Hash, Keypair, PublicKey};
use genesis::{ConsensusParams, Genesis, InitialParticipant, Validator};
use ledger::block::{Block, BlockHeader, execute_block, tx_root};
use ledger::store::Store;
use ledger::{Amount, Output, Role, SignedTransaction, Timestamp, TokenId, Transaction, TxBody};

pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// Blocks in the built chain; height 6 carries no transaction.
pub const HEIGHTS: u64 = 7;
/// Transactions in the built chain.
pub const TRANSACTIONS: u64 = 9;
/// operator (genesis), bank, core, supplier1, supplier2, and the account
/// genesis records for each of the 4 validators (`Genesis::initial_state`).
pub const PARTICIPANTS: usize = 5 + 4;
/// Minor units: 500,000.00 + 100,000.00 confirmed, nothing settled.
pub const OUTSTANDING: u64 = 60_000_000;
pub const CREDIT_LIMIT: u64 = 100_000_000;
/// The height whose block holds supplier1's split (one transaction).
pub const TRANSFER_HEIGHT: u64 = 4;

/// The keys of everyone on the test chain.
#[derive(Debug)]
pub struct Keys {
    pub validators: Vec<Keypair>,
    pub operator: Keypair,
    pub bank: Keypair,
    pub core: Keypair,
    pub supplier1: Keypair,
    pub supplier2: Keypair,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            validators: (0..4u8)
                .map(|i| Keypair::from_seed([100 + i; 32]))
                .collect(),
            operator: Keypair::from_seed([1; 32]),
            bank: Keypair::from_seed([2; 32]),
            core: Keypair::from_seed([3; 32]),
            supplier1: Keypair::from_seed([4; 32]),
            supplier2: Keypair::from_seed([5; 32]),
        }
    }
}

/// A built chain in a temporary home. The store is closed.
#[derive(Debug)]
pub struct TestChain {
    /// Keeps the temporary directory alive.
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub genesis: Genesis,
    pub chain_id: ChainId,
    pub keys: Keys,
    /// (block, borsh certificate) for heights 1..=HEIGHTS.
    pub blocks: Vec<(Block, Vec<u8>)>,
}

impl TestChain {
    pub fn ledger_dir(&self) -> PathBuf {
        ledger_dir(&self.home)
    }

    pub fn block(&self, height: u64) -> &Block {
        &self.blocks[height as usize - 1].0
    }
}

pub fn ledger_dir(home: &Path) -> PathBuf {
    home.join("data").join("ledger")
}

fn genesis(keys: &Keys) -> Genesis {
    let genesis = Genesis {
        chain_name: "audit-test".into(),
        currency_code: "CNY".into(),
        currency_decimals: 2,
        genesis_time_ms: GENESIS_TIME_MS,
        validators: keys
            .validators
            .iter()
            .enumerate()
            .map(|(i, key)| Validator {
                name: format!("validator{i}"),
                public_key: key.public(),
                // A real peer id: the ledger records its bytes.
                peer_id: node::network::identity::peer_id_of(&crypto::Keypair::from_seed(
                    [0xa0 + i as u8; 32],
                ))
                .to_string(),
                address: format!("/ip4/127.0.0.1/tcp/{}", 27000 + i),
                voting_power: 1,
            })
            .collect(),
        observers: vec![],
        participants: vec![InitialParticipant {
            name: "operator".into(),
            public_key: keys.operator.public(),
            roles: vec!["operator".into()],
        }],
        consensus: ConsensusParams::default(),
    };
    genesis.validate().expect("the test genesis is valid");
    genesis
}

/// Signs `block` at `round` 0 with the given validators, as a node's
/// decision would: precommits sorted by validator key.
pub fn certify(block: &Block, chain_id: &ChainId, signers: &[&Keypair]) -> CommitCertificate {
    let height = Height(block.header.height);
    let value = block.hash();
    let mut signatures: Vec<CommitSignature> = signers
        .iter()
        .map(|key| CommitSignature {
            validator: key.public(),
            signature: key.sign(
                Domain::Precommit,
                chain_id,
                &Vote::precommit(height, Round(0), value, key.public()),
            ),
        })
        .collect();
    signatures.sort_by_key(|signature| signature.validator);
    CommitCertificate {
        height,
        round: Round(0),
        value,
        signatures,
    }
}

/// Three of the four validators: a quorum, and one short of all.
pub fn quorum(keys: &Keys) -> Vec<&Keypair> {
    keys.validators.iter().take(3).collect()
}

fn tx(chain_id: ChainId, key: &Keypair, nonce: u64, body: TxBody) -> SignedTransaction {
    Transaction {
        chain_id,
        signer: key.public(),
        nonce,
        body,
    }
    .sign(key)
}

fn register(
    chain_id: ChainId,
    keys: &Keys,
    nonce: u64,
    who: &Keypair,
    name: &str,
    role: Role,
) -> SignedTransaction {
    tx(
        chain_id,
        &keys.operator,
        nonce,
        TxBody::RegisterParticipant {
            key: who.public(),
            name: name.into(),
            roles: vec![role],
        },
    )
}

fn confirm(
    chain_id: ChainId,
    keys: &Keys,
    nonce: u64,
    to: PublicKey,
    amount: u64,
    invoice: &str,
) -> SignedTransaction {
    tx(
        chain_id,
        &keys.core,
        nonce,
        TxBody::ConfirmReceivable {
            supplier: to,
            amount: Amount(amount),
            maturity: Timestamp(GENESIS_TIME_MS + 365 * 24 * 3600 * 1000),
            invoice_ref: Hash::digest(invoice.as_bytes()),
        },
    )
}

/// The transactions of each height, 1..=HEIGHTS.
fn transactions(chain_id: ChainId, keys: &Keys) -> Vec<Vec<SignedTransaction>> {
    let first = confirm(
        chain_id,
        keys,
        0,
        keys.supplier1.public(),
        50_000_000,
        "INV-001",
    );
    let root = TokenId::derive(&first.hash(), 0);
    let split = tx(
        chain_id,
        &keys.supplier1,
        0,
        TxBody::Transfer {
            token: root,
            outputs: vec![
                Output {
                    recipient: keys.supplier2.public(),
                    amount: Amount(20_000_000),
                },
                Output {
                    recipient: keys.supplier1.public(),
                    amount: Amount(30_000_000),
                },
            ],
        },
    );
    let supplier2_part = TokenId::derive(&split.hash(), 0);
    vec![
        vec![
            register(chain_id, keys, 0, &keys.bank, "bank", Role::Bank),
            register(chain_id, keys, 1, &keys.core, "core", Role::CoreEnterprise),
            register(
                chain_id,
                keys,
                2,
                &keys.supplier1,
                "supplier1",
                Role::Supplier,
            ),
            register(
                chain_id,
                keys,
                3,
                &keys.supplier2,
                "supplier2",
                Role::Supplier,
            ),
        ],
        vec![tx(
            chain_id,
            &keys.bank,
            0,
            TxBody::GrantCreditLine {
                core: keys.core.public(),
                limit: Amount(CREDIT_LIMIT),
            },
        )],
        vec![first],
        vec![split],
        vec![confirm(
            chain_id,
            keys,
            1,
            keys.supplier2.public(),
            10_000_000,
            "INV-002",
        )],
        vec![],
        vec![tx(
            chain_id,
            &keys.supplier2,
            0,
            TxBody::Transfer {
                token: supplier2_part,
                outputs: vec![Output {
                    recipient: keys.supplier1.public(),
                    amount: Amount(20_000_000),
                }],
            },
        )],
    ]
}

/// Builds and commits the whole chain as a node would.
pub fn build() -> TestChain {
    let keys = Keys::new();
    let genesis = genesis(&keys);
    let chain_id = genesis.chain_id();
    let dir = tempfile::tempdir().expect("temporary directory");
    let home = dir.path().join("home");
    std::fs::create_dir_all(ledger_dir(&home)).expect("create the home");
    genesis
        .save(home.join("genesis.json"))
        .expect("write genesis.json");

    let mut store = Store::open(ledger_dir(&home)).expect("open the store");
    store
        .init_genesis_state(
            chain_id,
            &genesis
                .initial_state()
                .expect("a genesis with a validator set"),
        )
        .expect("genesis state");
    let mut parent = Hash::ZERO;
    let mut blocks = Vec::new();
    for (index, txs) in transactions(chain_id, &keys).into_iter().enumerate() {
        let height = index as u64 + 1;
        let mut header = BlockHeader {
            chain_id,
            height,
            time: Timestamp(GENESIS_TIME_MS + height * 1_000),
            parent_hash: parent,
            proposer: keys.validators[index % 4].public(),
            tx_root: tx_root(&txs),
            app_hash: Hash::ZERO,
        };
        let execution = execute_block(&header.context(), &store, &txs)
            .unwrap_or_else(|error| panic!("block {height} executes: {error}"));
        let prepared = store.prepare(execution);
        header.app_hash = prepared.app_hash();
        let block = Block { header, txs };
        let certificate =
            borsh::to_vec(&certify(&block, &chain_id, &quorum(&keys))).expect("encoding to a Vec");
        store
            .commit(&block, &certificate, &prepared)
            .unwrap_or_else(|error| panic!("block {height} commits: {error}"));
        parent = block.hash();
        blocks.push((block, certificate));
    }
    assert_eq!(blocks.len() as u64, HEIGHTS);
    TestChain {
        dir,
        home,
        genesis,
        chain_id,
        keys,
        blocks,
    }
}

/// Copies a directory tree (a home with its RocksDB store, closed).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Overwrites what the store holds at `height` in the `blocks` and
/// `certificates` column families, bypassing every check: what an attacker
/// with write access to a node's disk could do.
pub fn overwrite_in_store(
    ledger: &Path,
    height: u64,
    block: Option<&[u8]>,
    certificate: Option<&[u8]>,
) {
    let mut options = rocksdb::Options::default();
    options.create_if_missing(false);
    let db = rocksdb::DB::open_cf(&options, ledger, ledger::store::schema::ALL)
        .expect("open the copied store");
    let key = ledger::store::schema::height_key(height);
    if let Some(bytes) = block {
        let family = db.cf_handle(ledger::store::schema::BLOCKS).expect("blocks");
        db.put_cf(family, key, bytes).expect("overwrite a block");
    }
    if let Some(bytes) = certificate {
        let family = db
            .cf_handle(ledger::store::schema::CERTIFICATES)
            .expect("certificates");
        db.put_cf(family, key, bytes)
            .expect("overwrite a certificate");
    }
    db.flush().expect("flush");
}

/// `block` with the amount of the first output of its first transfer
/// raised by one minor unit, and nothing else changed (its tx root and
/// signatures now disagree with the transaction).
pub fn with_amount_changed(block: &Block) -> Block {
    let mut block = block.clone();
    let transfer = block
        .txs
        .iter_mut()
        .find(|tx| matches!(tx.tx.body, TxBody::Transfer { .. }))
        .expect("the block has a transfer");
    if let TxBody::Transfer { outputs, .. } = &mut transfer.tx.body {
        outputs[0].amount = Amount(outputs[0].amount.0 + 1);
    }
    block
}
