//! A local network of real node processes for the multi-node tests: each
//! node is the `scf-bench` binary's hidden `node` command (the node library
//! behind a thin `main`), with its home in a temporary directory, libp2p and
//! the API on free ports of 127.0.0.1. Every child is killed when the
//! [`Net`] is dropped, and every wait is bounded.

#![allow(dead_code)]
// Amounts are written as currency units _ cents (1_000_00 is 1,000.00).
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crypto::Keypair;
use ledger::{Role, SignedTransaction, Transaction, TxBody};
use node::api::types::{BlockView, StatusView, SubmitTx, TxStatusView};
use node::localnet::{self, LocalNet, LocalNetSpec};

/// One multi-node test at a time: they start several processes each, and on
/// a 2-core machine two at once would mostly measure each other.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub net: LocalNet,
    children: Vec<Option<Child>>,
    pub agent: ureq::Agent,
    nonces: BTreeMap<String, u64>,
}

/// The demo consortium's participants.
pub fn participants() -> Vec<(String, Vec<Role>)> {
    vec![
        ("operator".into(), vec![Role::Operator]),
        ("bank".into(), vec![Role::Bank]),
        ("core".into(), vec![Role::CoreEnterprise]),
        ("supplier1".into(), vec![Role::Supplier]),
        ("supplier2".into(), vec![Role::Supplier]),
        ("supplier3".into(), vec![Role::Supplier]),
        ("auditor".into(), vec![Role::Auditor]),
    ]
}

impl Net {
    pub fn create(validators: usize, observers: usize) -> Net {
        let dir = tempfile::tempdir().expect("temporary directory");
        let net = localnet::create(
            dir.path(),
            &LocalNetSpec {
                chain_name: "node-tests".into(),
                validators,
                observers,
                participants: participants(),
                consensus: localnet::local_consensus(),
            },
        )
        .expect("creating the local network");
        let children = (0..net.nodes.len()).map(|_| None).collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Net {
            dir,
            net,
            children,
            agent,
            nonces: BTreeMap::new(),
        }
    }

    /// Adds a node made after the network (see `localnet::joining_node`);
    /// returns its index. Not started.
    pub fn add_node(&mut self, node: localnet::LocalNode) -> usize {
        self.net.nodes.push(node);
        self.children.push(None);
        self.net.nodes.len() - 1
    }

    /// The validator (consensus) key in node `index`'s home.
    pub fn validator_key(&self, index: usize) -> Keypair {
        genesis::read_key_file(self.home(index).join(node::home::VALIDATOR_KEY_FILE))
            .expect("the node's validator key")
    }

    /// Signs with any key at an explicit nonce.
    pub fn sign_with(&self, key: &Keypair, nonce: u64, body: TxBody) -> SignedTransaction {
        Transaction {
            chain_id: self.net.genesis.chain_id(),
            signer: key.public(),
            nonce,
            body,
        }
        .sign(key)
    }

    pub fn home(&self, index: usize) -> PathBuf {
        self.net.nodes[index].home.clone()
    }

    pub fn start(&mut self, index: usize) {
        let home = self.home(index);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .expect("node log");
        let child = Command::new(env!("CARGO_BIN_EXE_scf-bench"))
            .args(["node", "--home"])
            .arg(&home)
            .env("RUST_LOG", "info,node=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a node process");
        self.children[index] = Some(child);
        let api = self.api(index);
        self.wait_for(Duration::from_secs(60), "the node's API", || {
            self.agent.get(format!("{api}/v1/status")).call().is_ok()
        });
    }

    pub fn start_all(&mut self) {
        for index in 0..self.net.nodes.len() {
            self.start(index);
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self, index: usize) -> std::process::ExitStatus {
        let mut child = self.children[index].take().expect("node is running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the node") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node {index} did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of node `index` while it runs (for its peak RSS).
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children[index].as_ref().map(Child::id)
    }

    pub fn api(&self, index: usize) -> String {
        format!("http://{}", self.net.nodes[index].api)
    }

    pub fn key(&self, name: &str) -> &Keypair {
        &self.net.participant_keys[name]
    }

    /// Signs with `name`'s key and the next nonce this test has used for it.
    pub fn sign(&mut self, name: &str, body: TxBody) -> SignedTransaction {
        let nonce = self.nonces.entry(name.to_string()).or_insert(0);
        let tx = Transaction {
            chain_id: self.net.genesis.chain_id(),
            signer: self.net.participant_keys[name].public(),
            nonce: *nonce,
            body,
        }
        .sign(&self.net.participant_keys[name]);
        *nonce += 1;
        tx
    }

    /// Signs with `name`'s key at an explicit nonce, leaving the count of
    /// [`Net::sign`] alone (for transactions meant to be refused).
    pub fn sign_at(&self, name: &str, nonce: u64, body: TxBody) -> SignedTransaction {
        Transaction {
            chain_id: self.net.genesis.chain_id(),
            signer: self.net.participant_keys[name].public(),
            nonce,
            body,
        }
        .sign(&self.net.participant_keys[name])
    }

    /// POST /v1/txs; returns the HTTP status and the JSON answer.
    pub fn submit(
        &self,
        index: usize,
        tx: &SignedTransaction,
        wait: bool,
    ) -> (u16, serde_json::Value) {
        let query = if wait {
            "?wait=commit&timeout_ms=60000"
        } else {
            ""
        };
        let mut answer = self
            .agent
            .post(format!("{}/v1/txs{query}", self.api(index)))
            .send_json(SubmitTx {
                tx: hex::encode(tx.to_bytes()),
            })
            .expect("API reachable");
        let status = answer.status().as_u16();
        let body = answer.body_mut().read_json().expect("JSON answer");
        (status, body)
    }

    /// Submits and waits for the commit; panics unless committed.
    pub fn commit(&self, index: usize, tx: &SignedTransaction) -> TxStatusView {
        let (status, body) = self.submit(index, tx, true);
        assert_eq!(
            status,
            200,
            "transaction did not commit: {body}\n{}",
            self.logs()
        );
        serde_json::from_value(body).expect("a TxStatusView")
    }

    pub fn get(&self, index: usize, path: &str) -> (u16, serde_json::Value) {
        let mut answer = self
            .agent
            .get(format!("{}{path}", self.api(index)))
            .call()
            .expect("API reachable");
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .read_json()
            .unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub fn status(&self, index: usize) -> StatusView {
        let (code, body) = self.get(index, "/v1/status");
        assert_eq!(code, 200);
        serde_json::from_value(body).expect("a StatusView")
    }

    pub fn block(&self, index: usize, height: u64) -> BlockView {
        let mut answer = self
            .agent
            .get(format!("{}/v1/blocks/{height}", self.api(index)))
            .call()
            .expect("API reachable");
        assert_eq!(
            answer.status().as_u16(),
            200,
            "block {height} on node {index}"
        );
        answer
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_json()
            .expect("a BlockView")
    }

    pub fn wait_height(&self, index: usize, height: u64, limit: Duration) {
        self.wait_for(
            limit,
            &format!("node {index} to reach height {height}"),
            || {
                self.agent
                    .get(format!("{}/v1/status", self.api(index)))
                    .call()
                    .ok()
                    .and_then(|mut answer| answer.body_mut().read_json::<StatusView>().ok())
                    .is_some_and(|status| status.height >= height)
            },
        );
    }

    pub fn wait_for(&self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {} s waiting for {what}\n{}",
            limit.as_secs(),
            self.logs()
        );
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        self.net
            .nodes
            .iter()
            .map(|node| {
                let text = std::fs::read_to_string(node.home.join("node.log")).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- {} (last lines) ---\n{}\n",
                    node.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// 2100-01-01: far in the future.
pub const MATURITY: ledger::Timestamp = ledger::Timestamp(4_102_444_800_000);

/// The core confirms `amount` to `supplier` (maturing far ahead).
pub fn confirm_to(
    net: &mut Net,
    supplier: &str,
    amount: u64,
    invoice: &str,
) -> ledger::SignedTransaction {
    let supplier = net.key(supplier).public();
    net.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier,
            amount: ledger::Amount(amount),
            maturity: MATURITY,
            invoice_ref: crypto::Hash::digest(invoice.as_bytes()),
        },
    )
}

/// The bank grants the core a credit line far above what the tests use.
pub fn grant(net: &mut Net) -> ledger::SignedTransaction {
    let core = net.key("core").public();
    net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: ledger::Amount(1_000_000_000_00),
        },
    )
}
