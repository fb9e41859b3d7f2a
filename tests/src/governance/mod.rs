//! The harness of the governance scenario (issue 19): validator set changes
//! made through a running network's API, and the checks that judge the chain
//! across them.
//!
//! [`Governor`] proposes and approves changes with the validators' consensus
//! keys (a validator's governance transactions are signed with them) and
//! waits for their adoption; [`assert_chain_follows_recorded_sets`] compares
//! nodes block by block and verifies every certificate against the set the
//! chain recorded for its height; [`audit_verify`] runs the real `scf audit
//! verify`. [`timeline`] measures the gaps between commits and [`injector`]
//! sends votes signed by a key that is no longer a validator's.
//!
//! Every request and every wait is bounded; nothing here starts a node.

pub mod injector;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consensus::{CommitCertificate, Height, ValidatorSet};
use crypto::{ChainId, Keypair, PublicKey};
use ledger::governance::ValidatorChange;
use ledger::{SignedTransaction, Transaction, TxBody, TxHash};
use node::api::governance::{ProposalView, ValidatorSetView};
use node::api::types::{BlockView, SubmitTx, TxState, TxStatusView};

use crate::client::get_json;

/// How long a submitted transaction may take to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a change may take to be adopted once its last approval committed
/// on the approver's node (the proposer's node may be a block behind).
const ADOPTION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `scf audit verify` may run.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(180);
/// A proposal's lifetime in blocks.
const PROPOSAL_LIFETIME: u64 = 1_000;

/// An agent whose requests may wait for a commit.
fn waiting_agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(COMMIT_TIMEOUT + Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

/// Submits `tx` to `api` and waits for its commit; the height it committed at.
pub fn commit(api: &str, tx: &SignedTransaction) -> Result<u64, String> {
    let url = format!(
        "{api}/v1/txs?wait=commit&timeout_ms={}",
        COMMIT_TIMEOUT.as_millis()
    );
    let mut answer = waiting_agent()
        .post(&url)
        .send_json(SubmitTx {
            tx: hex::encode(tx.to_bytes()),
        })
        .map_err(|error| format!("POST {url}: {error}"))?;
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer
        .body_mut()
        .read_json()
        .map_err(|error| format!("POST {url}: {error}"))?;
    if status != 200 {
        return Err(format!("POST {url}: HTTP {status}: {body}"));
    }
    let view: TxStatusView =
        serde_json::from_value(body.clone()).map_err(|error| format!("{error}: {body}"))?;
    match view.status {
        TxState::Committed { height, .. } => Ok(height),
        other => Err(format!("{} did not commit: {other:?}", view.tx_hash)),
    }
}

pub fn proposal(api: &str, id: TxHash) -> Result<ProposalView, String> {
    get_json(&format!("{api}/v1/validators/proposals/{id}"))
}

/// The set `api`'s node records for `height`.
pub fn validator_set(api: &str, height: u64) -> Result<ValidatorSetView, String> {
    get_json(&format!("{api}/v1/validators?height={height}"))
}

/// A recorded set as the consensus layer's type.
pub fn consensus_set(view: &ValidatorSetView) -> ValidatorSet {
    ValidatorSet::new(
        view.validators
            .iter()
            .map(|validator| consensus::Validator {
                public_key: validator.consensus_key,
                power: validator.power,
            }),
    )
    .expect("a recorded set is a valid consensus set")
}

pub fn block(api: &str, height: u64) -> Result<BlockView, String> {
    get_json(&format!("{api}/v1/blocks/{height}"))
}

pub fn certificate(view: &BlockView) -> CommitCertificate {
    let bytes = hex::decode(
        view.certificate_hex
            .as_ref()
            .expect("a committed block's certificate"),
    )
    .expect("the API's certificate hex");
    borsh::from_slice(&bytes).expect("the API's certificate borsh")
}

/// The consensus keys whose precommits certify block `height`.
pub fn signers(api: &str, height: u64) -> Result<Vec<PublicKey>, String> {
    Ok(certificate(&block(api, height)?)
        .signatures
        .iter()
        .map(|signature| signature.validator)
        .collect())
}

pub fn height(api: &str) -> Result<u64, String> {
    crate::client::status(api).map(|status| status.height)
}

/// Polls until `api`'s node has committed `target`.
pub fn wait_height(api: &str, target: u64, limit: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + limit;
    loop {
        match height(api) {
            Ok(height) if height >= target => return Ok(height),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(height) => {
                return Err(format!(
                    "{api} at height {height}, not {target}, after {limit:?}"
                ));
            }
            Err(error) => return Err(error),
        }
    }
}

/// The first height from `from` on whose certificate `key` signed, polled
/// for `limit` while the chain grows.
pub fn first_signed(api: &str, key: &PublicKey, from: u64, limit: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + limit;
    let mut next = from;
    while Instant::now() < deadline {
        let tip = height(api)?;
        while next <= tip {
            if signers(api, next)?.contains(key) {
                return Ok(next);
            }
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{key} signed no certificate of heights {from}..{next} within {limit:?}"
    ))
}

/// One validator as governance sees it: its key and the API it submits to.
pub struct Member {
    pub key: Keypair,
    pub api: String,
}

/// Proposes and approves validator set changes with the members' consensus
/// keys, keeping each key's nonce.
pub struct Governor {
    pub chain_id: ChainId,
    pub members: BTreeMap<String, Member>,
    nonces: BTreeMap<PublicKey, u64>,
}

impl Governor {
    pub fn new(chain_id: ChainId) -> Governor {
        Governor {
            chain_id,
            members: BTreeMap::new(),
            nonces: BTreeMap::new(),
        }
    }

    pub fn add_member(&mut self, name: &str, key: Keypair, api: String) {
        self.members.insert(name.to_string(), Member { key, api });
    }

    fn sign(&mut self, member: &str, body: TxBody) -> (SignedTransaction, String) {
        let member = &self.members[member];
        let nonce = self.nonces.entry(member.key.public()).or_insert(0);
        let tx = Transaction {
            chain_id: self.chain_id,
            signer: member.key.public(),
            nonce: *nonce,
            body,
        }
        .sign(&member.key);
        *nonce += 1;
        (tx, member.api.clone())
    }

    /// `proposer` proposes `change` (which counts as its approval) and each
    /// of `approvers` approves it through its own node, every transaction
    /// committed; the proposal's id. Whether that adopts it is the
    /// approvals' power: see [`Governor::adopt`].
    pub fn propose(
        &mut self,
        proposer: &str,
        approvers: &[&str],
        change: ValidatorChange,
    ) -> Result<TxHash, String> {
        let api = self.members[proposer].api.clone();
        let expires_at = height(&api)? + PROPOSAL_LIFETIME;
        let (propose, api) = self.sign(
            proposer,
            TxBody::ProposeValidatorChange { change, expires_at },
        );
        let proposed_at = commit(&api, &propose)?;
        let id = propose.hash();
        for approver in approvers {
            let (approve, api) =
                self.sign(approver, TxBody::ApproveValidatorChange { proposal: id });
            // The proposal committed on the proposer's node; the approver's
            // may be a block behind, and refuses an approval of a proposal
            // it has not seen yet (`unknown_proposal`).
            wait_height(&api, proposed_at, ADOPTION_TIMEOUT)?;
            commit(&api, &approve)?;
        }
        Ok(id)
    }

    /// `proposer` proposes `change`, each of `approvers` approves it through
    /// its own node, and the adopted proposal is returned (its
    /// `effective_from` is two heights past its adoption).
    pub fn adopt(
        &mut self,
        proposer: &str,
        approvers: &[&str],
        change: ValidatorChange,
    ) -> Result<ProposalView, String> {
        let id = self.propose(proposer, approvers, change)?;
        let deadline = Instant::now() + ADOPTION_TIMEOUT;
        loop {
            let view = proposal(&self.members[proposer].api, id)?;
            if view.status == "adopted" {
                let (at, from) = (view.adopted_at, view.effective_from);
                if from.zip(at).is_none_or(|(from, at)| from != at + 2) {
                    return Err(format!(
                        "adopted at {at:?}, effective from {from:?}: not two heights later"
                    ));
                }
                return Ok(view);
            }
            if Instant::now() > deadline {
                return Err(format!("proposal {id} not adopted: {view:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Every node of `apis` holds the same blocks and app hashes at heights
/// `1..=to` and records the same validator set for each, and every
/// certificate verifies against that set. Returns how many certificates
/// were checked.
pub fn assert_chain_follows_recorded_sets(chain_id: &ChainId, apis: &[String], to: u64) -> u64 {
    for api in apis {
        wait_height(api, to, Duration::from_secs(60)).unwrap_or_else(|error| panic!("{error}"));
    }
    let fetch = |api: &str, height: u64| {
        block(api, height).unwrap_or_else(|error| panic!("block {height} from {api}: {error}"))
    };
    let mut sets: Vec<(u64, ValidatorSet)> = Vec::new();
    for height in 1..=to {
        let reference = fetch(&apis[0], height);
        for api in &apis[1..] {
            let other = fetch(api, height);
            assert_eq!(other.hash, reference.hash, "block hash at {height}, {api}");
            assert_eq!(
                other.app_hash, reference.app_hash,
                "app hash at {height}, {api}"
            );
        }
        let view = validator_set(&apis[0], height).unwrap_or_else(|error| panic!("{error}"));
        for api in &apis[1..] {
            let other = validator_set(api, height).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                (other.epoch, &other.validators),
                (view.epoch, &view.validators),
                "the set recorded for height {height}, {api}"
            );
        }
        if sets
            .last()
            .is_none_or(|(from, _)| *from != view.from_height)
        {
            sets.push((view.from_height, consensus_set(&view)));
        }
        let (_, set) = sets.last().expect("pushed above");
        certificate(&reference)
            .verify_for(set, chain_id, Height(height), reference.hash)
            .unwrap_or_else(|error| panic!("certificate at height {height}: {error}"));
    }
    to
}

/// Runs the real `scf audit verify` against `api` (every block and
/// certificate from genesis, each certificate against the set recorded for
/// its height, every transaction replayed); its JSON answer.
pub fn audit_verify(binary: &Path, genesis: &Path, api: &str) -> Result<serde_json::Value, String> {
    let out = tempfile::NamedTempFile::new().map_err(|error| error.to_string())?;
    let mut child = Command::new(binary)
        .args(["--json", "--node", api, "--genesis"])
        .arg(genesis)
        .args(["audit", "verify"])
        .stdin(Stdio::null())
        .stdout(out.reopen().map_err(|error| error.to_string())?)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("starting scf audit verify: {error}"))?;
    let deadline = Instant::now() + AUDIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("scf audit verify ran past {AUDIT_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(out.path()).map_err(|error| error.to_string())?;
    if !status.success() {
        return Err(format!("scf audit verify failed ({status}): {text}"));
    }
    serde_json::from_str(&text).map_err(|error| format!("{error}: {text}"))
}
