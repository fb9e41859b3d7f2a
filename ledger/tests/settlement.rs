//! Settlement does the same work for a root split into one token or many:
//! it writes the receivable, and every token unspent at maturity reads as
//! settled from then on, with nothing able to move it.

mod common;

use common::{DAY, World, created};
use ledger::{Changes, Timestamp, TokenId, TxBody, TxError};

fn settle(world: &mut World, root: TokenId) -> Result<Changes, TxError> {
    world.run(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY-1".into(),
        },
    )
}

fn mature(world: &mut World) {
    world.now = Timestamp(world.now.0 + 91 * DAY);
}

/// Splits `token` (held by `holder`, worth `amount`) into `parts` equal
/// tokens to `holder`; returns them.
fn split(world: &mut World, holder: &str, token: TokenId, amount: u64, parts: u64) -> Vec<TokenId> {
    let share = amount / parts;
    let mut outputs = vec![(holder, share); parts as usize - 1];
    outputs.push((holder, amount - share * (parts - 1)));
    world.transfer(holder, token, &outputs).expect("split")
}

#[test]
fn settling_writes_three_entries_however_many_tokens_the_root_has() {
    let (mut world, root) = World::funded();
    let mut tokens = 0;
    for first in split(&mut world, "supplier1", root, 10_000_000, 64) {
        let amount = world.token(&first).amount.0;
        tokens += split(&mut world, "supplier1", first, amount, 64).len();
    }
    assert_eq!(tokens, 64 * 64);
    mature(&mut world);
    let changes = settle(&mut world, root).expect("settles");
    // The receivable, the credit line and the issuer's nonce.
    assert_eq!(changes.len(), 3, "{changes:?}");
}

#[test]
fn nothing_moves_a_token_of_a_settled_root() {
    let (mut world, root) = World::funded();
    let parts = world
        .transfer(
            "supplier1",
            root,
            &[("supplier2", 4_000_000), ("supplier1", 6_000_000)],
        )
        .expect("split");
    let (held, offered) = (parts[0], parts[1]);
    let bank = world.key("bank");
    world.ok(
        "supplier1",
        TxBody::RequestFinancing {
            token: offered,
            bank,
            rate_bps: 500,
        },
    );
    mature(&mut world);
    settle(&mut world, root).expect("settles");

    let settled = |token| Err::<(), _>(TxError::TokenSettled { token });
    let supplier3 = world.key("supplier3");
    assert_eq!(
        world
            .run(
                "supplier2",
                TxBody::Transfer {
                    token: held,
                    outputs: vec![ledger::Output {
                        recipient: supplier3,
                        amount: ledger::Amount(4_000_000),
                    }],
                },
            )
            .map(|changes| assert!(created(&changes).is_empty())),
        settled(held)
    );
    assert_eq!(
        world
            .run(
                "supplier2",
                TxBody::RequestFinancing {
                    token: held,
                    bank,
                    rate_bps: 500,
                },
            )
            .map(|_| ()),
        settled(held)
    );
    assert_eq!(
        world
            .run(
                "auditor",
                TxBody::Freeze {
                    token: held,
                    reason: "late dispute".into(),
                },
            )
            .map(|_| ()),
        settled(held)
    );
    assert_eq!(
        world
            .run("bank", TxBody::AcceptFinancing { token: offered })
            .map(|_| ()),
        settled(offered)
    );
    assert_eq!(
        world
            .run("bank", TxBody::RejectFinancing { token: offered })
            .map(|_| ()),
        settled(offered)
    );
    assert_eq!(
        world
            .run("auditor", TxBody::Unfreeze { token: held })
            .map(|_| ()),
        Err(TxError::NotFrozen { token: held })
    );
    assert_eq!(
        settle(&mut world, root).map(|_| ()),
        Err(TxError::AlreadySettled { root })
    );
}

#[test]
fn frozen_tokens_hold_settlement_until_every_one_is_unfrozen() {
    let (mut world, root) = World::funded();
    let parts = split(&mut world, "supplier1", root, 10_000_000, 3);
    for token in &parts[..2] {
        world.ok(
            "auditor",
            TxBody::Freeze {
                token: *token,
                reason: "disputed delivery".into(),
            },
        );
    }
    mature(&mut world);
    assert_eq!(
        settle(&mut world, root).map(|_| ()),
        Err(TxError::DisputedTokens { root, frozen: 2 })
    );
    world.ok("auditor", TxBody::Unfreeze { token: parts[0] });
    assert_eq!(
        settle(&mut world, root).map(|_| ()),
        Err(TxError::DisputedTokens { root, frozen: 1 })
    );
    world.ok("auditor", TxBody::Unfreeze { token: parts[1] });
    settle(&mut world, root).expect("settles once no token is disputed");
}
