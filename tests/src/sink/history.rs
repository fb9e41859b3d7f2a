//! A long committed history written straight into a one-validator local
//! network's store, for the sink benchmark: what a node that has run for a
//! while holds, made in seconds instead of by consensus. The blocks are real
//! (executed by the ledger, certified by the validator's own key, committed
//! by the store as a node commits them), so the node started on that home
//! serves them, and derives their events, like any other.
//!
//! The business: each bank grants each core enterprise a credit line, each
//! supplier gets a receivable, then every round each supplier pays its
//! neighbour one minor unit by splitting its token (one output to the
//! neighbour, the change to itself); every [`FINANCING_EVERY`] rounds the
//! suppliers instead offer what they last received to a bank, which
//! accepts in the next block, except for one supplier in
//! [`REOFFER_EVERY`]: its bank rejects the offer and, in the same block,
//! the supplier offers that token again, which stays open.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consensus::{CommitCertificate, CommitSignature, Height, Round, Vote};
use crypto::{ChainId, Domain, Hash, Keypair};
use ledger::block::{Block, BlockHeader, execute_block, tx_root};
use ledger::store::Store;
use ledger::{Amount, Output, Role, SignedTransaction, Timestamp, TokenId, Transaction, TxBody};
use node::localnet::{self, LocalNet, LocalNetSpec};

/// One round in this many is a financing round (requests, then accepts).
pub const FINANCING_EVERY: usize = 25;
/// One supplier in this many has its offer rejected and offers it again.
pub const REOFFER_EVERY: usize = 10;
/// Each supplier's receivable, in minor units.
const RECEIVABLE: u64 = 100_000_000;

/// How large a history to write.
#[derive(Clone, Copy, Debug)]
pub struct HistorySpec {
    pub suppliers: usize,
    pub rounds: usize,
    pub cores: usize,
    pub banks: usize,
}

/// A written history: the network's files (the validator's store closed).
#[derive(Debug)]
pub struct History {
    pub net: LocalNet,
    pub genesis_path: PathBuf,
    pub height: u64,
    pub transactions: u64,
    /// The tokens rejected and offered again, whose last request is open.
    pub reoffered: Vec<TokenId>,
}

fn participants(spec: &HistorySpec) -> Vec<(String, Vec<Role>)> {
    let mut all = vec![("operator".to_string(), vec![Role::Operator])];
    let mut add = |prefix: &str, count: usize, role: Role| {
        for index in 0..count {
            all.push((format!("{prefix}-{index:04}"), vec![role]));
        }
    };
    add("bank", spec.banks, Role::Bank);
    add("core", spec.cores, Role::CoreEnterprise);
    add("supplier", spec.suppliers, Role::Supplier);
    all
}

/// A participant that signs: its key and next nonce.
struct Signer {
    key: Keypair,
    nonce: u64,
}

impl Signer {
    fn sign(&mut self, chain_id: ChainId, body: TxBody) -> SignedTransaction {
        let tx = Transaction {
            chain_id,
            signer: self.key.public(),
            nonce: self.nonce,
            body,
        }
        .sign(&self.key);
        self.nonce += 1;
        tx
    }
}

/// Writes a local network of one validator under `dir` and commits the
/// history into its store.
pub fn write(dir: &Path, spec: &HistorySpec) -> Result<History, String> {
    let roster = participants(spec);
    let net = localnet::create(
        dir,
        &LocalNetSpec {
            chain_name: "sink-bench".into(),
            validators: 1,
            observers: 0,
            participants: roster.clone(),
            consensus: localnet::local_consensus(),
        },
    )
    .map_err(|error| format!("creating the network: {error}"))?;
    let home = net.nodes[0].home.clone();
    let validator = genesis::read_key_file(home.join(node::home::VALIDATOR_KEY_FILE))
        .map_err(|error| format!("the validator key: {error}"))?;
    let config = node::home::NodeConfig::load(&home, &node::home::Overrides::default())
        .map_err(|error| format!("the validator's home: {error}"))?;
    let genesis = &net.genesis;
    let chain_id = genesis.chain_id();
    let signer = |prefix: &str, count: usize| -> Vec<Signer> {
        (0..count)
            .map(|index| Signer {
                key: net.participant_keys[&format!("{prefix}-{index:04}")].clone(),
                nonce: 0,
            })
            .collect()
    };
    let (mut banks, mut cores, mut suppliers) = (
        signer("bank", spec.banks),
        signer("core", spec.cores),
        signer("supplier", spec.suppliers),
    );

    let mut store = Store::open(config.ledger_dir()).map_err(|error| error.to_string())?;
    // The state the node and the audit's replay start from (participants,
    // the validator set of epoch 0 and the validators' accounts).
    let initial = genesis
        .initial_state()
        .map_err(|error| format!("the genesis state: {error}"))?;
    store
        .init_genesis_state(chain_id, &initial)
        .map_err(|error| error.to_string())?;
    let mut chain = ChainWriter {
        store,
        chain_id,
        validator,
        genesis_time_ms: genesis.genesis_time_ms,
        parent: Hash::ZERO,
        height: 0,
        transactions: 0,
    };
    let maturity = Timestamp(genesis.genesis_time_ms + 365 * Timestamp::MILLIS_PER_DAY);
    let limit = Amount(RECEIVABLE * spec.suppliers as u64);
    let core_keys: Vec<_> = cores.iter().map(|core| core.key.public()).collect();
    let grants = banks
        .iter_mut()
        .flat_map(|bank| {
            core_keys
                .iter()
                .map(|core| bank.sign(chain_id, TxBody::GrantCreditLine { core: *core, limit }))
                .collect::<Vec<_>>()
        })
        .collect();
    chain.commit(grants)?;
    let supplier_keys: Vec<_> = suppliers.iter().map(|s| s.key.public()).collect();
    let confirmations: Vec<SignedTransaction> = supplier_keys
        .iter()
        .enumerate()
        .map(|(index, supplier)| {
            let count = cores.len();
            cores[index % count].sign(
                chain_id,
                TxBody::ConfirmReceivable {
                    supplier: *supplier,
                    amount: Amount(RECEIVABLE),
                    maturity,
                    invoice_ref: Hash::digest_parts(&[b"sink-bench", &index.to_le_bytes()]),
                },
            )
        })
        .collect();
    // Each supplier's own token (its change) and the one it last received.
    let mut own: Vec<(TokenId, u64)> = confirmations
        .iter()
        .map(|tx| (TokenId::derive(&tx.hash(), 0), RECEIVABLE))
        .collect();
    let mut received: Vec<Option<TokenId>> = vec![None; spec.suppliers];
    chain.commit(confirmations)?;
    let bank_keys: Vec<_> = banks.iter().map(|bank| bank.key.public()).collect();
    let mut reoffered = Vec::new();
    for round in 0..spec.rounds {
        if round % FINANCING_EVERY == FINANCING_EVERY - 1 {
            let offered: Vec<(usize, TokenId)> = received
                .iter_mut()
                .enumerate()
                .filter_map(|(index, token)| token.take().map(|token| (index, token)))
                .collect();
            let request = |index: usize, token: TokenId, rate_bps: u32| TxBody::RequestFinancing {
                token,
                bank: bank_keys[index % bank_keys.len()],
                rate_bps,
            };
            let requests = offered
                .iter()
                .map(|(index, token)| {
                    let body = request(*index, *token, 300 + (*index as u32 % 200));
                    suppliers[*index].sign(chain_id, body)
                })
                .collect();
            chain.commit(requests)?;
            let mut decisions = Vec::new();
            for (index, token) in &offered {
                let bank = &mut banks[index % bank_keys.len()];
                if index % REOFFER_EVERY == 0 {
                    decisions.push(bank.sign(chain_id, TxBody::RejectFinancing { token: *token }));
                    let body = request(*index, *token, 600);
                    decisions.push(suppliers[*index].sign(chain_id, body));
                    reoffered.push(*token);
                } else {
                    decisions.push(bank.sign(chain_id, TxBody::AcceptFinancing { token: *token }));
                }
            }
            chain.commit(decisions)?;
            continue;
        }
        let transfers: Vec<SignedTransaction> = (0..spec.suppliers)
            .map(|index| {
                let (token, amount) = own[index];
                let neighbour = supplier_keys[(index + 1) % spec.suppliers];
                suppliers[index].sign(
                    chain_id,
                    TxBody::Transfer {
                        token,
                        outputs: vec![
                            Output {
                                recipient: neighbour,
                                amount: Amount(1),
                            },
                            Output {
                                recipient: supplier_keys[index],
                                amount: Amount(amount - 1),
                            },
                        ],
                    },
                )
            })
            .collect();
        for (index, tx) in transfers.iter().enumerate() {
            own[index] = (TokenId::derive(&tx.hash(), 1), own[index].1 - 1);
            received[(index + 1) % spec.suppliers] = Some(TokenId::derive(&tx.hash(), 0));
        }
        chain.commit(transfers)?;
    }
    let genesis_path = home.join(node::home::GENESIS_FILE);
    Ok(History {
        height: chain.height,
        transactions: chain.transactions,
        genesis_path,
        net,
        reoffered,
    })
}

/// The validator's node, started on a written history; killed when dropped.
pub struct NodeProcess {
    child: Child,
    /// Its API, `http://127.0.0.1:PORT`.
    pub api: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scf node start` (`binary`) on the history's validator, logging
/// to `node.log` in its home, and waits until it has derived every block's
/// events.
pub fn serve(binary: &Path, history: &History) -> Result<NodeProcess, String> {
    let node = &history.net.nodes[0];
    let log = std::fs::File::create(node.home.join("node.log"))
        .map_err(|error| format!("the node's log: {error}"))?;
    let stderr = log
        .try_clone()
        .map_err(|error| format!("the node's log: {error}"))?;
    let child = Command::new(binary)
        .args(["node", "start", "--home"])
        .arg(&node.home)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .spawn()
        .map_err(|error| format!("starting the node: {error}"))?;
    let process = NodeProcess {
        child,
        api: format!("http://{}", node.api),
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page: Result<serde_json::Value, String> =
            crate::chaos::get_json(&format!("{}/v1/events?limit=1", process.api));
        if let Ok(page) = page
            && page["derived_height"].as_u64() >= Some(history.height)
        {
            return Ok(process);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the node at {} did not derive the events of {} blocks within 300 s",
                process.api, history.height
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Commits blocks as the validator's node would.
struct ChainWriter {
    store: Store,
    chain_id: ChainId,
    validator: Keypair,
    genesis_time_ms: u64,
    parent: Hash,
    height: u64,
    transactions: u64,
}

impl ChainWriter {
    fn commit(&mut self, txs: Vec<SignedTransaction>) -> Result<(), String> {
        let height = self.height + 1;
        let mut header = BlockHeader {
            chain_id: self.chain_id,
            height,
            time: Timestamp(self.genesis_time_ms + height * 1_000),
            parent_hash: self.parent,
            proposer: self.validator.public(),
            tx_root: tx_root(&txs),
            app_hash: Hash::ZERO,
        };
        let execution = execute_block(&header.context(), &self.store, &txs)
            .map_err(|error| format!("block {height} does not execute: {error}"))?;
        let prepared = self.store.prepare(execution);
        header.app_hash = prepared.app_hash();
        let block = Block { header, txs };
        let certificate = borsh::to_vec(&self.certify(&block)).expect("encoding to a Vec");
        self.store
            .commit(&block, &certificate, &prepared)
            .map_err(|error| format!("block {height} does not commit: {error}"))?;
        self.parent = block.hash();
        self.height = height;
        self.transactions += block.txs.len() as u64;
        Ok(())
    }

    /// The validator's precommit: a quorum of the one-validator set.
    fn certify(&self, block: &Block) -> CommitCertificate {
        let height = Height(block.header.height);
        let value = block.hash();
        let key = &self.validator;
        CommitCertificate {
            height,
            round: Round(0),
            value,
            signatures: vec![CommitSignature {
                validator: key.public(),
                signature: key.sign(
                    Domain::Precommit,
                    &self.chain_id,
                    &Vote::precommit(height, Round(0), value, key.public()),
                ),
            }],
        }
    }
}
