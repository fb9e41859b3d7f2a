//! The sink's rows of a chain with governance and key rotation: a genesis
//! that records its validator set, a validator-set change proposed,
//! approved past two thirds of the power and adopted, and a participant
//! rotating its key, executed by the ledger in memory and turned into
//! batches as the sink turns verified blocks into them.
//!
//! The end-to-end tests (`tests/tests/sink.rs`) write such rows into
//! PostgreSQL from a running network; this one needs no node, because on
//! this branch a node does not yet record its validator set (issue 19's
//! node side), so no network can carry governance transactions.

use crypto::{ChainId, Hash, Keypair, PublicKey};
use ledger::block::{Block, BlockHeader, execute_block, tx_root};
use ledger::governance::{GenesisState, GenesisValidator};
use ledger::{
    MemoryState, Participant, PeerId, Role, SignedTransaction, StateValue, StateView, Timestamp,
    Transaction, TxBody, TxHash, ValidatorChange, derive_block_events,
};
use node::api::event_views::EventView;

use super::check::CheckedBlock;
use super::rows::{Batch, BatchBuilder, StateTables, genesis_rows};
use crate::audit::VerifiedBlock;

const CHAIN: ChainId = ChainId(Hash([7; 32]));

fn keypair(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// The libp2p peer id of the ed25519 key whose bytes are all `n`.
fn peer_id(n: u8) -> PeerId {
    let mut bytes = vec![0x00, 36, 0x08, 0x01, 0x12, 0x20];
    bytes.extend_from_slice(&[n; 32]);
    PeerId::from_bytes(bytes).expect("an identity multihash")
}

fn sign(key: &Keypair, nonce: u64, body: TxBody) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        signer: key.public(),
        nonce,
        body,
    }
    .sign(key)
}

/// A chain replayed in memory, each block handed to the sink's rows as
/// the checker hands it over.
struct Chain {
    state: MemoryState,
    height: u64,
    parent: Hash,
}

impl Chain {
    fn new(genesis: &GenesisState) -> Chain {
        let mut state = MemoryState::new();
        state.apply(genesis.values());
        Chain {
            state,
            height: 0,
            parent: Hash::ZERO,
        }
    }

    /// Executes `txs` as the next block and returns it as one batch.
    fn block(&mut self, txs: Vec<SignedTransaction>) -> Batch {
        self.height += 1;
        let header = BlockHeader {
            chain_id: CHAIN,
            height: self.height,
            time: Timestamp(1_000_000 + self.height * 1_000),
            parent_hash: self.parent,
            proposer: keypair(1).public(),
            tx_root: tx_root(&txs),
            app_hash: Hash::ZERO,
        };
        let execution = execute_block(&header.context(), &self.state, &txs)
            .expect("every transaction is valid");
        assert!(
            execution.tx_hashes.len() == txs.len(),
            "every transaction applied"
        );
        let writes = execution.writes.iter().map(StateValue::key).collect();
        self.state.apply(execution.writes);
        let block = Block { header, txs };
        self.parent = block.hash();
        let state = &self.state;
        let events = derive_block_events(&block, |key| state.get(key))
            .expect("the replayed state holds what the events need")
            .into_iter()
            .map(|event| {
                let view = EventView::new(&event, 2);
                (event, view)
            })
            .collect();
        let mut builder = BatchBuilder::new();
        builder
            .add(CheckedBlock {
                verified: VerifiedBlock {
                    block,
                    writes,
                    app_hash: Hash::ZERO,
                },
                events,
            })
            .expect("every value fits a bigint");
        builder
            .finish(&self.state)
            .expect("every value fits a bigint")
            .expect("one block was added")
    }
}

fn hex(key: &PublicKey) -> String {
    key.to_string()
}

fn genesis() -> (GenesisState, Vec<Keypair>, Keypair) {
    let validators: Vec<Keypair> = (1..=4).map(keypair).collect();
    let supplier = keypair(20);
    let state = GenesisState::new(
        vec![Participant::new(
            supplier.public(),
            "supplier",
            [Role::Supplier],
        )],
        validators
            .iter()
            .enumerate()
            .map(|(index, key)| GenesisValidator {
                name: format!("validator-{index}"),
                consensus_key: key.public(),
                peer_id: peer_id(index as u8 + 1),
                address: format!("/ip4/127.0.0.1/tcp/{}", 27_000 + index),
                power: 10,
            })
            .collect(),
    )
    .expect("a usable genesis");
    (state, validators, supplier)
}

#[test]
fn the_genesis_rows_hold_the_validator_set_and_the_validators_accounts() {
    let (genesis, validators, supplier) = genesis();
    let mut state = MemoryState::new();
    state.apply(genesis.values());
    let rows: StateTables = genesis_rows(&state).expect("every value fits a bigint");
    assert_eq!(rows.epochs.epoch, vec![0]);
    assert_eq!(rows.epochs.from_height, vec![1]);
    assert_eq!(rows.epochs.validators, vec![4]);
    assert_eq!(rows.epochs.total_power, vec![40]);
    let mut members = rows.validators.consensus_key.clone();
    members.sort();
    let mut expected: Vec<String> = validators.iter().map(|key| hex(&key.public())).collect();
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(rows.validators.identity, rows.validators.consensus_key);
    assert_eq!(rows.validators.power, vec![10; 4]);
    // The supplier and an account per validator, each signing with its key.
    assert_eq!(rows.participants.key.len(), 5);
    assert_eq!(rows.participants.signing_key, rows.participants.key);
    for (key, roles) in rows.participants.key.iter().zip(&rows.participants.roles) {
        let expected = if *key == hex(&supplier.public()) {
            "supplier"
        } else {
            "validator"
        };
        assert_eq!(roles, expected, "{key}");
    }
    assert!(rows.proposals.id.is_empty() && rows.key_bindings.key.is_empty());
}

#[test]
fn a_change_adopted_past_two_thirds_and_a_key_rotation_become_rows() {
    let (genesis, validators, supplier) = genesis();
    let mut chain = Chain::new(&genesis);
    let raised = validators[0].public();
    let proposal = sign(
        &validators[0],
        0,
        TxBody::ProposeValidatorChange {
            change: ValidatorChange::SetPower {
                consensus_key: raised,
                power: 12,
            },
            expires_at: 50,
        },
    );
    let id: TxHash = proposal.hash();
    let rotated = keypair(21);
    let first = chain.block(vec![
        proposal,
        sign(
            &supplier,
            0,
            TxBody::RotateParticipantKey {
                new_key: rotated.public(),
            },
        ),
    ]);
    // The proposal, open with its proposer's approval.
    let proposals = &first.state.proposals;
    assert_eq!(proposals.id, vec![id.to_string()]);
    assert_eq!(proposals.change, vec!["set_power"]);
    let details: serde_json::Value =
        serde_json::from_str(&proposals.details[0]).expect("the change's JSON");
    assert_eq!(details["change"], "set_power");
    assert_eq!(details["power"], 12);
    assert_eq!(proposals.approvals, vec![hex(&raised)]);
    assert_eq!(proposals.adopted_height, vec![None]);
    assert_eq!(proposals.expires_at, vec![50]);
    // The rotation: the supplier signs with its new key, bound to it.
    assert_eq!(first.state.key_bindings.key, vec![hex(&rotated.public())]);
    assert_eq!(
        first.state.key_bindings.participant,
        vec![hex(&supplier.public())]
    );
    assert_eq!(first.state.key_bindings.bound_height, vec![1]);
    let supplier_row = first
        .state
        .participants
        .key
        .iter()
        .position(|key| *key == hex(&supplier.public()))
        .expect("the supplier's row");
    assert_eq!(
        first.state.participants.signing_key[supplier_row],
        hex(&rotated.public())
    );
    let kinds: Vec<&str> = first.events.kind.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["validator_change_proposed", "participant_key_rotated"]
    );

    // Two more approvals: 30 of 40, past two thirds; in force at 2 + 2.
    let second = chain.block(vec![
        sign(
            &validators[1],
            0,
            TxBody::ApproveValidatorChange { proposal: id },
        ),
        sign(
            &validators[2],
            0,
            TxBody::ApproveValidatorChange { proposal: id },
        ),
    ]);
    let kinds: Vec<&str> = second.events.kind.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "validator_change_approved",
            "validator_change_approved",
            "validator_change_adopted"
        ]
    );
    let proposals = &second.state.proposals;
    assert_eq!(proposals.id, vec![id.to_string()]);
    assert_eq!(proposals.approvals[0].split(',').count(), 3);
    assert_eq!(proposals.adopted_height, vec![Some(2)]);
    assert_eq!(
        proposals.adopted_by,
        vec![Some(second.events.tx_hash[1].clone())]
    );
    assert_eq!(proposals.effective_from, vec![Some(4)]);
    assert_eq!(proposals.epoch, vec![Some(1)]);
    let epochs = &second.state.epochs;
    assert_eq!(epochs.epoch, vec![1]);
    assert_eq!(epochs.from_height, vec![4]);
    assert_eq!(epochs.total_power, vec![42]);
    assert_eq!(epochs.updated_height, vec![2]);
    let members = &second.state.validators;
    assert!(members.epoch.iter().all(|epoch| *epoch == 1));
    let raised_row = members
        .consensus_key
        .iter()
        .position(|key| *key == hex(&raised))
        .expect("the raised validator");
    assert_eq!(members.power[raised_row], 12);
    assert_eq!(members.power.iter().sum::<i64>(), 42);
}
