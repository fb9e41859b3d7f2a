//! A small world for ledger tests: a chain id, named participants with their
//! keys, an in-memory state, and helpers that sign with the right nonce and
//! execute at a chosen block time.

#![allow(dead_code)]

use std::collections::BTreeMap;

use crypto::{ChainId, Hash, Keypair, PublicKey};
use ledger::{
    Amount, BlockContext, Changes, ExecError, MemoryState, Participant, Role, SignedTransaction,
    StateView, Timestamp, TokenId, Transaction, TxBody, TxError, execute,
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

impl World {
    /// Every participant of [`PARTICIPANTS`] registered; "outsider" has a key
    /// but is not registered.
    pub fn new() -> World {
        let mut keys = BTreeMap::new();
        let mut state = MemoryState::new();
        for (index, (name, roles)) in PARTICIPANTS.iter().enumerate() {
            let key = Keypair::from_seed([index as u8 + 1; 32]);
            state.apply([ledger::StateValue::Participant(Participant::new(
                key.public(),
                *name,
                roles.iter().copied(),
            ))]);
            keys.insert(*name, key);
        }
        keys.insert("outsider", Keypair::from_seed([200; 32]));
        World {
            chain: ChainId(Hash::digest(b"test chain")),
            state,
            keys,
            height: 1,
            now: START,
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

    /// Signs `body` by `signer` with its next nonce.
    pub fn sign(&self, signer: &str, body: TxBody) -> SignedTransaction {
        let key = &self.keys[signer];
        let nonce = self
            .state
            .participant(&key.public())
            .expect("a memory state reads without failing")
            .map_or(0, |p| p.next_nonce);
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
