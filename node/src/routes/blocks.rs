//! Reading the chain: count, by index, head, by hash, previous, pages.
//! Every read is an index lookup on `blocks` plus a primary-key range on
//! `messages`.

use actix_web::{HttpResponse, web};
use diesel::pg::PgConnection;
use sealchain_shared::api::{Block, BlockCount, BlockList, Problem};
use serde::Deserialize;

use super::{db_index, parse_hash};
use crate::db::models::BlockRow;
use crate::db::reads::Known;
use crate::db::{StoreError, repo};
use crate::error::ApiError;
use crate::state::AppState;

/// Largest page of `GET /v1/blocks`.
pub const MAX_PAGE: u64 = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: u64 = 100;

/// Registers the routes (fixed paths before `{index}`).
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/blocks", web::get().to(list_blocks))
        .route("/v1/blocks/count", web::get().to(block_count))
        .route("/v1/blocks/head", web::get().to(head_block))
        .route("/v1/blocks/hash/{hash}", web::get().to(block_by_hash))
        .route("/v1/blocks/hash/{hash}/previous", web::get().to(previous_block))
        .route("/v1/blocks/{index}", web::get().to(block_by_index));
}

fn with_messages(conn: &mut PgConnection, row: BlockRow) -> Result<Block, StoreError> {
    let messages = repo::messages_range(conn, row.first_seq, i64::from(row.message_count))?;
    row.to_block(&messages).map_err(StoreError::Internal)
}

/// Finds a block with `find` (which answers `Err(detail)` for "no such
/// block") and loads its messages in the same connection, on the read
/// replica when there is one; `current` says whether the replica's block
/// can be served (a block missing there is asked of the primary).
async fn load_block<F>(
    state: &AppState,
    find: F,
    current: impl FnOnce(&Block, Known) -> bool,
) -> Result<HttpResponse, ApiError>
where
    F: Fn(&mut PgConnection) -> Result<Result<BlockRow, String>, StoreError> + Clone + Send + 'static,
{
    let block = state
        .reads
        .run(
            move |conn| match find(conn)? {
                Ok(row) => with_messages(conn, row).map(Ok),
                Err(missing) => Ok(Err(missing)),
            },
            |found: &Result<Block, String>, known| found.as_ref().is_ok_and(|b| current(b, known)),
        )
        .await?;
    if let Ok(b) = &block {
        state.reads.saw_blocks(b.summary.index + 1);
    }
    Ok(HttpResponse::Ok().json(block.map_err(ApiError::NotFound)?))
}

/// Any block the replica has is the primary's block.
fn any_block(_: &Block, _: Known) -> bool {
    true
}

/// The number of sealed blocks.
#[utoipa::path(get, path = "/v1/blocks/count", tag = "blocks",
    responses((status = 200, description = "Completed blocks", body = BlockCount)))]
#[tracing::instrument(skip_all)]
pub async fn block_count(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let count = state
        .reads
        .run(
            |conn| Ok(u64::try_from(repo::chain_state(conn)?.block_count).unwrap_or(0)),
            |count, known| *count >= known.blocks,
        )
        .await?;
    state.reads.saw_blocks(count);
    Ok(HttpResponse::Ok().json(BlockCount { count }))
}

/// A block with its messages.
#[utoipa::path(get, path = "/v1/blocks/{index}", tag = "blocks",
    params(("index" = u64, Path, description = "Block index, from 0")),
    responses(
        (status = 200, description = "The block", body = Block),
        (status = 400, description = "bad_request: index is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn block_by_index(state: web::Data<AppState>, index: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let index = index.into_inner();
    let key = db_index(index, "block")?;
    load_block(
        &state,
        move |conn| Ok(repo::block(conn, key)?.ok_or_else(|| format!("no block {index}"))),
        any_block,
    )
    .await
}

/// The newest block.
#[utoipa::path(get, path = "/v1/blocks/head", tag = "blocks",
    responses(
        (status = 200, description = "The newest block", body = Block),
        (status = 404, description = "not_found: no block is sealed yet", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn head_block(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    load_block(
        &state,
        |conn| Ok(repo::head_block(conn)?.ok_or_else(|| "no block is sealed yet".to_owned())),
        // Not older than the chain this node has shown.
        |block, known| block.summary.index + 1 >= known.blocks,
    )
    .await
}

/// The block with this hash.
#[utoipa::path(get, path = "/v1/blocks/hash/{hash}", tag = "blocks",
    params(("hash" = String, Path, description = "Block hash, 64 lowercase hex characters")),
    responses(
        (status = 200, description = "The block", body = Block),
        (status = 400, description = "bad_request: not a hash", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn block_by_hash(state: web::Data<AppState>, hash: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hash = parse_hash(&hash)?;
    load_block(
        &state,
        move |conn| {
            Ok(repo::block_by_hash(conn, &hash)?.ok_or_else(|| format!("no block with hash {}", hex::encode(hash))))
        },
        any_block,
    )
    .await
}

/// The block before the block with this hash.
#[utoipa::path(get, path = "/v1/blocks/hash/{hash}/previous", tag = "blocks",
    params(("hash" = String, Path, description = "Block hash, 64 lowercase hex characters")),
    responses(
        (status = 200, description = "The previous block", body = Block),
        (status = 400, description = "bad_request: not a hash", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: unknown hash, or block 0", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn previous_block(state: web::Data<AppState>, hash: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let hash = parse_hash(&hash)?;
    load_block(
        &state,
        move |conn| {
            let Some(block) = repo::block_by_hash(conn, &hash)? else {
                return Ok(Err(format!("no block with hash {}", hex::encode(hash))));
            };
            if block.idx == 0 {
                return Ok(Err("block 0 has no previous block".into()));
            }
            // The chain is gapless: the previous block exists.
            repo::block(conn, block.idx - 1)?.map(Ok).ok_or(StoreError::NotFound)
        },
        any_block,
    )
    .await
}

/// Query of `GET /v1/blocks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// First block index (default 0).
    pub from: Option<u64>,
    /// Blocks per page, 1 to 1000 (default 100).
    pub limit: Option<u64>,
}

/// A page of block headers, without messages.
#[utoipa::path(get, path = "/v1/blocks", tag = "blocks", params(PageQuery),
    responses(
        (status = 200, description = "Headers ascending by index; `next` is the following page's `from`", body = BlockList),
        (status = 400, description = "bad_request: bad from or limit", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn list_blocks(state: web::Data<AppState>, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let from = query.from.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    let Ok(start) = i64::try_from(from) else {
        return Err(ApiError::BadRequest(format!("from {from} is out of range")));
    };
    let (rows, count) = state
        .reads
        .run(
            move |conn| {
                let count = repo::chain_state(conn)?.block_count;
                let rows = repo::blocks_page(conn, start, i64::try_from(limit).unwrap_or(1))?;
                Ok((rows, count))
            },
            |(_, count), known| u64::try_from(*count).unwrap_or(0) >= known.blocks,
        )
        .await?;
    state.reads.saw_blocks(u64::try_from(count).unwrap_or(0));
    let blocks = rows
        .iter()
        .map(BlockRow::to_summary)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::Internal)?;
    let end = from.saturating_add(limit);
    let next = (end < u64::try_from(count).unwrap_or(0)).then_some(end);
    Ok(HttpResponse::Ok().json(BlockList { blocks, next }))
}
