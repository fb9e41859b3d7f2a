//! The HTTP API under hostile or careless clients (issue 17): slow clients
//! are cut off after the header-read timeout while others are served, too
//! many connections or commit waiters are refused with JSON, oversized
//! bodies get 413, every mistake gets a JSON error, and list routes page.
//!
//! Each test runs one real validator process (`scf-bench node`) whose
//! `config.toml` sets the `[api_limits]` under test, and speaks raw HTTP/1.1
//! over std sockets where a client library would hide what is on the wire.

// Amounts are written in minor units grouped as `units_cents`.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Net, serial};
use crypto::Hash;
use ledger::{Amount, Output, Timestamp, TokenId, TxBody};
use node::ConfigFile;
use node::api::limits::ApiLimits;
use node::api::types::{LineageView, SubmitTx, TokenPage, TxState};

/// 2100-01-01: far in the future.
const MATURITY: Timestamp = Timestamp(4_102_444_800_000);
/// The peak RSS the node may reach while 1,000 slow clients hold
/// connections. Measured: a fresh 1-validator node near 25 MiB, its peak
/// with the 1,000 slow clients near 40 MiB.
const RSS_BOUND_KIB: u64 = 128 * 1024;
/// What 1,000 held connections may add to the node's peak RSS (measured
/// near 16 MiB, some 16 KiB a connection).
const RSS_GROWTH_BOUND_KIB: u64 = 48 * 1024;

/// A one-validator network whose node runs with `limits`.
fn node_with(limits: ApiLimits) -> Net {
    let mut net = Net::create(1, 0);
    let path = net.home(0).join("config.toml");
    let mut config: ConfigFile =
        toml::from_str(&std::fs::read_to_string(&path).expect("config.toml")).expect("a config");
    config.api_limits = limits;
    std::fs::write(&path, config.to_toml()).expect("writing config.toml");
    net.start(0);
    net
}

fn api_addr(net: &Net) -> SocketAddr {
    net.net.nodes[0].api
}

/// One answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// A JSON error body with this code and a detail.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        assert_eq!(body["error"], code, "{self:?}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{self:?}"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|value| value.starts_with("application/json")),
            "{self:?}"
        );
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
fn raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("sending the head");
    // A server may answer (413) and close before reading all of the body.
    let _ = stream.write_all(body);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse_answer(&bytes)
}

fn parse_answer(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The value of one metric line (`name value`) in `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let answer = raw(addr, "GET", "/metrics", b"");
    assert_eq!(answer.status, 200, "{answer:?}");
    answer
        .body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{}", answer.body))
}

/// `VmHWM` or `VmRSS` of process `pid`, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The soft limit on open files of this process.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

/// Makes sure this process (and the node it starts, which inherits the
/// limit) may open `needed` files: raises the soft limit to the hard one
/// with `prlimit` if it is lower.
fn ensure_open_files(needed: u64) {
    if open_files_limit() >= needed {
        return;
    }
    let pid = std::process::id().to_string();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(4)?.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:")])
        .status();
    assert!(
        open_files_limit() >= needed,
        "this test opens {needed} files and `ulimit -n` is {}; raise it (ulimit -n {needed})",
        open_files_limit()
    );
}

#[test]
fn a_thousand_slow_clients_neither_starve_status_nor_outlive_the_header_timeout() {
    const SLOW_CLIENTS: usize = 1_000;
    let header_timeout = Duration::from_secs(12);
    let _serial = serial();
    // The test's sockets, the node's (it inherits the limit), and slack
    // for RocksDB and libp2p.
    ensure_open_files(2 * SLOW_CLIENTS as u64 + 1_024);
    let net = node_with(ApiLimits {
        header_read_timeout_ms: header_timeout.as_millis() as u64,
        max_connections: SLOW_CLIENTS + 100,
        ..ApiLimits::default()
    });
    let addr = api_addr(&net);
    let pid = net.pid(0).expect("the node runs");
    let rss_before = memory_kib(pid, "VmRSS");

    // Each sends most of a request head, never the blank line that ends it.
    let opened = Instant::now();
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("a slow connection");
        stream
            .write_all(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .expect("a partial head");
        slow.push(stream);
    }
    let opening = opened.elapsed();
    // A connect returns once the kernel queued the connection; the node
    // accepts it a moment later (longer on a loaded machine).
    let accepting = Instant::now();
    let mut open_now = metric(addr, "scf_api_connections");
    while open_now < SLOW_CLIENTS as f64 && accepting.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(50));
        open_now = metric(addr, "scf_api_connections");
    }
    assert!(
        open_now >= SLOW_CLIENTS as f64,
        "the node holds {open_now} connections, fewer than the {SLOW_CLIENTS} slow clients"
    );

    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let asked = Instant::now();
        let answer = raw(addr, "GET", "/v1/status", b"");
        let took = asked.elapsed();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            took < Duration::from_secs(1),
            "/v1/status took {took:?} with {SLOW_CLIENTS} slow clients"
        );
        slowest = slowest.max(took);
    }
    assert!(
        opened.elapsed() < header_timeout,
        "the status checks ended {:?} after the slow clients connected, past the {header_timeout:?} timeout: they proved nothing",
        opened.elapsed()
    );

    // Every slow connection is closed by the node after the timeout.
    let deadline = opened + header_timeout + Duration::from_secs(10);
    let mut first_close: Option<Duration> = None;
    let mut still_open = 0;
    for stream in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("read timeout");
        let mut buffer = [0u8; 1024];
        let closed = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                // An answer (408) before the close is fine too.
                Ok(_) => continue,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false;
                }
                Err(_) => break true,
            }
        };
        if closed {
            first_close.get_or_insert(opened.elapsed());
        } else {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open,
        0,
        "{still_open} slow connections were still open {:?} after they opened",
        opened.elapsed()
    );
    let first_close = first_close.expect("connections closed");
    // The first was opened `opening` before the last; none closes early.
    assert!(
        first_close + opening + Duration::from_millis(200) >= header_timeout,
        "a slow connection closed after {first_close:?}, before the {header_timeout:?} timeout"
    );
    // The node counts a timeout just after it closes the connection.
    let counted_by = Instant::now() + Duration::from_secs(2);
    let mut timeouts = metric(addr, "scf_api_header_read_timeouts_total");
    while timeouts < SLOW_CLIENTS as f64 && Instant::now() < counted_by {
        std::thread::sleep(Duration::from_millis(20));
        timeouts = metric(addr, "scf_api_header_read_timeouts_total");
    }
    assert!(
        timeouts >= SLOW_CLIENTS as f64,
        "{timeouts} header timeouts counted"
    );

    let peak = memory_kib(pid, "VmHWM");
    println!(
        "{SLOW_CLIENTS} slow clients: opened in {opening:?}, slowest /v1/status {slowest:?}, node RSS before {} MiB, peak RSS (VmHWM) {} MiB (bound {} MiB, growth bound {} MiB)",
        rss_before / 1024,
        peak / 1024,
        RSS_BOUND_KIB / 1024,
        RSS_GROWTH_BOUND_KIB / 1024
    );
    assert!(
        peak <= RSS_BOUND_KIB,
        "peak RSS {peak} KiB over {RSS_BOUND_KIB}"
    );
    assert!(
        peak.saturating_sub(rss_before) <= RSS_GROWTH_BOUND_KIB,
        "1,000 slow clients grew the node from {rss_before} to {peak} KiB"
    );
}

#[test]
fn connections_over_the_cap_are_answered_503_json_and_closed() {
    let _serial = serial();
    // The idle connections below must outlive the wait for a refusal even
    // on a stalled machine: this test is about the cap, not the header
    // timeout (CI once saw only 200s for 10 s, which a stall of the test
    // past the 10 s default header timeout explains: the node had closed
    // the idle connections).
    let net = node_with(ApiLimits {
        max_connections: 4,
        header_read_timeout_ms: 300_000,
        ..ApiLimits::default()
    });
    let addr = api_addr(&net);
    let opened = Instant::now();
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("a connection"))
        .collect();
    // The node has taken them all when a fifth is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let answer = raw(addr, "GET", "/v1/status", b"");
        if answer.status == 503 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if refused.status != 503 {
        let open: Vec<bool> = idle.iter().map(still_open).collect();
        panic!(
            "no refusal {:?} after the 4 idle connections opened (still open: {open:?}): {refused:?}",
            opened.elapsed()
        );
    }
    refused.assert_error(503, "too_many_connections");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = raw(addr, "GET", "/v1/status", b"");
        if answer.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the idle connections closed: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(addr, "scf_api_connections_refused_total") >= 1.0);
}

/// Whether the peer has not closed `stream` (no EOF or error waiting).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut byte = [0u8; 1];
    let open = match stream.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).expect("blocking");
    open
}

#[test]
fn an_oversized_single_transaction_gets_413_with_a_json_error() {
    let _serial = serial();
    let net = node_with(ApiLimits::default());
    let addr = api_addr(&net);
    let max = ledger::transaction::MAX_TX_BYTES;

    // One byte more than the ledger's largest transaction.
    let too_large = serde_json::to_vec(&SubmitTx {
        tx: hex::encode(vec![0u8; max + 1]),
    })
    .expect("JSON");
    let answer = raw(addr, "POST", "/v1/txs", &too_large);
    answer.assert_error(413, "transaction_too_large");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&max.to_string())
    );

    // A body over the route's limit is not even read.
    let huge = serde_json::to_vec(&SubmitTx {
        tx: "00".repeat(512 * 1024),
    })
    .expect("JSON");
    raw(addr, "POST", "/v1/txs", &huge).assert_error(413, "body_too_large");

    // The batch route takes that much: each transaction gets its answer.
    let batch = serde_json::to_vec(&node::api::types::SubmitBatch {
        txs: vec!["00".repeat(512 * 1024)],
    })
    .expect("JSON");
    let answer = raw(addr, "POST", "/v1/txs/batch", &batch);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()[0]["error"], "malformed_transaction");

    // Over the batch route's limit too: 413.
    let over_batch = vec![b' '; ApiLimits::default().max_batch_body_bytes + 1];
    raw(addr, "POST", "/v1/txs/batch", &over_batch).assert_error(413, "body_too_large");
}

#[test]
fn bad_queries_wrong_methods_unknown_routes_and_bad_bodies_get_json_errors() {
    let _serial = serial();
    let net = node_with(ApiLimits::default());
    let addr = api_addr(&net);
    let key = net.key("supplier1").public();

    let answer = raw(addr, "POST", "/v1/txs?wait=commit&timeout_ms=abc", b"{}");
    answer.assert_error(400, "bad_query");
    assert!(answer.body.contains("timeout_ms"), "{answer:?}");
    raw(
        addr,
        "GET",
        &format!("/v1/participants/{key}/tokens?limit=lots"),
        b"",
    )
    .assert_error(400, "bad_query");
    raw(
        addr,
        "GET",
        &format!("/v1/participants/{key}/tokens?limit=0"),
        b"",
    )
    .assert_error(400, "bad_limit");
    raw(
        addr,
        "GET",
        &format!("/v1/participants/{key}/tokens?after=zz"),
        b"",
    )
    .assert_error(400, "bad_cursor");

    let answer = raw(addr, "DELETE", "/v1/status", b"");
    answer.assert_error(405, "method_not_allowed");
    assert!(answer.header("allow").is_some(), "{answer:?}");
    raw(addr, "GET", "/v1/txs", b"").assert_error(405, "method_not_allowed");

    raw(addr, "GET", "/v1/nothing/here", b"").assert_error(404, "not_found");
    raw(addr, "GET", "/", b"").assert_error(404, "not_found");

    raw(addr, "POST", "/v1/txs", b"{not json").assert_error(400, "bad_request");
    raw(addr, "POST", "/v1/txs/batch", b"[1, 2]").assert_error(422, "bad_request");
    raw(addr, "GET", "/v1/tokens/%ff", b"").assert_error(400, "bad_request");
    raw(addr, "GET", "/v1/blocks/tall", b"").assert_error(400, "bad_height");
}

#[test]
fn commit_waiters_over_the_cap_are_refused_with_retry_after() {
    let _serial = serial();
    let mut net = node_with(ApiLimits {
        max_commit_waiters: 2,
        ..ApiLimits::default()
    });
    let addr = api_addr(&net);
    let core = net.key("core").public();
    // Nonces ahead of the bank's next one: they wait in the mempool and
    // never commit, so their submitters wait for the whole timeout.
    let gapped = |net: &mut Net, nonce: u64| {
        serde_json::to_vec(&SubmitTx {
            tx: hex::encode(
                net.sign_at(
                    "bank",
                    nonce,
                    TxBody::GrantCreditLine {
                        core,
                        limit: Amount(nonce),
                    },
                )
                .to_bytes(),
            ),
        })
        .expect("JSON")
    };
    let waiting: Vec<_> = (5..7)
        .map(|nonce| {
            let body = gapped(&mut net, nonce);
            std::thread::spawn(move || {
                raw(addr, "POST", "/v1/txs?wait=commit&timeout_ms=5000", &body)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(4);
    while metric(addr, "scf_api_commit_waiters") < 2.0 {
        assert!(Instant::now() < deadline, "the two waiters never waited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let third = gapped(&mut net, 7);
    let answer = raw(addr, "POST", "/v1/txs?wait=commit&timeout_ms=5000", &third);
    answer.assert_error(503, "too_many_waiters");
    assert_eq!(answer.header("retry-after").as_deref(), Some("1"));
    // Refused before admission: the same transaction is taken without wait.
    let answer = raw(addr, "POST", "/v1/txs", &third);
    assert_eq!(answer.status, 202, "{answer:?}");
    for waiter in waiting {
        let answer = waiter.join().expect("a waiting client");
        assert_eq!(answer.status, 202, "{answer:?}");
        assert_eq!(answer.json()["status"], "pending");
    }
    assert_eq!(metric(addr, "scf_api_commit_waiters_refused_total"), 1.0);
    assert_eq!(metric(addr, "scf_api_commit_waiters"), 0.0);
}

/// Every page of a holder's tokens, with `limit` per page.
fn all_holdings(net: &Net, key: &crypto::PublicKey, limit: usize) -> Vec<TokenId> {
    let mut ids = Vec::new();
    let mut after: Option<TokenId> = None;
    for _ in 0..1_000 {
        let cursor = after.map(|id| format!("&after={id}")).unwrap_or_default();
        let (code, body) = net.get(
            0,
            &format!("/v1/participants/{key}/tokens?limit={limit}{cursor}"),
        );
        assert_eq!(code, 200, "{body}");
        let page: TokenPage = serde_json::from_value(body).expect("a token page");
        assert!(page.tokens.len() <= limit);
        ids.extend(page.tokens.iter().map(|token| token.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
    panic!("more than 1,000 pages");
}

/// Every page of a token's descendants, with `limit` per page.
fn all_descendants(net: &Net, id: &TokenId, limit: usize) -> Vec<(TokenId, Option<TokenId>)> {
    let mut tokens = Vec::new();
    let mut after: Option<TokenId> = None;
    for _ in 0..1_000 {
        let cursor = after.map(|id| format!("&after={id}")).unwrap_or_default();
        let (code, body) = net.get(0, &format!("/v1/tokens/{id}/lineage?limit={limit}{cursor}"));
        assert_eq!(code, 200, "{body}");
        let page: LineageView = serde_json::from_value(body).expect("a lineage page");
        assert!(page.descendants.len() <= limit);
        tokens.extend(
            page.descendants
                .iter()
                .map(|token| (token.id, token.parent_id)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return tokens,
        }
    }
    panic!("more than 1,000 pages");
}

fn committed_tokens(state: TxState) -> Vec<TokenId> {
    match state {
        TxState::Committed { tokens, .. } => tokens,
        other => panic!("not committed: {other:?}"),
    }
}

#[test]
fn holdings_and_lineage_pages_cover_everything_once_with_the_limit_capped() {
    const MAX_PAGE: usize = 50;
    let _serial = serial();
    let mut net = node_with(ApiLimits {
        max_page_size: MAX_PAGE,
        ..ApiLimits::default()
    });
    let core = net.key("core").public();
    let supplier1 = net.key("supplier1").public();
    let supplier2 = net.key("supplier2").public();
    let supplier3 = net.key("supplier3").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1_000_000_00),
        },
    );
    net.commit(0, &grant);
    let confirm = net.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: supplier1,
            amount: Amount(64_000_00),
            maturity: MATURITY,
            invoice_ref: Hash::digest(b"paged invoice"),
        },
    );
    let root = committed_tokens(net.commit(0, &confirm).status)[0];
    // The root split into 64 tokens for supplier2, one of them split again
    // into 4 for supplier3: 68 descendants, two levels deep.
    let split = net.sign(
        "supplier1",
        TxBody::Transfer {
            token: root,
            outputs: (0..64)
                .map(|_| Output {
                    recipient: supplier2,
                    amount: Amount(1_000_00),
                })
                .collect(),
        },
    );
    let first_level = committed_tokens(net.commit(0, &split).status);
    assert_eq!(first_level.len(), 64);
    let middle = first_level[17];
    let resplit = net.sign(
        "supplier2",
        TxBody::Transfer {
            token: middle,
            outputs: (0..3)
                .map(|_| Output {
                    recipient: supplier3,
                    amount: Amount(333_33),
                })
                .chain(std::iter::once(Output {
                    recipient: supplier3,
                    amount: Amount(1),
                }))
                .collect(),
        },
    );
    let second_level = committed_tokens(net.commit(0, &resplit).status);

    // Holdings: 63 unspent tokens of supplier2, by id, whatever the page size.
    let mut expected: Vec<TokenId> = first_level
        .iter()
        .copied()
        .filter(|id| *id != middle)
        .collect();
    expected.sort();
    for limit in [1, 7, MAX_PAGE, 10_000] {
        assert_eq!(
            all_holdings(&net, &supplier2, limit),
            expected,
            "holdings paged by {limit}"
        );
    }
    let (_, body) = net.get(
        0,
        &format!("/v1/participants/{supplier2}/tokens?limit=10000"),
    );
    let page: TokenPage = serde_json::from_value(body).expect("a token page");
    assert_eq!(page.tokens.len(), MAX_PAGE, "limit capped to max_page_size");
    assert!(page.next.is_some());
    let (_, body) = net.get(0, &format!("/v1/participants/{supplier2}/tokens"));
    let page: TokenPage = serde_json::from_value(body).expect("a token page");
    assert_eq!(page.tokens.len(), MAX_PAGE, "no limit: max_page_size");

    // Lineage: every descendant exactly once, each after its parent, the
    // same order whatever the page size.
    let whole = all_descendants(&net, &root, MAX_PAGE);
    let all: BTreeSet<TokenId> = first_level.iter().chain(&second_level).copied().collect();
    assert_eq!(whole.len(), all.len(), "no token twice");
    assert_eq!(
        whole.iter().map(|(id, _)| *id).collect::<BTreeSet<_>>(),
        all
    );
    let mut seen = BTreeSet::from([root]);
    for (id, parent) in &whole {
        assert!(seen.contains(&parent.expect("a descendant has a parent")));
        seen.insert(*id);
    }
    for limit in [1, 5, 17, 10_000] {
        assert_eq!(
            all_descendants(&net, &root, limit),
            whole,
            "lineage paged by {limit}"
        );
    }
    let (_, body) = net.get(0, &format!("/v1/tokens/{root}/lineage?limit=10000"));
    let page: LineageView = serde_json::from_value(body).expect("a lineage page");
    assert_eq!(page.descendants.len(), MAX_PAGE, "limit capped");
    // From the middle: its own children only, the root as its ancestor.
    let (_, body) = net.get(0, &format!("/v1/tokens/{middle}/lineage?limit=2"));
    let page: LineageView = serde_json::from_value(body).expect("a lineage page");
    assert_eq!(page.ancestors.len(), 1);
    assert_eq!(page.ancestors[0].id, root);
    let below_middle: BTreeSet<TokenId> = all_descendants(&net, &middle, 2)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(below_middle, second_level.iter().copied().collect());
    // A cursor that is not below the token is refused.
    let (code, body) = net.get(
        0,
        &format!("/v1/tokens/{middle}/lineage?after={}", first_level[0]),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "bad_cursor");
}

/// Sends a request head announcing `length` body bytes and a few of them,
/// then waits for the answer without sending the rest.
fn stalled_body(addr: SocketAddr, path: &str, length: usize) -> (Answer, Duration) {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"tx"
    );
    let sent = Instant::now();
    stream.write_all(head.as_bytes()).expect("sending the head");
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    // The answer is complete when its declared body has arrived; the
    // connection may stay open (the client never finished its request).
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let declared = head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if declared.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    (parse_answer(&bytes), sent.elapsed())
}

#[test]
fn a_request_whose_body_never_arrives_is_answered_503_at_the_request_timeout() {
    let _serial = serial();
    let request_timeout = Duration::from_secs(1);
    let net = node_with(ApiLimits {
        request_timeout_ms: request_timeout.as_millis() as u64,
        ..ApiLimits::default()
    });
    let addr = api_addr(&net);
    for path in ["/v1/txs/batch", "/v1/txs"] {
        let (answer, took) = stalled_body(addr, path, 1_000);
        answer.assert_error(503, "request_timeout");
        assert!(answer.header("retry-after").is_some(), "{answer:?}");
        assert!(
            took >= request_timeout && took < request_timeout + Duration::from_secs(5),
            "{path} answered after {took:?}, not at the {request_timeout:?} timeout"
        );
    }
    assert!(metric(addr, "scf_api_request_timeouts_total") >= 2.0);
}
