//! Building, signing and submitting transactions, one function per kind.
//!
//! A [`Session`] is a signing key and the node it talks to: it takes the
//! chain id and the currency decimals from the trusted genesis (never from
//! the node's word, see `trust.rs`), fetches the signer's next nonce before
//! signing, checks what it can locally (the signer's role, the holder, the
//! amounts) so that the common mistakes get a precise message, then submits
//! and waits for the commit. The rules themselves are the ledger's: a local
//! check only explains early what the node would refuse anyway.
//!
//! These functions are shared by the commands (`commands.rs`) and `scf demo`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use crypto::{Keypair, PublicKey};
use ledger::{Amount, Output, Role, Timestamp, TokenId, Transaction, TxBody};
use node::api::types::{ParticipantView, TokenView, TxState};
use serde::Serialize;

use crate::client::{NodeClient, NodeError};
use crate::explain::{self, CliError, Context, Failure, refused};
use crate::parse;
use crate::trust::{Trust, TrustedChain};

/// What a committed transaction printed with `--json`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TxOutcome {
    pub tx_hash: String,
    pub height: u64,
    /// Ids of the tokens it created, in output order.
    pub tokens: Vec<String>,
}

impl TxOutcome {
    pub fn print(&self, what: &str) {
        println!("{what}: committed at height {}", self.height);
        println!("  tx     {}", self.tx_hash);
        for token in &self.tokens {
            println!("  token  {token}");
        }
    }
}

/// A signing key on a chain.
pub struct Session {
    pub client: NodeClient,
    pub key: Keypair,
    pub key_file: PathBuf,
    /// The chain this session signs for: chain id and decimals.
    pub chain: TrustedChain,
    pub signer: ParticipantView,
    pub wait: Duration,
}

impl Session {
    /// Reads the key, checks that the node serves the trusted chain, and
    /// asks it for the signer's state.
    pub fn open(
        client: NodeClient,
        trust: &Trust,
        key_file: &Path,
        wait: Duration,
    ) -> anyhow::Result<Session> {
        let key = parse::read_key(key_file)?;
        let (chain, _) = trust.check(&client)?;
        let signer = match client.participant(&key.public()) {
            Ok(participant) => participant,
            Err(NodeError::Refused { status: 404, .. }) => {
                return Err(refused(
                    "unknown_participant",
                    format!(
                        "the key in {} ({}) is not a registered participant of chain {}; an operator registers it with `scf participant register --name NAME --role ROLE --key {}`",
                        key_file.display(),
                        key.public(),
                        chain.genesis.chain_name,
                        key.public()
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        // The node finds a participant by a key it replaced too: say so here
        // rather than have the transaction refused.
        if signer.signing_key != key.public() {
            return Err(refused(
                "key_replaced",
                format!(
                    "the key in {} ({}) is no longer the signing key of {} ({}): it was rotated or recovered to {}; sign with the current key's file",
                    key_file.display(),
                    key.public(),
                    signer.name,
                    signer.key,
                    signer.signing_key
                ),
            ));
        }
        if !signer.active {
            return Err(refused(
                "participant_inactive",
                format!(
                    "{} ({}) was deactivated by an operator and can no longer sign transactions",
                    signer.name,
                    key.public()
                ),
            ));
        }
        Ok(Session {
            client,
            key,
            key_file: key_file.to_path_buf(),
            chain,
            signer,
            wait,
        })
    }

    pub fn decimals(&self) -> u8 {
        self.chain.decimals()
    }

    pub fn amount(&self, text: &str) -> anyhow::Result<Amount> {
        parse::amount(text, self.decimals())
    }

    pub fn format(&self, amount: Amount) -> String {
        amount.to_decimal_string(self.decimals())
    }

    /// Refuses early, naming the role, when the signer lacks it.
    pub fn require_role(&self, role: Role, action: &str) -> anyhow::Result<()> {
        if self.signer.roles.iter().any(|name| name == role.name()) {
            return Ok(());
        }
        Err(refused(
            "missing_role",
            format!(
                "wrong role: {} ({}) has the roles [{}], but {action} needs the {role} role; sign with the key of a {role} (--key FILE)",
                self.signer.name,
                self.key_file.display(),
                self.signer.roles.join(", ")
            ),
        ))
    }

    /// A token, with "unknown token" said plainly.
    pub fn token(&self, id: &TokenId) -> anyhow::Result<TokenView> {
        fetch_token(&self.client, id)
    }

    fn context<'a>(&'a self, token: Option<&'a TokenView>) -> Context<'a> {
        Context {
            client: Some(&self.client),
            signer_name: Some(self.signer.name.clone()),
            token,
            ..Context::default()
        }
    }

    /// Signs `body` with the next nonce, submits it and waits for the commit.
    pub fn submit(&self, body: TxBody, context: &Context<'_>) -> anyhow::Result<TxOutcome> {
        // Fetched again for every transaction: a session may sign several.
        let nonce = self.client.participant(&self.key.public())?.next_nonce;
        let signed = Transaction {
            chain_id: self.chain.chain_id,
            signer: self.key.public(),
            nonce,
            body,
        }
        .sign(&self.key);
        let view = match self.client.submit(&signed, Some(self.wait)) {
            Ok(view) => view,
            Err(NodeError::Refused { code, detail, .. }) => {
                return Err(explain::explain(&code, &detail, context));
            }
            Err(error) => return Err(error.into()),
        };
        match view.status {
            TxState::Committed { height, tokens, .. } => Ok(TxOutcome {
                tx_hash: view.tx_hash.to_string(),
                height,
                tokens: tokens.iter().map(ToString::to_string).collect(),
            }),
            TxState::Rejected { error, detail } => Err(explain::explain(&error, &detail, context)),
            TxState::Pending => Err(CliError {
                failure: Failure::NotCommitted,
                code: Some("pending".to_string()),
                message: format!(
                    "transaction {} was accepted but not committed within {} s; check it later with `scf tx show {}`",
                    view.tx_hash,
                    self.wait.as_secs(),
                    view.tx_hash
                ),
            }
            .into()),
        }
    }

    pub fn register_participant(
        &self,
        key: PublicKey,
        name: &str,
        roles: &[String],
    ) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Operator, "registering a participant")?;
        let roles = parse_roles(roles)?;
        self.submit(
            TxBody::RegisterParticipant {
                key,
                name: name.to_string(),
                roles,
            },
            &self.context(None),
        )
    }

    pub fn rotate_key(&self, new_key: PublicKey) -> anyhow::Result<TxOutcome> {
        if new_key == self.key.public() {
            return Err(refused(
                "same_key",
                format!(
                    "{new_key} is already the key in {}; give a new key (`scf keys new`)",
                    self.key_file.display()
                ),
            ));
        }
        self.submit(
            TxBody::RotateParticipantKey { new_key },
            &self.context(None),
        )
    }

    /// The operator's half of replacing a lost key: names the participant
    /// (by its identity) and the key it moves to.
    pub fn request_key_recovery(
        &self,
        participant: PublicKey,
        new_key: PublicKey,
    ) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Operator, "requesting a key recovery")?;
        self.submit(
            TxBody::RequestKeyRecovery {
                participant,
                new_key,
            },
            &self.context(None),
        )
    }

    /// The auditor's half: approves exactly the request for `new_key`.
    pub fn approve_key_recovery(
        &self,
        participant: PublicKey,
        new_key: PublicKey,
    ) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Auditor, "approving a key recovery")?;
        self.submit(
            TxBody::ApproveKeyRecovery {
                participant,
                new_key,
            },
            &self.context(None),
        )
    }

    pub fn deactivate_participant(&self, key: PublicKey) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Operator, "deactivating a participant")?;
        self.submit(TxBody::DeactivateParticipant { key }, &self.context(None))
    }

    pub fn grant_credit(&self, core: PublicKey, limit: &str) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Bank, "granting a credit line")?;
        // Zero is allowed: it withdraws this bank's grant.
        let limit = Amount::parse_decimal(limit, self.decimals())?;
        self.submit(TxBody::GrantCreditLine { core, limit }, &self.context(None))
    }

    pub fn confirm_receivable(
        &self,
        supplier: PublicKey,
        amount: &str,
        maturity: Timestamp,
        invoice: &str,
    ) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::CoreEnterprise, "confirming a receivable")?;
        let parsed = self.amount(amount)?;
        let invoice_ref = parse::invoice_ref(invoice)?;
        let context = Context {
            invoice: Some(invoice),
            core: Some(self.signer.key),
            requested: Some(amount),
            ..self.context(None)
        };
        self.submit(
            TxBody::ConfirmReceivable {
                supplier,
                amount: parsed,
                maturity,
                invoice_ref,
            },
            &context,
        )
    }

    /// Pays `payments` out of `token`; what is left goes back to the signer
    /// as one more output.
    pub fn transfer(
        &self,
        token: &TokenId,
        payments: &[(PublicKey, String)],
    ) -> anyhow::Result<TxOutcome> {
        let view = self.token(token)?;
        self.check_usable(&view, "transfer")?;
        let input = Amount(view.amount_minor);
        let mut outputs = Vec::new();
        let mut total = Amount::ZERO;
        for (recipient, amount) in payments {
            let amount = self.amount(amount)?;
            total = total
                .checked_add(amount)
                .context("the amounts add up to more than a 64-bit amount")?;
            outputs.push(Output {
                recipient: *recipient,
                amount,
            });
        }
        if total > input {
            return Err(refused(
                "amount_exceeds_token",
                format!(
                    "the amounts add up to {} but token {} holds only {}; transfer at most {}",
                    self.format(total),
                    view.id,
                    self.format(input),
                    self.format(input)
                ),
            ));
        }
        let remainder = input.checked_sub(total).expect("checked above");
        if remainder > Amount::ZERO {
            outputs.push(Output {
                // The identity: the key holdings are recorded under, the
                // same across key rotations.
                recipient: self.signer.key,
                amount: remainder,
            });
        }
        self.submit(
            TxBody::Transfer {
                token: *token,
                outputs,
            },
            &self.context(Some(&view)),
        )
    }

    pub fn request_financing(
        &self,
        token: &TokenId,
        bank: PublicKey,
        rate: &str,
    ) -> anyhow::Result<TxOutcome> {
        let view = self.token(token)?;
        self.check_usable(&view, "finance")?;
        let rate_bps = parse::rate_bps(rate)?;
        self.submit(
            TxBody::RequestFinancing {
                token: *token,
                bank,
                rate_bps,
            },
            &self.context(Some(&view)),
        )
    }

    pub fn accept_financing(&self, token: &TokenId) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Bank, "accepting financing")?;
        let view = self.token(token)?;
        self.submit(
            TxBody::AcceptFinancing { token: *token },
            &self.context(Some(&view)),
        )
    }

    pub fn reject_financing(&self, token: &TokenId) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Bank, "rejecting financing")?;
        let view = self.token(token)?;
        self.submit(
            TxBody::RejectFinancing { token: *token },
            &self.context(Some(&view)),
        )
    }

    pub fn settle(&self, root: &TokenId, payment_ref: &str) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::CoreEnterprise, "settling a receivable")?;
        let view = self.token(root)?;
        self.submit(
            TxBody::Settle {
                root: *root,
                payment_ref: payment_ref.to_string(),
            },
            &self.context(Some(&view)),
        )
    }

    pub fn freeze(&self, token: &TokenId, reason: &str) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Auditor, "freezing a token")?;
        let view = self.token(token)?;
        self.submit(
            TxBody::Freeze {
                token: *token,
                reason: reason.to_string(),
            },
            &self.context(Some(&view)),
        )
    }

    pub fn unfreeze(&self, token: &TokenId) -> anyhow::Result<TxOutcome> {
        self.require_role(Role::Auditor, "unfreezing a token")?;
        let view = self.token(token)?;
        self.submit(
            TxBody::Unfreeze { token: *token },
            &self.context(Some(&view)),
        )
    }

    /// The holder checks of a transfer or a financing request, said with names.
    fn check_usable(&self, view: &TokenView, action: &str) -> anyhow::Result<()> {
        if view.holder != self.signer.key {
            return Err(explain::explain(
                "not_holder",
                "",
                &self.context(Some(view)),
            ));
        }
        let code = match view.status.as_str() {
            "spent" => Some("token_spent"),
            "settled" => Some("token_settled"),
            "pending" => Some("token_pending"),
            _ if view.frozen => Some("token_frozen"),
            _ => None,
        };
        match code {
            Some(code) => Err(explain::explain(
                code,
                &format!(
                    "cannot {action} token {}: it is {}",
                    view.id,
                    if view.frozen {
                        "frozen"
                    } else {
                        view.status.as_str()
                    }
                ),
                &self.context(Some(view)),
            )),
            None => Ok(()),
        }
    }
}

/// A token, or "unknown token" with what to do.
pub fn fetch_token(client: &NodeClient, id: &TokenId) -> anyhow::Result<TokenView> {
    match client.token(id) {
        Ok(view) => Ok(view),
        Err(NodeError::Refused { status: 404, .. }) => Err(explain::not_found(format!(
            "unknown token: token {id} does not exist on this chain; check the id (`scf token list --holder KEY` lists a holder's tokens)"
        ))),
        Err(error) => Err(error.into()),
    }
}

fn parse_roles(names: &[String]) -> anyhow::Result<Vec<Role>> {
    let mut roles = names
        .iter()
        .map(|name| {
            Role::parse(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role {name:?}; roles are operator, bank, core_enterprise (or core), supplier, auditor"
                )
            })
        })
        .collect::<anyhow::Result<Vec<Role>>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}
