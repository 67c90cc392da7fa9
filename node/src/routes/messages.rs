//! `POST /v1/messages` (the ingest path), `GET /v1/messages/{seq}` and
//! `GET /v1/messages/{seq}/proof`.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use sealchain_shared::api::{InclusionProof, MessageRecord, Problem, Receipt};
use sealchain_shared::envelope::EnvelopeJson;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::{Hash, merkle};

use super::{db_index, require_json};
use crate::convert::fixed;
use crate::db::repo;
use crate::error::ApiError;
use crate::ingest::{self, Rejection};
use crate::metrics as m;
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/messages", web::post().to(post_message))
        .route("/v1/messages/{seq}", web::get().to(get_message))
        .route("/v1/messages/{seq}/proof", web::get().to(get_proof));
}

/// Submit a sealed, signed message. Answers only once it is committed.
///
/// The checks run in the order of PROTOCOL §4; the first failure answers
/// and nothing is stored.
#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    request_body(content = EnvelopeJson, content_type = "application/json"),
    responses(
        (status = 200, description = "A resend of a message stored before (same sender, nonce and leaf hash): its original receipt", body = Receipt),
        (status = 202, description = "Committed; the signed receipt", body = Receipt),
        (status = 400, description = "malformed_envelope, decryption_failed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "unknown_sender (allowlist policy)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "duplicate: another message under a used (sender, nonce)", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "request_timeout: the body did not arrive within --client-timeout", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: the body is not declared Content-Type: application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited (see Retry-After; only with --rate-limit-per-ip or --rate-limit-per-sender)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_message, wrong_node, stale_timestamp", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable (see Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(name = "ingest", skip_all)]
pub async fn post_message(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = ingest(&state, &req, payload).await;
    match &result {
        Ok(response) if response.status() == actix_web::http::StatusCode::OK => {
            metrics::counter!(m::RESENT).increment(1);
        }
        Ok(_) => {
            metrics::counter!(m::ACCEPTED).increment(1);
            metrics::histogram!(m::INGEST_SECONDS).record(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            tracing::debug!(code = e.code(), "message rejected");
            metrics::counter!(m::REJECTED, "code" => e.code()).increment(1);
        }
    }
    result
}

async fn ingest(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    if let Some(peer) = req.peer_addr() {
        state.limits.check_ip(peer.ip()).map_err(|l| Rejection::RateLimited {
            what: "client address",
            retry_after_secs: l.retry_after_secs,
        })?;
    }
    require_json(req)?;
    let deadline = state.client_timeout;
    let body = tokio::time::timeout(deadline, read_body(req, payload, state.max_body_bytes))
        .await
        .map_err(|_| ApiError::RequestTimeout {
            secs: deadline.as_secs(),
        })??;
    let stored = ingest::ingest(state, &body).await?;
    Ok(if stored.resent {
        HttpResponse::Ok().json(stored.receipt)
    } else {
        HttpResponse::Accepted().json(stored.receipt)
    })
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`.
async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::Rejected(Rejection::MalformedEnvelope(format!(
                "could not read the request body: {e}"
            )))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One stored message.
#[utoipa::path(get, path = "/v1/messages/{seq}", tag = "messages",
    params(("seq" = u64, Path, description = "The message's position in arrival order")),
    responses(
        (status = 200, description = "The message", body = MessageRecord),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn get_message(state: web::Data<AppState>, seq: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let seq = seq.into_inner();
    let block_size = state.block_size;
    let key = db_index(seq, "message with seq")?;
    let block_index = seq / u64::from(block_size);
    let block_key = db_index(block_index, "block")?;
    let found = state
        .reads
        .run(
            move |conn| {
                let Some(row) = repo::message(conn, key)? else {
                    return Ok(None);
                };
                let sealed = repo::block_exists(conn, block_key)?;
                Ok(Some((row, sealed)))
            },
            // A replica may not have replayed the message or its block yet.
            |found, known| matches!(found, Some((_, sealed)) if *sealed || block_index >= known.blocks),
        )
        .await?;
    let (row, sealed) = found.ok_or_else(|| ApiError::NotFound(format!("no message with seq {seq}")))?;
    state.reads.saw_messages(seq + 1);
    let m = row.to_block_message().map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(MessageRecord {
        seq: m.seq,
        leaf_hash: m.leaf_hash,
        sender: m.sender,
        received_at: m.received_at,
        block_index,
        sealed,
        message: m.message,
        signature: m.signature,
    }))
}

/// The RFC 6962 inclusion proof of a message in its sealed block.
#[utoipa::path(get, path = "/v1/messages/{seq}/proof", tag = "messages",
    params(("seq" = u64, Path, description = "The message's position in arrival order")),
    responses(
        (status = 200, description = "Audit path from the leaf up to the block's Merkle root", body = InclusionProof),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not_sealed: the message's block is still open", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn get_proof(state: web::Data<AppState>, seq: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let seq = seq.into_inner();
    let key = db_index(seq, "message with seq")?;
    let block_index = seq / u64::from(state.block_size);
    let block_key = db_index(block_index, "block")?;
    let found = state
        .reads
        .run(
            move |conn| {
                let Some(message) = repo::message(conn, key)? else {
                    return Ok(None);
                };
                let Some(block) = repo::block(conn, block_key)? else {
                    return Ok(Some((message, None)));
                };
                let leaves = repo::leaf_hashes(conn, block.first_seq, i64::from(block.message_count))?;
                Ok(Some((message, Some((block, leaves)))))
            },
            // Missing or not sealed on a replica may be its lag.
            |found, _| matches!(found, Some((_, Some(_)))),
        )
        .await?;
    let (message, sealed) = found.ok_or_else(|| ApiError::NotFound(format!("no message with seq {seq}")))?;
    let (block, leaves) = sealed.ok_or(ApiError::NotSealed { seq, block_index })?;
    let summary = block.to_summary().map_err(ApiError::Internal)?;
    let leaves: Vec<Hash> = leaves
        .iter()
        .map(|h| fixed::<32>("leaf_hash", h).map(|h| h.0))
        .collect::<Result<_, _>>()
        .map_err(ApiError::Internal)?;
    let leaf_index = seq - summary.first_seq;
    let path = usize::try_from(leaf_index)
        .ok()
        .and_then(|i| merkle::audit_path(i, &leaves))
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("block {block_index} does not hold seq {seq}")))?;
    Ok(HttpResponse::Ok().json(InclusionProof {
        seq,
        block_index,
        leaf_index,
        tree_size: u64::from(summary.message_count),
        leaf_hash: fixed("leaf_hash", &message.leaf_hash).map_err(ApiError::Internal)?,
        audit_path: path.into_iter().map(HexBytes).collect(),
        merkle_root: summary.merkle_root,
        block_hash: summary.hash,
    }))
}
