//! The scfledger node: the process a bank or a core enterprise runs.
//!
//! It wires the `ledger` (rules and RocksDB store) and `consensus` (the pure
//! BFT engine) into a validator or an observer on tokio:
//!
//! - [`network`]: libp2p (TCP, Noise, Yamux), gossipsub topics per chain,
//!   request-response block sync; only genesis peers may connect, and what
//!   each may cost is bounded (`[p2p]` in `config.toml`).
//! - [`intake`]: judges what peers send before the driver or the mempool
//!   sees it; every queue between them is bounded.
//! - [`mempool`]: signed transactions waiting for a block.
//! - [`driver`]: the single owner of the consensus engine and the store's
//!   writer, on a thread of its own: proposes, validates, commits, syncs.
//! - [`api`]: the HTTP JSON API and Prometheus metrics.
//! - [`home`]: the home directory and `config.toml`.
//! - [`pid_file`]: `HOME/node.pid`, the id of the process running the home.
//!
//! [`start`] brings a node up and returns a handle; [`run`] is what
//! `scf node start` calls: start, wait for the shutdown signal, stop.

pub mod api;
pub mod driver;
pub mod home;
pub mod intake;
pub mod localnet;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod pid_file;
pub mod shared;
pub mod validators;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use ledger::SignedTransaction;
use ledger::store::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::info;

pub use home::{ConfigFile, NodeConfig, Overrides};

use driver::{Driver, DriverError, DriverSetup, Event};
use mempool::Mempool;
use network::{KnownPeer, Network, NetworkConfig, SyncRequest, SyncResponse, SyncedBlock, Topic};
use shared::Shared;
use validators::ValidatorSchedule;

/// Most transactions gossiped in one message.
const GOSSIP_BATCH_TXS: usize = 2_000;
/// Most bytes of transactions gossiped in one message (under the topic limit).
const GOSSIP_BATCH_BYTES: usize = 900 * 1024;

/// Why a node could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Home(#[from] home::HomeError),
    #[error("store at {path}: {error}")]
    Store {
        path: std::path::PathBuf,
        error: ledger::store::StoreError,
    },
    #[error("network: {0}")]
    Network(#[from] network::NetworkError),
    #[error(
        "cannot listen for the API on {address}: {error}; is another node using that port? change `api` in config.toml or pass --api"
    )]
    ApiBind {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot create the data directory {}: {error}", path.display())]
    DataDir {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write the pid file {}: {error}", path.display())]
    PidFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(
        "genesis cannot start a chain that records its validator set: {0}; fix the genesis file (every validator needs a real libp2p peer id, and no key may be both a validator's and a participant's)"
    )]
    GenesisState(#[from] genesis::InitialStateError),
    #[error("consensus driver: {0}")]
    Driver(#[from] DriverError),
    #[error("the consensus driver stopped unexpectedly")]
    DriverGone,
    #[error(
        "the store {} ends at height {height}, but this validator signed consensus messages at height {signed} (safety record {}): committed blocks were lost from the store, most likely from a damaged or truncated write-ahead log ({}). Refusing to start on it. To recover, move {} aside and start again: the node syncs the chain from its peers, and the safety record, which stays, keeps it from signing twice",
        store.display(),
        safety.display(),
        logs_named(logs),
        store.display()
    )]
    StoreLostBlocks {
        store: std::path::PathBuf,
        height: u64,
        signed: u64,
        safety: std::path::PathBuf,
        /// The store's write-ahead logs as they were before it was opened.
        logs: Vec<std::path::PathBuf>,
    },
}

fn logs_named(logs: &[std::path::PathBuf]) -> String {
    if logs.is_empty() {
        return "no write-ahead log was left".to_owned();
    }
    let names: Vec<String> = logs.iter().map(|log| log.display().to_string()).collect();
    names.join(", ")
}

/// The store's RocksDB write-ahead logs (`*.log`), newest last.
fn write_ahead_logs(store: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(store)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

/// Refuses a validator's store that ends below what the validator has
/// already voted on. A block is committed (synced) before the validator
/// signs anything at the next height, so an intact store is at most one
/// height behind the safety record. RocksDB recovers a truncated or damaged
/// write-ahead log to its last intact record without an error: this is
/// where that loss is caught. A store created by this start (its directory
/// was moved aside or wiped to resync) is not checked: it syncs from peers.
fn check_store_against_safety_record(
    store: &Store,
    store_path: &std::path::Path,
    safety_path: &std::path::Path,
    logs: Vec<std::path::PathBuf>,
) -> Result<(), NodeError> {
    let Some(record) = driver::safety_file::load(safety_path)
        .map_err(|error| NodeError::Driver(DriverError::from(error)))?
    else {
        return Ok(());
    };
    let height = store.height().unwrap_or(0);
    if record.height.0 > height.saturating_add(1) {
        return Err(NodeError::StoreLostBlocks {
            store: store_path.to_path_buf(),
            height,
            signed: record.height.0,
            safety: safety_path.to_path_buf(),
            logs,
        });
    }
    Ok(())
}

/// Sets up `tracing` from the config (text or JSON lines to stderr). Does
/// nothing if a subscriber is already installed (tests start many nodes).
pub fn init_logging(config: &ConfigFile) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A started node.
pub struct RunningNode {
    shared: Arc<Shared>,
    network: Network,
    api_addr: SocketAddr,
    events: mpsc::Sender<Event>,
    driver: Option<std::thread::JoinHandle<Result<(), DriverError>>>,
    driver_done: Option<oneshot::Receiver<()>>,
    api_stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// The bound API address (useful with port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Resolves when the driver stops on its own (a fatal error).
    pub async fn driver_stopped(&mut self) {
        match self.driver_done.as_mut() {
            Some(done) => {
                let _ = done.await;
            }
            None => std::future::pending().await,
        }
    }

    /// Stops every part and waits for them; the store is closed when this
    /// returns.
    pub async fn stop(mut self) -> Result<(), NodeError> {
        // The driver drains its queue, so this waits only while it is busy;
        // it fails at once if the driver has stopped.
        let _ = self.events.send(Event::Shutdown).await;
        let driver_result = match self.driver.take() {
            Some(handle) => tokio::task::spawn_blocking(move || handle.join())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(Err(DriverError::Store(
                    ledger::store::StoreError::Corrupt {
                        what: "the driver thread panicked".into(),
                    },
                ))),
            None => Ok(()),
        };
        if let Some(stop) = self.api_stop.take() {
            let _ = stop.send(());
        }
        self.network.shutdown().await;
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        info!("node stopped");
        driver_result.map_err(NodeError::from)
    }
}

/// Starts a node from its validated configuration: opens (or initialises)
/// the store, starts the network, the API and the driver.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|error| NodeError::DataDir {
        path: config.data_dir.clone(),
        error,
    })?;
    let genesis = config.genesis.clone();
    let chain_id = genesis.chain_id();
    let ledger_dir = config.ledger_dir();
    let store_error = |error| NodeError::Store {
        path: ledger_dir.clone(),
        error,
    };
    // Before opening: RocksDB recovers (and may rewrite) its logs on open.
    let existing_store = ledger_dir.join("CURRENT").exists();
    let logs = write_ahead_logs(&ledger_dir);
    let mut store = Store::open(&ledger_dir).map_err(store_error)?;
    store
        .events()
        .set_retention(config.config.events.retain_blocks);
    // The same state the audit's replay starts from (`Genesis::initial_state`),
    // validator set included, so both reach the same app hash.
    let initial_state = genesis.initial_state()?;
    store
        .init_genesis_state(chain_id, &initial_state)
        .map_err(store_error)?;
    if existing_store && config.validator_key.is_some() {
        check_store_against_safety_record(&store, &ledger_dir, &config.safety_file(), logs)?;
    }

    let my_peer = network::identity::peer_id_of(&config.node_key);
    // The validators the committed state has in force (or scheduled), not
    // genesis's: the driver updates the list after every commit.
    let schedule = ValidatorSchedule::read(&store, &genesis).map_err(|source| {
        store_error(ledger::store::StoreError::StateReadFailed {
            height: store.height().unwrap_or(0),
            source,
        })
    })?;
    let peers: Vec<KnownPeer> = schedule
        .allowed_peers(&genesis)
        .into_iter()
        .filter(|peer| peer.peer_id != my_peer)
        .collect();
    let (outbox, outbox_rx) = mpsc::unbounded_channel();
    let name = if config.config.name.is_empty() {
        my_peer.to_string()
    } else {
        config.config.name.clone()
    };
    let shared = Arc::new(Shared::new(
        genesis,
        name,
        config.validator_key.is_some(),
        store,
        Mempool::new(chain_id, config.config.mempool),
        outbox,
    ));
    let limits = config.config.p2p;
    let (network, mut network_events) = network::start_with(
        NetworkConfig {
            keypair: network::identity::libp2p_keypair(&config.node_key),
            listen: network::identity::parse_address(&config.config.listen)?,
            chain_id,
            peers,
        },
        limits,
        shared.metrics.drops(),
    )
    .await?;
    // Bounded: see `intake` for what is dropped when it is full and what
    // waits.
    let (events, events_rx) = mpsc::channel(limits.driver_queue);
    let mut tasks = Vec::new();

    // Network events: judged, then into the mempool or the driver; sync
    // answers.
    {
        let intake =
            intake::Intake::new(Arc::clone(&shared), network.clone(), events.clone(), limits);
        tasks.push(tokio::spawn(async move {
            while let Some(event) = network_events.recv().await {
                intake.on_network_event(event);
            }
        }));
    }
    // API submissions, gossiped in batches.
    tasks.push(tokio::spawn(gossip_outbox(
        outbox_rx,
        network.clone(),
        events.clone(),
    )));

    let listener = tokio::net::TcpListener::bind(config.config.api)
        .await
        .map_err(|error| NodeError::ApiBind {
            address: config.config.api,
            error,
        })?;
    let api_addr = listener.local_addr().map_err(|error| NodeError::ApiBind {
        address: config.config.api,
        error,
    })?;
    let (api_stop, api_stopped) = oneshot::channel::<()>();
    {
        let shared = Arc::clone(&shared);
        let limits = config.config.api_limits.clone();
        tasks.push(tokio::spawn(async move {
            api::serve(listener, shared, limits, async move {
                let _ = api_stopped.await;
            })
            .await;
        }));
    }

    let driver = Driver::new(DriverSetup {
        shared: Arc::clone(&shared),
        network: network.clone(),
        validator_key: config.validator_key.clone(),
        next_key_path: config
            .validator_key
            .is_some()
            .then(|| config.home.join(home::NEXT_VALIDATOR_KEY_FILE)),
        safety_path: config.safety_file(),
        evidence_path: config.data_dir.join("evidence.jsonl"),
        events: events_rx,
        sender: events.clone(),
        runtime: tokio::runtime::Handle::current(),
    })?;
    let (done_tx, done_rx) = oneshot::channel();
    let driver_thread = std::thread::Builder::new()
        .name("scf-driver".into())
        .spawn(move || {
            let result = driver.run();
            if let Err(error) = &result {
                tracing::error!(%error, "consensus driver stopped");
            }
            let _ = done_tx.send(());
            result
        })
        .expect("spawning the driver thread");
    info!(
        api = %api_addr,
        peer_id = %my_peer,
        listen = ?network.listen_addrs(),
        validator = config.validator_key.is_some(),
        "node started"
    );
    Ok(RunningNode {
        shared,
        network,
        api_addr,
        events,
        driver: Some(driver_thread),
        driver_done: Some(done_rx),
        api_stop: Some(api_stop),
        tasks,
    })
}

/// Starts the node and runs it until `shutdown` resolves (SIGINT/SIGTERM in
/// `scf node start`) or the driver fails. While it runs, `HOME/node.pid`
/// holds this process's id (see [`pid_file`]); it is removed once the node
/// has stopped.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let home = config.home.clone();
    let mut node = start(config).await?;
    let pid_file = match pid_file::PidFile::write(&home) {
        Ok(file) => file,
        Err(error) => {
            let _ = node.stop().await;
            return Err(NodeError::PidFile {
                path: home.join(pid_file::PID_FILE),
                error,
            });
        }
    };
    let failed = tokio::select! {
        _ = shutdown => false,
        _ = node.driver_stopped() => true,
    };
    let result = node.stop().await;
    drop(pid_file);
    if failed && result.is_ok() {
        return Err(NodeError::DriverGone);
    }
    result
}

/// Answers a peer's sync request from the store (and, for a block asked by
/// hash, from the blocks the driver holds for the current height).
///
/// A `Blocks` answer holds at most `max_sync_answer_blocks` blocks and
/// stops before `max_sync_answer_bytes` (a first block larger than that is
/// still sent: the asker needs it, and the protocol limit bounds it). The
/// store's read lock is taken per block, so a long answer never holds up a
/// commit.
pub fn serve_sync(
    shared: &Shared,
    request: SyncRequest,
    limits: &network::P2pLimits,
) -> SyncResponse {
    match request {
        SyncRequest::Status => SyncResponse::Status {
            height: shared.status.borrow().height,
        },
        SyncRequest::Blocks { from, to } => {
            let last = shared.store.read().height().unwrap_or(0);
            let most = limits.max_sync_answer_blocks.min(driver::sync::SYNC_BATCH);
            let to = to.min(last).min(from.saturating_add(most - 1));
            let mut blocks = Vec::new();
            let mut bytes = 0usize;
            for height in from.max(1)..=to {
                let read = {
                    let store = shared.store.read();
                    store
                        .block(height)
                        .and_then(|block| Ok(block.zip(store.certificate(height)?)))
                };
                let (block, certificate) = match read {
                    Ok(Some((block, certificate))) => (block.to_bytes(), certificate),
                    Ok(None) => break,
                    Err(error) => return SyncResponse::Error(error.to_string()),
                };
                bytes += block.len() + certificate.len();
                if bytes > limits.max_sync_answer_bytes && !blocks.is_empty() {
                    break;
                }
                blocks.push(SyncedBlock { block, certificate });
            }
            SyncResponse::Blocks(blocks)
        }
        SyncRequest::BlockByHash(hash) => SyncResponse::Block(
            shared
                .recent_block(&hash)
                .map(|bytes| bytes.as_ref().clone()),
        ),
    }
}

/// Publishes API-submitted transactions in batches: whatever arrived while
/// the previous batch was being sent goes out together.
async fn gossip_outbox(
    mut outbox: mpsc::UnboundedReceiver<Arc<SignedTransaction>>,
    network: Network,
    events: mpsc::Sender<Event>,
) {
    while let Some(first) = outbox.recv().await {
        let mut batch = vec![first.to_bytes()];
        let mut bytes = batch[0].len();
        while batch.len() < GOSSIP_BATCH_TXS && bytes < GOSSIP_BATCH_BYTES {
            match outbox.try_recv() {
                Ok(tx) => {
                    let encoded = tx.to_bytes();
                    bytes += encoded.len();
                    batch.push(encoded);
                }
                Err(_) => break,
            }
        }
        // Waits while the driver's queue is full (never lost).
        let _ = events.send(Event::MempoolActivity).await;
        let message = borsh::to_vec(&batch).expect("encoding to a Vec");
        if let Err(error) = network.publish(Topic::Transactions, message) {
            tracing::debug!(%error, "transaction batch not published");
        }
        // Let a few more arrive before the next message.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}
