//! The transaction and query commands: their arguments (clap) and which
//! function of `transactions.rs` or `queries.rs` each one calls.
//!
//! Transactions are signed locally with `--key FILE` (for `participant
//! register | deactivate`, whose `--key` is the participant's, the operator's
//! key file is `--signer FILE`) and sent to `--node URL`, waiting for the
//! commit. Every command first checks that the node serves the trusted
//! chain (`trust.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::client::NodeClient;
use crate::output::emit;
use crate::parse;
use crate::queries;
use crate::transactions::{Session, TxOutcome};
use crate::trust::Trust;

/// The node a command talks to, and what the CLI trusts about its chain.
pub struct Target {
    pub client: NodeClient,
    pub trust: Trust,
}

/// The signing key and how long to wait for the commit.
#[derive(Args, Debug, Clone)]
pub struct Signing {
    /// The signer's key file.
    #[arg(long = "key", visible_alias = "signer", env = "SCF_KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub wait: Wait,
}

#[derive(Args, Debug, Clone)]
pub struct Wait {
    /// Seconds to wait for the commit.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum ParticipantCommand {
    /// Register a participant (operator).
    Register {
        #[arg(long)]
        name: String,
        /// operator, bank, core_enterprise (or core), supplier, auditor; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The new participant's public key (hex) or key file.
        #[arg(long)]
        key: String,
        /// The operator's key file.
        #[arg(long, env = "SCF_KEY")]
        signer: PathBuf,
        #[command(flatten)]
        wait: Wait,
    },
    /// Deactivate a participant (operator).
    Deactivate {
        /// The participant's public key (hex) or key file.
        #[arg(long)]
        key: String,
        /// The operator's key file.
        #[arg(long, env = "SCF_KEY")]
        signer: PathBuf,
        #[command(flatten)]
        wait: Wait,
    },
    /// Move your identity (roles, holdings, credit lines, nonce) to a new
    /// key, signed with your current key; the current key is refused
    /// afterwards.
    RotateKey {
        /// The new public key (hex) or key file (`scf keys new` makes one).
        #[arg(long)]
        new_key: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Ask to move a participant that lost its key to a new key (operator);
    /// it takes effect only when an auditor approves (`approve-recovery`).
    RequestRecovery {
        /// The participant: its identity (its first public key, hex) or key file.
        #[arg(long)]
        participant: String,
        /// The participant's new public key (hex) or key file.
        #[arg(long)]
        new_key: String,
        /// The operator's key file.
        #[command(flatten)]
        signing: Signing,
    },
    /// Approve the operator's request to move a participant to a new key
    /// (auditor); the lost key is refused afterwards.
    ApproveRecovery {
        /// The participant: its identity (its first public key, hex) or key file.
        #[arg(long)]
        participant: String,
        /// The new public key the request names (hex) or key file.
        #[arg(long)]
        new_key: String,
        /// The auditor's key file.
        #[command(flatten)]
        signing: Signing,
    },
    /// Show a participant: name, roles, next nonce, credit line.
    Show {
        /// Public key (hex) or key file.
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreditCommand {
    /// Set this bank's grant in a core enterprise's credit line (bank).
    Grant {
        /// The core enterprise's public key (hex) or key file.
        #[arg(long)]
        core: String,
        /// The grant, e.g. 5000000.00 (replaces this bank's previous grant).
        #[arg(long)]
        limit: String,
        #[command(flatten)]
        signing: Signing,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceivableCommand {
    /// Confirm what the core enterprise owes a supplier: issues a root token (core enterprise).
    Confirm {
        /// The supplier's public key (hex) or key file.
        #[arg(long)]
        to: String,
        /// e.g. 1000000.00
        #[arg(long)]
        amount: String,
        /// A date (2027-03-31, midnight UTC) or an RFC 3339 time.
        #[arg(long)]
        maturity: String,
        /// The invoice number; the ledger records its SHA-256, once per chain.
        #[arg(long)]
        invoice: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Pay every holder of a root's tokens at or after maturity (the issuer).
    Settle {
        /// The root token (the confirmation).
        root: String,
        /// The payment's reference, e.g. the bank transfer id.
        #[arg(long = "payment-ref")]
        payment_ref: String,
        #[command(flatten)]
        signing: Signing,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Pay parts of a token to others; the remainder stays with you as a new token (holder).
    Transfer {
        token: String,
        /// A recipient's public key (hex) or key file; repeat with --amount for each.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// The amount for the --to at the same position.
        #[arg(long = "amount", required = true)]
        amounts: Vec<String>,
        #[command(flatten)]
        signing: Signing,
    },
    /// Block a disputed token (auditor).
    Freeze {
        token: String,
        #[arg(long, default_value = "disputed")]
        reason: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Release a frozen token (auditor).
    Unfreeze {
        token: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Show one token.
    Show { id: String },
    /// List a participant's unspent tokens.
    List {
        /// Public key (hex) or key file.
        #[arg(long)]
        holder: String,
    },
    /// Show a token's lineage as a tree, from its root confirmation down.
    Trace { id: String },
}

#[derive(Subcommand, Debug)]
pub enum FinanceCommand {
    /// Offer a token to a bank at a yearly discount rate in percent (holder).
    Request {
        token: String,
        /// The bank's public key (hex) or key file.
        #[arg(long)]
        bank: String,
        /// Yearly discount rate in percent, e.g. 4.35.
        #[arg(long)]
        rate: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Buy a token offered to this bank at the discounted price (bank).
    Accept {
        token: String,
        #[command(flatten)]
        signing: Signing,
    },
    /// Decline a token offered to this bank (bank).
    Reject {
        token: String,
        #[command(flatten)]
        signing: Signing,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlockCommand {
    /// Show a block with its certificate: a height or `latest`.
    Show { height: String },
}

#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Show where a transaction is: pending, committed or rejected.
    Show { hash: String },
}

fn session(target: &Target, signing: &Signing) -> anyhow::Result<Session> {
    Session::open(
        target.client.clone(),
        &target.trust,
        &signing.key,
        Duration::from_secs(signing.wait.timeout),
    )
}

fn print(json: bool, what: &str, outcome: &TxOutcome) {
    emit(json, outcome, |outcome| outcome.print(what));
}

pub fn participant(command: ParticipantCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    match command {
        ParticipantCommand::Register {
            name,
            roles,
            key,
            signer,
            wait,
        } => {
            let key = parse::public_key(&key)?;
            let session = session(target, &Signing { key: signer, wait })?;
            let outcome = session.register_participant(key, &name, &roles)?;
            print(json, &format!("registered {name}"), &outcome);
        }
        ParticipantCommand::Deactivate { key, signer, wait } => {
            let key = parse::public_key(&key)?;
            let session = session(target, &Signing { key: signer, wait })?;
            let outcome = session.deactivate_participant(key)?;
            print(json, "deactivated", &outcome);
        }
        ParticipantCommand::RotateKey { new_key, signing } => {
            let new_key = parse::public_key(&new_key)?;
            let session = session(target, &signing)?;
            let outcome = session.rotate_key(new_key)?;
            emit(json, &outcome, |outcome| {
                outcome.print("key rotated");
                println!("  sign with the key of {new_key} from now on; the old key is refused");
            });
        }
        ParticipantCommand::RequestRecovery {
            participant,
            new_key,
            signing,
        } => {
            let participant = parse::public_key(&participant)?;
            let new_key = parse::public_key(&new_key)?;
            let outcome = session(target, &signing)?.request_key_recovery(participant, new_key)?;
            emit(json, &outcome, |outcome| {
                outcome.print("key recovery requested");
                println!(
                    "  an auditor approves it with `scf participant approve-recovery --participant {participant} --new-key {new_key} --key AUDITOR.key`"
                );
            });
        }
        ParticipantCommand::ApproveRecovery {
            participant,
            new_key,
            signing,
        } => {
            let participant = parse::public_key(&participant)?;
            let new_key = parse::public_key(&new_key)?;
            let outcome = session(target, &signing)?.approve_key_recovery(participant, new_key)?;
            emit(json, &outcome, |outcome| {
                outcome.print("key recovered");
                println!(
                    "  {participant} signs with the key of {new_key} from now on; the lost key is refused"
                );
            });
        }
        ParticipantCommand::Show { key } => {
            queries::participant_show(target, &parse::public_key(&key)?, json)?
        }
    }
    Ok(())
}

pub fn credit(command: CreditCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    let CreditCommand::Grant {
        core,
        limit,
        signing,
    } = command;
    let core = parse::public_key(&core)?;
    let outcome = session(target, &signing)?.grant_credit(core, &limit)?;
    print(json, "credit line granted", &outcome);
    Ok(())
}

pub fn receivable(command: ReceivableCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    match command {
        ReceivableCommand::Confirm {
            to,
            amount,
            maturity,
            invoice,
            signing,
        } => {
            let supplier = parse::public_key(&to)?;
            let maturity = parse::maturity(&maturity)?;
            let outcome = session(target, &signing)?
                .confirm_receivable(supplier, &amount, maturity, &invoice)?;
            print(json, "receivable confirmed", &outcome);
        }
        ReceivableCommand::Settle {
            root,
            payment_ref,
            signing,
        } => {
            let root = parse::token_id(&root)?;
            let outcome = session(target, &signing)?.settle(&root, &payment_ref)?;
            print(json, "settled", &outcome);
        }
    }
    Ok(())
}

pub fn token(command: TokenCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Transfer {
            token,
            to,
            amounts,
            signing,
        } => {
            if to.len() != amounts.len() {
                anyhow::bail!(
                    "give one --amount for each --to ({} recipients, {} amounts)",
                    to.len(),
                    amounts.len()
                );
            }
            let token = parse::token_id(&token)?;
            let payments = to
                .iter()
                .zip(amounts)
                .map(|(to, amount)| Ok((parse::public_key(to)?, amount)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let outcome = session(target, &signing)?.transfer(&token, &payments)?;
            print(json, "transferred", &outcome);
        }
        TokenCommand::Freeze {
            token,
            reason,
            signing,
        } => {
            let token = parse::token_id(&token)?;
            let outcome = session(target, &signing)?.freeze(&token, &reason)?;
            print(json, "frozen", &outcome);
        }
        TokenCommand::Unfreeze { token, signing } => {
            let token = parse::token_id(&token)?;
            let outcome = session(target, &signing)?.unfreeze(&token)?;
            print(json, "unfrozen", &outcome);
        }
        TokenCommand::Show { id } => queries::token_show(target, &parse::token_id(&id)?, json)?,
        TokenCommand::List { holder } => {
            queries::token_list(target, &parse::public_key(&holder)?, json)?
        }
        TokenCommand::Trace { id } => queries::token_trace(target, &parse::token_id(&id)?, json)?,
    }
    Ok(())
}

pub fn finance(command: FinanceCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    match command {
        FinanceCommand::Request {
            token,
            bank,
            rate,
            signing,
        } => {
            let token = parse::token_id(&token)?;
            let bank = parse::public_key(&bank)?;
            let outcome = session(target, &signing)?.request_financing(&token, bank, &rate)?;
            print(json, "financing requested", &outcome);
        }
        FinanceCommand::Accept { token, signing } => {
            let token = parse::token_id(&token)?;
            let outcome = session(target, &signing)?.accept_financing(&token)?;
            print(json, "financing accepted", &outcome);
        }
        FinanceCommand::Reject { token, signing } => {
            let token = parse::token_id(&token)?;
            let outcome = session(target, &signing)?.reject_financing(&token)?;
            print(json, "financing rejected", &outcome);
        }
    }
    Ok(())
}

pub fn block(command: BlockCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    let BlockCommand::Show { height } = command;
    queries::block_show(target, &height, json)
}

pub fn tx(command: TxCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    let TxCommand::Show { hash } = command;
    queries::tx_show(target, &hash, json)
}
