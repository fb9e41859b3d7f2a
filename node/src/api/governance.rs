//! The API's view of governance: the validator set in force at a height and
//! the proposals to change it, read from committed state.
//!
//! - `GET /v1/validators[?height=H]`: the set in force at `H` (default: the
//!   next height). `final` says whether a change adopted later could still
//!   replace it (a set is final up to the committed height + 2).
//! - `GET /v1/validators/proposals`: the proposals still open (not adopted,
//!   not expired), with their approvals and the power they still need.
//! - `GET /v1/validators/proposals/{id}`: one proposal, open or not.
//!
//! Only what the chain recorded is shown; nothing a peer claims.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use crypto::PublicKey;
use ledger::TxHash;
use ledger::governance::{
    self, ACTIVATION_DISTANCE, ValidatorChange, ValidatorEpoch, ValidatorInfo, ValidatorProposal,
};
use serde::{Deserialize, Serialize};

use super::errors::{ApiError, ApiQuery};
use super::{ApiResult, blocking, parse_hash};
use crate::shared::Shared;

/// `GET /v1/validators`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ValidatorSetView {
    /// The height asked about.
    pub height: u64,
    /// The last committed height the answer was read at.
    pub committed: u64,
    /// Whether the set of `height` can no longer change (`height` is at most
    /// `committed + 2`).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub epoch: u64,
    /// The first height of this set.
    pub from_height: u64,
    pub total_power: u64,
    /// The power a certificate or a governance adoption needs: more than
    /// 2/3 of `total_power`.
    pub quorum_power: u64,
    /// Sorted by consensus key.
    pub validators: Vec<ValidatorInfo>,
    /// A newer set already adopted, if any: its epoch and first height.
    pub scheduled: Vec<ScheduledSet>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduledSet {
    pub epoch: u64,
    pub from_height: u64,
    pub validators: Vec<ValidatorInfo>,
}

/// One proposal with its standing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProposalView {
    pub id: TxHash,
    pub change: ValidatorChange,
    /// The proposer's identity.
    pub proposer: PublicKey,
    pub proposed_at: u64,
    pub expires_at: u64,
    /// Identities of the validators that approved it.
    pub approvals: Vec<PublicKey>,
    /// The power of those approvals in the set in force at the next height.
    pub approved_power: u64,
    /// The power adoption needs in that set (more than 2/3 of it).
    pub needed_power: u64,
    /// `open`, `adopted` or `expired`.
    pub status: String,
    /// When adopted: the height of the adopting block, and the first
    /// height of the new set.
    pub adopted_at: Option<u64>,
    pub effective_from: Option<u64>,
}

/// `GET /v1/validators/proposals`'s answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProposalsView {
    pub committed: u64,
    pub proposals: Vec<ProposalView>,
}

#[derive(Debug, Deserialize)]
pub struct HeightQuery {
    pub height: Option<u64>,
}

impl ProposalView {
    fn new(proposal: ValidatorProposal, in_force: &ValidatorEpoch, committed: u64) -> ProposalView {
        let approved_power = proposal
            .approvals
            .iter()
            .filter_map(|identity| in_force.by_identity(identity))
            .map(|validator| validator.power)
            .sum();
        let status = match proposal.adopted {
            Some(_) => "adopted",
            None if proposal.is_open_at(committed + 1) => "open",
            None => "expired",
        };
        ProposalView {
            id: proposal.id,
            proposer: proposal.proposer,
            proposed_at: proposal.proposed_at,
            expires_at: proposal.expires_at,
            approvals: proposal.approvals,
            approved_power,
            needed_power: in_force.consensus_set().quorum_power(),
            status: status.to_owned(),
            adopted_at: proposal.adopted.map(|adoption| adoption.at),
            effective_from: proposal.adopted.map(|adoption| adoption.effective_from),
            change: proposal.change,
        }
    }
}

fn no_set() -> ApiError {
    ApiError::not_found(
        "this chain records no validator set in its state (its store was made before governance); the set is genesis's: GET /v1/genesis",
    )
}

pub async fn validators(
    State(shared): State<Arc<Shared>>,
    ApiQuery(query): ApiQuery<HeightQuery>,
) -> ApiResult<ValidatorSetView> {
    blocking(&shared, move |shared| {
        let store = shared.store.read();
        let committed = store.height().unwrap_or(0);
        let height = query.height.unwrap_or(committed + 1);
        if height == 0 {
            return Err(ApiError::bad_request(
                "bad_height",
                "height 0 is genesis, which no validator set signs; sets start at height 1",
            ));
        }
        let epoch = governance::epoch_in_force(&*store, height)
            .map_err(ApiError::internal)?
            .ok_or_else(no_set)?;
        let latest = governance::latest_epoch(&*store)
            .map_err(ApiError::internal)?
            .ok_or_else(no_set)?;
        let mut scheduled = Vec::new();
        for number in epoch.number + 1..=latest.number {
            let later = governance::epoch(&*store, number).map_err(ApiError::internal)?;
            scheduled.push(ScheduledSet {
                epoch: later.number,
                from_height: later.from_height,
                validators: later.validators,
            });
        }
        let total_power = epoch.total_power();
        Ok(Json(ValidatorSetView {
            height,
            committed,
            is_final: height <= committed + ACTIVATION_DISTANCE,
            epoch: epoch.number,
            from_height: epoch.from_height,
            total_power,
            quorum_power: epoch.consensus_set().quorum_power(),
            validators: epoch.validators,
            scheduled,
        }))
    })
    .await
}

pub async fn proposals(State(shared): State<Arc<Shared>>) -> ApiResult<ProposalsView> {
    blocking(&shared, move |shared| {
        let store = shared.store.read();
        let committed = store.height().unwrap_or(0);
        let in_force = governance::epoch_in_force(&*store, committed + 1)
            .map_err(ApiError::internal)?
            .ok_or_else(no_set)?;
        let proposals = governance::pending_proposals(&*store, committed + 1)
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|proposal| ProposalView::new(proposal, &in_force, committed))
            .collect();
        Ok(Json(ProposalsView {
            committed,
            proposals,
        }))
    })
    .await
}

pub async fn proposal(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<ProposalView> {
    let id = TxHash(parse_hash(&id, "proposal")?);
    blocking(&shared, move |shared| {
        let store = shared.store.read();
        let committed = store.height().unwrap_or(0);
        let in_force = governance::epoch_in_force(&*store, committed + 1)
            .map_err(ApiError::internal)?
            .ok_or_else(no_set)?;
        let proposal = governance::proposal(&*store, &id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no validator-set proposal {id}; a proposal's id is the hash of the transaction that proposed it (`scf validator proposals` lists the open ones)"
                ))
            })?;
        Ok(Json(ProposalView::new(proposal, &in_force, committed)))
    })
    .await
}
