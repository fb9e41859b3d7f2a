//! A sample consortium shared by the integration tests.

#![allow(dead_code)]

use crypto::{Keypair, PublicKey};
use genesis::{ConsensusParams, Genesis, InitialParticipant, Observer, Validator};

/// A deterministic, valid public key.
pub fn key(seed: u8) -> PublicKey {
    Keypair::from_seed([seed; 32]).public()
}

fn validator(name: &str, seed: u8, port: u16, voting_power: u64) -> Validator {
    Validator {
        name: name.to_owned(),
        public_key: key(seed),
        peer_id: format!("12D3KooWPeer{seed}"),
        address: format!("/ip4/127.0.0.1/tcp/{port}"),
        voting_power,
    }
}

fn participant(name: &str, seed: u8, roles: &[&str]) -> InitialParticipant {
    InitialParticipant {
        name: name.to_owned(),
        public_key: key(seed),
        roles: roles.iter().map(|role| role.to_string()).collect(),
    }
}

/// Three validators, one observer, one participant per role.
pub fn sample() -> Genesis {
    Genesis {
        chain_name: "acme-supply-chain".to_owned(),
        currency_code: "CNY".to_owned(),
        currency_decimals: 2,
        genesis_time_ms: 1_767_225_600_000,
        validators: vec![
            validator("bank-a", 1, 26656, 10),
            validator("core-b", 2, 26657, 10),
            validator("bank-c", 3, 26658, 5),
        ],
        observers: vec![Observer {
            name: "auditor-node".to_owned(),
            peer_id: "12D3KooWObserver".to_owned(),
            address: "/dns4/audit.example.com/tcp/26656".to_owned(),
        }],
        participants: vec![
            participant("consortium-admin", 11, &["operator"]),
            participant("bank-a", 12, &["bank"]),
            participant("core-b", 13, &["core_enterprise"]),
            participant("supplier-d", 14, &["supplier"]),
            participant("auditor-e", 15, &["auditor", "supplier"]),
        ],
        consensus: ConsensusParams::default(),
    }
}
