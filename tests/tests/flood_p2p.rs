//! p2p floods against real `scf node start` processes (issue 17): with
//! validator 3's identity in a flooder's hands, the three honest
//! validators must keep committing (the liveness check of
//! `scf_tests::checks`: a commit within 10 s, no 10 s gap), stay connected
//! to each other, and keep their peak RSS (VmHWM) under [`MAX_PEAK_RSS`].
//! Each test prints every node's peak RSS and what the flood achieved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use node::network::P2pLimits;
use scf_tests::checks::{self, Verdict};
use scf_tests::client::Load;
use scf_tests::cluster::{Cluster, HONEST, LOAD_SIGNER};
use scf_tests::flood_p2p;

/// The bound these tests enforce on each honest node's peak RSS: the
/// Byzantine harness's bound (a node under full load measures below
/// 300 MiB in the README).
const MAX_PEAK_RSS: u64 = checks::MAX_PEAK_RSS;
const WARMUP_HEIGHT: u64 = 2;
const WARMUP_LIMIT: Duration = Duration::from_secs(40);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the flooder")
}

fn load(cluster: &Cluster) -> Load {
    Load::start(
        HONEST.iter().map(|&index| cluster.api(index)).collect(),
        cluster.net.genesis.chain_id(),
        cluster.net.participant_keys[LOAD_SIGNER].clone(),
    )
}

fn heights_now(cluster: &Cluster) -> Vec<u64> {
    checks::heights(cluster)
        .into_iter()
        .map(|height| height.unwrap_or(0))
        .collect()
}

/// The `scf_dropped_total` lines of a node's /metrics.
fn drop_counters(cluster: &Cluster, index: usize) -> Vec<String> {
    let url = format!("{}/metrics", cluster.api(index));
    let text = ureq::get(&url)
        .call()
        .ok()
        .and_then(|mut answer| answer.body_mut().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("scf_dropped_total{"))
        .map(str::to_owned)
        .collect()
}

fn report(name: &str, cluster: &mut Cluster, verdict: &Verdict) {
    for (slot, &index) in HONEST.iter().enumerate() {
        let rss = verdict.peak_rss.get(slot).copied().flatten();
        eprintln!(
            "[{name}] validator-{index}: peak RSS {} MiB (bound {} MiB), heights {:?}, first commit {:?} s, longest gap {:.1} s",
            rss.map_or("?".into(), |rss| (rss >> 20).to_string()),
            MAX_PEAK_RSS >> 20,
            verdict.heights.get(slot),
            verdict.first_commit.get(slot).copied().flatten(),
            verdict.longest_gap.get(slot).copied().unwrap_or(0.0),
        );
        for line in drop_counters(cluster, index) {
            eprintln!("[{name}]   {line}");
        }
    }
    if !verdict.passed() {
        cluster.keep = true;
        for index in HONEST {
            for line in cluster.log_trouble(index, 6) {
                eprintln!("[{name}] validator-{index}: {line}");
            }
        }
    }
}

fn assert_bounded(verdict: &Verdict) {
    for (slot, rss) in verdict.peak_rss.iter().enumerate() {
        let rss = rss.expect("every honest node is running and reports its peak RSS");
        assert!(
            rss <= MAX_PEAK_RSS,
            "validator-{}: peak RSS {} MiB over {} MiB",
            HONEST[slot],
            rss >> 20,
            MAX_PEAK_RSS >> 20
        );
    }
    assert!(verdict.passed(), "broken checks: {:#?}", verdict.failures);
}

#[test]
fn two_hundred_thousand_badly_signed_votes_leave_commits_going_and_memory_bounded() {
    const VOTES: u64 = 200_000;
    const WINDOW: Duration = Duration::from_secs(30);
    // 200,000 gossipsub envelopes checked by each of three nodes on two
    // shared cores: 30–80 s seen.
    const FLOOD_LIMIT: Duration = Duration::from_secs(150);
    let runtime = runtime();
    let mut cluster = Cluster::start("flood-votes");
    // The nodes keep the flooder connected (no ban for being graylisted):
    // every vote reaches their gossipsub, the worst case for them.
    for index in HONEST {
        cluster.stop(index);
        flood_p2p::set_p2p_limits(
            &cluster,
            index,
            P2pLimits {
                graylisted_peer_ban_seconds: 0,
                ..P2pLimits::default()
            },
        );
    }
    for index in HONEST {
        cluster.restart(index);
    }
    let load = load(&cluster);
    checks::wait_for_height(&cluster, WARMUP_HEIGHT, WARMUP_LIMIT).expect("warm-up");

    // The flood follows the chain: its votes are for the next height.
    let height = Arc::new(AtomicU64::new(0));
    let stop_following = Arc::new(AtomicBool::new(false));
    let follower = {
        let height = Arc::clone(&height);
        let stop = Arc::clone(&stop_following);
        let apis: Vec<String> = HONEST.iter().map(|&index| cluster.api(index)).collect();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(max) = apis
                    .iter()
                    .filter_map(|api| scf_tests::client::status(api).ok())
                    .map(|status| status.height)
                    .max()
                {
                    height.store(max, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    while height.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }

    let before = heights_now(&cluster);
    let flood = Arc::new(flood_p2p::VoteFlood::default());
    let started = Instant::now();
    let flooding = runtime.spawn(flood_p2p::flood_bad_votes(
        flood_p2p::VoteFloodSetup::of(&cluster),
        Arc::clone(&height),
        VOTES,
        started + FLOOD_LIMIT,
        Arc::clone(&flood),
    ));
    let mut verdict = Verdict {
        scenario: "flood-votes".into(),
        ..Verdict::default()
    };
    checks::watch_progress(&mut cluster, &before, started, WINDOW, &mut verdict);
    while !flood.done.load(Ordering::Relaxed)
        && started.elapsed() < FLOOD_LIMIT + Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let flood_seconds = flood.elapsed_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    // Commits go on after the flood as well.
    let after_flood = heights_now(&cluster);
    checks::watch_progress(
        &mut cluster,
        &after_flood,
        Instant::now(),
        Duration::from_secs(10),
        &mut verdict,
    );
    checks::check_state(&mut cluster, &before, &mut verdict);
    stop_following.store(true, Ordering::Relaxed);
    let _ = follower.join();
    runtime.block_on(flooding).expect("the flood task ends");
    drop(load);
    let written: Vec<u64> = flood
        .written
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    eprintln!(
        "[flood-votes] distinct badly signed votes written to nodes 0-2 in {flood_seconds:.1} s: {written:?} ({} flood streams failed; {} connections open at the end)",
        flood.stream_failures.load(Ordering::Relaxed),
        flood.connected_at_end.load(Ordering::Relaxed),
    );
    report("flood-votes", &mut cluster, &verdict);
    assert!(
        flood.least_written() >= VOTES,
        "every node must be sent all {VOTES} votes within {FLOOD_LIMIT:?}; sent {written:?}"
    );
    assert_bounded(&verdict);
}

#[test]
fn hundreds_of_connections_and_sync_streams_leave_honest_peers_connected_and_committing() {
    const TCP: usize = 300;
    const DIALS: usize = 200;
    const REQUESTS: usize = 2_000;
    const WINDOW: Duration = Duration::from_secs(30);
    const TARGET: usize = 0;
    let runtime = runtime();
    let mut cluster = Cluster::start("flood-connections");
    let load = load(&cluster);
    checks::wait_for_height(&cluster, WARMUP_HEIGHT, WARMUP_LIMIT).expect("warm-up");
    let before = heights_now(&cluster);
    let target = flood_p2p::FloodTarget::of(&cluster, TARGET);
    let (apis, peer_ids) = flood_p2p::peer_check(&cluster);
    let watching = AtomicBool::new(true);
    let started = Instant::now();
    let mut verdict = Verdict {
        scenario: "flood-connections".into(),
        ..Verdict::default()
    };
    // The flood and the connectivity check run beside the liveness watch.
    let (flood, disconnected) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            runtime.block_on(flood_p2p::flood_connections(
                target, TCP, DIALS, REQUESTS, WINDOW,
            ))
        });
        let connectivity = scope.spawn(|| {
            let mut disconnected = Vec::new();
            while watching.load(Ordering::Relaxed) {
                for problem in flood_p2p::honest_peers_connected(&apis, &peer_ids)
                    .into_iter()
                    .filter_map(Result::err)
                {
                    disconnected.push(format!(
                        "{:.1} s: {problem}",
                        started.elapsed().as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            disconnected
        });
        checks::watch_progress(&mut cluster, &before, started, WINDOW, &mut verdict);
        let flood = flood.join().expect("the flood thread");
        watching.store(false, Ordering::Relaxed);
        (flood, connectivity.join().expect("the connectivity thread"))
    });
    let flood_seconds = started.elapsed().as_secs_f64();
    checks::check_state(&mut cluster, &before, &mut verdict);
    drop(load);
    eprintln!("[flood-connections] against validator-{TARGET} in {flood_seconds:.1} s: {flood:?}");
    report("flood-connections", &mut cluster, &verdict);
    assert!(
        disconnected.is_empty(),
        "honest peers were disconnected during the flood: {disconnected:#?}"
    );
    let limits = P2pLimits::default();
    for open in [flood.open_after_dials, flood.open_at_end] {
        assert!(
            open <= limits.max_connections_per_peer as usize,
            "the target kept {open} connections of one peer open (limit {}): {flood:?}",
            limits.max_connections_per_peer
        );
    }
    assert_eq!(flood.requests_sent, REQUESTS, "{flood:?}");
    assert!(
        flood.answered_with_blocks < REQUESTS,
        "the rate limit refused nothing: {flood:?}"
    );
    assert_bounded(&verdict);
}
