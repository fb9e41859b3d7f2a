//! The commit timeline of a run, two ways: the block times the chain
//! recorded (each header's time is its proposer's clock when it proposed,
//! so a height that needed extra rounds shows as a long gap before it), and
//! the moments a watcher polling one node's API first saw each height (what
//! a client saw, proposer clocks aside).
//!
//! It measures; the scenario decides what gap is too long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the watcher polls; its figures are this coarse.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The watcher stops by itself after this long, whatever happens.
const WATCH_LIMIT: Duration = Duration::from_secs(600);

/// The largest gap between consecutive commits over a range of heights.
#[derive(Clone, Copy, Debug)]
pub struct Gaps {
    /// Heights `from..=to`: the gap of `h` is the time from `h - 1` to `h`.
    pub from: u64,
    pub to: u64,
    pub max_ms: u64,
    /// The height the largest gap ended at.
    pub max_at: u64,
    pub mean_ms: u64,
}

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heights {}..={}: max gap {} ms (before height {}), mean {} ms",
            self.from, self.to, self.max_ms, self.max_at, self.mean_ms
        )
    }
}

/// The gaps between consecutive `(height, time in ms)` points (sorted by
/// height) that end at heights `from..=to`; `None` when none does. A point
/// may skip heights (the watcher saw two commits in one poll): the gap is
/// still the time the chain showed no progress.
pub fn gaps(points: &[(u64, u64)], from: u64, to: u64) -> Option<Gaps> {
    let gaps: Vec<(u64, u64)> = points
        .windows(2)
        .filter(|pair| (from..=to).contains(&pair[1].0))
        .map(|pair| (pair[1].0, pair[1].1.saturating_sub(pair[0].1)))
        .collect();
    let &(max_at, max_ms) = gaps.iter().max_by_key(|(_, gap)| *gap)?;
    let total: u64 = gaps.iter().map(|(_, gap)| gap).sum();
    Some(Gaps {
        from,
        to,
        max_ms,
        max_at,
        mean_ms: total / gaps.len() as u64,
    })
}

/// `(height, block time in ms)` of heights `from..=to` as `api`'s node
/// stores them.
pub fn block_times(api: &str, from: u64, to: u64) -> Result<Vec<(u64, u64)>, String> {
    (from..=to)
        .map(|height| super::block(api, height).map(|view| (height, view.time_ms)))
        .collect()
}

/// Polls one node's height in the background.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(u64, u64)>>>,
}

impl Watcher {
    pub fn start(api: String) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || watch(&api, &stop))
        };
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns `(height, ms since the watcher started)` for every
    /// time it saw the height grow.
    pub fn finish(mut self) -> Vec<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(api: &str, stop: &AtomicBool) -> Vec<(u64, u64)> {
    let started = Instant::now();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < WATCH_LIMIT {
        if let Ok(height) = super::height(api)
            && seen.last().is_none_or(|(last, _)| height > *last)
        {
            let at = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            seen.push((height, at));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_end_in_the_range_and_a_skipped_height_still_counts() {
        let points = [
            (1, 0),
            (2, 300),
            (3, 500),
            (5, 4_000),
            (6, 4_900),
            (7, 5_000),
        ];
        let all = gaps(&points, 1, 7).expect("gaps");
        // No progress seen from 3 until 5: a 3.5-s gap.
        assert_eq!((all.max_ms, all.max_at), (3_500, 5));
        let early = gaps(&points, 2, 3).expect("gaps");
        assert_eq!((early.max_ms, early.max_at, early.mean_ms), (300, 2, 250));
        assert!(gaps(&points, 4, 4).is_none());
    }
}
