//! Participants: registered ed25519 keys with a name and roles.

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
    /// Freezes and unfreezes disputed tokens; verifies the chain.
    Auditor = 4,
}

impl Role {
    pub const ALL: [Role; 5] = [
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

/// A registered key. Its `next_nonce` is the nonce its next transaction must
/// carry: each transaction applies once, in order.
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
    pub key: PublicKey,
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
            name: name.into(),
            roles,
            active: true,
            next_nonce: 0,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
