//! A small world for ledger tests: a chain id, named participants with their
//! keys, an in-memory state, and helpers that sign with the right nonce and
//! execute at a chosen block time.

#![allow(dead_code)]

use std::collections::BTreeMap;

use crypto::{ChainId, Hash, Keypair, PublicKey};
use ledger::{
    Amount, BlockContext, Changes, ExecError, GenesisState, GenesisValidator, MemoryState,
    Participant, PeerId, Role, SignedTransaction, StateView, Timestamp, TokenId, Transaction,
    TxBody, TxError, execute,
};

pub const DAY: u64 = Timestamp::MILLIS_PER_DAY;
/// 2027-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp(1_798_761_600_000);

pub struct World {
    pub chain: ChainId,
    pub state: MemoryState,
    pub keys: BTreeMap<&'static str, Keypair>,
    pub height: u64,
    pub now: Timestamp,
    /// What [`World::with_validators`] started from, for a store.
    pub genesis: Option<GenesisState>,
}

pub const PARTICIPANTS: [(&str, &[Role]); 8] = [
    ("operator", &[Role::Operator]),
    ("bank", &[Role::Bank]),
    ("bank2", &[Role::Bank]),
    ("core", &[Role::CoreEnterprise]),
    ("supplier1", &[Role::Supplier]),
    ("supplier2", &[Role::Supplier]),
    ("supplier3", &[Role::Supplier]),
    ("auditor", &[Role::Auditor]),
];

const READS: &str = "a memory state reads without failing";

/// Names of the validators of [`World::with_validators`], in order.
pub const VALIDATORS: [&str; 10] = ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"];
/// Keys of [`World::with_validators`] that nobody uses yet.
pub const FRESH: [&str; 10] = [
    "fresh0", "fresh1", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8",
    "fresh9",
];

/// The key of a name of [`PARTICIPANTS`], [`VALIDATORS`], [`FRESH`] or
/// "outsider", the same in every world.
pub fn keypair(name: &str) -> Keypair {
    let position = |names: &[&str]| names.iter().position(|known| *known == name);
    let participants: Vec<&str> = PARTICIPANTS.iter().map(|(name, _)| *name).collect();
    let seed = if let Some(index) = position(&participants) {
        index + 1
    } else if let Some(index) = position(&VALIDATORS) {
        100 + index
    } else if let Some(index) = position(&FRESH) {
        150 + index
    } else if name == "outsider" {
        200
    } else {
        panic!("no key is named {name:?}")
    };
    Keypair::from_seed([seed as u8; 32])
}

/// [`keypair`]'s public key.
pub fn key(name: &str) -> PublicKey {
    keypair(name).public()
}

impl World {
    /// Every participant of [`PARTICIPANTS`] registered; "outsider" has a key
    /// but is not registered.
    pub fn new() -> World {
        let mut keys = BTreeMap::new();
        let mut state = MemoryState::new();
        for (name, roles) in PARTICIPANTS.iter() {
            let key = keypair(name);
            state.apply([ledger::StateValue::Participant(Participant::new(
                key.public(),
                *name,
                roles.iter().copied(),
            ))]);
            keys.insert(*name, key);
        }
        keys.insert("outsider", keypair("outsider"));
        World {
            chain: ChainId(Hash::digest(b"test chain")),
            state,
            keys,
            height: 1,
            now: START,
            genesis: None,
        }
    }

    /// [`World::new`] with a 1,000,000.00 credit line from "bank" to "core"
    /// and a 100,000.00 receivable confirmed to "supplier1", maturing in 90
    /// days. Returns the world and the root token.
    pub fn funded() -> (World, TokenId) {
        let mut world = World::new();
        world.ok(
            "bank",
            TxBody::GrantCreditLine {
                core: world.key("core"),
                limit: Amount(100_000_000),
            },
        );
        let root = world.confirm("INV-1", 10_000_000);
        (world, root)
    }

    pub fn key(&self, name: &str) -> PublicKey {
        self.keys[name].public()
    }

    pub fn context(&self) -> BlockContext {
        BlockContext {
            chain_id: self.chain,
            height: self.height,
            time: self.now,
        }
    }

    /// [`World::new`] whose genesis also records a validator set:
    /// [`VALIDATORS`] with these powers, each with an account; and keys
    /// nobody uses yet, [`FRESH`].
    pub fn with_validators(powers: &[u64]) -> World {
        let mut world = World::new();
        let participants: Vec<Participant> = PARTICIPANTS
            .iter()
            .map(|(name, roles)| Participant::new(world.key(name), *name, roles.iter().copied()))
            .collect();
        let mut validators = Vec::new();
        for (index, power) in powers.iter().enumerate() {
            let name = VALIDATORS[index];
            let key = keypair(name);
            validators.push(GenesisValidator {
                name: name.to_string(),
                consensus_key: key.public(),
                peer_id: peer_id(100 + index as u8),
                address: format!("/ip4/10.0.0.{index}/tcp/26656"),
                power: *power,
            });
            world.keys.insert(name, key);
        }
        for (index, name) in FRESH.iter().enumerate() {
            world
                .keys
                .insert(name, Keypair::from_seed([150 + index as u8; 32]));
        }
        let genesis = GenesisState::new(participants, validators).expect("a valid genesis");
        world.state = MemoryState::new();
        world.state.apply(genesis.values());
        world.genesis = Some(genesis);
        world
    }

    /// The next nonce of whoever signs with `key` (its identity, or the
    /// participant a rotation bound it to); 0 for an unknown key.
    pub fn next_nonce(&self, key: &PublicKey) -> u64 {
        let identity = match self.state.key_binding(key).expect(READS) {
            Some(binding) => binding.participant,
            None => *key,
        };
        self.state
            .participant(&identity)
            .expect(READS)
            .map_or(0, |p| p.next_nonce)
    }

    /// Signs `body` by `signer` with its next nonce.
    pub fn sign(&self, signer: &str, body: TxBody) -> SignedTransaction {
        let key = &self.keys[signer];
        let nonce = self.next_nonce(&key.public());
        Transaction {
            chain_id: self.chain,
            signer: key.public(),
            nonce,
            body,
        }
        .sign(key)
    }

    /// Executes without applying. The world's state is in memory, so every
    /// error is a refusal.
    pub fn check(&self, tx: &SignedTransaction) -> Result<Changes, TxError> {
        execute(&self.context(), &self.state, tx).map_err(|error| match error {
            ExecError::Refused(error) => error,
            ExecError::State(error) => panic!("a memory state reads without failing: {error}"),
        })
    }

    /// Executes and, if accepted, applies; one transaction per block.
    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<Changes, TxError> {
        let changes = self.check(tx)?;
        self.state.apply(changes.clone());
        self.height += 1;
        Ok(changes)
    }

    /// Executes `txs` as one block (each must be valid), applies it, and
    /// returns the events a node derives from it. The block is at the
    /// world's height, which then moves on by one.
    pub fn block_events(&mut self, txs: Vec<SignedTransaction>) -> Vec<ledger::Event> {
        let execution =
            ledger::execute_block(&self.context(), &self.state, &txs).expect("a valid block");
        self.state.apply(execution.writes);
        let block = ledger::Block {
            header: ledger::BlockHeader {
                chain_id: self.chain,
                height: self.height,
                time: self.now,
                parent_hash: Hash::ZERO,
                proposer: key("operator"),
                tx_root: ledger::tx_root(&txs),
                app_hash: Hash::ZERO,
            },
            txs,
        };
        self.height += 1;
        ledger::derive_block_events(&block, |key| {
            Ok::<_, std::convert::Infallible>(self.state.get(key).expect(READS))
        })
        .expect("a valid block's events derive")
    }

    pub fn run(&mut self, signer: &str, body: TxBody) -> Result<Changes, TxError> {
        let tx = self.sign(signer, body);
        self.submit(&tx)
    }

    /// Runs a transaction that must succeed.
    pub fn ok(&mut self, signer: &str, body: TxBody) -> Changes {
        let kind = body.kind();
        self.run(signer, body)
            .unwrap_or_else(|error| panic!("{kind} by {signer} refused: {error}"))
    }

    /// "core" confirms `amount` to "supplier1" for `invoice`, maturing in 90 days.
    pub fn confirm(&mut self, invoice: &str, amount: u64) -> TokenId {
        let body = TxBody::ConfirmReceivable {
            supplier: self.key("supplier1"),
            amount: Amount(amount),
            maturity: Timestamp(self.now.0 + 90 * DAY),
            invoice_ref: Hash::digest(invoice.as_bytes()),
        };
        created(&self.ok("core", body))[0]
    }

    /// Transfers `token` held by `from`: `outputs` as (recipient, amount).
    pub fn transfer(
        &mut self,
        from: &str,
        token: TokenId,
        outputs: &[(&str, u64)],
    ) -> Result<Vec<TokenId>, TxError> {
        let outputs = outputs
            .iter()
            .map(|(to, amount)| ledger::Output {
                recipient: self.key(to),
                amount: Amount(*amount),
            })
            .collect();
        self.run(from, TxBody::Transfer { token, outputs })
            .map(|changes| created(&changes))
    }

    pub fn token(&self, id: &TokenId) -> ledger::Token {
        self.state
            .token(id)
            .expect("a memory state reads without failing")
            .expect("token exists")
    }
}

/// The libp2p peer id of the ed25519 key whose bytes are all `n` (an
/// identity multihash of its protobuf encoding, as libp2p derives it).
pub fn peer_id(n: u8) -> PeerId {
    let mut bytes = vec![0x00, 36, 0x08, 0x01, 0x12, 0x20];
    bytes.extend_from_slice(&[n; 32]);
    PeerId::from_bytes(bytes).expect("an identity multihash")
}

/// Tokens a transaction created (active, in output order).
pub fn created(changes: &Changes) -> Vec<TokenId> {
    changes
        .iter()
        .filter_map(|value| match value {
            ledger::StateValue::Token(token) if token.status == ledger::TokenStatus::Active => {
                Some(token.id)
            }
            _ => None,
        })
        .collect()
}
