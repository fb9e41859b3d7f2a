//! The harness's HTTP client of the honest nodes' API, and the background
//! load that keeps them committing.
//!
//! The load is one operator registering new participants, a few per 100 ms,
//! spread over the honest validators: every transaction is valid, so every
//! block should carry some, and the checks can tell progress from a stall.
//! It does not check anything itself (see [`crate::checks`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crypto::{ChainId, Hash, Keypair};
use ledger::{Block, Role, SignedTransaction, Transaction, TxBody};
use node::api::types::{BlockView, ParticipantView, StatusView, SubmitTx};
use serde::de::DeserializeOwned;

/// Every request is bounded: a stuck node must not stall the harness.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Transactions per load burst, and the pause between bursts.
const LOAD_BURST: usize = 3;
const LOAD_PAUSE: Duration = Duration::from_millis(100);
/// How far the load's nonce may run ahead of the committed one before it
/// starts again from the committed one (transactions lost to an attack
/// would otherwise leave a gap no later nonce can fill).
const MAX_NONCE_LEAD: u64 = 60;

fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

/// GET a JSON answer; an error names the URL and what went wrong.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let mut answer = agent()
        .get(url)
        .call()
        .map_err(|error| format!("GET {url}: {error}"))?;
    let status = answer.status().as_u16();
    if status != 200 {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    answer
        .body_mut()
        .read_json()
        .map_err(|error| format!("GET {url}: {error}"))
}

/// POST /v1/txs without waiting; the HTTP status (0: unreachable).
pub fn submit(api: &str, tx: &SignedTransaction) -> u16 {
    agent()
        .post(format!("{api}/v1/txs"))
        .send_json(SubmitTx {
            tx: hex::encode(tx.to_bytes()),
        })
        .map_or(0, |answer| answer.status().as_u16())
}

pub fn status(api: &str) -> Result<StatusView, String> {
    get_json(&format!("{api}/v1/status"))
}

/// The committed block at `height`, decoded from the API's hex.
pub fn block(api: &str, height: u64) -> Result<Block, String> {
    let view: BlockView = get_json(&format!("{api}/v1/blocks/{height}"))?;
    let bytes = hex::decode(&view.block_hex).map_err(|error| format!("block hex: {error}"))?;
    Block::from_bytes(&bytes).map_err(|error| format!("block {height}: {error}"))
}

/// The nonce the participant's next transaction must carry, as committed.
pub fn next_nonce(api: &str, key: &crypto::PublicKey) -> Result<u64, String> {
    let view: ParticipantView = get_json(&format!("{api}/v1/participants/{key}"))?;
    Ok(view.next_nonce)
}

/// A valid registration by `operator`: a new supplier derived from `seed`.
pub fn registration(
    chain_id: ChainId,
    operator: &Keypair,
    nonce: u64,
    seed: u64,
) -> SignedTransaction {
    let newcomer = Keypair::from_seed(Hash::digest(&seed.to_le_bytes()).0);
    Transaction {
        chain_id,
        signer: operator.public(),
        nonce,
        body: TxBody::RegisterParticipant {
            key: newcomer.public(),
            name: format!("supplier-{seed}"),
            roles: vec![Role::Supplier],
        },
    }
    .sign(operator)
}

/// The background load; stops (and is joined) when dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    submitted: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    /// Starts submitting to the given APIs, round robin.
    pub fn start(apis: Vec<String>, chain_id: ChainId, operator: Keypair) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let submitted = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let submitted = Arc::clone(&submitted);
            std::thread::spawn(move || run_load(&apis, chain_id, &operator, &stop, &submitted))
        };
        Load {
            stop,
            submitted,
            thread: Some(thread),
        }
    }

    /// Transactions accepted by a node so far.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
}

fn run_load(
    apis: &[String],
    chain_id: ChainId,
    operator: &Keypair,
    stop: &AtomicBool,
    submitted: &AtomicU64,
) {
    let mut nonce = 0u64;
    let mut seed = u64::from(std::process::id()) << 32;
    let mut target = 0usize;
    let mut last_resync = Instant::now();
    let committed = || {
        apis.iter()
            .find_map(|api| next_nonce(api, &operator.public()).ok())
    };
    while !stop.load(Ordering::Relaxed) {
        if last_resync.elapsed() > Duration::from_secs(1) {
            last_resync = Instant::now();
            if let Some(committed) = committed()
                && (nonce < committed || nonce > committed + MAX_NONCE_LEAD)
            {
                nonce = committed;
            }
        }
        for _ in 0..LOAD_BURST {
            let tx = registration(chain_id, operator, nonce, seed);
            seed += 1;
            let api = &apis[target % apis.len()];
            target += 1;
            match submit(api, &tx) {
                200 | 202 => {
                    nonce += 1;
                    submitted.fetch_add(1, Ordering::Relaxed);
                }
                // Refused by a rule: the nonce is taken, used or too far
                // ahead; move past a taken one, start again from the
                // committed one otherwise.
                409 | 422 => match committed() {
                    Some(committed)
                        if nonce >= committed && nonce <= committed + MAX_NONCE_LEAD =>
                    {
                        nonce += 1;
                    }
                    Some(committed) => nonce = committed,
                    None => {}
                },
                _ => {}
            }
        }
        std::thread::sleep(LOAD_PAUSE);
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
