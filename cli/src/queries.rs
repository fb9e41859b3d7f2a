//! Read-only commands: token show/list/trace, participant show, block show,
//! tx show, status. With `--json` they print the node's views unchanged
//! (keys and ids as hex, amounts as decimal strings). Each first checks that
//! the node serves the trusted chain (`trust.rs`); what a node answers to a
//! query is otherwise its own word.

use crypto::PublicKey;
use ledger::{TokenId, TxHash};
use node::api::types::{ParticipantView, TokenView, TxState};

use crate::client::{NodeClient, NodeError};
use crate::commands::Target;
use crate::explain;
use crate::output::emit;
use crate::trace;
use crate::transactions::fetch_token;

/// The node's client, once it is known to serve the trusted chain.
fn checked(target: &Target) -> anyhow::Result<&NodeClient> {
    target.trust.check(&target.client)?;
    Ok(&target.client)
}

pub fn token_show(target: &Target, id: &TokenId, json: bool) -> anyhow::Result<()> {
    let client = checked(target)?;
    let view = fetch_token(client, id)?;
    emit(json, &view, |view| print_token(client, view));
    Ok(())
}

pub fn token_list(target: &Target, holder: &PublicKey, json: bool) -> anyhow::Result<()> {
    let client = checked(target)?;
    let tokens = client.holdings(holder)?;
    emit(json, &tokens, |tokens| {
        if tokens.is_empty() {
            println!(
                "{} holds no unspent tokens",
                explain::participant_label(Some(client), holder)
            );
        }
        for token in tokens {
            println!(
                "{}  {:>16}  {:<8} matures {}{}",
                token.id,
                token.amount,
                token.status,
                token.maturity,
                if token.frozen { "  FROZEN" } else { "" }
            );
        }
    });
    Ok(())
}

pub fn token_trace(target: &Target, id: &TokenId, json: bool) -> anyhow::Result<()> {
    let (chain, _) = target.trust.check(&target.client)?;
    let tree = trace::trace(&target.client, id, chain.decimals())?;
    emit(json, &tree, |tree| {
        print!("{}", trace::render(tree, chain.currency_code()));
    });
    Ok(())
}

pub fn participant_show(target: &Target, key: &PublicKey, json: bool) -> anyhow::Result<()> {
    let client = checked(target)?;
    let view = match client.participant(key) {
        Ok(view) => view,
        Err(NodeError::Refused { status: 404, .. }) => {
            return Err(explain::not_found(format!(
                "{key} is not a registered participant; an operator registers it with `scf participant register --name NAME --role ROLE --key {key}`"
            )));
        }
        Err(error) => return Err(error.into()),
    };
    emit(json, &view, print_participant);
    Ok(())
}

pub fn block_show(target: &Target, height: &str, json: bool) -> anyhow::Result<()> {
    let client = checked(target)?;
    let height = match height {
        "latest" => None,
        text => Some(text.parse::<u64>().map_err(|_| {
            anyhow::anyhow!("height {text:?} is not a number; give a height or `latest`")
        })?),
    };
    let block = match client.block(height) {
        Ok(block) => block,
        Err(NodeError::Refused {
            status: 404,
            detail,
            ..
        }) => return Err(explain::not_found(detail)),
        Err(error) => return Err(error.into()),
    };
    emit(json, &block, |block| {
        println!("block {}  {}", block.height, block.hash);
        println!("  time       {}", block.time);
        println!("  parent     {}", block.parent_hash);
        println!(
            "  proposer   {}",
            explain::participant_label(None, &block.proposer)
        );
        println!("  tx root    {}", block.tx_root);
        println!("  app hash   {}", block.app_hash);
        match &block.certificate {
            Some(_) => println!("  certificate present"),
            None => println!("  certificate none"),
        }
        println!("  {} transactions", block.txs.len());
        for tx in &block.txs {
            println!("    {}  {:<22} nonce {}", tx.hash, tx.kind, tx.nonce);
        }
    });
    Ok(())
}

pub fn tx_show(target: &Target, hash: &str, json: bool) -> anyhow::Result<()> {
    let client = checked(target)?;
    let hash: TxHash = hash
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{hash:?} is not a transaction hash (64 hex digits)"))?;
    let view = match client.tx(&hash) {
        Ok(view) => view,
        Err(NodeError::Refused {
            status: 404,
            detail,
            ..
        }) => return Err(explain::not_found(detail)),
        Err(error) => return Err(error.into()),
    };
    emit(json, &view, |view| match &view.status {
        TxState::Pending => println!("{} pending", view.tx_hash),
        TxState::Committed {
            height,
            index,
            tokens,
        } => {
            println!(
                "{} committed at height {height}, index {index}",
                view.tx_hash
            );
            for token in tokens {
                println!("  token  {token}");
            }
        }
        TxState::Rejected { error, detail } => {
            println!("{} rejected: {error}: {detail}", view.tx_hash)
        }
    });
    Ok(())
}

pub fn status(target: &Target, json: bool) -> anyhow::Result<()> {
    // The chain and currency printed are the trusted genesis's: the check
    // refuses a status that says otherwise.
    let (_, status) = target.trust.check(&target.client)?;
    emit(json, &status, |status| {
        println!("chain      {} ({})", status.chain_name, status.chain_id);
        println!("node       {} ({})", status.node_name, status.role);
        println!("height     {}", status.height);
        println!("block      {}", status.block_hash);
        println!("app hash   {}", status.app_hash);
        println!("block time {}", status.latest_block_time);
        println!("peers      {}", status.peer_count);
        println!("syncing    {}", status.syncing);
        println!(
            "mempool    {} transactions, {} bytes",
            status.mempool_txs, status.mempool_bytes
        );
        println!(
            "currency   {} ({} decimals)",
            status.currency_code, status.currency_decimals
        );
    });
    Ok(())
}

fn print_token(client: &NodeClient, token: &TokenView) {
    let name = |key: &PublicKey| explain::participant_label(Some(client), key);
    println!("token     {}", token.id);
    println!("root      {}", token.root_id);
    if let Some(parent) = token.parent_id {
        println!("parent    {parent}");
    }
    println!("issuer    {}", name(&token.issuer));
    println!("holder    {}", name(&token.holder));
    println!("amount    {}", token.amount);
    println!("maturity  {}", token.maturity);
    println!(
        "status    {}{}",
        token.status,
        if token.frozen { " (frozen)" } else { "" }
    );
    println!("created   at height {}", token.created_at);
}

fn print_participant(participant: &ParticipantView) {
    println!("participant {}", participant.name);
    println!("  key        {}", participant.key);
    println!("  roles      {}", participant.roles.join(", "));
    println!("  active     {}", participant.active);
    println!("  next nonce {}", participant.next_nonce);
    if let Some(line) = &participant.credit_line {
        println!(
            "  credit line {} (outstanding {})",
            line.limit, line.outstanding
        );
    }
}
