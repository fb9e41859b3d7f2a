//! The verdict of a chaos run, from the history and every node's chain.
//!
//! What it proves (each broken one is a line in `violations`, and the run
//! exits non-zero):
//! - every transaction acknowledged as committed (a node served a block
//!   holding it) is in every node's chain at that height, exactly once;
//! - no transaction appears twice in any chain;
//! - every node, the observer included, has the same block hash and app
//!   hash at every height, and the same transactions;
//! - per receivable, the unspent tokens (active, pending, financed to a
//!   bank, settled) add up to the root's amount;
//! - each participant's next nonce, on every node, equals its committed
//!   transactions;
//! - `scf audit verify --home` passes on every home, and every node stops
//!   cleanly on SIGTERM;
//! - with the disk fault: a node whose disk filled stopped cleanly or kept
//!   running, and came back; started on a damaged file (safety record,
//!   WAL, SST) it refuses with a message naming the file;
//! - restarted and resumed validators catch up within 20 s;
//! - while quorum is lost nothing commits, and commits resume within 10 s
//!   of its return;
//! - nothing is left in flight once the healed network had time to
//!   include it; no node exits on its own.
//!
//! It also measures the longest stretch without a commit while quorum was
//! up and the share of such seconds with a commit (`availability`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crypto::{Hash, PublicKey};
use ledger::{Block, TokenId, TxBody};
use node::api::types::{BlockView, LineageView, ParticipantView};
use serde::Serialize;

use super::faults::{CATCH_UP_LIMIT, Injected};
use super::history::{self, Event};
use super::net::ChaosNet;
use super::traffic::TrafficStats;
use super::{Config, Liveness};

/// Commits must resume within this long of quorum returning.
pub const RESUME_LIMIT: f64 = 10.0;
/// A commit seen this soon after quorum was lost was decided before.
const QUORUM_LOSS_GRACE: f64 = 1.0;

/// The summary JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub validators: usize,
    pub seconds: u64,
    pub rate_target: u32,
    /// Faults injected, by kind, and `total`.
    pub faults: BTreeMap<String, u32>,
    pub submitted: u64,
    /// Submissions a second: the offered load.
    pub submitted_per_s: f64,
    /// Transactions the rate asked for when every participant was busy or
    /// had nothing to do (not made up for later).
    pub starved: u64,
    pub committed_tx: u64,
    pub committed_tx_per_s: f64,
    pub refused_tx: u64,
    /// Refusals by rule (at submission or at execution).
    pub refused_by_rule: BTreeMap<String, u64>,
    pub resubmitted: u64,
    pub height: u64,
    pub lost_acknowledged: u64,
    pub duplicate_txs: u64,
    pub divergent_heights: u64,
    pub conservation_violations: u64,
    pub nonce_mismatches: u64,
    pub audit_failures: u64,
    pub stuck_in_flight: u64,
    pub max_catch_up_s: f64,
    pub max_commit_gap_s: f64,
    pub availability: f64,
    /// Seconds from quorum's return to the next commit, per quorum loss.
    pub quorum_resume_s: Vec<f64>,
    /// With the disk fault: what `scf node start` did on each damaged
    /// copy of a home.
    pub damaged_starts: Vec<String>,
    pub violations: Vec<String>,
    pub replay: String,
    pub history: String,
    pub dir: Option<String>,
}

/// What the run itself knows.
pub struct RunFacts<'a> {
    pub injected: Injected,
    pub stuck_in_flight: Vec<(String, String, f64, u32)>,
    pub converge: Result<u64, String>,
    pub stats: &'a TrafficStats,
    pub seconds: f64,
}

/// Waits (bounded) until every node reports one height twice in a row;
/// returns it.
pub fn wait_for_convergence(
    apis: &[String],
    live: &Liveness,
    limit: Duration,
) -> Result<u64, String> {
    let deadline = Instant::now() + limit;
    let mut last = Vec::new();
    loop {
        let heights: Vec<Option<u64>> = apis
            .iter()
            .map(|api| super::status(api).ok().map(|status| status.height))
            .collect();
        if let Some(first) = heights[0]
            && heights.iter().all(|h| *h == Some(first))
            && heights == last
        {
            for node in 0..apis.len() {
                live.set_up(node, true);
            }
            return Ok(first);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the nodes did not reach one height within {limit:?} of the end: {heights:?}"
            ));
        }
        last = heights;
        std::thread::sleep(Duration::from_millis(1000));
    }
}

/// One node's chain: per height, (block hash, app hash, tx hashes).
struct Chain {
    blocks: Vec<(Hash, Hash, Vec<Hash>)>,
}

fn read_chain(api: &str, tip: u64, keep_bodies: bool) -> Result<(Chain, Vec<Block>), String> {
    let mut blocks = Vec::new();
    let mut bodies = Vec::new();
    for height in 1..=tip {
        let view: BlockView = super::get_json(&format!("{api}/v1/blocks/{height}"))?;
        if keep_bodies {
            let bytes = hex::decode(&view.block_hex).map_err(|error| error.to_string())?;
            bodies.push(Block::from_bytes(&bytes).map_err(|error| error.to_string())?);
        }
        blocks.push((
            view.hash,
            view.app_hash,
            view.txs.iter().map(|tx| tx.hash.0).collect(),
        ));
    }
    Ok((Chain { blocks }, bodies))
}

pub fn check(
    chaos: &mut ChaosNet,
    config: &Config,
    history_path: &Path,
    participants: &[(String, PublicKey, u64)],
    facts: RunFacts<'_>,
) -> Summary {
    let mut summary = Summary {
        seed: config.seed,
        validators: config.validators,
        seconds: config.seconds,
        rate_target: config.rate,
        submitted: facts.stats.submitted.load(Ordering::Relaxed),
        starved: facts.stats.starved.load(Ordering::Relaxed),
        committed_tx: facts.stats.committed.load(Ordering::Relaxed),
        refused_tx: facts.stats.refused.load(Ordering::Relaxed),
        resubmitted: facts.stats.resubmitted.load(Ordering::Relaxed),
        stuck_in_flight: facts.stuck_in_flight.len() as u64,
        replay: config.replay_command(),
        ..Summary::default()
    };
    let per_second =
        |count: u64| (count as f64 / config.seconds.max(1) as f64 * 10.0).round() / 10.0;
    summary.committed_tx_per_s = per_second(summary.committed_tx);
    summary.submitted_per_s = per_second(summary.submitted);
    let violations = &mut summary.violations;
    let mut total = 0;
    for (kind, count) in &facts.injected.counts {
        summary.faults.insert(kind.name().into(), *count);
        total += count;
    }
    summary.faults.insert("total".into(), total);
    violations.extend(facts.injected.failures.iter().cloned());
    if !facts.stuck_in_flight.is_empty() {
        let examples: Vec<String> = facts
            .stuck_in_flight
            .iter()
            .take(5)
            .map(|(hash, kind, seconds, sent)| {
                format!("{kind} {hash} (in flight {seconds:.0} s, sent {sent} times)")
            })
            .collect();
        violations.push(format!(
            "{} transactions were still unresolved (neither committed nor refused) {} s after the traffic stopped, on a healed network: {}",
            facts.stuck_in_flight.len(),
            super::DRAIN_LIMIT.as_secs(),
            examples.join("; ")
        ));
    }
    let foreign = facts.stats.foreign.load(Ordering::Relaxed);
    if foreign > 0 {
        violations.push(format!(
            "{foreign} committed transactions were not signed by the traffic"
        ));
    }
    let records = match history::read(history_path) {
        Ok(records) => records,
        Err(error) => {
            violations.push(format!("the history cannot be read: {error}"));
            Vec::new()
        }
    };
    let tip = match &facts.converge {
        Ok(height) => *height,
        Err(error) => {
            violations.push(error.clone());
            chaos
                .apis()
                .iter()
                .filter_map(|api| super::status(api).ok().map(|status| status.height))
                .min()
                .unwrap_or(0)
        }
    };
    summary.height = tip;

    // Chains: the observer (last node) is the reference.
    let apis = chaos.apis();
    let reference = apis.len() - 1;
    let mut chains: Vec<Option<Chain>> = Vec::new();
    let mut bodies = Vec::new();
    for (node, api) in apis.iter().enumerate() {
        match read_chain(api, tip, node == reference) {
            Ok((chain, blocks)) => {
                if node == reference {
                    bodies = blocks;
                }
                chains.push(Some(chain));
            }
            Err(error) => {
                violations.push(format!(
                    "{} cannot serve its chain up to {tip}: {error}",
                    chaos.name(node)
                ));
                chains.push(None);
            }
        }
    }
    if let Some(reference_chain) = &chains[reference] {
        for index in 0..tip as usize {
            let want = &reference_chain.blocks[index];
            let differs: Vec<&str> = chains
                .iter()
                .enumerate()
                .filter(|(_, chain)| {
                    chain
                        .as_ref()
                        .is_some_and(|chain| chain.blocks[index] != *want)
                })
                .map(|(node, _)| chaos.name(node))
                .collect();
            if !differs.is_empty() {
                summary.divergent_heights += 1;
                if summary.divergent_heights <= 5 {
                    violations.push(format!(
                        "divergence at height {}: {differs:?} differ from the observer's block {} (app hash {})",
                        index + 1,
                        want.0,
                        want.1
                    ));
                }
            }
        }
    }
    if summary.divergent_heights > 0 {
        violations.push(format!(
            "{} divergent heights in all",
            summary.divergent_heights
        ));
    }

    // Acknowledged commits: on every node, at that height, exactly once.
    for (node, chain) in chains.iter().enumerate() {
        let Some(chain) = chain else { continue };
        let mut places: HashMap<Hash, Vec<u64>> = HashMap::new();
        for (index, block) in chain.blocks.iter().enumerate() {
            for tx in &block.2 {
                places.entry(*tx).or_default().push(index as u64 + 1);
            }
        }
        let twice = places.values().filter(|at| at.len() > 1).count() as u64;
        if twice > 0 {
            summary.duplicate_txs += twice;
            violations.push(format!(
                "{} holds {twice} transactions more than once",
                chaos.name(node)
            ));
        }
        let mut lost = 0u64;
        for record in &records {
            if let Event::Committed { tx, height, .. } = &record.event {
                let Ok(hash) = tx.parse::<Hash>() else {
                    continue;
                };
                if places.get(&hash).map(Vec::as_slice) != Some(&[*height][..]) {
                    lost += 1;
                    if lost <= 3 {
                        violations.push(format!(
                            "acknowledged transaction {tx}, committed at height {height} (t = {:.1} s), is at {:?} on {}",
                            record.t,
                            places.get(&hash),
                            chaos.name(node)
                        ));
                    }
                }
            }
        }
        summary.lost_acknowledged = summary.lost_acknowledged.max(lost);
    }
    if summary.lost_acknowledged > 0 {
        violations.push(format!(
            "{} acknowledged transactions lost or misplaced",
            summary.lost_acknowledged
        ));
    }

    check_conservation(&apis[reference], &bodies, &mut summary);
    check_nonces(chaos, &bodies, participants, &mut summary);
    check_timing(&records, config, &mut summary);
    for record in &records {
        if let Event::Refused { rule, .. } = &record.event {
            *summary.refused_by_rule.entry(rule.clone()).or_default() += 1;
        }
    }
    for record in &records {
        if let Event::Violation { what } = &record.event
            && !summary.violations.contains(what)
        {
            summary
                .violations
                .push(format!("t = {:.1} s: {what}", record.t));
        }
    }
    // The damaged-file starts need a home whose node died mid-write.
    let disk = config.faults.contains(&super::FaultKind::Disk);
    let killed_at = super::status(&chaos.api(0)).map_or(0, |status| status.height);
    if disk && let Err(error) = chaos.kill(0) {
        summary.violations.push(error);
    }
    stop_and_audit(chaos, &mut summary);
    if disk {
        let scratch = chaos.dir().join("damaged");
        let _ = std::fs::create_dir_all(&scratch);
        let (home, api) = (chaos.home(0).to_path_buf(), chaos.api(0));
        for start in super::disk::damaged_starts(chaos.binary(), &home, &api, killed_at, &scratch) {
            match start.verdict {
                Ok(message) => summary.damaged_starts.push(format!(
                    "{} ({}): refused: {message}",
                    start.damage,
                    start.file.display()
                )),
                Err(what) if what.starts_with("could not stage") => summary
                    .damaged_starts
                    .push(format!("{}: skipped, {what}", start.damage)),
                Err(what) => {
                    summary.damaged_starts.push(format!(
                        "{} ({}): {what}",
                        start.damage,
                        start.file.display()
                    ));
                    summary.violations.push(format!(
                        "damaged start, {} ({}): {what}",
                        start.damage,
                        start.file.display()
                    ));
                }
            }
        }
    }
    summary
}

/// Per receivable: the unspent tokens add up to the root's amount.
fn check_conservation(api: &str, bodies: &[Block], summary: &mut Summary) {
    let mut roots = Vec::new();
    for block in bodies {
        for tx in &block.txs {
            if let TxBody::ConfirmReceivable { amount, .. } = &tx.tx.body {
                roots.push((TokenId::derive(&tx.hash(), 0), amount.0));
            }
        }
    }
    for (root, amount) in roots {
        let mut after: Option<TokenId> = None;
        let mut unspent = 0u64;
        let mut broken = None;
        for _ in 0..10_000 {
            let url = match &after {
                None => format!("{api}/v1/tokens/{root}/lineage?limit=1000"),
                Some(cursor) => format!("{api}/v1/tokens/{root}/lineage?limit=1000&after={cursor}"),
            };
            let page: LineageView = match super::get_json(&url) {
                Ok(page) => page,
                Err(error) => {
                    broken = Some(error);
                    break;
                }
            };
            if after.is_none() && page.token.status != "spent" {
                unspent += page.token.amount_minor;
            }
            for token in &page.descendants {
                if token.root_id != root {
                    broken = Some(format!("token {} names root {}", token.id, token.root_id));
                }
                if token.status != "spent" {
                    unspent += token.amount_minor;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if broken.is_none() && unspent != amount {
            broken = Some(format!(
                "its unspent tokens add up to {unspent}, the root's amount is {amount}"
            ));
        }
        if let Some(what) = broken {
            summary.conservation_violations += 1;
            if summary.conservation_violations <= 5 {
                summary
                    .violations
                    .push(format!("conservation: receivable {root}: {what}"));
            }
        }
    }
}

/// Each participant's next nonce, on every node, equals its committed
/// transactions in the chain.
fn check_nonces(
    chaos: &ChaosNet,
    bodies: &[Block],
    participants: &[(String, PublicKey, u64)],
    summary: &mut Summary,
) {
    let mut committed: HashMap<PublicKey, u64> = HashMap::new();
    for block in bodies {
        for tx in &block.txs {
            *committed.entry(tx.tx.signer).or_default() += 1;
        }
    }
    for node in 0..chaos.len() {
        let api = chaos.api(node);
        for (name, key, _) in participants {
            let want = committed.get(key).copied().unwrap_or(0);
            let got = super::get_json::<ParticipantView>(&format!("{api}/v1/participants/{key}"))
                .map(|view| view.next_nonce);
            if got != Ok(want) {
                summary.nonce_mismatches += 1;
                if summary.nonce_mismatches <= 5 {
                    summary.violations.push(format!(
                        "nonce: {name}'s next nonce on {} is {got:?}, it has {want} committed transactions",
                        chaos.name(node)
                    ));
                }
            }
        }
    }
}

/// Catch-up, quorum loss, commit gaps and availability, from the history.
pub fn check_timing(records: &[history::Record], config: &Config, summary: &mut Summary) {
    for record in records {
        if let Event::CaughtUp {
            node,
            target,
            seconds,
        } = &record.event
        {
            match seconds {
                Some(seconds) => {
                    summary.max_catch_up_s = summary.max_catch_up_s.max(*seconds);
                    if *seconds > CATCH_UP_LIMIT.as_secs_f64() {
                        summary.violations.push(format!(
                            "catch-up: node {node} took {seconds:.1} s to reach height {target} (limit {} s)",
                            CATCH_UP_LIMIT.as_secs()
                        ));
                    }
                }
                None => {
                    // A miss shows as the whole wait.
                    summary.max_catch_up_s = summary
                        .max_catch_up_s
                        .max(super::faults::CATCH_UP_WAIT.as_secs_f64());
                    summary.violations.push(format!(
                        "catch-up: node {node} never reached height {target} (t = {:.1} s)",
                        record.t
                    ));
                }
            }
        }
    }
    summary.max_catch_up_s = round(summary.max_catch_up_s);
    // Times at which the highest height seen anywhere grew.
    let mut highest = 0u64;
    let mut commits = Vec::new();
    let mut outages: Vec<(f64, f64)> = Vec::new();
    for record in records {
        match &record.event {
            Event::Height { height, .. } if *height > highest => {
                if highest > 0 {
                    commits.push(record.t);
                }
                highest = *height;
            }
            Event::Quorum { up: false } => outages.push((record.t, f64::INFINITY)),
            Event::Quorum { up: true } => {
                if let Some(last) = outages.last_mut() {
                    last.1 = record.t;
                }
            }
            _ => {}
        }
    }
    for (lost, back) in &outages {
        let during = commits
            .iter()
            .filter(|t| **t > lost + QUORUM_LOSS_GRACE && **t < *back)
            .count();
        if during > 0 {
            summary.violations.push(format!(
                "quorum loss: {during} commits while f + 1 validators were down ({lost:.1}–{back:.1} s)"
            ));
        }
        match commits.iter().find(|t| **t >= *back) {
            Some(t) => {
                let resume = round(t - back);
                summary.quorum_resume_s.push(resume);
                if resume > RESUME_LIMIT {
                    summary.violations.push(format!(
                        "quorum loss: commits resumed {resume} s after quorum returned at {back:.1} s (limit {RESUME_LIMIT} s)"
                    ));
                }
            }
            None => summary.violations.push(format!(
                "quorum loss: nothing committed after quorum returned at {back:.1} s"
            )),
        }
    }
    // Seconds from the first commit to the end of the traffic.
    let Some(&first) = commits.first() else {
        summary
            .violations
            .push("nothing was committed during the run".into());
        return;
    };
    let end = config.seconds as f64;
    let (mut up_seconds, mut with_commit, mut run, mut longest) = (0u64, 0u64, 0.0f64, 0.0f64);
    let mut second = first.floor();
    while second + 1.0 <= end {
        let down = outages
            .iter()
            .any(|(lost, back)| second + 1.0 > *lost && second < *back);
        if down {
            run = 0.0;
        } else {
            up_seconds += 1;
            if commits.iter().any(|t| *t >= second && *t < second + 1.0) {
                with_commit += 1;
                run = 0.0;
            } else {
                run += 1.0;
                longest = longest.max(run);
            }
        }
        second += 1.0;
    }
    summary.max_commit_gap_s = longest;
    summary.availability = if up_seconds == 0 {
        0.0
    } else {
        (with_commit as f64 / up_seconds as f64 * 1000.0).round() / 1000.0
    };
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Stops every node (SIGTERM must end it cleanly), then audits each home.
fn stop_and_audit(chaos: &mut ChaosNet, summary: &mut Summary) {
    for node in 0..chaos.len() {
        if !chaos.is_running(node) {
            continue;
        }
        match chaos.stop(node) {
            Ok(status) if status.success() => {}
            Ok(status) => summary.violations.push(format!(
                "{} exited with {status} on SIGTERM, not cleanly",
                chaos.name(node)
            )),
            Err(error) => summary.violations.push(error),
        }
    }
    for node in 0..chaos.len() {
        let home = chaos.home(node).to_path_buf();
        let output = Command::new(chaos.binary())
            .args(["audit", "verify", "--home"])
            .arg(&home)
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                summary.audit_failures += 1;
                let text = String::from_utf8_lossy(&output.stderr);
                summary.violations.push(format!(
                    "audit: `scf audit verify --home {}` failed ({}): {}",
                    home.display(),
                    output.status,
                    text.lines().last().unwrap_or("")
                ));
            }
            Err(error) => {
                summary.audit_failures += 1;
                summary
                    .violations
                    .push(format!("audit: cannot run scf audit verify: {error}"));
            }
        }
    }
}
