//! Participants: registered ed25519 keys with a name and roles, and what
//! lets a participant change its signing key without changing who it is.
//!
//! A participant's identity is the key it was registered with
//! ([`Participant::key`]): tokens, credit lines, financing offers and events
//! name it by that key forever. It signs with [`Participant::signing_key`],
//! which starts as the same key and moves on each rotation; the new key is
//! bound to the identity by a [`KeyBinding`]. So a rotation writes two
//! entries whatever the participant holds, and no token is rewritten.
//!
//! Validators' consensus keys sign governance transactions through the same
//! records: each validator has an account, a participant with the
//! [`Role::Validator`] role that only governance grants (see `governance`).

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::PublicKey;

/// What a participant may do. A participant may hold several roles.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Role {
    /// Consortium administrator: registers and deactivates participants.
    Operator = 0,
    /// Grants credit lines, accepts or rejects financing.
    Bank = 1,
    /// Confirms receivables (issues tokens) and settles them at maturity.
    CoreEnterprise = 2,
    /// Receives, splits, transfers and finances tokens.
    Supplier = 3,
    /// Freezes and unfreezes disputed tokens; approves lost-key recovery;
    /// verifies the chain.
    Auditor = 4,
    /// A validator's account: signs governance transactions with its
    /// consensus key. Granted by governance only (an adopted change that
    /// adds the validator), never by an operator or a genesis participant.
    Validator = 5,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Operator,
        Role::Bank,
        Role::CoreEnterprise,
        Role::Supplier,
        Role::Auditor,
        Role::Validator,
    ];

    /// The roles an operator (or a genesis file) may give a participant:
    /// every role but [`Role::Validator`].
    pub const GRANTABLE: [Role; 5] = [
        Role::Operator,
        Role::Bank,
        Role::CoreEnterprise,
        Role::Supplier,
        Role::Auditor,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Bank => "bank",
            Role::CoreEnterprise => "core_enterprise",
            Role::Supplier => "supplier",
            Role::Auditor => "auditor",
            Role::Validator => "validator",
        }
    }

    /// Parses a role name as written in genesis files and on the command line.
    pub fn parse(name: &str) -> Option<Role> {
        let normalized = name.trim().to_ascii_lowercase().replace('-', "_");
        match normalized.as_str() {
            "core" => Some(Role::CoreEnterprise),
            other => Role::ALL.into_iter().find(|role| role.name() == other),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A registered participant. Its `next_nonce` is the nonce its next
/// transaction must carry: each transaction applies once, in order, and the
/// sequence goes on across key rotations, so nothing signed with an old key
/// can be replayed under the new one.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Participant {
    /// The identity: the key it was registered with. Never changes.
    pub key: PublicKey,
    /// The key its transactions must be signed with now: `key` until the
    /// first rotation. Every other key it ever had is refused as a signer.
    pub signing_key: PublicKey,
    pub name: String,
    /// Sorted and without duplicates, so the encoding is canonical.
    pub roles: Vec<Role>,
    pub active: bool,
    pub next_nonce: u64,
}

impl Participant {
    /// A new, active participant; `roles` are sorted and deduplicated.
    pub fn new(
        key: PublicKey,
        name: impl Into<String>,
        roles: impl IntoIterator<Item = Role>,
    ) -> Participant {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        Participant {
            key,
            signing_key: key,
            name: name.into(),
            roles,
            active: true,
            next_nonce: 0,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// A validator's account (see [`Role::Validator`]).
    pub fn is_validator_account(&self) -> bool {
        self.has_role(Role::Validator)
    }
}

/// A key a participant rotated to, bound to the participant's identity.
/// Written once, when the key is first used, and never changed: a key is
/// bound to at most one participant, for good. Whether it is still the
/// participant's signing key is [`Participant::signing_key`]'s to say.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct KeyBinding {
    pub key: PublicKey,
    /// The participant's identity ([`Participant::key`]).
    pub participant: PublicKey,
}

/// An operator's request to replace a participant's lost key, waiting for
/// an auditor's approval; kept after it with the approval recorded. A
/// later request for the same participant replaces it.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct KeyRecovery {
    /// The participant's identity.
    pub participant: PublicKey,
    pub new_key: PublicKey,
    /// The operator who asked.
    pub requested_by: PublicKey,
    pub requested_at: u64,
    /// The auditor who approved, and the height; `None` while waiting.
    pub approved: Option<(PublicKey, u64)>,
}
