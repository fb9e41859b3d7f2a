//! The list routes, one page at a time: `?after=CURSOR&limit=N`, the answer
//! carrying `next` (the cursor of the following page, `null` on the last).
//!
//! - `GET /v1/participants/{key}/tokens`: the holder's unspent tokens by id;
//!   the cursor is the last token id of the page.
//! - `GET /v1/tokens/{id}/lineage`: the ancestors and the token on every
//!   page, the descendants paged in depth-first pre-order (children by id);
//!   the cursor is the last descendant of the page. The walk resumes from
//!   the cursor's path to the token, so no page re-reads what an earlier
//!   one returned.
//!
//! A page is read under one hold of the store's read lock, and its work is
//! bounded by the page size (and, for a lineage, the token's depth), never
//! by how many tokens there are. Between pages the ledger may commit: a
//! token that exists throughout a walk is returned exactly once; one created
//! behind the cursor meanwhile is not.

use axum::Json;
use axum::extract::{Path, State};
use ledger::store::{Store, StoreError};
use ledger::{Token, TokenId};
use serde::Deserialize;

use super::errors::{ApiError, ApiQuery};
use super::types::{LineageView, TokenPage, TokenView};
use super::{ApiState, blocking, parse_hash, parse_key};

/// `?after=CURSOR&limit=N`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

impl PageQuery {
    /// The cursor and the page size, `limit` capped to `max`.
    fn parse(&self, max: usize) -> Result<(Option<TokenId>, usize), ApiError> {
        let after = self
            .after
            .as_deref()
            .map(|text| parse_hash(text, "cursor").map(TokenId))
            .transpose()?;
        let limit = match self.limit {
            Some(0) => {
                return Err(ApiError::bad_request(
                    "bad_limit",
                    format!("limit=0 asks for nothing; use 1 to {max}"),
                ));
            }
            Some(limit) => limit.min(max),
            None => max,
        };
        Ok((after, limit))
    }
}

pub async fn holdings(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<TokenPage>, ApiError> {
    let key = parse_key(&key)?;
    let (after, limit) = query.parse(state.limits.max_page_size)?;
    blocking(&state.shared, move |shared| {
        let (tokens, next) = shared
            .store
            .read()
            .tokens_by_holder_page(&key, after.as_ref(), limit)
            .map_err(ApiError::internal)?;
        let decimals = shared.decimals();
        Ok(Json(TokenPage {
            tokens: tokens
                .iter()
                .map(|token| TokenView::new(token, decimals))
                .collect(),
            next,
        }))
    })
    .await
}

pub async fn lineage(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<LineageView>, ApiError> {
    let id = TokenId(parse_hash(&id, "token_id")?);
    let (after, limit) = query.parse(state.limits.max_page_size)?;
    blocking(&state.shared, move |shared| {
        let store = shared.store.read();
        let token = store
            .token_by_id(&id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("token {id} does not exist")))?;
        let ancestors = ancestors_of(&store, &token)?;
        let mut descendants = descendants_page(&store, &token, after.as_ref(), limit + 1)?;
        drop(store);
        let next = next_cursor(&mut descendants, limit);
        let decimals = shared.decimals();
        let view = |tokens: &[Token]| {
            tokens
                .iter()
                .map(|token| TokenView::new(token, decimals))
                .collect()
        };
        Ok(Json(LineageView {
            ancestors: view(&ancestors),
            token: TokenView::new(&token, decimals),
            descendants: view(&descendants),
            next,
        }))
    })
    .await
}

/// Cuts a page read with one item of look-ahead to `limit`; the cursor of
/// the next page if there is one.
fn next_cursor(items: &mut Vec<Token>, limit: usize) -> Option<TokenId> {
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(|token| token.id)
}

fn corrupt(what: String) -> ApiError {
    ApiError::internal(StoreError::Corrupt { what })
}

/// Parent first, root last.
fn ancestors_of(store: &Store, token: &Token) -> Result<Vec<Token>, ApiError> {
    let mut ancestors = Vec::new();
    let mut next = token.parent_id;
    while let Some(parent_id) = next {
        let parent = store
            .token_by_id(&parent_id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                corrupt(format!(
                    "token {} has missing ancestor {parent_id}",
                    token.id
                ))
            })?;
        next = parent.parent_id;
        ancestors.push(parent);
    }
    Ok(ancestors)
}

/// At most `limit` descendants of `token` in depth-first pre-order
/// (children by id), starting after the descendant `after`.
fn descendants_page(
    store: &Store,
    token: &Token,
    after: Option<&TokenId>,
    limit: usize,
) -> Result<Vec<Token>, ApiError> {
    // The walk's stack: per level, the children of a token and how many of
    // them have been walked into.
    let mut stack: Vec<(Vec<Token>, usize)> = Vec::new();
    let children = |parent: &Token| store.children_of(parent).map_err(ApiError::internal);
    match after {
        None => stack.push((children(token)?, 0)),
        Some(cursor) => {
            // The path from `token` down to the cursor, rebuilt from the
            // cursor's parents: the walk stands where the last page ended.
            let mut path = vec![
                store
                    .token_by_id(cursor)
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| not_a_descendant(cursor, &token.id))?,
            ];
            loop {
                let last = path.last().expect("the path starts with the cursor");
                match last.parent_id {
                    Some(parent) if parent == token.id => break,
                    Some(parent) => path.push(
                        store
                            .token_by_id(&parent)
                            .map_err(ApiError::internal)?
                            .ok_or_else(|| corrupt(format!("token {parent} is missing")))?,
                    ),
                    None => return Err(not_a_descendant(cursor, &token.id)),
                }
            }
            let mut parent = token.clone();
            for step in path.into_iter().rev() {
                let siblings = children(&parent)?;
                let position = siblings
                    .iter()
                    .position(|sibling| sibling.id == step.id)
                    .ok_or_else(|| {
                        corrupt(format!("token {} is not a child of {}", step.id, parent.id))
                    })?;
                stack.push((siblings, position + 1));
                parent = step;
            }
            stack.push((children(&parent)?, 0));
        }
    }
    let mut page = Vec::new();
    while page.len() < limit {
        let Some((siblings, walked)) = stack.last_mut() else {
            break;
        };
        let Some(next) = siblings.get(*walked).cloned() else {
            stack.pop();
            continue;
        };
        *walked += 1;
        stack.push((children(&next)?, 0));
        page.push(next);
    }
    Ok(page)
}

fn not_a_descendant(cursor: &TokenId, token: &TokenId) -> ApiError {
    ApiError::bad_request(
        "bad_cursor",
        format!(
            "after={cursor} is not a descendant of token {token}; use the `next` of the previous page"
        ),
    )
}
