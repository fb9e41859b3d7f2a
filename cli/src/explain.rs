//! Turning a refusal (a broken ledger rule, a node's error answer) into a
//! message that says what was wrong and what to do, with amounts in the
//! chain's decimals and participants by name.
//!
//! The node reports a broken rule as its snake_case name (`not_holder`) and a
//! detail text whose amounts are minor units; the CLI knows more (the token
//! it fetched, the invoice text, names), so it writes its own sentence where
//! it can and falls back to the node's detail otherwise.

use std::fmt;

use crypto::PublicKey;
use node::api::types::TokenView;

use crate::client::NodeClient;

/// Why the exit code is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A usage error the argument parser cannot see (exit 2).
    Usage,
    /// A ledger rule or the node refused what was asked (exit 4).
    Refused,
    /// Something asked for does not exist (exit 5).
    NotFound,
    /// The transaction was accepted but did not commit in time (exit 6).
    NotCommitted,
}

impl Failure {
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Usage => 2,
            Failure::Refused => 4,
            Failure::NotFound => 5,
            Failure::NotCommitted => 6,
        }
    }
}

/// An error with a chosen exit code; the message is complete on its own.
#[derive(Debug)]
pub struct CliError {
    pub failure: Failure,
    /// The rule or error code, when there is one (`not_holder`).
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub fn refused(code: &str, message: impl Into<String>) -> anyhow::Error {
    CliError {
        failure: Failure::Refused,
        code: Some(code.to_string()),
        message: message.into(),
    }
    .into()
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError {
        failure: Failure::Usage,
        code: Some("usage".to_string()),
        message: message.into(),
    }
    .into()
}

pub fn not_found(message: impl Into<String>) -> anyhow::Error {
    CliError {
        failure: Failure::NotFound,
        code: Some("not_found".to_string()),
        message: message.into(),
    }
    .into()
}

/// What the command knew when it was refused, for a better sentence.
#[derive(Default)]
pub struct Context<'a> {
    pub client: Option<&'a NodeClient>,
    pub signer_name: Option<String>,
    /// The token the transaction is about, as fetched before signing.
    pub token: Option<&'a TokenView>,
    /// The invoice text of a confirmation.
    pub invoice: Option<&'a str>,
    /// The core enterprise of a confirmation.
    pub core: Option<PublicKey>,
    /// The amount requested by a confirmation, as typed.
    pub requested: Option<&'a str>,
}

impl Context<'_> {
    /// "supplier1 (9f2c…)" when the node knows the key, else the key.
    pub fn name_of(&self, key: &PublicKey) -> String {
        participant_label(self.client, key)
    }
}

/// A participant as people know it: its name and the start of its key.
pub fn participant_label(client: Option<&NodeClient>, key: &PublicKey) -> String {
    match client.and_then(|client| client.participant(key).ok()) {
        Some(participant) => format!("{} ({})", participant.name, &key.to_hex()[..12]),
        None => key.to_hex(),
    }
}

/// The message for a refusal with rule or error `code`.
pub fn explain(code: &str, detail: &str, context: &Context<'_>) -> anyhow::Error {
    let token_id = context.token.map(|token| token.id.to_string());
    let token = token_id.as_deref().unwrap_or("the token");
    let message = match code {
        "unknown_participant" => format!(
            "{detail}: ask an operator to register it (`scf participant register --name NAME --role ROLE --key KEY`)"
        ),
        "participant_inactive" => {
            format!("{detail}: an operator deactivated it; it can no longer sign or receive tokens")
        }
        "missing_role" => format!(
            "wrong role: {detail}; sign with the key of a participant that has that role (--key FILE), or ask an operator to register one"
        ),
        "not_holder" => match context.token {
            Some(view) => format!(
                "not the holder: token {} is held by {}, not by {}; only its holder may transfer or finance it",
                view.id,
                context.name_of(&view.holder),
                context.signer_name.as_deref().unwrap_or("the signer"),
            ),
            None => format!("not the holder: {detail}"),
        },
        "matured" => match context.token {
            Some(view) => format!(
                "token {} matured at {}: a matured token can no longer be transferred or financed; its issuer {} settles it (`scf receivable settle {}`)",
                view.id,
                view.maturity,
                context.name_of(&view.issuer),
                view.root_id
            ),
            None => format!("matured token: {detail}"),
        },
        "unknown_token" => format!(
            "unknown token: {detail}; check the id (`scf token list --holder KEY` lists a holder's tokens)"
        ),
        "invoice_already_confirmed" => format!(
            "invoice {} was already confirmed ({detail}); an invoice can be confirmed only once",
            context.invoice.unwrap_or("reference")
        ),
        "credit_line_exceeded" => credit_line_message(detail, context),
        "maturity_not_in_future" => format!(
            "the maturity must be in the future: {detail}; give a later --maturity (a date like 2027-03-31 or an RFC 3339 time)"
        ),
        "token_frozen" => {
            format!("{detail}; an auditor must unfreeze it first (`scf token unfreeze {token}`)")
        }
        "token_pending" => format!(
            "{detail}; the bank must accept or reject the financing first (`scf finance accept|reject {token}`)"
        ),
        "token_spent" => {
            format!("{detail}; its value now lives in its children (`scf token trace {token}`)")
        }
        "not_the_financing_bank" => {
            format!("{detail}; only the bank the token was offered to may accept or reject it")
        }
        "not_pending" => format!(
            "{detail}; the holder first offers it with `scf finance request {token} --bank KEY --rate R`"
        ),
        "not_root" => format!("{detail}: settlement is per root confirmation"),
        "not_issuer" => format!("{detail}: only the core enterprise that confirmed it settles it"),
        "not_matured" => format!("{detail}; settle at or after the maturity"),
        "disputed_tokens" => format!(
            "{detail}; an auditor must resolve the disputes and unfreeze them before settlement (`scf token unfreeze TOKEN`; `scf token trace {token}` shows which are frozen)"
        ),
        "no_recovery_requested" => format!(
            "{detail}; an operator requests the recovery first (`scf participant request-recovery --participant KEY --new-key KEY --key OPERATOR.key`)"
        ),
        "recovery_key_mismatch" => format!(
            "{detail}; approve exactly the new key the operator's request names, or ask the operator to request this one"
        ),
        "recovery_needs_second_participant" => format!(
            "{detail}; a recovery needs two people: an auditor other than the participant approves it"
        ),
        "discount_too_large" => format!("{detail}; offer a lower --rate"),
        "replay" | "nonce_too_high" | "nonce_taken" => format!(
            "{detail}: another transaction of this key committed or is pending at the same time; run the command again"
        ),
        "mempool_full" | "sender_queue_full" | "state_unavailable" => {
            format!("the node is busy: {detail}; retry in a moment")
        }
        "duplicate" => format!("{detail}; wait for it to commit (`scf tx show HASH`)"),
        "wrong_chain" => {
            format!("{detail}: the node serves another chain; check --node (or SCF_NODE)")
        }
        _ => format!("the node refused the transaction ({code}): {detail}"),
    };
    refused(code, message)
}

/// CreditLineExceeded, in decimals, with the numbers fetched from the node.
fn credit_line_message(detail: &str, context: &Context<'_>) -> String {
    let line = context
        .core
        .zip(context.client)
        .and_then(|(core, client)| client.participant(&core).ok())
        .and_then(|participant| participant.credit_line.map(|line| (participant.name, line)));
    match (line, context.requested) {
        (Some((name, line)), Some(requested)) => format!(
            "credit line exceeded: {name}'s credit line is {} with {} outstanding, and {requested} more was requested; a bank raises it with `scf credit grant --core KEY --limit AMOUNT`",
            line.limit, line.outstanding
        ),
        _ => format!(
            "credit line exceeded: {detail}; a bank raises it with `scf credit grant --core KEY --limit AMOUNT`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_their_exit_code_and_rule() {
        let error = explain("duplicate", "tx is pending", &Context::default());
        let cli = error.downcast_ref::<CliError>().unwrap();
        assert_eq!(cli.failure.exit_code(), 4);
        assert_eq!(cli.code.as_deref(), Some("duplicate"));
        assert!(cli.message.contains("tx is pending"), "{}", cli.message);
    }

    #[test]
    fn an_unknown_code_keeps_the_nodes_detail() {
        let error = explain("something_new", "what happened", &Context::default());
        assert_eq!(
            error.to_string(),
            "the node refused the transaction (something_new): what happened"
        );
    }
}
