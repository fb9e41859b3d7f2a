//! The traffic's picture of the ledger, built only from committed blocks,
//! and the business actions it chooses from it.
//!
//! Each participant has at most one transaction in flight, so its next
//! nonce is exactly its committed transactions and a refused transaction
//! leaves no gap. The picture follows the chain block by block in commit
//! order, so a choice never rests on something that did not commit; a
//! choice can still lose a race with another participant's transaction
//! (an auditor freezing the token a supplier is splitting), which is then
//! refused by a rule and recorded as such — realistic traffic, not a
//! harness error.
//!
//! No I/O here: [`super::traffic`] submits what this module chooses.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use crypto::{ChainId, Hash, Keypair, PublicKey};
use ledger::{Amount, Output, Role, SignedTransaction, Timestamp, TokenId, Transaction, TxBody};

use super::Rng;

/// A token never transferred or offered this close to its maturity (the
/// block time may run a little ahead of the traffic's clock).
const MATURITY_MARGIN_MS: u64 = 5_000;
/// A root is settled this long after its maturity.
const SETTLE_DELAY_MS: u64 = 2_000;
/// Smallest confirmed amount, in minor units (1,000.00).
const MIN_CONFIRMATION: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenState {
    Active,
    Pending { bank: usize },
    Spent,
    Settled,
}

#[derive(Clone, Debug)]
struct TokenModel {
    root: TokenId,
    holder: usize,
    amount: u64,
    maturity_ms: u64,
    state: TokenState,
    frozen: bool,
}

#[derive(Clone, Debug)]
struct RootModel {
    issuer: usize,
    amount: u64,
    maturity_ms: u64,
    settled: bool,
    tokens: Vec<TokenId>,
}

/// A transaction on its way.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub tx: SignedTransaction,
    pub hash: ledger::TxHash,
    pub since: Instant,
    pub last_check: Instant,
    pub attempts: u32,
}

pub struct Actor {
    pub name: String,
    pub key: Keypair,
    pub role: Role,
    /// Committed transactions signed by this participant.
    pub committed: u64,
    pub in_flight: Option<InFlight>,
}

pub struct Model {
    chain_id: ChainId,
    pub actors: Vec<Actor>,
    by_key: HashMap<PublicKey, usize>,
    tokens: BTreeMap<TokenId, TokenModel>,
    roots: BTreeMap<TokenId, RootModel>,
    /// Active or pending tokens per holder.
    holdings: Vec<BTreeSet<TokenId>>,
    /// Tokens offered to each bank.
    offers: Vec<BTreeSet<TokenId>>,
    /// (bank, core) → grant; core → outstanding.
    grants: BTreeMap<(usize, usize), u64>,
    outstanding: BTreeMap<usize, u64>,
    frozen: BTreeSet<TokenId>,
    banks: Vec<usize>,
    cores: Vec<usize>,
    suppliers: Vec<usize>,
    invoices: u64,
    seed: u64,
    maturity_s: (u64, u64),
}

/// What committing a transaction changed, for the history.
pub struct Applied {
    pub signer: usize,
    pub tokens: Vec<TokenId>,
}

impl Model {
    pub fn new(
        chain_id: ChainId,
        keys: &BTreeMap<String, Keypair>,
        roles: &[(String, Vec<Role>)],
        seed: u64,
        maturity_s: (u64, u64),
    ) -> Model {
        let mut actors = Vec::new();
        for (name, role) in roles {
            let key = keys.get(name).expect("every genesis participant has a key");
            actors.push(Actor {
                name: name.clone(),
                key: key.clone(),
                role: role[0],
                committed: 0,
                in_flight: None,
            });
        }
        let of_role = |role: Role| -> Vec<usize> {
            actors
                .iter()
                .enumerate()
                .filter(|(_, actor)| actor.role == role)
                .map(|(index, _)| index)
                .collect()
        };
        let (banks, cores, suppliers) = (
            of_role(Role::Bank),
            of_role(Role::CoreEnterprise),
            of_role(Role::Supplier),
        );
        let by_key = actors
            .iter()
            .enumerate()
            .map(|(index, actor)| (actor.key.public(), index))
            .collect();
        let count = actors.len();
        Model {
            chain_id,
            actors,
            by_key,
            tokens: BTreeMap::new(),
            roots: BTreeMap::new(),
            holdings: vec![BTreeSet::new(); count],
            offers: vec![BTreeSet::new(); count],
            grants: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            frozen: BTreeSet::new(),
            banks,
            cores,
            suppliers,
            invoices: 0,
            seed,
            maturity_s,
        }
    }

    pub fn actor_of(&self, key: &PublicKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// The next transaction `actor` would sign now (`now_ms`: wall clock,
    /// close to the block time), or `None` when it has nothing to do.
    pub fn choose(&mut self, actor: usize, now_ms: u64, rng: &mut Rng) -> Option<TxBody> {
        match self.actors[actor].role {
            Role::Bank => self.bank_action(actor, rng),
            Role::CoreEnterprise => self.core_action(actor, now_ms, rng),
            Role::Supplier => self.supplier_action(actor, now_ms, rng),
            Role::Auditor => self.auditor_action(now_ms, rng),
            // The chaos load neither registers nor governs.
            Role::Operator | Role::Validator => None,
        }
    }

    /// Signs `body` with `actor`'s key and next nonce.
    pub fn sign(&self, actor: usize, body: TxBody) -> SignedTransaction {
        let signer = &self.actors[actor];
        Transaction {
            chain_id: self.chain_id,
            signer: signer.key.public(),
            nonce: signer.committed,
            body,
        }
        .sign(&signer.key)
    }

    fn bank_action(&mut self, bank: usize, rng: &mut Rng) -> Option<TxBody> {
        if let Some(&token) = self.offers[bank].iter().next() {
            return Some(if rng.below(100) < 85 {
                TxBody::AcceptFinancing { token }
            } else {
                TxBody::RejectFinancing { token }
            });
        }
        // Keep every core's line from this bank ahead of what it uses.
        let core = self.cores[rng.below(self.cores.len() as u64) as usize];
        let grant = self.grants.get(&(bank, core)).copied().unwrap_or(0);
        let limit = self.limit(core);
        let used = self.outstanding.get(&core).copied().unwrap_or(0);
        if grant == 0 || limit.saturating_sub(used) < 50 * MIN_CONFIRMATION {
            // 20–100 million in minor units.
            let raise = (20 + rng.below(80)) * 100_000_000;
            return Some(TxBody::GrantCreditLine {
                core: self.actors[core].key.public(),
                limit: Amount(grant + raise),
            });
        }
        None
    }

    fn limit(&self, core: usize) -> u64 {
        self.grants
            .iter()
            .filter(|((_, c), _)| *c == core)
            .map(|(_, grant)| *grant)
            .sum()
    }

    fn core_action(&mut self, core: usize, now_ms: u64, rng: &mut Rng) -> Option<TxBody> {
        let matured = self.roots.iter().find(|(_, root)| {
            root.issuer == core && !root.settled && root.maturity_ms + SETTLE_DELAY_MS < now_ms
        });
        if let Some((&root, _)) = matured {
            return Some(TxBody::Settle {
                root,
                payment_ref: format!("chaos-pay-{}", &root.to_string()[..16]),
            });
        }
        let unused = self
            .limit(core)
            .saturating_sub(self.outstanding.get(&core).copied().unwrap_or(0));
        let amount = (MIN_CONFIRMATION * (1 + rng.below(50))).min(unused);
        if amount < MIN_CONFIRMATION {
            return None;
        }
        let supplier = self.suppliers[rng.below(self.suppliers.len() as u64) as usize];
        let (low, high) = self.maturity_s;
        let maturity = now_ms + 1000 * (low + rng.below(high - low + 1));
        self.invoices += 1;
        Some(TxBody::ConfirmReceivable {
            supplier: self.actors[supplier].key.public(),
            amount: Amount(amount),
            maturity: Timestamp(maturity),
            invoice_ref: Hash::digest_parts(&[
                b"chaos/invoice",
                &self.seed.to_le_bytes(),
                &(core as u64).to_le_bytes(),
                &self.invoices.to_le_bytes(),
                &now_ms.to_le_bytes(),
            ]),
        })
    }

    /// An active, unfrozen token of `holder` far enough from maturity.
    fn usable_token(&self, holder: usize, now_ms: u64, rng: &mut Rng) -> Option<TokenId> {
        let usable: Vec<TokenId> = self.holdings[holder]
            .iter()
            .filter(|id| {
                let token = &self.tokens[*id];
                token.state == TokenState::Active
                    && !token.frozen
                    && token.maturity_ms > now_ms + MATURITY_MARGIN_MS
            })
            .copied()
            .collect();
        (!usable.is_empty()).then(|| usable[rng.below(usable.len() as u64) as usize])
    }

    fn supplier_action(&mut self, supplier: usize, now_ms: u64, rng: &mut Rng) -> Option<TxBody> {
        let token = self.usable_token(supplier, now_ms, rng)?;
        let amount = self.tokens[&token].amount;
        if rng.below(100) < 70 {
            // A split into up to three outputs to other suppliers (a split
            // of one output is a plain transfer).
            let parts = (1 + rng.below(3)).min(amount);
            let mut outputs = Vec::new();
            let mut left = amount;
            for part in 0..parts {
                let share = if part + 1 == parts {
                    left
                } else {
                    (1 + rng.below(left / (parts - part))).min(left - (parts - part - 1))
                };
                left -= share;
                let mut recipient = self.suppliers[rng.below(self.suppliers.len() as u64) as usize];
                if recipient == supplier {
                    recipient = self.suppliers[(self
                        .suppliers
                        .iter()
                        .position(|s| *s == supplier)
                        .expect("a supplier")
                        + 1)
                        % self.suppliers.len()];
                }
                outputs.push(Output {
                    recipient: self.actors[recipient].key.public(),
                    amount: Amount(share),
                });
            }
            Some(TxBody::Transfer { token, outputs })
        } else {
            let bank = self.banks[rng.below(self.banks.len() as u64) as usize];
            Some(TxBody::RequestFinancing {
                token,
                bank: self.actors[bank].key.public(),
                rate_bps: 200 + rng.below(1000) as u32,
            })
        }
    }

    fn auditor_action(&mut self, now_ms: u64, rng: &mut Rng) -> Option<TxBody> {
        if let Some(&token) = self.frozen.iter().next()
            && rng.below(100) < 60
        {
            return Some(TxBody::Unfreeze { token });
        }
        if rng.below(100) < 30 {
            let holder = self.suppliers[rng.below(self.suppliers.len() as u64) as usize];
            let token = self.usable_token(holder, now_ms, rng)?;
            return Some(TxBody::Freeze {
                token,
                reason: "chaos: disputed invoice".into(),
            });
        }
        None
    }

    /// Applies a committed transaction of ours to the picture; returns the
    /// tokens it created. Transactions the traffic did not sign are not
    /// expected and leave the picture as it is (`None`).
    pub fn apply(&mut self, tx: &SignedTransaction) -> Option<Applied> {
        let signer = self.actor_of(&tx.tx.signer)?;
        let hash = tx.hash();
        let actor = &mut self.actors[signer];
        actor.committed = actor.committed.max(tx.tx.nonce + 1);
        if actor
            .in_flight
            .as_ref()
            .is_some_and(|flight| flight.hash == hash)
        {
            actor.in_flight = None;
        }
        let created = node::api::types::created_token_ids(&hash, &tx.tx.body);
        match &tx.tx.body {
            TxBody::GrantCreditLine { core, limit } => {
                if let Some(core) = self.actor_of(core) {
                    self.grants.insert((signer, core), limit.0);
                }
            }
            TxBody::ConfirmReceivable {
                supplier,
                amount,
                maturity,
                ..
            } => {
                let holder = self.actor_of(supplier)?;
                let id = created[0];
                self.tokens.insert(
                    id,
                    TokenModel {
                        root: id,
                        holder,
                        amount: amount.0,
                        maturity_ms: maturity.0,
                        state: TokenState::Active,
                        frozen: false,
                    },
                );
                self.roots.insert(
                    id,
                    RootModel {
                        issuer: signer,
                        amount: amount.0,
                        maturity_ms: maturity.0,
                        settled: false,
                        tokens: vec![id],
                    },
                );
                self.holdings[holder].insert(id);
                *self.outstanding.entry(signer).or_default() += amount.0;
            }
            TxBody::Transfer { token, outputs } => {
                let spent = self.spend(token)?;
                for (output, id) in outputs.iter().zip(&created) {
                    let holder = self.actor_of(&output.recipient)?;
                    self.add_child(&spent, *id, holder, output.amount.0);
                }
            }
            TxBody::RequestFinancing { token, bank, .. } => {
                let bank = self.actor_of(bank)?;
                self.tokens.get_mut(token)?.state = TokenState::Pending { bank };
                self.offers[bank].insert(*token);
            }
            TxBody::AcceptFinancing { token } => {
                self.offers[signer].remove(token);
                let spent = self.spend(token)?;
                self.add_child(&spent, created[0], signer, spent.amount);
            }
            TxBody::RejectFinancing { token } => {
                self.offers[signer].remove(token);
                self.tokens.get_mut(token)?.state = TokenState::Active;
            }
            TxBody::Settle { root, .. } => {
                let root_model = self.roots.get_mut(root)?;
                root_model.settled = true;
                let (issuer, amount) = (root_model.issuer, root_model.amount);
                for id in root_model.tokens.clone() {
                    let token = self.tokens.get_mut(&id)?;
                    if let TokenState::Pending { bank } = token.state {
                        self.offers[bank].remove(&id);
                    }
                    if token.state != TokenState::Spent {
                        token.state = TokenState::Settled;
                        self.holdings[token.holder].remove(&id);
                    }
                }
                let outstanding = self.outstanding.entry(issuer).or_default();
                *outstanding = outstanding.saturating_sub(amount);
            }
            TxBody::Freeze { token, .. } => {
                self.tokens.get_mut(token)?.frozen = true;
                self.frozen.insert(*token);
            }
            TxBody::Unfreeze { token } => {
                self.tokens.get_mut(token)?.frozen = false;
                self.frozen.remove(token);
            }
            // Not generated by the model: no token or credit line moves.
            TxBody::RegisterParticipant { .. }
            | TxBody::DeactivateParticipant { .. }
            | TxBody::RotateParticipantKey { .. }
            | TxBody::RequestKeyRecovery { .. }
            | TxBody::ApproveKeyRecovery { .. }
            | TxBody::ProposeValidatorChange { .. }
            | TxBody::ApproveValidatorChange { .. } => {}
        }
        Some(Applied {
            signer,
            tokens: created,
        })
    }

    fn spend(&mut self, id: &TokenId) -> Option<TokenModel> {
        let token = self.tokens.get_mut(id)?;
        token.state = TokenState::Spent;
        let spent = token.clone();
        self.holdings[spent.holder].remove(id);
        Some(spent)
    }

    fn add_child(&mut self, parent: &TokenModel, id: TokenId, holder: usize, amount: u64) {
        self.tokens.insert(
            id,
            TokenModel {
                root: parent.root,
                holder,
                amount,
                maturity_ms: parent.maturity_ms,
                state: TokenState::Active,
                frozen: false,
            },
        );
        if let Some(root) = self.roots.get_mut(&parent.root) {
            root.tokens.push(id);
        }
        self.holdings[holder].insert(id);
    }
}
