//! The attacks of issue 16, one small strategy each, and the list of
//! scenarios the harness runs.
//!
//! | scenario | issue item | what the hostile validator 3 does |
//! | --- | --- | --- |
//! | `baseline` | — | says yes to every proposal, proposes honestly (control) |
//! | `silent` | — | a crashed validator: nothing sent, every request refused |
//! | `sync-claims-heights` | 1 | claims `u64::MAX` / tip+1000 in `Status`, answers `Blocks` with nothing |
//! | `sync-tampered-blocks` | 2 | claims tip+2, serves truncated, reordered, re-signed, forged blocks |
//! | `sync-tampered-restart` | 2 | the same to validator 2, stopped and restarted behind the chain |
//! | `forged-announcements` | 3 | 100 announcements/s: random, far and `u64::MAX` heights, junk hashes |
//! | `far-future-messages` | 4 | proposals/votes at `u64::MAX`, far rounds, garbage and impersonated signatures |
//! | `equivocation` | 5 | two prevotes/precommits per round, two proposals per turn |
//! | `body-differs-per-requester` | 6 | serves validator 2 a body with a forged signature under the same header |
//! | `announcement-mismatch` | 6 | announces tx hashes that do not match the header's tx root |
//! | `withholds-bodies` | 7 | proposes a block nobody can rebuild and never serves it |
//! | `regossip-forged-signatures` | 8 | re-gossips honest transactions with garbage signatures |
//! | `proposer-forged-signatures` | 8 | proposes honest transactions with garbage signatures |
//! | `two-valid-signatures` | 8 | one transaction, a different valid signature to each honest node |

pub mod gossip;
pub mod proposer;
pub mod sync;
pub mod transactions;

use crate::hostile::{Attack, SaysYes};
use crate::runner::Scenario;

fn boxed<A: Attack + Default + 'static>() -> Box<dyn Attack> {
    Box::new(A::default())
}

/// Every scenario, in the order they run.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("baseline", || Box::new(SaysYes)),
        Scenario::new("silent", boxed::<gossip::Silent>),
        Scenario::new("sync-claims-heights", boxed::<sync::ClaimsHeights>),
        Scenario::new("sync-tampered-blocks", boxed::<sync::TamperedBlocks>),
        Scenario::new("sync-tampered-restart", boxed::<sync::TamperedBlocks>).with_restart(),
        Scenario::new("forged-announcements", boxed::<gossip::ForgedAnnouncements>),
        Scenario::new("far-future-messages", boxed::<gossip::FarFutureMessages>),
        Scenario::new("equivocation", boxed::<gossip::Equivocates>).expecting_evidence(),
        Scenario::new(
            "body-differs-per-requester",
            boxed::<proposer::BodyDiffersPerRequester>,
        ),
        Scenario::new(
            "announcement-mismatch",
            boxed::<proposer::AnnouncementMismatch>,
        ),
        Scenario::new("withholds-bodies", boxed::<proposer::WithholdsBodies>),
        Scenario::new(
            "regossip-forged-signatures",
            boxed::<transactions::RegossipsForgedSignatures>,
        ),
        Scenario::new(
            "proposer-forged-signatures",
            boxed::<proposer::ForgedSignatureBlock>,
        ),
        Scenario::new(
            "two-valid-signatures",
            boxed::<transactions::TwoValidSignatures>,
        ),
    ]
}
