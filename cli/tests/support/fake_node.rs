//! A fake node for the trust tests: a tiny HTTP server on 127.0.0.1 that
//! answers `GET /v1/status` and `GET /v1/genesis` with whatever the test
//! sets (a lie, usually), answers everything else 404, and records every
//! request, so a test can tell that nothing was signed or sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake node answers.
#[derive(Clone, Debug)]
pub struct Answers {
    /// The body of `GET /v1/status`.
    pub status: serde_json::Value,
    /// The body of `GET /v1/genesis` (a genesis file's text).
    pub genesis: String,
}

/// A `/v1/status` body with every field a `StatusView` has.
pub fn status(
    chain_id: &str,
    chain_name: &str,
    currency_code: &str,
    decimals: u8,
) -> serde_json::Value {
    serde_json::json!({
        "chain_id": chain_id,
        "chain_name": chain_name,
        "node_name": "fake",
        "role": "validator",
        "height": 3,
        "block_hash": "00".repeat(32),
        "app_hash": "00".repeat(32),
        "latest_block_time": "2027-01-01T00:00:00.000Z",
        "peers": [],
        "peer_count": 0,
        "syncing": false,
        "consensus_round": 0,
        "mempool_txs": 0,
        "mempool_bytes": 0,
        "currency_code": currency_code,
        "currency_decimals": decimals,
    })
}

pub struct FakeNode {
    pub url: String,
    answers: Arc<Mutex<Answers>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNode {
    pub fn start(answers: Answers) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let answers = Arc::new(Mutex::new(answers));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answers, requests, stop) = (answers.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &answers, &requests),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FakeNode {
            url,
            answers,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Changes what it answers from now on.
    pub fn set(&self, answers: Answers) {
        *self.answers.lock().expect("answers") = answers;
    }

    /// Every request so far, as "METHOD /path".
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }

    /// Asserts that it was asked nothing but its status and genesis: nothing
    /// was signed and sent, no participant or token was looked up.
    pub fn was_only_asked_who_it_is(&self) {
        let requests = self.requests();
        assert!(
            requests
                .iter()
                .all(|request| request == "GET /v1/status" || request == "GET /v1/genesis"),
            "the fake node was asked more than its status and genesis: {requests:?}"
        );
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, answers: &Mutex<Answers>, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(stream) => stream,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    requests
        .lock()
        .expect("requests")
        .push(format!("{method} {path}"));
    let answers = answers.lock().expect("answers").clone();
    let (code, text) = match (method.as_str(), path.as_str()) {
        ("GET", "/v1/status") => ("200 OK", answers.status.to_string()),
        ("GET", "/v1/genesis") => ("200 OK", answers.genesis),
        _ => (
            "404 Not Found",
            r#"{"error":"not_found","detail":"a fake node"}"#.to_string(),
        ),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}
