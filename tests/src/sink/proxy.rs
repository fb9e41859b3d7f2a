//! A node that lies: an HTTP server on 127.0.0.1 that answers each `GET`
//! with what a real node (`upstream`) answers, cut to a shorter chain or
//! tampered with as the test sets, so a test can put exactly the forgery
//! it wants in front of the sink.
//!
//! It understands the routes the sink reads: `/v1/status` (the height),
//! `/v1/blocks/{height}` and `/v1/blocks/{height}/raw` (the block's bytes)
//! and `/v1/events` (the page, as JSON or as borsh); everything else passes
//! through as it is. One request per connection,
//! each on a thread of its own; stopped when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger::{Block, EventKind};
use node::api::event_views::RawEventPage;
use node::api::types::RawBlockAnswer;
use serde_json::Value;

/// What the proxy changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Nothing: the upstream's answers (cut at `up_to`).
    Nothing,
    /// The block of this height with its first transaction's nonce changed
    /// (its tx root no longer matches its transactions).
    Block { height: u64 },
    /// The first event of this height that has an `amount_minor`, with one
    /// minor unit more.
    Event { height: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    up_to: u64,
    tamper: Tamper,
}

pub struct Proxy {
    pub url: String,
    settings: Arc<Mutex<Settings>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Serves `upstream` (a node's API URL) as it is.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let settings = Arc::new(Mutex::new(Settings {
            up_to: u64::MAX,
            tamper: Tamper::Nothing,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (settings, stop) = (Arc::clone(&settings), Arc::clone(&stop));
            let upstream = upstream.trim_end_matches('/').to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let settings = *settings.lock().expect("settings");
                            let upstream = upstream.clone();
                            std::thread::spawn(move || serve(stream, &upstream, settings));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Proxy {
            url,
            settings,
            stop,
            thread: Some(thread),
        }
    }

    /// From now on: a chain that ends at `up_to`, tampered with as said.
    pub fn set(&self, up_to: u64, tamper: Tamper) {
        *self.settings.lock().expect("settings") = Settings { up_to, tamper };
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

fn serve(stream: TcpStream, upstream: &str, settings: Settings) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
    }
    let (status, body) = match agent().get(format!("{upstream}{target}")).call() {
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let body = answer
                .body_mut()
                .with_config()
                .limit(512 << 20)
                .read_to_vec()
                .unwrap_or_default();
            (status, body)
        }
        Err(error) => (
            502,
            format!("{{\"error\":\"upstream\",\"detail\":\"{error}\"}}").into_bytes(),
        ),
    };
    let (status, body) = if status == 200 {
        rewrite(&target, body, settings)
    } else {
        (status, body)
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

/// The upstream's answer to `target` as the settings make it.
fn rewrite(target: &str, body: Vec<u8>, settings: Settings) -> (u16, Vec<u8>) {
    let path = target.split('?').next().unwrap_or(target);
    if path == "/v1/events" && target.contains("format=borsh") {
        let Ok(mut page) = borsh::from_slice::<RawEventPage>(&body) else {
            return (200, body);
        };
        cut_raw_page(&mut page, target, settings);
        return (200, borsh::to_vec(&page).expect("encoding to a Vec"));
    }
    if let Some(height) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|rest| rest.strip_suffix("/raw"))
        .and_then(|height| height.parse::<u64>().ok())
    {
        if height > settings.up_to {
            return not_found(height);
        }
        let Ok(mut answer) = borsh::from_slice::<RawBlockAnswer>(&body) else {
            return (200, body);
        };
        if settings.tamper == (Tamper::Block { height }) {
            answer.block = tampered_block(&answer.block);
        }
        return (200, borsh::to_vec(&answer).expect("encoding to a Vec"));
    }
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return (200, body);
    };
    if path == "/v1/status" {
        if let Some(height) = json["height"].as_u64() {
            json["height"] = settings.up_to.min(height).into();
        }
    } else if let Some(height) = path
        .strip_prefix("/v1/blocks/")
        .and_then(|rest| rest.parse::<u64>().ok())
    {
        if height > settings.up_to {
            return not_found(height);
        }
        if settings.tamper == (Tamper::Block { height }) {
            tamper_block(&mut json);
        }
    } else if path == "/v1/events" {
        cut_page(&mut json, target, settings);
    }
    (200, json.to_string().into_bytes())
}

fn not_found(height: u64) -> (u16, Vec<u8>) {
    (
        404,
        format!("{{\"error\":\"not_found\",\"detail\":\"no block at height {height}\"}}")
            .into_bytes(),
    )
}

fn tamper_block(view: &mut Value) {
    let bytes = hex::decode(view["block_hex"].as_str().unwrap_or_default()).unwrap_or_default();
    view["block_hex"] = hex::encode(tampered_block(&bytes)).into();
}

/// The block with its first transaction's nonce changed (so its tx root
/// no longer matches); bytes that are no block unchanged.
fn tampered_block(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut block) = Block::from_bytes(bytes) else {
        return bytes.to_vec();
    };
    if let Some(first) = block.txs.first_mut() {
        first.tx.nonce += 1;
    }
    block.to_bytes()
}

/// Drops the events above `up_to` (the page then ends where the cut chain
/// does) and tampers with the one the settings name.
fn cut_page(page: &mut Value, target: &str, settings: Settings) {
    let Some(events) = page["events"].as_array_mut() else {
        return;
    };
    events.retain(|event| event["height"].as_u64().unwrap_or(0) <= settings.up_to);
    if let Tamper::Event { height } = settings.tamper
        && let Some(event) = events.iter_mut().find(|event| {
            event["height"].as_u64() == Some(height) && event["amount_minor"].is_u64()
        })
    {
        let amount = event["amount_minor"].as_u64().unwrap_or(0);
        event["amount_minor"] = (amount + 1).into();
    }
    let last = events.last().map(|event| event["cursor"].clone());
    let derived = page["derived_height"].as_u64().unwrap_or(0);
    if derived > settings.up_to {
        page["derived_height"] = settings.up_to.into();
        // The page stops at the cut: `next` is its last event, or the
        // cursor asked for.
        let asked = target
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("after="))
            .map(|after| Value::from(after.to_string()));
        if let Some(next) = last.or(asked) {
            page["next"] = next;
        }
    }
}

/// As [`cut_page`], on a borsh page: the same cut, and the same tamper
/// (one minor unit more on the first event of the height with an
/// `amount`).
fn cut_raw_page(page: &mut RawEventPage, target: &str, settings: Settings) {
    page.events
        .retain(|event| event.cursor.height <= settings.up_to);
    if let Tamper::Event { height } = settings.tamper
        && let Some(amount) = page
            .events
            .iter_mut()
            .filter(|event| event.cursor.height == height)
            .find_map(|event| match &mut event.kind {
                EventKind::ReceivableConfirmed { amount, .. }
                | EventKind::TokenTransferred { amount, .. }
                | EventKind::FinancingRequested { amount, .. }
                | EventKind::FinancingAccepted { amount, .. }
                | EventKind::ReceivableSettled { amount, .. } => Some(amount),
                _ => None,
            })
    {
        amount.0 += 1;
    }
    if page.derived_height > settings.up_to {
        page.derived_height = settings.up_to;
        let asked = target
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("after="))
            .and_then(|after| after.parse().ok());
        if let Some(next) = page.events.last().map(|event| event.cursor).or(asked) {
            page.next = next;
        }
    }
}
