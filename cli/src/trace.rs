//! `scf token trace ID`: a token's whole lineage as a tree, from the root
//! confirmation down to every descendant, with holder names, amounts and
//! statuses.
//!
//! The node answers a lineage as flat lists (ancestors, descendants depth
//! first, in pages the client joins); this module rebuilds the tree from each token's parent and draws
//! it with `├─`/`└─`. It reads only; names come from the participants.

use std::collections::{BTreeMap, HashMap};

use crypto::PublicKey;
use ledger::{Amount, Origin, TokenId, TokenStatus};
use node::api::types::{LineageView, TokenView};
use serde::Serialize;

use crate::client::{NodeClient, NodeError};
use crate::explain;

/// One token in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct TraceNode {
    pub id: TokenId,
    pub holder: PublicKey,
    pub holder_name: String,
    pub amount: String,
    pub status: String,
    pub frozen: bool,
    /// How it came to be: confirmed, transferred, or financed (with the price).
    pub origin: String,
    pub children: Vec<TraceNode>,
}

/// The tree of a root, and which token was asked for.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub traced: TokenId,
    pub issuer: PublicKey,
    pub issuer_name: String,
    pub maturity: String,
    pub root: TraceNode,
}

/// Fetches the lineage of `id`'s root and builds the tree.
pub fn trace(client: &NodeClient, id: &TokenId, decimals: u8) -> anyhow::Result<Trace> {
    let lineage = lineage(client, id)?;
    let root_id = lineage.token.root_id;
    let lineage = if root_id == *id {
        lineage
    } else {
        self::lineage(client, &root_id)?
    };
    let mut names = Names {
        client,
        known: HashMap::new(),
    };
    let mut children: BTreeMap<TokenId, Vec<&TokenView>> = BTreeMap::new();
    for token in &lineage.descendants {
        if let Some(parent) = token.parent_id {
            children.entry(parent).or_default().push(token);
        }
    }
    let root = build(&lineage.token, &children, &mut names, decimals);
    Ok(Trace {
        traced: *id,
        issuer: lineage.token.issuer,
        issuer_name: names.name(&lineage.token.issuer),
        maturity: lineage.token.maturity.clone(),
        root,
    })
}

fn lineage(client: &NodeClient, id: &TokenId) -> anyhow::Result<LineageView> {
    match client.lineage(id) {
        Ok(view) => Ok(view),
        Err(NodeError::Refused { status: 404, .. }) => Err(explain::not_found(format!(
            "unknown token: token {id} does not exist on this chain; check the id (`scf token list --holder KEY` lists a holder's tokens)"
        ))),
        Err(error) => Err(error.into()),
    }
}

struct Names<'a> {
    client: &'a NodeClient,
    known: HashMap<PublicKey, String>,
}

impl Names<'_> {
    fn name(&mut self, key: &PublicKey) -> String {
        let client = self.client;
        self.known
            .entry(*key)
            .or_insert_with(|| match client.participant(key) {
                Ok(participant) => participant.name,
                Err(_) => key.to_hex()[..12].to_string(),
            })
            .clone()
    }
}

fn build(
    token: &TokenView,
    children: &BTreeMap<TokenId, Vec<&TokenView>>,
    names: &mut Names<'_>,
    decimals: u8,
) -> TraceNode {
    let status = match &token.status_detail {
        TokenStatus::Pending { bank, rate_bps } => format!(
            "pending (offered to {} at {}%)",
            names.name(bank),
            Amount(u64::from(*rate_bps)).to_decimal_string(2)
        ),
        TokenStatus::Settled { payment_ref } => format!("settled (payment {payment_ref})"),
        _ => token.status.clone(),
    };
    let origin = match &token.origin {
        Origin::Confirmed => "confirmed".to_string(),
        Origin::Transferred => "transferred".to_string(),
        Origin::Financed {
            seller,
            price,
            rate_bps,
            days,
        } => format!(
            "financed: {} paid {} to {} ({}% over {days} days)",
            names.name(&token.holder),
            price.to_decimal_string(decimals),
            names.name(seller),
            Amount(u64::from(*rate_bps)).to_decimal_string(2)
        ),
    };
    let kids = children
        .get(&token.id)
        .map(|kids| {
            kids.iter()
                .map(|kid| build(kid, children, names, decimals))
                .collect()
        })
        .unwrap_or_default();
    TraceNode {
        id: token.id,
        holder: token.holder,
        holder_name: names.name(&token.holder),
        amount: token.amount.clone(),
        status,
        frozen: token.frozen,
        origin,
        children: kids,
    }
}

/// The tree as lines of text.
pub fn render(trace: &Trace, currency: &str) -> String {
    let mut out = format!(
        "receivable confirmed by {}, matures {}\n",
        trace.issuer_name, trace.maturity
    );
    line(&mut out, &trace.root, trace, currency, "", "");
    walk(&mut out, &trace.root, trace, currency, "");
    out
}

fn walk(out: &mut String, node: &TraceNode, trace: &Trace, currency: &str, indent: &str) {
    let count = node.children.len();
    for (index, child) in node.children.iter().enumerate() {
        let last = index + 1 == count;
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        line(out, child, trace, currency, indent, branch);
        walk(out, child, trace, currency, &format!("{indent}{next}"));
    }
}

fn line(
    out: &mut String,
    node: &TraceNode,
    trace: &Trace,
    currency: &str,
    indent: &str,
    branch: &str,
) {
    let id = node.id.to_string();
    let frozen = if node.frozen { " FROZEN" } else { "" };
    let marker = if node.id == trace.traced { "  ◀" } else { "" };
    let origin = match node.origin.as_str() {
        "transferred" => String::new(),
        other => format!("  [{other}]"),
    };
    out.push_str(&format!(
        "{indent}{branch}{}  {:<10} {:>16} {currency}  {}{frozen}{origin}{marker}\n",
        &id[..12],
        node.holder_name,
        node.amount,
        node.status
    ));
}
