//! Commit certificates: a valid one verifies; each way of breaking one is
//! refused with its own error. (Every certificate the simulator's validators
//! produce is also verified there, in every scenario.)

mod common;
mod sim;

use common::{chain, keys, set};
use consensus::{
    CertificateError, CommitCertificate, CommitSignature, Height, Round, Validator, ValidatorSet,
    Vote,
};
use crypto::{ChainId, Domain, Hash, Keypair};
use proptest::prelude::*;

fn signed_by(
    keys: &[&Keypair],
    chain_id: &ChainId,
    height: u64,
    round: u32,
    value: Hash,
) -> CommitCertificate {
    let signatures = keys
        .iter()
        .map(|key| {
            let vote = Vote::precommit(Height(height), Round(round), value, key.public());
            CommitSignature {
                validator: key.public(),
                signature: key.sign(Domain::Precommit, chain_id, &vote),
            }
        })
        .collect();
    CommitCertificate {
        height: Height(height),
        round: Round(round),
        value,
        signatures,
    }
}

fn three_of_four() -> (Vec<Keypair>, ValidatorSet, CommitCertificate) {
    let keys = keys();
    let certificate = signed_by(
        &[&keys[0], &keys[1], &keys[2]],
        &chain(),
        5,
        1,
        Hash::digest(b"block"),
    );
    let set = set(&keys);
    (keys, set, certificate)
}

#[test]
fn a_certificate_of_more_than_two_thirds_verifies() {
    let (_, set, certificate) = three_of_four();
    assert_eq!(certificate.verify(&set, &chain()), Ok(()));
    assert_eq!(
        certificate.verify_for(&set, &chain(), Height(5), Hash::digest(b"block")),
        Ok(())
    );
    assert_eq!(certificate.signed_power(&set), 3);
}

#[test]
fn a_forged_signature_is_refused() {
    let (keys, set, mut certificate) = three_of_four();
    certificate.signatures[1].signature.0[7] ^= 0x40;
    assert_eq!(
        certificate.verify(&set, &chain()),
        Err(CertificateError::BadSignature {
            validator: keys[1].public()
        })
    );
}

#[test]
fn a_signer_counted_twice_is_refused() {
    let (keys, set, mut certificate) = three_of_four();
    certificate.signatures[2] = certificate.signatures[0];
    assert_eq!(
        certificate.verify(&set, &chain()),
        Err(CertificateError::DuplicateSigner {
            validator: keys[0].public()
        })
    );
}

#[test]
fn two_thirds_or_less_of_the_power_is_refused() {
    let (_, set, mut certificate) = three_of_four();
    certificate.signatures.pop();
    assert_eq!(
        certificate.verify(&set, &chain()),
        Err(CertificateError::InsufficientPower { have: 2, need: 3 })
    );
    certificate.signatures.clear();
    assert_eq!(
        certificate.verify(&set, &chain()),
        Err(CertificateError::InsufficientPower { have: 0, need: 3 })
    );
}

#[test]
fn power_not_head_count_decides() {
    let keys = keys();
    let powers = [5, 1, 1, 1];
    let set = ValidatorSet::new(keys.iter().zip(powers).map(|(k, power)| Validator {
        public_key: k.public(),
        power,
    }))
    .unwrap();
    // One validator holding 5 of 8 is not more than two thirds (needs 6)...
    let alone = signed_by(&[&keys[0]], &chain(), 1, 0, Hash::digest(b"b"));
    assert_eq!(
        alone.verify(&set, &chain()),
        Err(CertificateError::InsufficientPower { have: 5, need: 6 })
    );
    // ...with one more it is, though that is only 2 of 4 validators.
    let two = signed_by(&[&keys[0], &keys[1]], &chain(), 1, 0, Hash::digest(b"b"));
    assert_eq!(two.verify(&set, &chain()), Ok(()));
}

#[test]
fn a_certificate_for_another_chain_is_refused() {
    let keys = keys();
    let other = ChainId(Hash::digest(b"another consortium"));
    let certificate = signed_by(
        &[&keys[0], &keys[1], &keys[2]],
        &other,
        5,
        1,
        Hash::digest(b"block"),
    );
    assert_eq!(
        certificate.verify(&set(&keys), &chain()),
        Err(CertificateError::BadSignature {
            validator: certificate.signatures[0].validator
        })
    );
}

#[test]
fn a_certificate_for_another_height_round_or_value_is_refused() {
    let (_, set, certificate) = three_of_four();
    let block = Hash::digest(b"block");
    assert_eq!(
        certificate.verify_for(&set, &chain(), Height(6), block),
        Err(CertificateError::WrongHeight {
            expected: Height(6),
            found: Height(5)
        })
    );
    assert_eq!(
        certificate.verify_for(&set, &chain(), Height(5), Hash::digest(b"other")),
        Err(CertificateError::WrongValue {
            expected: Hash::digest(b"other"),
            found: block
        })
    );
    // Relabelled certificates: the signatures no longer match what they claim.
    let first = certificate.signatures[0].validator;
    let relabelled_height = CommitCertificate {
        height: Height(6),
        ..certificate.clone()
    };
    assert_eq!(
        relabelled_height.verify_for(&set, &chain(), Height(6), block),
        Err(CertificateError::BadSignature { validator: first })
    );
    let relabelled_round = CommitCertificate {
        round: Round(2),
        ..certificate.clone()
    };
    assert_eq!(
        relabelled_round.verify(&set, &chain()),
        Err(CertificateError::BadSignature { validator: first })
    );
    let relabelled_value = CommitCertificate {
        value: Hash::digest(b"other"),
        ..certificate
    };
    assert_eq!(
        relabelled_value.verify(&set, &chain()),
        Err(CertificateError::BadSignature { validator: first })
    );
}

#[test]
fn a_non_validator_signer_is_refused() {
    let (_, set, mut certificate) = three_of_four();
    let outsider = Keypair::from_seed([99; 32]);
    certificate
        .signatures
        .push(signed_by(&[&outsider], &chain(), 5, 1, certificate.value).signatures[0]);
    assert_eq!(
        certificate.verify(&set, &chain()),
        Err(CertificateError::UnknownSigner {
            validator: outsider.public()
        })
    );
}

#[test]
fn prevote_signatures_do_not_make_a_certificate() {
    let keys = keys();
    let value = Hash::digest(b"block");
    let signatures = keys[..3]
        .iter()
        .map(|key| {
            let vote = Vote::precommit(Height(5), Round(1), value, key.public());
            CommitSignature {
                validator: key.public(),
                signature: key.sign(Domain::Prevote, &chain(), &vote),
            }
        })
        .collect();
    let certificate = CommitCertificate {
        height: Height(5),
        round: Round(1),
        value,
        signatures,
    };
    assert!(matches!(
        certificate.verify(&set(&keys), &chain()),
        Err(CertificateError::BadSignature { .. })
    ));
}

#[test]
fn every_decision_in_the_simulator_carries_a_verifying_certificate() {
    // The simulator verifies each decision's certificate against the height's
    // validator set and stops at the first failure; here with equivocators.
    sim::seeds::run_seeds("certificates_in_simulation", 0..100, |seed| {
        let report = sim::Scenario::new(seed, 4)
            .with_byzantine(&[sim::Behaviour::Equivocate])
            .run();
        report.safe_and_finished()?;
        Ok(report)
    });
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_as_a_certificate_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = borsh::from_slice::<CommitCertificate>(&bytes);
    }
}

#[test]
fn certificates_round_trip_through_borsh() {
    let (_, _, certificate) = three_of_four();
    let bytes = borsh::to_vec(&certificate).unwrap();
    assert_eq!(
        borsh::from_slice::<CommitCertificate>(&bytes).unwrap(),
        certificate
    );
    // A length prefix claiming 2^32-1 signatures must fail, not allocate.
    let mut lying = bytes[..44].to_vec(); // height, round, value
    lying.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(borsh::from_slice::<CommitCertificate>(&lying).is_err());
}
