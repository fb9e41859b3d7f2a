//! The schedule's rules of heights (which set is in force where, which
//! answers are final) and the peer allow-list built from it, on a chain of
//! four genesis validators and one observer that goes through an add, a
//! power change, a key rotation and a removal.
//!
//! Epochs are made with the ledger's own [`ValidatorChange::apply`] and
//! [`ACTIVATION_DISTANCE`], as execution makes them; what a store holds
//! after committing block `c` is every epoch adopted at or before `c`.

use genesis::{ConsensusParams, InitialParticipant, Observer, Validator};
use ledger::governance::{ACTIVATION_DISTANCE, PeerId as LedgerPeerId, ValidatorChange};

use super::*;
use crate::network::identity::peer_id_of;

/// A node: its consensus key, node key and address.
struct Member {
    consensus: crypto::Keypair,
    node: crypto::Keypair,
    address: String,
}

impl Member {
    fn new(seed: u8) -> Member {
        Member {
            consensus: crypto::Keypair::from_seed([seed; 32]),
            node: crypto::Keypair::from_seed([seed.wrapping_add(100); 32]),
            address: format!("/ip4/10.0.0.{seed}/tcp/26656"),
        }
    }

    fn key(&self) -> PublicKey {
        self.consensus.public()
    }

    fn peer(&self) -> PeerId {
        peer_id_of(&self.node)
    }
}

/// The chain's story: which heights adopt which change.
struct Chain {
    genesis: Genesis,
    members: Vec<Member>,
    observer: Member,
    /// The key validator 1 rotates to.
    rotated: crypto::Keypair,
    /// Every epoch, genesis's first, each with the height that adopted it
    /// (0 for genesis).
    epochs: Vec<(u64, ValidatorEpoch)>,
}

const ADD_AT: u64 = 10;
const POWER_AT: u64 = 20;
const ROTATE_AT: u64 = 30;
const REMOVE_AT: u64 = 40;

impl Chain {
    fn new() -> Chain {
        let members: Vec<Member> = (1..=5).map(Member::new).collect();
        let observer = Member::new(9);
        let operator = crypto::Keypair::from_seed([50; 32]);
        let genesis = Genesis {
            chain_name: "schedule-test".into(),
            currency_code: "CNY".into(),
            currency_decimals: 2,
            genesis_time_ms: 1_767_225_600_000,
            validators: members[..4]
                .iter()
                .enumerate()
                .map(|(index, member)| Validator {
                    name: format!("validator-{index}"),
                    public_key: member.key(),
                    peer_id: member.peer().to_string(),
                    address: member.address.clone(),
                    voting_power: 1,
                })
                .collect(),
            observers: vec![Observer {
                name: "auditor-node".into(),
                peer_id: observer.peer().to_string(),
                address: observer.address.clone(),
            }],
            participants: vec![InitialParticipant {
                name: "operator".into(),
                public_key: operator.public(),
                roles: vec!["operator".into()],
            }],
            consensus: ConsensusParams::default(),
        };
        genesis.validate().expect("a valid genesis");
        let genesis_epoch = ValidatorSchedule::from_genesis(&genesis, 0)
            .epoch_at(1)
            .clone();
        let mut chain = Chain {
            genesis,
            observer,
            rotated: crypto::Keypair::from_seed([77; 32]),
            epochs: vec![(0, genesis_epoch)],
            members,
        };
        let joining = &chain.members[4];
        let add = ValidatorChange::Add {
            name: "validator-4".into(),
            consensus_key: joining.key(),
            peer_id: LedgerPeerId::from_bytes(joining.peer().to_bytes()).expect("a peer id"),
            address: joining.address.clone(),
            power: 1,
        };
        let identity = joining.key();
        chain.adopt(ADD_AT, add, identity);
        let power = ValidatorChange::SetPower {
            consensus_key: chain.members[0].key(),
            power: 3,
        };
        chain.adopt(POWER_AT, power, identity);
        let rotate = ValidatorChange::RotateKey {
            old_key: chain.members[1].key(),
            new_key: chain.rotated.public(),
        };
        chain.adopt(ROTATE_AT, rotate, identity);
        let remove = ValidatorChange::Remove {
            consensus_key: chain.members[2].key(),
        };
        chain.adopt(REMOVE_AT, remove, identity);
        chain
    }

    /// Appends the epoch a change adopted at `height` makes.
    fn adopt(&mut self, height: u64, change: ValidatorChange, identity: PublicKey) {
        let (_, newest) = self.epochs.last().expect("genesis's epoch");
        let validators = change
            .apply(&newest.validators, identity)
            .expect("the change applies");
        let epoch = ValidatorEpoch {
            number: newest.number + 1,
            from_height: height + ACTIVATION_DISTANCE,
            validators,
        };
        self.epochs.push((height, epoch));
    }

    /// The schedule a node reads after committing block `committed`: the
    /// epoch in force at `committed + 1`, then every epoch adopted by then.
    fn schedule(&self, committed: u64) -> ValidatorSchedule {
        let known: Vec<&ValidatorEpoch> = self
            .epochs
            .iter()
            .filter(|(adopted_at, _)| *adopted_at <= committed)
            .map(|(_, epoch)| epoch)
            .collect();
        let first = known
            .iter()
            .rposition(|epoch| epoch.from_height <= committed + 1)
            .unwrap_or(0);
        ValidatorSchedule::from_epochs(
            committed,
            known[first..]
                .iter()
                .map(|epoch| (*epoch).clone())
                .collect(),
        )
    }
}

fn keys(set: &ValidatorSet) -> Vec<PublicKey> {
    set.validators().iter().map(|v| v.public_key).collect()
}

fn sorted(mut keys: Vec<PublicKey>) -> Vec<PublicKey> {
    keys.sort();
    keys
}

fn peers(allowed: &[crate::network::KnownPeer]) -> Vec<PeerId> {
    allowed.iter().map(|peer| peer.peer_id).collect()
}

#[test]
fn an_added_validator_is_in_the_set_from_the_adopting_height_plus_two() {
    let chain = Chain::new();
    let joining = chain.members[4].key();
    // Read after the adopting block: the next height keeps the old set,
    // the one after it has the new validator, and both answers are final.
    let schedule = chain.schedule(ADD_AT);
    assert_eq!(schedule.committed(), ADD_AT);
    assert!(!schedule.set_at(ADD_AT + 1).contains(&joining));
    assert_eq!(schedule.set_at(ADD_AT + 1).len(), 4);
    assert!(schedule.set_at(ADD_AT + 2).contains(&joining));
    assert_eq!(schedule.set_at(ADD_AT + 2).len(), 5);
    assert_eq!(schedule.epoch_at(ADD_AT + 2).from_height, ADD_AT + 2);
    assert!(schedule.has_consensus_key(&joining));
    // Read one block earlier, nothing is known of the change.
    let before = chain.schedule(ADD_AT - 1);
    assert!(!before.has_consensus_key(&joining));
    assert!(!before.set_at(ADD_AT + 2).contains(&joining));
}

#[test]
fn every_height_gets_the_set_of_the_newest_epoch_that_started_at_or_before_it() {
    let chain = Chain::new();
    let [v0, v1, v2, v3, v4] = [0, 1, 2, 3, 4].map(|index| chain.members[index].key());
    let rotated = chain.rotated.public();
    let expected_at = |height: u64| -> (Vec<PublicKey>, u64) {
        match height {
            h if h < ADD_AT + 2 => (vec![v0, v1, v2, v3], 1),
            h if h < POWER_AT + 2 => (vec![v0, v1, v2, v3, v4], 1),
            h if h < ROTATE_AT + 2 => (vec![v0, v1, v2, v3, v4], 3),
            h if h < REMOVE_AT + 2 => (vec![v0, rotated, v2, v3, v4], 3),
            _ => (vec![v0, rotated, v3, v4], 3),
        }
    };
    // Each schedule read after a change's adoption answers every height
    // from its next one up to the adoption + 2 finally.
    for committed in [ADD_AT, POWER_AT, ROTATE_AT, REMOVE_AT, REMOVE_AT + 50] {
        let schedule_then = chain.schedule(committed);
        for height in committed + 1..=committed + ACTIVATION_DISTANCE {
            let (validators, power_of_v0) = expected_at(height);
            let set = schedule_then.set_at(height);
            assert_eq!(
                keys(set),
                sorted(validators),
                "height {height} read at {committed}"
            );
            assert_eq!(set.power_of(&v0), Some(power_of_v0), "height {height}");
            assert_eq!(
                set.total_power(),
                schedule_then.epoch_at(height).total_power(),
                "the consensus set is the epoch's"
            );
        }
    }
    // The power change takes effect exactly at its boundary.
    let schedule_power = chain.schedule(POWER_AT);
    assert_eq!(schedule_power.set_at(POWER_AT + 1).power_of(&v0), Some(1));
    assert_eq!(schedule_power.set_at(POWER_AT + 2).power_of(&v0), Some(3));
    // The removal too: the removed validator is in force one more height.
    let schedule_remove = chain.schedule(REMOVE_AT);
    assert!(schedule_remove.set_at(REMOVE_AT + 1).contains(&v2));
    assert!(!schedule_remove.set_at(REMOVE_AT + 2).contains(&v2));
}

#[test]
fn a_height_beyond_the_final_ones_gets_the_newest_set_known_and_below_the_next_the_next_ones() {
    let chain = Chain::new();
    let joining = chain.members[4].key();
    // Far ahead: the newest epoch known (a hint, a later change may
    // replace it).
    let schedule = chain.schedule(ADD_AT);
    assert!(schedule.set_at(1_000_000).contains(&joining));
    assert_eq!(schedule.epoch_at(1_000_000).number, 1);
    // With nothing adopted yet, genesis's set answers every height.
    let quiet = chain.schedule(ADD_AT - 1);
    assert_eq!(quiet.epoch_at(1_000_000).number, 0);
    // At or below the committed height: the set of the next height, even
    // where an older epoch was in force (the schedule no longer holds it).
    let late = chain.schedule(REMOVE_AT + 10);
    assert_eq!(late.epoch_at(REMOVE_AT + 11).number, 4);
    assert_eq!(late.epoch_at(1).number, 4);
    assert_eq!(late.epoch_at(0).number, 4);
    assert!(!late.set_at(ADD_AT).contains(&chain.members[2].key()));
}

#[test]
fn a_rotation_keeps_both_keys_known_until_it_is_in_force_and_maps_them_to_one_peer() {
    let chain = Chain::new();
    let old = chain.members[1].key();
    let new = chain.rotated.public();
    let peer = chain.members[1].peer();
    let pending = chain.schedule(ROTATE_AT);
    assert!(pending.has_consensus_key(&old));
    assert!(pending.has_consensus_key(&new));
    let map = pending.peer_of_key();
    assert_eq!(map.get(&old), Some(&peer));
    assert_eq!(map.get(&new), Some(&peer));
    assert_eq!(
        pending.validator_of_peer_at(ROTATE_AT + 1).get(&peer),
        Some(&old)
    );
    assert_eq!(
        pending.validator_of_peer_at(ROTATE_AT + 2).get(&peer),
        Some(&new)
    );
    // Once in force, the old key is gone from the schedule.
    let done = chain.schedule(ROTATE_AT + 2);
    assert!(!done.has_consensus_key(&old));
    assert!(done.has_consensus_key(&new));
}

#[test]
fn a_chain_that_records_no_set_has_genesis_set_at_every_height() {
    let chain = Chain::new();
    let schedule = ValidatorSchedule::from_genesis(&chain.genesis, 7);
    assert_eq!(schedule.committed(), 7);
    let genesis_set = chain.genesis.validator_set().expect("a set");
    for height in [0, 1, 8, 9, 1_000_000] {
        assert_eq!(schedule.set_at(height), &genesis_set, "height {height}");
        assert_eq!(schedule.epoch_at(height).number, 0);
    }
    assert_eq!(
        schedule.validators().count(),
        chain.genesis.validators.len()
    );
}

#[test]
fn the_allow_list_is_genesis_observers_and_every_current_and_scheduled_validator() {
    let chain = Chain::new();
    let observer = chain.observer.peer();
    let [p0, p1, p2, p3, p4] = [0, 1, 2, 3, 4].map(|index| chain.members[index].peer());
    let sorted_peers = |mut list: Vec<PeerId>| {
        list.sort();
        list
    };
    // Before the add: genesis's nodes only.
    let before = chain.schedule(ADD_AT - 1).allowed_peers(&chain.genesis);
    assert_eq!(peers(&before), sorted_peers(vec![p0, p1, p2, p3, observer]));
    // An adopted add: the new node is allowed before its first height, so
    // it is connected (and synced) when it must vote.
    let added = chain.schedule(ADD_AT).allowed_peers(&chain.genesis);
    assert_eq!(
        peers(&added),
        sorted_peers(vec![p0, p1, p2, p3, p4, observer])
    );
    let new_node = added
        .iter()
        .find(|peer| peer.peer_id == p4)
        .expect("the added node");
    assert_eq!(new_node.name, "validator-4");
    assert_eq!(new_node.address.to_string(), chain.members[4].address);
    // A rotation keeps the node: one entry for it.
    let rotating = chain.schedule(ROTATE_AT).allowed_peers(&chain.genesis);
    assert_eq!(rotating.len(), 6);
    // An adopted removal keeps the node while it is still in force...
    let removing = chain.schedule(REMOVE_AT).allowed_peers(&chain.genesis);
    assert!(peers(&removing).contains(&p2));
    // ...and drops it from the height the removal is in force at; the
    // observer stays although no set lists it.
    let removed = chain
        .schedule(REMOVE_AT + ACTIVATION_DISTANCE - 1)
        .allowed_peers(&chain.genesis);
    assert_eq!(
        peers(&removed),
        sorted_peers(vec![p0, p1, p3, p4, observer])
    );
}

#[test]
fn an_unparsable_observer_or_validator_address_leaves_only_that_peer_out() {
    let mut chain = Chain::new();
    chain.genesis.observers[0].address = "not a multiaddr".into();
    let allowed = chain.schedule(ADD_AT - 1).allowed_peers(&chain.genesis);
    assert!(!peers(&allowed).contains(&chain.observer.peer()));
    assert_eq!(allowed.len(), 4);
}
