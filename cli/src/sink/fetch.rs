//! What the sink reads from the node: each block with its certificate, in
//! height order, and the events the node's feed serves for it, fetched on a
//! thread of their own ahead of the checks (`check.rs`).
//!
//! Every byte from the node is hostile until checked: answers are read no
//! further than an honest answer can be long (a block by the genesis's
//! block limits, a feed page by its event count), pages must keep the
//! feed's rules (cursors after the one asked for, strictly increasing, no
//! more than asked for, `next` not behind them), and the hand-over to the
//! checks is a bounded channel. A claim such as the node's height or its
//! `derived_height` only decides when to ask again; it is never written.
//!
//! Not here: deciding whether a block or an event is right.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use genesis::Genesis;
use ledger::{Cursor, Event};
use node::api::event_views::RawEventPage;
use node::api::types::StatusView;

use crate::audit::{RawBlock, SourceError};
use crate::client::{NodeClient, NodeError};

/// Events asked for per feed page (the node may cap it lower).
const PAGE_EVENTS: usize = 1_000;
/// The most a single event takes on average in a page: its JSON takes at
/// most this much (a transfer with its 64 outputs, about 200 bytes each,
/// or a name or reason of 256 bytes escaped), and its borsh, which the
/// sink reads, less (a key is 32 bytes instead of 64 hex digits, an
/// amount 8 instead of two numbers).
const MAX_EVENT_BYTES: u64 = 16 * 1024;
/// How long a request may take, long-polls included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A long-poll when the sink has everything the node has.
const FOLLOW_WAIT_MS: u64 = 10_000;
/// A long-poll when the node has a block whose events it has not derived yet.
const DERIVE_WAIT_MS: u64 = 500;
/// The shortest time between two looks at the node's tip.
const MIN_POLL: Duration = Duration::from_millis(100);

/// What the fetcher hands to the checks, in height order.
#[derive(Debug)]
pub enum Fetched {
    /// The block stored at `height`, and the events the feed served for
    /// that height (`None` while rebuilding heights already written, whose
    /// events are not fetched again).
    Block {
        height: u64,
        raw: RawBlock,
        feed: Option<Vec<Event>>,
        /// The node's height, as it last said.
        tip: u64,
    },
    /// Every block the node has (as far as its events are derived) was
    /// handed over: what is pending may be written now. `tip` is the
    /// node's height, as it last said.
    AtTip { tip: u64 },
}

/// Why the fetcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("node {url} served a feed page that breaks the feed's rules: {reason}")]
    BadFeed { url: String, reason: String },
    #[error(
        "node {url} no longer keeps the events after height {after} (it keeps them from height {retained_from} on, see its [events] retain_blocks); point the sink at a node that keeps every event after the database's cursor"
    )]
    Pruned {
        url: String,
        after: u64,
        retained_from: u64,
    },
    #[error("node {url} has no block at height {height}, below its own height {tip}")]
    MissingBlock { url: String, height: u64, tip: u64 },
}

/// The node's API, with every answer bounded.
#[derive(Debug, Clone)]
pub struct NodeReader {
    client: NodeClient,
    max_block_answer: u64,
}

impl NodeReader {
    /// A reader of `url` for the chain of `genesis`, whose block limits
    /// bound what an honest block view can weigh.
    pub fn new(url: &str, genesis: &Genesis) -> NodeReader {
        let params = &genesis.consensus;
        let block_bytes = params
            .max_block_bytes
            .min(ledger::block::MAX_BLOCK_BYTES as u64);
        // The borsh block, its certificate (96 bytes per signature, from
        // at most the largest validator set governance can make) and the
        // answer's framing.
        let max_block_answer =
            block_bytes + 128 * ledger::governance::MAX_VALIDATORS as u64 + 64 * 1024;
        NodeReader {
            client: NodeClient::with_timeout(url, REQUEST_TIMEOUT),
            max_block_answer,
        }
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The node's committed height, as it claims it.
    pub fn height(&self) -> Result<u64, NodeError> {
        let status: StatusView = self.client.get_bounded("/v1/status", 64 * 1024)?;
        Ok(status.height)
    }

    /// The block stored at `height`, or `None` if the node has none.
    pub fn block(&self, height: u64) -> Result<Option<RawBlock>, FetchError> {
        Ok(self
            .client
            .raw_block(height, self.max_block_answer)?
            .map(RawBlock::from))
    }

    /// One page of the feed after `after` (borsh: the ledger's events as
    /// they are compared, no JSON to parse), checked against the feed's
    /// rules, waiting up to `wait_ms` for events.
    fn events(&self, after: Cursor, wait_ms: u64) -> Result<CheckedPage, FetchError> {
        let path =
            format!("/v1/events?after={after}&limit={PAGE_EVENTS}&wait_ms={wait_ms}&format=borsh");
        let max_bytes = PAGE_EVENTS as u64 * MAX_EVENT_BYTES + 64 * 1024;
        let page: RawEventPage = match self.client.get_borsh_bounded(&path, max_bytes) {
            Ok(page) => page,
            Err(NodeError::Refused { status: 410, .. }) => {
                return Err(FetchError::Pruned {
                    url: self.url().to_string(),
                    after: after.height,
                    retained_from: 0,
                });
            }
            Err(error) => return Err(error.into()),
        };
        CheckedPage::check(page, after).map_err(|reason| FetchError::BadFeed {
            url: format!("{}{path}", self.url()),
            reason,
        })
    }
}

/// A feed page whose cursors keep the feed's rules.
struct CheckedPage {
    /// In commit order.
    events: Vec<Event>,
    next: Cursor,
    derived_height: u64,
    retained_from_height: u64,
}

impl CheckedPage {
    fn check(page: RawEventPage, after: Cursor) -> Result<CheckedPage, String> {
        if page.events.len() > PAGE_EVENTS {
            return Err(format!(
                "{} events, more than the {PAGE_EVENTS} asked for",
                page.events.len()
            ));
        }
        let mut last = after;
        for event in &page.events {
            let cursor = event.cursor;
            if cursor <= last {
                return Err(format!(
                    "event {cursor} is not after {last}: events must come after the cursor asked for, in commit order, each once"
                ));
            }
            last = cursor;
        }
        if page.next < last {
            return Err(format!(
                "next {} is behind the page's last event {last}",
                page.next
            ));
        }
        Ok(CheckedPage {
            events: page.events,
            next: page.next,
            derived_height: page.derived_height,
            retained_from_height: page.retained_from_height,
        })
    }
}

/// The feed's events not yet handed over, and how far they are known to be
/// complete.
struct FeedBuffer {
    after: Cursor,
    events: VecDeque<Event>,
    /// Every event of heights up to this one is in `events` or was handed
    /// over.
    complete_through: u64,
}

impl FeedBuffer {
    /// The feed after height `height`.
    fn after_height(height: u64) -> FeedBuffer {
        FeedBuffer {
            after: Cursor {
                height,
                tx_index: u32::MAX,
                event_index: u32::MAX,
            },
            events: VecDeque::new(),
            complete_through: height,
        }
    }

    /// Reads pages until every event of `height` is buffered; `false` if
    /// the node has not derived that height's events yet.
    fn fill_through(
        &mut self,
        reader: &NodeReader,
        height: u64,
        wait_ms: u64,
    ) -> Result<bool, FetchError> {
        // Each page moves the cursor forward or ends the loop; a block's
        // events are bounded by its writes, so this ends. Only the first
        // request waits: after a page of events, the next one either has
        // more or says the feed ends there.
        let mut wait_ms = wait_ms;
        while self.complete_through < height {
            let page = reader.events(self.after, std::mem::take(&mut wait_ms))?;
            if page.retained_from_height > self.after.height + 1 {
                return Err(FetchError::Pruned {
                    url: reader.url().to_string(),
                    after: self.after.height,
                    retained_from: page.retained_from_height,
                });
            }
            if page.events.is_empty() {
                // The unfiltered feed's end: every derived event was served.
                self.complete_through = self.complete_through.max(page.derived_height);
                return Ok(self.complete_through >= height);
            }
            for event in page.events {
                self.complete_through = self.complete_through.max(event.cursor.height - 1);
                self.after = event.cursor;
                self.events.push_back(event);
            }
            self.after = self.after.max(page.next);
        }
        Ok(true)
    }

    /// The buffered events of `height`, which must be the lowest height
    /// buffered.
    fn take(&mut self, reader: &NodeReader, height: u64) -> Result<Vec<Event>, FetchError> {
        if let Some(event) = self.events.front()
            && event.cursor.height < height
        {
            return Err(FetchError::BadFeed {
                url: reader.url().to_string(),
                reason: format!(
                    "event {} is of a height the sink has passed ({height})",
                    event.cursor
                ),
            });
        }
        let mut taken = Vec::new();
        while let Some(event) = self.events.front()
            && event.cursor.height == height
        {
            taken.push(self.events.pop_front().expect("a front was seen"));
        }
        Ok(taken)
    }
}

/// Where the fetcher starts and how long it goes on.
#[derive(Clone, Copy, Debug)]
pub struct FetchPlan {
    /// Heights 1..=rebuild_to are already written: their blocks are fetched
    /// (to rebuild the replayed state) but not their events.
    pub rebuild_to: u64,
    /// Stop after handing over the node's tip instead of following it.
    pub exit_at_tip: bool,
}

/// Fetches from height 1 on and hands each block over to `out`, until the
/// tip (with `exit_at_tip`), an error (handed over too), or the receiver
/// hanging up.
pub fn run(reader: NodeReader, plan: FetchPlan, out: SyncSender<Result<Fetched, FetchError>>) {
    if let Err(error) = fetch(&reader, plan, &out) {
        let _ = out.send(Err(error));
    }
}

fn fetch(
    reader: &NodeReader,
    plan: FetchPlan,
    out: &SyncSender<Result<Fetched, FetchError>>,
) -> Result<(), FetchError> {
    let mut feed = FeedBuffer::after_height(plan.rebuild_to);
    let mut tip = reader.height()?;
    let mut height = 1;
    loop {
        if height > tip {
            tip = reader.height()?;
        }
        let beyond_tip = height > tip;
        let underived =
            !beyond_tip && height > plan.rebuild_to && !feed.fill_through(reader, height, 0)?;
        if beyond_tip || underived {
            let handed_over = height - 1;
            if out.send(Ok(Fetched::AtTip { tip })).is_err() {
                return Ok(());
            }
            if plan.exit_at_tip && beyond_tip && handed_over >= plan.rebuild_to {
                return Ok(());
            }
            wait_for_more(reader, &mut feed, height, beyond_tip, plan)?;
            continue;
        }
        let raw = reader
            .block(height)?
            .ok_or_else(|| FetchError::MissingBlock {
                url: reader.url().to_string(),
                height,
                tip,
            })?;
        let events = if height > plan.rebuild_to {
            Some(feed.take(reader, height)?)
        } else {
            None
        };
        let block = Fetched::Block {
            height,
            raw,
            feed: events,
            tip,
        };
        if out.send(Ok(block)).is_err() {
            return Ok(());
        }
        height += 1;
    }
}

/// Waits until the node may have more: a long-poll on the feed for the
/// next derived events (long when `height` is beyond the node's tip, short
/// when its events are still being derived), or a pause while the node is
/// behind the heights already written. Never returns at once, so a node
/// whose status and feed disagree cannot make the fetcher spin.
fn wait_for_more(
    reader: &NodeReader,
    feed: &mut FeedBuffer,
    height: u64,
    beyond_tip: bool,
    plan: FetchPlan,
) -> Result<(), FetchError> {
    let started = std::time::Instant::now();
    if height > plan.rebuild_to {
        let wait = if beyond_tip {
            FOLLOW_WAIT_MS
        } else {
            DERIVE_WAIT_MS
        };
        feed.fill_through(reader, height, wait)?;
    }
    if let Some(rest) = MIN_POLL.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    Ok(())
}
