//! The role names a genesis file may give its initial participants.
//!
//! The names are `ledger::Role::name()`. Only the exact lowercase names are
//! accepted (no aliases, no case folding): the file is written back exactly
//! as it was read, so what is accepted is also what is stored.
//!
//! This module does not know what a role permits; the ledger's rules do.

use ledger::Role;

/// Every role a genesis participant may have (`ledger::Role::GRANTABLE`),
/// in the order of `ledger::Role`. `validator` is not one: validators'
/// accounts come from the genesis validator list and from governance.
pub const ROLE_NAMES: [&str; 5] = [
    Role::GRANTABLE[0].name(),
    Role::GRANTABLE[1].name(),
    Role::GRANTABLE[2].name(),
    Role::GRANTABLE[3].name(),
    Role::GRANTABLE[4].name(),
];

/// The consortium administrator's role; a genesis needs at least one operator,
/// or nobody could ever register a participant.
pub const OPERATOR: &str = Role::Operator.name();

/// Whether `name` is one of [`ROLE_NAMES`], spelled exactly.
pub fn is_role_name(name: &str) -> bool {
    ROLE_NAMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_lowercase_names_are_roles() {
        for name in ROLE_NAMES {
            assert!(is_role_name(name));
        }
        for name in [
            "Operator",
            "core",
            "core-enterprise",
            " bank",
            "",
            "validator",
        ] {
            assert!(!is_role_name(name), "{name:?}");
        }
    }
}
