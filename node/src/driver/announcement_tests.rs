//! Table tests of the checks on block announcements and block time: who
//! may announce which header, and how far a proposer may move the clock.

use consensus::{Height, Proposal, Round, SignedProposal, Validator, ValidatorSet};
use crypto::{ChainId, Domain, Hash, Keypair};
use ledger::{BlockHeader, Timestamp, TxHash};

use super::blocks::{Announcement, AnnouncementError, MAX_CLOCK_DRIFT_MS, check_time};

fn chain() -> ChainId {
    ChainId(Hash::digest(b"announcements"))
}

fn keys() -> Vec<Keypair> {
    (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect()
}

fn set(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|key| Validator {
        public_key: key.public(),
        power: 1,
    }))
    .unwrap()
}

fn key_of<'a>(keys: &'a [Keypair], set: &ValidatorSet, height: u64, round: u32) -> &'a Keypair {
    let public = set.proposer(Height(height), Round(round)).public_key;
    keys.iter().find(|key| key.public() == public).unwrap()
}

fn header(proposer: &Keypair, height: u64) -> BlockHeader {
    BlockHeader {
        chain_id: chain(),
        height,
        time: Timestamp(1_000),
        parent_hash: Hash([1; 32]),
        proposer: proposer.public(),
        tx_root: Hash([2; 32]),
        app_hash: Hash([3; 32]),
    }
}

fn announce(
    signer: &Keypair,
    header: BlockHeader,
    round: u32,
    pol_round: Option<u32>,
) -> Announcement {
    let proposal = Proposal {
        height: Height(header.height),
        round: Round(round),
        value: header.hash(),
        pol_round: pol_round.map(Round),
        proposer: signer.public(),
    };
    Announcement {
        proposal: SignedProposal {
            chain_id: chain(),
            signature: signer.sign(Domain::Proposal, &chain(), &proposal),
            proposal,
        },
        header,
        tx_hashes: vec![TxHash(Hash([4; 32]))],
    }
}

#[test]
fn an_announcement_is_taken_only_from_the_rounds_proposer_for_its_own_header() {
    let keys = keys();
    let set = set(&keys);
    let p0 = key_of(&keys, &set, 5, 0);
    let p1 = key_of(&keys, &set, 5, 1);
    let p2 = key_of(&keys, &set, 5, 2);
    let check = |a: &Announcement| a.check(&chain(), &set, 10);

    assert_eq!(check(&announce(p0, header(p0, 5), 0, None)), Ok(()));
    // Another validator cannot announce round 0's block.
    assert!(matches!(
        check(&announce(p1, header(p1, 5), 0, None)),
        Err(AnnouncementError::NotTheProposer { .. })
    ));
    // The header must name the proposer of a fresh proposal.
    assert!(matches!(
        check(&announce(p0, header(p1, 5), 0, None)),
        Err(AnnouncementError::WrongHeaderProposer { .. })
    ));
    // A re-proposal names the proposer of an earlier round up to pol_round.
    assert_eq!(check(&announce(p2, header(p0, 5), 2, Some(1))), Ok(()));
    assert!(matches!(
        check(&announce(p2, header(p2, 5), 2, Some(2))),
        Err(AnnouncementError::BadPolRound { .. })
    ));
    // The proposal must name this header.
    let mut other = announce(p0, header(p0, 5), 0, None);
    other.header.app_hash = Hash([9; 32]);
    assert!(matches!(
        check(&other),
        Err(AnnouncementError::OtherBlock { .. })
    ));
    // A tampered signature.
    let mut forged = announce(p0, header(p0, 5), 0, None);
    forged.proposal.signature.0[5] ^= 1;
    assert_eq!(check(&forged), Err(AnnouncementError::BadSignature));
    // Too many transaction hashes.
    let mut big = announce(p0, header(p0, 5), 0, None);
    big.tx_hashes = vec![TxHash(Hash([4; 32])); 11];
    assert!(matches!(
        check(&big),
        Err(AnnouncementError::TooManyTransactions {
            count: 11,
            limit: 10
        })
    ));
    // Another chain.
    let mut foreign = announce(p0, header(p0, 5), 0, None);
    foreign.proposal.chain_id = ChainId(Hash([8; 32]));
    assert!(matches!(
        check(&foreign),
        Err(AnnouncementError::WrongChain { .. })
    ));
}

#[test]
fn block_time_is_bounded_on_both_sides_of_the_local_clock() {
    let now = 10_000_000;
    let drift = MAX_CLOCK_DRIFT_MS;
    let rows: Vec<(&str, u64, u64, bool, bool)> = vec![
        // (case, time, parent time, re-proposal, accepted)
        ("now", now, now - 5_000, false, true),
        ("at the upper bound", now + drift, now - 5_000, false, true),
        (
            "past the upper bound",
            now + drift + 1,
            now - 5_000,
            false,
            false,
        ),
        (
            "at the lower bound",
            now - drift,
            now - drift - 10,
            false,
            true,
        ),
        (
            "held back past the drift",
            now - drift - 1,
            now - drift - 10,
            false,
            false,
        ),
        (
            "an old re-proposal",
            now - drift - 1,
            now - drift - 10,
            true,
            true,
        ),
        (
            "not after the parent",
            now - 5_000,
            now - 5_000,
            false,
            false,
        ),
        (
            "after a parent ahead of us",
            now + 20_001,
            now + 20_000,
            false,
            true,
        ),
    ];
    for (case, time, parent, re_proposal, accepted) in rows {
        assert_eq!(
            check_time(time, parent, now, re_proposal).is_ok(),
            accepted,
            "{case}"
        );
    }
}
