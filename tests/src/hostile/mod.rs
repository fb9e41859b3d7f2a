//! The hostile peer: an in-process member of the network with validator 3's
//! genesis identity (its node key and validator key), speaking the node's
//! real wire protocol through the node crate's own network layer.
//!
//! The peer is a small event loop around a pluggable [`Attack`]: every
//! gossip message and every sync request from the honest validators goes to
//! the attack, which decides what to answer and what to send. Around it the
//! peer keeps what an attacker needs to look credible:
//!
//! - a [`shadow::Shadow`] copy of the ledger, following the committed chain
//!   from the honest validators, to serve real blocks (and tamper with them)
//!   and to build blocks with the right app hash;
//! - the pending transactions it saw gossiped (to forge their signatures);
//! - by default it behaves as a validator that says yes to everything: it
//!   prevotes and precommits every proposal it sees, and proposes a block
//!   of pending transactions when its turn comes. Attacks override that.
//!
//! It holds no engine and keeps no safety rule: it is Byzantine.

pub mod forge;
pub mod shadow;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use consensus::{ConsensusMessage, SignedProposal, ValidatorSet, VoteKind};
use crypto::{ChainId, Hash, Keypair};
use ledger::{Block, SignedTransaction, TxHash};
use node::network::{
    self, KnownPeer, Network, NetworkConfig, NetworkEvent, PeerId, SyncRequest, SyncResponse, Topic,
};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, HOSTILE, INTRUDER};
use shadow::Shadow;

/// How often the attack's `on_tick` runs and proposer turns are checked.
const TICK: Duration = Duration::from_millis(50);
/// How often the shadow asks an honest peer for news.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);
/// The behaviour before an attack is armed and after it is disarmed.
#[derive(Debug)]
pub struct SaysYes;

impl Attack for SaysYes {}

/// Bounds on what the peer keeps.
const MAX_PENDING: usize = 4_096;
const MAX_OWN_BLOCKS: usize = 64;
const MAX_STALLED: usize = 4_096;

/// What the peer answers a sync request with.
#[derive(Debug)]
pub enum Answer {
    /// The truth, from the shadow copy and its own proposed blocks.
    Honest,
    Reply(SyncResponse),
    /// Drop the reply channel: the request fails at once on the asker's side.
    Refuse,
    /// Never answer: the asker waits for its request timeout.
    Stall,
}

/// One Byzantine behaviour. Every hook has a default: the yes-saying
/// validator described in the module doc.
pub trait Attack: Send {
    fn on_sync(&mut self, _ctx: &mut Ctx, _from: PeerId, _request: &SyncRequest) -> Answer {
        Answer::Honest
    }

    fn on_gossip(&mut self, _ctx: &mut Ctx, _topic: Topic, _from: PeerId, _bytes: &[u8]) {}

    /// Every [`TICK`].
    fn on_tick(&mut self, _ctx: &mut Ctx) {}

    /// Validator 3 is the proposer at (`height`, `round`); called once each.
    fn on_proposer_turn(&mut self, ctx: &mut Ctx, height: u64, round: u32) {
        let txs = ctx.pending_txs(200);
        let (block, hashes) = ctx.build(&txs);
        ctx.propose(height, round, &block, hashes, true);
    }

    /// Whether to prevote and precommit every proposal of another validator.
    fn says_yes(&self) -> bool {
        true
    }
}

/// What an attack works with.
pub struct Ctx {
    pub network: Network,
    pub chain_id: ChainId,
    /// Validator 3's consensus key.
    pub key: Keypair,
    pub validators: ValidatorSet,
    /// Honest peers and their validator index.
    pub honest: BTreeMap<PeerId, usize>,
    pub shadow: Arc<Mutex<Shadow>>,
    pub participant_keys: BTreeMap<String, Keypair>,
    /// The honest validators' API addresses (`http://…`).
    pub apis: BTreeMap<usize, String>,
    /// Honest transactions seen in gossip, oldest first.
    pub pending: VecDeque<SignedTransaction>,
    /// Blocks this peer proposed, by hash, for `BlockByHash`.
    pub own_blocks: HashMap<Hash, Vec<u8>>,
    /// Messages published so far.
    pub sent: u64,
    salt: u64,
    /// The highest (height, round) seen in honest consensus messages.
    round_seen: (u64, u32),
    proposed: BTreeSet<(u64, u32)>,
    /// The votes this peer cast, for [`Ctx::vote_once`].
    voted: BTreeSet<(u64, u32, VoteKind)>,
    stalled: Vec<oneshot::Sender<SyncResponse>>,
}

impl Ctx {
    /// A number never returned before (for junk and seeds).
    pub fn salt(&mut self) -> u64 {
        self.salt += 1;
        self.salt
    }

    pub fn shadow(&self) -> std::sync::MutexGuard<'_, Shadow> {
        self.shadow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The committed height as far as this peer knows.
    pub fn committed(&self) -> u64 {
        self.shadow().height()
    }

    pub fn publish(&mut self, topic: Topic, bytes: Vec<u8>) {
        self.sent += 1;
        // Refusals (no peer yet, a full queue, a duplicate) are the
        // attacker's problem, not the test's.
        let _ = self.network.publish(topic, bytes);
    }

    pub fn publish_consensus(&mut self, message: &ConsensusMessage) {
        self.publish(Topic::Consensus, message.to_bytes());
    }

    /// Up to `count` pending honest transactions, oldest first.
    pub fn pending_txs(&self, count: usize) -> Vec<SignedTransaction> {
        self.pending.iter().take(count).cloned().collect()
    }

    /// A valid transaction by the intruder that no honest node has seen.
    pub fn own_tx(&mut self) -> SignedTransaction {
        let key = self.participant_keys[INTRUDER].clone();
        let nonce = self.shadow().next_nonce(&key.public());
        let seed = self.salt() | 1 << 63;
        crate::client::registration(self.chain_id, &key, nonce, seed)
    }

    /// A block at the next height of those of `txs` that execute.
    pub fn build(&mut self, txs: &[SignedTransaction]) -> (Block, Vec<TxHash>) {
        let proposer = self.key.public();
        self.shadow().build(txs, proposer)
    }

    /// Signs and gossips a proposal of `block` with its announcement, keeps
    /// the block for `BlockByHash`, and (if `vote`) prevotes and precommits
    /// it.
    pub fn propose(
        &mut self,
        height: u64,
        round: u32,
        block: &Block,
        hashes: Vec<TxHash>,
        vote: bool,
    ) -> SignedProposal {
        let value = block.hash();
        let proposal = forge::proposal(&self.key, self.chain_id, height, round, value);
        self.keep_block(block);
        self.publish(Topic::Blocks, forge::announcement(block, hashes, &proposal));
        self.publish_consensus(&ConsensusMessage::Proposal(proposal));
        if vote {
            self.vote_for(height, round, Some(value));
        }
        proposal
    }

    /// A prevote and a precommit for `value`.
    pub fn vote_for(&mut self, height: u64, round: u32, value: Option<Hash>) {
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            self.voted.insert((height, round, kind));
            let vote = forge::vote(&self.key, self.chain_id, kind, height, round, value);
            self.publish_consensus(&vote);
        }
    }

    /// A vote of `kind` for `value`, unless this peer already cast one of
    /// that kind at (`height`, `round`).
    pub fn vote_once(&mut self, kind: VoteKind, height: u64, round: u32, value: Option<Hash>) {
        if self.voted.len() > 10_000 {
            self.voted.clear();
        }
        if self.voted.insert((height, round, kind)) {
            let vote = forge::vote(&self.key, self.chain_id, kind, height, round, value);
            self.publish_consensus(&vote);
        }
    }

    pub fn keep_block(&mut self, block: &Block) {
        if self.own_blocks.len() >= MAX_OWN_BLOCKS {
            self.own_blocks.clear();
        }
        self.own_blocks.insert(block.hash(), block.to_bytes());
    }

    /// What an honest node would answer.
    pub fn honest_answer(&self, request: &SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Status => SyncResponse::Status {
                height: self.committed(),
            },
            SyncRequest::Blocks { from, to } => {
                let shadow = self.shadow();
                let to = (*to).min(shadow.height()).min(from.saturating_add(63));
                SyncResponse::Blocks(
                    (*from.max(&1)..=to)
                        .map_while(|height| shadow.synced(height))
                        .collect(),
                )
            }
            SyncRequest::BlockByHash(hash) => {
                SyncResponse::Block(self.own_blocks.get(hash).cloned())
            }
        }
    }

    fn observe(&mut self, topic: Topic, bytes: &[u8], says_yes: bool) {
        match topic {
            Topic::Transactions => {
                let Ok(batch) = borsh::from_slice::<Vec<Vec<u8>>>(bytes) else {
                    return;
                };
                for bytes in batch {
                    if let Ok(tx) = SignedTransaction::from_bytes(&bytes) {
                        if self.pending.len() >= MAX_PENDING {
                            self.pending.pop_front();
                        }
                        self.pending.push_back(tx);
                    }
                }
            }
            Topic::Consensus => {
                let Ok(message) = ConsensusMessage::decode(bytes) else {
                    return;
                };
                let at = (message.height().0, message.round().0);
                self.round_seen = self.round_seen.max(at);
                if !says_yes {
                    return;
                }
                match message {
                    ConsensusMessage::Proposal(proposal) => {
                        let p = proposal.proposal;
                        self.vote_for(p.height.0, p.round.0, Some(p.value));
                    }
                    // Echoing the others' votes (nil ones included) makes
                    // any two honest validators a quorum with this one, so
                    // the chain moves on with an honest validator down.
                    ConsensusMessage::Vote(vote) => {
                        let v = vote.vote;
                        self.vote_once(v.kind, v.height.0, v.round.0, v.value);
                    }
                }
            }
            Topic::Blocks => {}
        }
    }

    /// Forgets pending transactions the chain has committed.
    fn prune_pending(&mut self) {
        let committed_nonce = {
            let shadow = self.shadow();
            let mut nonces = BTreeMap::new();
            for tx in &self.pending {
                nonces
                    .entry(tx.tx.signer)
                    .or_insert_with(|| shadow.next_nonce(&tx.tx.signer));
            }
            nonces
        };
        self.pending
            .retain(|tx| tx.tx.nonce >= committed_nonce[&tx.tx.signer]);
    }

    /// The proposer turns of validator 3 that are due: round 0 of the next
    /// height as soon as the previous one is committed, and the round after
    /// the highest one seen.
    fn due_turns(&self) -> Vec<(u64, u32)> {
        let height = self.committed() + 1;
        let rounds = match self.round_seen {
            (seen, round) if seen == height => vec![round, round.saturating_add(1)],
            (seen, _) if seen < height => vec![0],
            _ => Vec::new(),
        };
        rounds
            .into_iter()
            .filter(|round| {
                self.validators
                    .proposer(consensus::Height(height), consensus::Round(*round))
                    .public_key
                    == self.key.public()
            })
            .map(|round| (height, round))
            .filter(|turn| !self.proposed.contains(turn))
            .collect()
    }

    fn stall(&mut self, reply: oneshot::Sender<SyncResponse>) {
        if self.stalled.len() >= MAX_STALLED {
            self.stalled.remove(0);
        }
        self.stalled.push(reply);
    }
}

/// A running hostile peer; stopped when dropped.
pub struct Hostile {
    runtime: tokio::runtime::Handle,
    network: Network,
    stop: Option<oneshot::Sender<()>>,
    armed: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<u64>>,
    follower: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// Starts validator 3's impostor, saying yes until `attack` is armed.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        cluster: &Cluster,
        attack: Box<dyn Attack>,
    ) -> Hostile {
        let home = cluster.home(HOSTILE);
        let node_key = genesis::read_key_file(home.join(node::home::NODE_KEY_FILE))
            .expect("validator 3's node key");
        let key = genesis::read_key_file(home.join(node::home::VALIDATOR_KEY_FILE))
            .expect("validator 3's validator key");
        let genesis = &cluster.net.genesis;
        let chain_id = genesis.chain_id();
        let me = &genesis.validators[HOSTILE];
        let peers: Vec<KnownPeer> = genesis
            .validators
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != HOSTILE)
            .map(|(_, validator)| KnownPeer {
                name: validator.name.clone(),
                peer_id: validator.peer_id.parse().expect("genesis peer ids parse"),
                address: network::identity::parse_address(&validator.address).expect("address"),
            })
            .collect();
        let honest = genesis
            .validators
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != HOSTILE)
            .map(|(index, validator)| (validator.peer_id.parse().expect("peer id"), index))
            .collect();
        let (network, events) = runtime
            .block_on(network::start(NetworkConfig {
                keypair: network::identity::libp2p_keypair(&node_key),
                listen: network::identity::parse_address(&me.address).expect("address"),
                chain_id,
                peers,
            }))
            .expect("the hostile peer's network starts");
        let shadow = Arc::new(Mutex::new(Shadow::open(
            &cluster.dir().join("hostile-shadow"),
            genesis,
        )));
        let ctx = Ctx {
            network: network.clone(),
            chain_id,
            key,
            validators: genesis.validator_set().expect("a valid genesis"),
            honest,
            shadow: Arc::clone(&shadow),
            participant_keys: cluster.net.participant_keys.clone(),
            apis: crate::cluster::HONEST
                .iter()
                .map(|&index| (index, cluster.api(index)))
                .collect(),
            pending: VecDeque::new(),
            own_blocks: HashMap::new(),
            sent: 0,
            salt: 0,
            round_seen: (0, 0),
            proposed: BTreeSet::new(),
            voted: BTreeSet::new(),
            stalled: Vec::new(),
        };
        let (stop, stopped) = oneshot::channel();
        let armed = Arc::new(AtomicBool::new(false));
        let task = runtime.spawn(run(ctx, attack, Arc::clone(&armed), events, stopped));
        let follower = runtime.spawn(follow(network.clone(), shadow));
        Hostile {
            runtime: runtime.handle().clone(),
            network,
            stop: Some(stop),
            armed,
            task: Some(task),
            follower,
        }
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Switches between the attack and [`SaysYes`].
    pub fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::Relaxed);
    }

    /// Stops the peer; returns how many messages it published.
    pub fn stop(&mut self) -> u64 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.follower.abort();
        let sent = self.task.take().map_or(0, |task| {
            self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0)
            })
        });
        let network = self.network.clone();
        self.runtime.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), network.shutdown()).await;
        });
        sent
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run(
    mut ctx: Ctx,
    mut attack: Box<dyn Attack>,
    armed: Arc<AtomicBool>,
    mut events: mpsc::Receiver<NetworkEvent>,
    mut stopped: oneshot::Receiver<()>,
) -> u64 {
    let mut tick = tokio::time::interval(TICK);
    let mut last_prune = Instant::now();
    let mut benign = SaysYes;
    loop {
        let attack: &mut dyn Attack = if armed.load(Ordering::Relaxed) {
            attack.as_mut()
        } else {
            &mut benign
        };
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                attack.on_tick(&mut ctx);
                if last_prune.elapsed() > Duration::from_millis(500) {
                    last_prune = Instant::now();
                    ctx.prune_pending();
                }
            }
            event = events.recv() => match event {
                None => break,
                Some(NetworkEvent::Gossip { topic, from, bytes, .. }) => {
                    ctx.observe(topic, &bytes, attack.says_yes());
                    attack.on_gossip(&mut ctx, topic, from, &bytes);
                }
                Some(NetworkEvent::SyncRequest { from, request, reply }) => {
                    match attack.on_sync(&mut ctx, from, &request) {
                        Answer::Honest => {
                            let _ = reply.send(ctx.honest_answer(&request));
                        }
                        Answer::Reply(response) => {
                            let _ = reply.send(response);
                        }
                        Answer::Refuse => drop(reply),
                        Answer::Stall => ctx.stall(reply),
                    }
                }
                Some(_) => {}
            },
        }
        for (height, round) in ctx.due_turns() {
            ctx.proposed.insert((height, round));
            attack.on_proposer_turn(&mut ctx, height, round);
        }
    }
    ctx.sent
}

/// Keeps the shadow copy at the honest validators' committed height.
async fn follow(network: Network, shadow: Arc<Mutex<Shadow>>) {
    let mut turn = 0usize;
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let peers = network.connected_peers();
        if peers.is_empty() {
            continue;
        }
        turn += 1;
        let peer = peers[turn % peers.len()];
        let Ok(SyncResponse::Status { height }) = network.request(peer, SyncRequest::Status).await
        else {
            continue;
        };
        let ours = shadow
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .height();
        if height <= ours {
            continue;
        }
        let request = SyncRequest::Blocks {
            from: ours + 1,
            to: height,
        };
        let Ok(SyncResponse::Blocks(blocks)) = network.request(peer, request).await else {
            continue;
        };
        let shadow = Arc::clone(&shadow);
        let _ = tokio::task::spawn_blocking(move || {
            let mut shadow = shadow.lock().unwrap_or_else(PoisonError::into_inner);
            for synced in &blocks {
                if shadow.commit_synced(synced).is_err() {
                    break;
                }
            }
        })
        .await;
    }
}
