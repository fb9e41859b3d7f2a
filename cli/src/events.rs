//! `scf events tail`: prints the node's event feed (`GET /v1/events`), one
//! line per event (human text, or one JSON object per line with `--json`),
//! from a cursor on; with `--follow` it long-polls for new events until
//! interrupted. For scripts and operators; a bank's systems would keep the
//! last printed `cursor` and pass it as `--after` to resume.
//!
//! Not here: checking certificates or storing anything (that is the sink's
//! job); the trust check of `trust.rs` is made once before the first page.

use std::io::Write;

use clap::Subcommand;
use node::api::event_views::{EventData, EventView};

use crate::commands::Target;

/// How long each `--follow` request asks the node to wait for new events
/// (the node caps it with `[api_limits] max_event_wait_ms`).
const FOLLOW_WAIT_MS: u64 = 20_000;

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print the event feed from a cursor on; with --follow, keep waiting for new events.
    Tail {
        /// Start after this cursor (a `cursor` or `next` the feed gave); from the oldest kept event when absent.
        #[arg(long)]
        after: Option<String>,
        /// Keep waiting for new events (long-polls) until interrupted.
        #[arg(long)]
        follow: bool,
        /// Only these kinds, comma-separated (e.g. token_transferred,receivable_settled).
        #[arg(long)]
        kinds: Option<String>,
        /// Only events that involve this participant: public key (hex) or key file.
        #[arg(long)]
        party: Option<String>,
    },
}

pub fn run(command: EventsCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    let EventsCommand::Tail {
        after,
        follow,
        kinds,
        party,
    } = command;
    target.trust.check(&target.client)?;
    let party = party.as_deref().map(crate::parse::public_key).transpose()?;
    if let Some(after) = &after {
        after.parse::<ledger::Cursor>()?;
    }
    // Checked here so that nothing but known names goes into the query.
    if let Some(kinds) = &kinds {
        for kind in kinds.split(',') {
            if !ledger::EventKind::NAMES.contains(&kind) {
                anyhow::bail!(
                    "--kinds: {kind:?} is not an event kind; kinds are {}",
                    ledger::EventKind::NAMES.join(", ")
                );
            }
        }
    }
    let mut after = after;
    let stdout = std::io::stdout();
    loop {
        let wait_ms = if follow { FOLLOW_WAIT_MS } else { 0 };
        let page =
            target
                .client
                .events(after.as_deref(), wait_ms, kinds.as_deref(), party.as_ref())?;
        let mut out = stdout.lock();
        for event in &page.events {
            let written = if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(event).expect("events always serialise")
                )
            } else {
                writeln!(out, "{}", line(event))
            };
            // A closed pipe (`| head`) ends the tail quietly.
            if written.is_err() {
                return Ok(());
            }
        }
        if out.flush().is_err() {
            return Ok(());
        }
        let moved = after.as_deref() != Some(page.next.as_str());
        if page.events.is_empty() && !moved && !follow {
            return Ok(());
        }
        after = Some(page.next);
    }
}

/// A key as its first 12 hex digits, enough to tell participants apart.
fn short(key: &impl std::fmt::Display) -> String {
    key.to_string().chars().take(12).collect()
}

/// One human line: cursor, block time, kind, what happened.
pub fn line(event: &EventView) -> String {
    let what = match &event.data {
        EventData::ParticipantRegistered { key, name, roles } => {
            let roles: Vec<&str> = roles.iter().map(|role| role.name()).collect();
            format!("{name} ({}) as {}", short(key), roles.join(", "))
        }
        EventData::ParticipantDeactivated { key } => short(key),
        EventData::CreditLineGranted {
            bank, core, limit, ..
        } => format!("bank {} grants core {} {limit}", short(bank), short(core)),
        EventData::ReceivableConfirmed {
            root,
            core,
            supplier,
            amount,
            maturity,
            ..
        } => format!(
            "root {} {amount} by core {} to {} matures {maturity}",
            short(root),
            short(core),
            short(supplier)
        ),
        EventData::TokenTransferred {
            input,
            holder,
            amount,
            outputs,
            ..
        } => {
            let outputs: Vec<String> = outputs
                .iter()
                .map(|output| {
                    format!(
                        "{} {} -> {}",
                        short(&output.token),
                        output.amount,
                        short(&output.holder)
                    )
                })
                .collect();
            format!(
                "{} {amount} of {}: {}",
                short(input),
                short(holder),
                outputs.join(", ")
            )
        }
        EventData::FinancingRequested {
            token,
            holder,
            bank,
            amount,
            rate_bps,
            ..
        } => format!(
            "{} {amount} by {} to bank {} at {}.{:02}%",
            short(token),
            short(holder),
            short(bank),
            rate_bps / 100,
            rate_bps % 100
        ),
        EventData::FinancingAccepted {
            token,
            seller,
            bank,
            amount,
            price,
            rate_bps,
            days,
            ..
        } => format!(
            "{} {amount}: bank {} paid {price} to {} ({}.{:02}% over {days} days)",
            short(token),
            short(bank),
            short(seller),
            rate_bps / 100,
            rate_bps % 100
        ),
        EventData::FinancingRejected {
            token,
            holder,
            bank,
        } => format!(
            "{} of {} by bank {}",
            short(token),
            short(holder),
            short(bank)
        ),
        EventData::ReceivableSettled {
            root,
            holder,
            amount,
            tokens,
            payment_ref,
            ..
        } => format!(
            "root {} pays {} {amount} for {tokens} token(s), payment {payment_ref}",
            short(root),
            short(holder)
        ),
        EventData::TokenFrozen {
            token,
            holder,
            reason,
        } => format!("{} of {}: {reason}", short(token), short(holder)),
        EventData::TokenUnfrozen { token, holder } => {
            format!("{} of {}", short(token), short(holder))
        }
        EventData::ParticipantKeyRotated {
            participant,
            new_key,
        }
        | EventData::KeyRecoveryRequested {
            participant,
            new_key,
        }
        | EventData::ParticipantKeyRecovered {
            participant,
            new_key,
        } => format!("{} to key {}", short(participant), short(new_key)),
        EventData::ValidatorChangeProposed {
            proposal,
            change,
            expires_at,
        } => format!("{} {change} (open until {expires_at})", short(proposal)),
        EventData::ValidatorChangeApproved { proposal } => short(proposal),
        EventData::ValidatorChangeAdopted {
            proposal,
            change,
            effective_from,
            ..
        } => format!(
            "{} {change}, in force from height {effective_from}",
            short(proposal)
        ),
    };
    format!(
        "{}  {}  {:<23}  {what}",
        event.cursor,
        event.block_time,
        event.data.kind()
    )
}
