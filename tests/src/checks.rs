//! The checks every attack is judged by, shared by all scenarios (issue 16):
//!
//! 1. liveness: within [`COMMIT_DEADLINE`] of the attack starting, every
//!    honest validator commits a block above every height committed before
//!    it started (for a restarted node that means it caught up);
//! 2. no honest process exits (a panic or a fatal error ends the process);
//! 3. no committed transaction carries an invalid signature;
//! 4. every honest node holds the same blocks — the same header hash *and*
//!    the same body bytes — at every height up to the lowest tip;
//! 5. memory stays bounded: each honest process's peak RSS (VmHWM) is under
//!    [`MAX_PEAK_RSS`].
//!
//! Checks only observe (the API, `/proc`, the processes); they never relax
//! a bound to fit what a node does today.

use std::time::{Duration, Instant};

use crypto::Hash;

use crate::client;
use crate::cluster::{Cluster, HONEST};

/// Every honest validator must commit within this long of an attack's start.
pub const COMMIT_DEADLINE: Duration = Duration::from_secs(10);
/// Bound on each honest process's peak resident memory. The README measures
/// a node under full load below 300 MiB; a Byzantine peer must not push it
/// past this.
pub const MAX_PEAK_RSS: u64 = 400 * 1024 * 1024;

/// What one scenario showed.
#[derive(Debug, Default)]
pub struct Verdict {
    pub scenario: String,
    /// Broken checks, each naming the node and the numbers.
    pub failures: Vec<String>,
    /// Seconds from the attack's start to each honest node's first commit
    /// above the pre-attack heights (`None`: none within the deadline).
    pub first_commit: Vec<Option<f64>>,
    /// Longest stretch of the attack without a commit, per honest node, s.
    pub longest_gap: Vec<f64>,
    /// Heights before the attack and at the end, per honest node.
    pub heights: Vec<(u64, u64)>,
    /// Peak RSS per honest node, bytes.
    pub peak_rss: Vec<Option<u64>>,
    /// Messages the hostile peer sent.
    pub hostile_sent: u64,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The committed height of each honest node (`None`: its API is down).
pub fn heights(cluster: &Cluster) -> Vec<Option<u64>> {
    HONEST
        .iter()
        .map(|&index| client::status(&cluster.api(index)).ok().map(|s| s.height))
        .collect()
}

/// Waits (bounded) until every honest node has committed `height`.
pub fn wait_for_height(cluster: &Cluster, height: u64, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let now = heights(cluster);
        if now.iter().all(|h| h.is_some_and(|h| h >= height)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the honest validators did not all reach height {height} within {limit:?}: {now:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Watches the honest nodes from `started` for `window` (longer than the
/// commit deadline): each must commit above `before`'s highest height
/// within the deadline, and then keep committing — no stretch of the window
/// longer than the deadline without a commit, its end included, so a node
/// that commits the block in flight and then halts fails too.
pub fn watch_progress(
    cluster: &mut Cluster,
    before: &[u64],
    started: Instant,
    window: Duration,
    verdict: &mut Verdict,
) {
    let bar = before.iter().copied().max().unwrap_or(0);
    let mut first = vec![None; HONEST.len()];
    let mut last_height = vec![bar; HONEST.len()];
    let mut last_commit = vec![0.0f64; HONEST.len()];
    let mut longest_gap = vec![0.0f64; HONEST.len()];
    while started.elapsed() < window {
        let now = started.elapsed().as_secs_f64();
        for (slot, height) in heights(cluster).into_iter().enumerate() {
            if let Some(height) = height
                && height > last_height[slot]
            {
                first[slot].get_or_insert(now);
                longest_gap[slot] = f64::max(longest_gap[slot], now - last_commit[slot]);
                last_commit[slot] = now;
                last_height[slot] = height;
            }
        }
        cluster.poll_exits();
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = started.elapsed().as_secs_f64();
    let deadline = COMMIT_DEADLINE.as_secs_f64();
    for (slot, &index) in HONEST.iter().enumerate() {
        longest_gap[slot] = f64::max(longest_gap[slot], end - last_commit[slot]);
        match first[slot] {
            None => verdict.failures.push(format!(
                "liveness: validator-{index} committed nothing above height {bar} within {end:.0} s of the attack starting"
            )),
            Some(seconds) if seconds > deadline => verdict.failures.push(format!(
                "liveness: validator-{index} first committed above height {bar} only {seconds:.1} s after the attack started (limit {COMMIT_DEADLINE:?})"
            )),
            Some(_) if longest_gap[slot] > deadline => verdict.failures.push(format!(
                "liveness: validator-{index} went {:.1} s without a commit during the attack (limit {COMMIT_DEADLINE:?}; stuck at height {} at the end)",
                longest_gap[slot], last_height[slot]
            )),
            Some(_) => {}
        }
    }
    verdict.first_commit = first;
    verdict.longest_gap = longest_gap;
}

/// Checks 2–5 on the cluster as it is now.
pub fn check_state(cluster: &mut Cluster, before: &[u64], verdict: &mut Verdict) {
    for (index, status) in cluster.exited().to_vec() {
        verdict.failures.push(format!(
            "exit: validator-{index} exited with {status}; see {}",
            cluster.home(index).join("node.log").display()
        ));
    }
    let tips = heights(cluster);
    verdict.heights = before
        .iter()
        .zip(&tips)
        .map(|(before, tip)| (*before, tip.unwrap_or(0)))
        .collect();
    verdict.peak_rss = HONEST
        .iter()
        .map(|&index| cluster.peak_rss(index))
        .collect();
    for (&index, rss) in HONEST.iter().zip(&verdict.peak_rss) {
        if let Some(rss) = rss
            && *rss > MAX_PEAK_RSS
        {
            verdict.failures.push(format!(
                "memory: validator-{index}'s peak RSS is {} MiB, over the bound of {} MiB",
                rss >> 20,
                MAX_PEAK_RSS >> 20
            ));
        }
    }
    let lowest = tips.iter().flatten().copied().min().unwrap_or(0);
    check_blocks(cluster, lowest, verdict);
}

/// Same blocks everywhere, and every signature in them valid.
fn check_blocks(cluster: &Cluster, lowest: u64, verdict: &mut Verdict) {
    let mut bad_signatures = 0usize;
    for height in 1..=lowest {
        let mut seen: Vec<(usize, Hash, Hash)> = Vec::new();
        for &index in &HONEST {
            let block = match client::block(&cluster.api(index), height) {
                Ok(block) => block,
                Err(error) => {
                    verdict.failures.push(format!(
                        "blocks: validator-{index} cannot serve block {height}: {error}"
                    ));
                    continue;
                }
            };
            for tx in &block.txs {
                if tx.verify_signature().is_err() {
                    bad_signatures += 1;
                    if bad_signatures <= 5 {
                        verdict.failures.push(format!(
                            "signature: validator-{index} committed transaction {} (signer {}, nonce {}) with an invalid signature at height {height}",
                            tx.hash(),
                            tx.tx.signer,
                            tx.tx.nonce
                        ));
                    }
                }
            }
            seen.push((index, block.hash(), Hash::digest(&block.to_bytes())));
        }
        if let Some((first, hash, body)) = seen.first().copied() {
            for &(other, other_hash, other_body) in &seen[1..] {
                if other_hash != hash {
                    verdict.failures.push(format!(
                        "fork: at height {height} validator-{first} has block {hash}, validator-{other} has {other_hash}"
                    ));
                } else if other_body != body {
                    verdict.failures.push(format!(
                        "fork: at height {height} validator-{first} and validator-{other} hold block {hash} with different bodies"
                    ));
                }
            }
        }
    }
    if bad_signatures > 5 {
        verdict.failures.push(format!(
            "signature: {bad_signatures} committed transactions with invalid signatures in all"
        ));
    }
}

/// The table printed after the run: one row per scenario.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "scenario                     | result | first commit s  | longest gap s   | heights before→after    | peak RSS MiB | sent\n",
    );
    for verdict in verdicts {
        let first: Vec<String> = verdict
            .first_commit
            .iter()
            .map(|s| s.map_or("-".into(), |s| format!("{s:.1}")))
            .collect();
        let gaps: Vec<String> = verdict
            .longest_gap
            .iter()
            .map(|gap| format!("{gap:.1}"))
            .collect();
        let heights: Vec<String> = verdict
            .heights
            .iter()
            .map(|(before, after)| format!("{before}→{after}"))
            .collect();
        let rss: Vec<String> = verdict
            .peak_rss
            .iter()
            .map(|rss| rss.map_or("-".into(), |rss| (rss >> 20).to_string()))
            .collect();
        out.push_str(&format!(
            "{:<28} | {:<6} | {:<15} | {:<15} | {:<23} | {:<12} | {}\n",
            verdict.scenario,
            if verdict.passed() { "pass" } else { "FAIL" },
            first.join(" "),
            gaps.join(" "),
            heights.join(" "),
            rss.join(" "),
            verdict.hostile_sent
        ));
        for failure in &verdict.failures {
            out.push_str(&format!("    - {failure}\n"));
        }
    }
    out
}
