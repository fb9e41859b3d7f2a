//! The event feed (`GET /v1/events`) on real node processes: every node of
//! a 4-validator cluster gives the same events for the same cursors, also
//! after a clean restart and after a kill -9 during commits; a long-poll
//! returns when an event commits and times out empty otherwise, and the
//! number of long-polls is capped; a pruned cursor is a 410; bad inputs are
//! JSON 400s. The borsh form (`format=borsh`) serves the same events.

// Amounts are written in minor units grouped as `units_cents`.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Net, serial};
use crypto::Hash;
use ledger::{Amount, Output, Timestamp, TokenId, TxBody};
use node::ConfigFile;
use node::api::event_views::{EventData, EventPageView, EventView, RawEventPage};
use node::api::limits::ApiLimits;

const LIMIT: Duration = Duration::from_secs(90);
/// 2100-01-01: far in the future.
const MATURITY: Timestamp = Timestamp(4_102_444_800_000);

fn page(net: &Net, node: usize, query: &str) -> EventPageView {
    let (status, body) = net.get(node, &format!("/v1/events?{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_value(body).expect("an EventPageView")
}

/// Every event node `node` has, walked `limit` at a time.
fn all_events(net: &Net, node: usize, limit: usize) -> Vec<EventView> {
    walk(limit, |query| {
        let answer = page(net, node, query);
        (answer.events, answer.next)
    })
}

/// Every event of a feed whose pages `read` answers (its events and
/// `next`), `limit` at a time from the start.
fn walk(limit: usize, read: impl Fn(&str) -> (Vec<EventView>, String)) -> Vec<EventView> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10_000 {
        let query = match &after {
            Some(cursor) => format!("after={cursor}&limit={limit}"),
            None => format!("limit={limit}"),
        };
        let (page, next) = read(&query);
        if page.is_empty() {
            return events;
        }
        assert!(page.len() <= limit);
        events.extend(page);
        after = Some(next);
    }
    panic!("the feed did not end within 10,000 pages");
}

/// `GET /v1/events?QUERY&format=borsh`, decoded.
fn raw_page(net: &Net, node: usize, query: &str) -> RawEventPage {
    let url = format!("{}/v1/events?{query}&format=borsh", net.api(node));
    let mut answer = net.agent.get(&url).call().expect("the node answers");
    assert_eq!(answer.status().as_u16(), 200, "{url}");
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/octet-stream"),
        "{url}"
    );
    let bytes = answer.body_mut().read_to_vec().expect("the answer's bytes");
    borsh::from_slice(&bytes).expect("a borsh RawEventPage")
}

/// Every event node `node` has, walked `limit` at a time in the borsh
/// form, as the JSON form shows them (the chain's currency has 2 decimals).
fn all_raw_events(net: &Net, node: usize, limit: usize) -> Vec<EventView> {
    walk(limit, |query| {
        let answer = raw_page(net, node, query);
        let events = answer
            .events
            .iter()
            .map(|event| EventView::new(event, 2))
            .collect();
        (events, answer.next.to_string())
    })
}

/// Waits until node `node` has derived the events of `height`.
fn wait_derived(net: &Net, node: usize, height: u64) {
    net.wait_for(
        LIMIT,
        &format!("node {node} to derive events up to {height}"),
        || {
            let (status, body) = net.get(node, "/v1/events?limit=1");
            status == 200 && body["derived_height"].as_u64().is_some_and(|h| h >= height)
        },
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Runs a whole lifecycle on node 0: credit line, a receivable maturing a
/// few seconds from now, a split, a financing accepted, settlement after
/// maturity (paying two holders). Returns the height of the settlement.
fn lifecycle(net: &mut Net) -> u64 {
    let core = net.key("core").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1_000_000_00),
        },
    );
    net.commit(0, &grant);
    let maturity = Timestamp(now_ms() + 8_000);
    let supplier1 = net.key("supplier1").public();
    let confirm = net.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: supplier1,
            amount: Amount(10_000_00),
            maturity,
            invoice_ref: Hash::digest(b"INV-EVENTS"),
        },
    );
    net.commit(0, &confirm);
    let root = TokenId::derive(&confirm.hash(), 0);
    let supplier2 = net.key("supplier2").public();
    let split = net.sign(
        "supplier1",
        TxBody::Transfer {
            token: root,
            outputs: vec![
                Output {
                    recipient: supplier2,
                    amount: Amount(4_000_00),
                },
                Output {
                    recipient: supplier1,
                    amount: Amount(6_000_00),
                },
            ],
        },
    );
    net.commit(0, &split);
    let offered = TokenId::derive(&split.hash(), 0);
    let bank = net.key("bank").public();
    let request = net.sign(
        "supplier2",
        TxBody::RequestFinancing {
            token: offered,
            bank,
            rate_bps: 435,
        },
    );
    net.commit(0, &request);
    let accept = net.sign("bank", TxBody::AcceptFinancing { token: offered });
    net.commit(0, &accept);
    // Settlement is refused before maturity: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while now_ms() < maturity.0 + 1_500 {
        assert!(Instant::now() < deadline, "maturity never came");
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle = net.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "WIRE-1".into(),
        },
    );
    let committed = net.commit(0, &settle);
    match committed.status {
        node::api::types::TxState::Committed { height, .. } => height,
        other => panic!("settlement not committed: {other:?}"),
    }
}

/// Some transfers of a fresh receivable, submitted without waiting.
fn more_traffic(net: &mut Net, invoice: &str, transfers: usize) -> Vec<ledger::SignedTransaction> {
    let supplier1 = net.key("supplier1").public();
    let confirm = net.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: supplier1,
            amount: Amount(1_000_00),
            maturity: MATURITY,
            invoice_ref: Hash::digest(invoice.as_bytes()),
        },
    );
    let mut token = TokenId::derive(&confirm.hash(), 0);
    let mut txs = vec![confirm];
    for _ in 0..transfers {
        let transfer = net.sign(
            "supplier1",
            TxBody::Transfer {
                token,
                outputs: vec![Output {
                    recipient: supplier1,
                    amount: Amount(1_000_00),
                }],
            },
        );
        token = TokenId::derive(&transfer.hash(), 0);
        txs.push(transfer);
    }
    txs
}

#[test]
fn every_node_of_a_cluster_gives_the_same_events_also_after_a_restart_and_a_kill_during_commits() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let settled_at = lifecycle(&mut net);
    for node in 0..4 {
        net.wait_height(node, settled_at, LIMIT);
        wait_derived(&net, node, settled_at);
    }
    let reference = all_events(&net, 0, 1_000);
    let kinds: Vec<&str> = reference.iter().map(|event| event.data.kind()).collect();
    assert_eq!(
        kinds,
        [
            "credit_line_granted",
            "receivable_confirmed",
            "token_transferred",
            "financing_requested",
            "financing_accepted",
            "receivable_settled",
            "receivable_settled",
        ]
    );
    let payouts: Vec<(u64, u64)> = reference
        .iter()
        .filter_map(|event| match &event.data {
            EventData::ReceivableSettled {
                amount_minor,
                tokens,
                ..
            } => Some((*amount_minor, *tokens)),
            _ => None,
        })
        .collect();
    let mut amounts: Vec<u64> = payouts.iter().map(|payout| payout.0).collect();
    amounts.sort();
    assert_eq!(amounts, [4_000_00, 6_000_00]);
    for node in 1..4 {
        assert_eq!(all_events(&net, node, 2), reference, "node {node}");
    }
    for node in 0..4 {
        assert_eq!(
            all_raw_events(&net, node, 3),
            reference,
            "node {node}, borsh"
        );
    }

    // A clean restart: the same cursors give the same events.
    assert!(net.stop(1).success());
    net.start(1);
    wait_derived(&net, 1, settled_at);
    assert_eq!(all_events(&net, 1, 3), reference, "node 1 after a restart");

    // kill -9 of node 3 while blocks commit, then a restart: it ends with the
    // events of the nodes that never crashed.
    // Independent of each other, so each is admitted before the previous
    // one commits.
    let core = net.key("core").public();
    let txs: Vec<_> = (1..=12)
        .map(|limit| {
            net.sign(
                "bank",
                TxBody::GrantCreditLine {
                    core,
                    limit: Amount(limit * 1_000_000_00),
                },
            )
        })
        .collect();
    for (index, tx) in txs.iter().enumerate() {
        let (status, body) = net.submit(0, tx, index + 1 == txs.len());
        assert!(status == 200 || status == 202, "{body}");
        if index == 6 {
            net.kill(3);
        }
    }
    let tip = net.status(0).height;
    net.start(3);
    for node in 0..4 {
        net.wait_height(node, tip, LIMIT);
        wait_derived(&net, node, tip);
    }
    let reference = all_events(&net, 0, 1_000);
    assert_eq!(reference.len(), 7 + txs.len());
    for node in 1..4 {
        assert_eq!(all_events(&net, node, 5), reference, "node {node}");
    }
}

/// A one-validator network whose node runs with `limits` and `[events]`
/// `retain_blocks`.
fn node_with(limits: ApiLimits, retain_blocks: Option<u64>) -> Net {
    let mut net = Net::create(1, 0);
    let path = net.home(0).join("config.toml");
    let mut config: ConfigFile =
        toml::from_str(&std::fs::read_to_string(&path).expect("config.toml")).expect("a config");
    config.api_limits = limits;
    config.events.retain_blocks = retain_blocks;
    std::fs::write(&path, config.to_toml()).expect("writing config.toml");
    net.start(0);
    net
}

#[test]
fn a_long_poll_returns_when_an_event_commits_and_times_out_empty_otherwise() {
    let _serial = serial();
    let mut net = node_with(
        ApiLimits {
            max_event_waiters: 1,
            ..ApiLimits::default()
        },
        None,
    );
    let core = net.key("core").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1_00),
        },
    );
    let height = match net.commit(0, &grant).status {
        node::api::types::TxState::Committed { height, .. } => height,
        other => panic!("{other:?}"),
    };
    wait_derived(&net, 0, height);
    let first = page(&net, 0, "");
    assert_eq!(first.events.len(), 1);
    let cursor = first.next.clone();

    // Nothing new: an empty page after the wait, with the same cursor.
    let started = Instant::now();
    let empty = page(&net, 0, &format!("after={cursor}&wait_ms=700"));
    assert!(started.elapsed() >= Duration::from_millis(650));
    assert!(empty.events.is_empty());
    assert_eq!(empty.next, cursor);

    // A long-poll that an event ends: started before the commit.
    let url = format!("{}/v1/events?after={cursor}&wait_ms=20000", net.api(0));
    let agent = net.agent.clone();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let mut answer = agent.get(url).call().expect("API reachable");
        let body: EventPageView = answer.body_mut().read_json().expect("a page");
        (answer.status().as_u16(), body, started.elapsed())
    });
    // While it waits, the only waiter slot is taken: another long-poll is
    // refused (a plain read is not).
    net.wait_for(Duration::from_secs(10), "the long-poll to wait", || {
        metric(&net, "scf_api_event_waiters") == 1
    });
    let (status, body) = net.get(0, &format!("/v1/events?after={cursor}&wait_ms=100"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "too_many_waiters", "{body}");
    assert_eq!(metric(&net, "scf_api_event_waiters_refused_total"), 1);
    let (status, body) = net.get(0, &format!("/v1/events?after={cursor}"));
    assert_eq!(status, 200, "{body}");
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(2_00),
        },
    );
    net.commit(0, &grant);
    let (status, body, elapsed) = waiting.join().expect("the long-poll");
    assert_eq!(status, 200);
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert_eq!(body.events.len(), 1);
    match &body.events[0].data {
        EventData::CreditLineGranted {
            limit, limit_minor, ..
        } => {
            assert_eq!((limit.as_str(), *limit_minor), ("2.00", 2_00));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(body.next, body.events[0].cursor);
    assert!(body.next > cursor);
    // `/metrics` says how far the feed is derived.
    let gauge = metric(&net, "scf_events_height");
    assert!(
        gauge >= body.derived_height,
        "gauge {gauge}, feed derived {}",
        body.derived_height
    );
    assert_eq!(metric(&net, "scf_api_event_waiters"), 0);
}

/// A counter or gauge of node 0's `/metrics`.
fn metric(net: &Net, name: &str) -> u64 {
    let text = net
        .agent
        .get(format!("{}/metrics", net.api(0)))
        .call()
        .expect("API reachable")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .expect("a whole number")
}

#[test]
fn bad_inputs_get_json_400s_and_filters_select_kinds_and_parties() {
    let _serial = serial();
    let mut net = node_with(ApiLimits::default(), None);
    let core = net.key("core").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1_000_000_00),
        },
    );
    net.commit(0, &grant);
    let txs = more_traffic(&mut net, "INV-FILTER", 2);
    for tx in &txs {
        net.commit(0, tx);
    }
    let tip = net.status(0).height;
    wait_derived(&net, 0, tip);
    for (query, code) in [
        ("after=12", "bad_cursor"),
        (
            "after=00000000000000000012-0000000003-000000000x",
            "bad_cursor",
        ),
        ("kinds=token_transferred,nonsense", "bad_kinds"),
        ("kinds=", "bad_kinds"),
        ("party=abc", "bad_key"),
        ("limit=0", "bad_limit"),
        ("limit=-1", "bad_query"),
        ("wait_ms=soon", "bad_query"),
        ("format=xml", "bad_format"),
        ("format=borsh&kinds=nonsense", "bad_kinds"),
    ] {
        let (status, body) = net.get(0, &format!("/v1/events?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], code, "{query}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty())
        );
    }
    let transfers = page(&net, 0, "kinds=token_transferred");
    assert_eq!(transfers.events.len(), 2);
    let raw_transfers = raw_page(&net, 0, "kinds=token_transferred");
    let raw_views: Vec<EventView> = raw_transfers
        .events
        .iter()
        .map(|event| EventView::new(event, 2))
        .collect();
    assert_eq!(raw_views, transfers.events);
    assert_eq!(raw_transfers.next.to_string(), transfers.next);
    assert_eq!(raw_transfers.derived_height, transfers.derived_height);
    let bank = net.key("bank").public();
    let bank_events = page(&net, 0, &format!("party={bank}"));
    assert_eq!(bank_events.events.len(), 1);
    assert_eq!(bank_events.events[0].data.kind(), "credit_line_granted");
    // `limit` beyond the maximum is capped, not refused.
    assert_eq!(page(&net, 0, "limit=1000000").events.len(), 4);
}

#[test]
fn a_cursor_older_than_the_retained_events_is_a_410() {
    let _serial = serial();
    let mut net = node_with(ApiLimits::default(), Some(2));
    let core = net.key("core").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1_000_000_00),
        },
    );
    let first_height = match net.commit(0, &grant).status {
        node::api::types::TxState::Committed { height, .. } => height,
        other => panic!("{other:?}"),
    };
    wait_derived(&net, 0, first_height);
    let first = page(&net, 0, "");
    let old_cursor = first.events[0].cursor.clone();
    let txs = more_traffic(&mut net, "INV-RETAIN", 4);
    for tx in &txs {
        net.commit(0, tx);
    }
    let tip = net.status(0).height;
    wait_derived(&net, 0, tip);
    let (status, body) = net.get(0, &format!("/v1/events?after={old_cursor}"));
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"], "cursor_expired");
    assert!(body["detail"].as_str().unwrap().contains(&old_cursor));
    // Blocks may go on committing (empty ones too): compare with what the
    // answer itself says it derived.
    let kept = page(&net, 0, "");
    assert_eq!(kept.retained_from_height, kept.derived_height + 1 - 2);
    assert!(kept.retained_from_height > first_height);
    assert!(
        kept.events
            .iter()
            .all(|event| event.height >= kept.retained_from_height)
    );
}
