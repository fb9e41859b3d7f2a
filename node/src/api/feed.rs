//! `GET /v1/events?after=CURSOR&limit=N&wait_ms=M&kinds=a,b&party=KEY[&format=borsh]`:
//! the event feed, read from the store's event log (see `ledger::store::events`)
//! without the store's lock, so no reader holds up a commit.
//!
//! Events strictly after `after` (from the oldest kept when absent), in
//! commit order, at most `limit` (default `[api_limits] event_page_size`,
//! at most `max_page_size`), looking at no more than `max_event_scan` events
//! per answer, so a filter that matches little costs a bounded read; `next`
//! is always there. With nothing new and `wait_ms` > 0, the request waits
//! (at most `max_event_wait_ms`, and always less than the request timeout)
//! for the next block's events; at most
//! `max_event_waiters` requests wait at once, more get 503
//! `too_many_waiters`. A cursor older than what retention keeps is 410
//! `cursor_expired`.
//!
//! `format=borsh` answers the same page as a borsh
//! [`RawEventPage`](super::event_views::RawEventPage) of the ledger's own
//! events instead of JSON (`format=json`, the default).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger::store::{EventFilter, EventPage, EventsError};
use ledger::{Cursor, EventKind};
use serde::Deserialize;

use super::errors::{ApiError, ApiQuery};
use super::event_views::{EventPageView, EventView, RawEventPage};
use super::metrics::ApiMetrics;
use super::{ApiState, blocking, parse_key};

/// The query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    after: Option<String>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
    kinds: Option<String>,
    party: Option<String>,
    format: Option<String>,
}

struct FeedRequest {
    after: Option<Cursor>,
    limit: usize,
    wait: Duration,
    filter: EventFilter,
    borsh: bool,
}

impl FeedQuery {
    fn parse(&self, state: &ApiState) -> Result<FeedRequest, ApiError> {
        let limits = &state.limits;
        let after = self
            .after
            .as_deref()
            .map(|text| {
                text.parse::<Cursor>()
                    .map_err(|error| ApiError::bad_request("bad_cursor", error.to_string()))
            })
            .transpose()?;
        let limit = match self.limit {
            Some(0) => {
                return Err(ApiError::bad_request(
                    "bad_limit",
                    format!(
                        "limit=0 asks for nothing; use 1 to {}",
                        limits.max_page_size
                    ),
                ));
            }
            Some(limit) => limit.min(limits.max_page_size),
            None => limits.event_page_size.min(limits.max_page_size),
        };
        let wait = Duration::from_millis(self.wait_ms.unwrap_or(0)).min(limits.max_event_wait());
        let kinds = self.kinds.as_deref().map(parse_kinds).transpose()?;
        let party = self.party.as_deref().map(parse_key).transpose()?;
        let borsh = match self.format.as_deref() {
            None | Some("json") => false,
            Some("borsh") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "bad_format",
                    format!(
                        "format={:?} is not a format of the feed; use json (the default) or borsh",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        Ok(FeedRequest {
            after,
            limit,
            wait,
            filter: EventFilter { kinds, party },
            borsh,
        })
    }
}

/// `a,b,c` into known kind names, each once (so bounded by their number).
fn parse_kinds(text: &str) -> Result<Vec<&'static str>, ApiError> {
    let mut kinds = Vec::new();
    for name in text.split(',') {
        let known = EventKind::NAMES
            .iter()
            .find(|known| **known == name)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_kinds",
                    format!(
                        "{:?} is not an event kind; kinds are {}",
                        name.chars().take(64).collect::<String>(),
                        EventKind::NAMES.join(", ")
                    ),
                )
            })?;
        if !kinds.contains(known) {
            kinds.push(*known);
        }
    }
    Ok(kinds)
}

fn feed_error(error: EventsError) -> ApiError {
    match error {
        expired @ EventsError::CursorExpired { .. } => {
            ApiError::new(StatusCode::GONE, "cursor_expired", expired.to_string())
        }
        EventsError::Store(error) => ApiError::internal(error),
    }
}

pub async fn events(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Response, ApiError> {
    let request = query.parse(&state)?;
    let max_scan = state.limits.max_event_scan;
    let read = |after: Option<Cursor>| {
        let filter = request.filter.clone();
        let limit = request.limit;
        let log = state.shared.events.clone();
        blocking(&state.shared, move |_| {
            log.page(after, limit, max_scan, &filter)
                .map_err(feed_error)
        })
    };
    // Subscribed before the first read: a block derived between the read and
    // the wait still wakes the waiter.
    let mut derived = state.shared.events_derived.subscribe();
    let mut page = read(request.after).await?;
    // Wait only when there is nothing left to look at: a page that a filter
    // emptied before the end of the feed is answered at once, with its
    // `next`.
    if !page.events.is_empty() || !page.at_end || request.wait.is_zero() {
        return Ok(answer(&state, page, request.borsh));
    }
    let Ok(permit) = std::sync::Arc::clone(&state.event_waiters).try_acquire_owned() else {
        state.metrics.event_waiters_refused.inc();
        return Err(ApiError::busy(
            "too_many_waiters",
            format!(
                "{} requests are already waiting for events ([api_limits] max_event_waiters); retry, or poll without wait_ms",
                state.limits.max_event_waiters
            ),
            1,
        ));
    };
    let _waiter = EventWaiter::new(permit, &state.metrics);
    let deadline = tokio::time::Instant::now() + request.wait;
    loop {
        match tokio::time::timeout_at(deadline, derived.changed()).await {
            Ok(Ok(())) => {}
            // Timed out, or the node is stopping: the empty page.
            Ok(Err(_)) | Err(_) => return Ok(answer(&state, page, request.borsh)),
        }
        // Go on from where the last read stopped: what it filtered out is
        // not looked at again.
        // (`START` is never expired: it means "from the oldest kept".)
        page = read(Some(page.next)).await?;
        if !page.events.is_empty() || !page.at_end {
            return Ok(answer(&state, page, request.borsh));
        }
    }
}

/// A long-poll's slot, counted in `/metrics` while held.
struct EventWaiter {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: std::sync::Arc<ApiMetrics>,
}

impl EventWaiter {
    fn new(
        permit: tokio::sync::OwnedSemaphorePermit,
        metrics: &std::sync::Arc<ApiMetrics>,
    ) -> EventWaiter {
        metrics.event_waiters.inc();
        EventWaiter {
            _permit: permit,
            metrics: std::sync::Arc::clone(metrics),
        }
    }
}

impl Drop for EventWaiter {
    fn drop(&mut self) {
        self.metrics.event_waiters.dec();
    }
}

/// The page as JSON, or as borsh when asked.
fn answer(state: &ApiState, page: EventPage, borsh: bool) -> Response {
    if !borsh {
        return Json(view(state, page)).into_response();
    }
    let raw = RawEventPage {
        events: page.events,
        next: page.next,
        derived_height: page.derived,
        retained_from_height: page.retained_from,
    };
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        borsh::to_vec(&raw).expect("encoding to a Vec"),
    )
        .into_response()
}

fn view(state: &ApiState, page: EventPage) -> EventPageView {
    let decimals = state.shared.decimals();
    EventPageView {
        events: page
            .events
            .iter()
            .map(|event| EventView::new(event, decimals))
            .collect(),
        next: page.next.to_string(),
        derived_height: page.derived,
        retained_from_height: page.retained_from,
    }
}
