//! The log of PROTOCOL §9 over HTTP: the signed checkpoint, tiles and entry
//! bundles exactly as C2SP tlog-tiles lays them out, and JSON inclusion and
//! consistency proofs for clients that do not read tiles.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::middleware::Compress;
use actix_web::{HttpResponse, web};
use diesel::pg::PgConnection;
use sealchain_shared::Hash;
use sealchain_shared::api::{ConsistencyProof, LogInclusionProof, Problem};
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::tlog::{self, TILE_WIDTH, TileId};
use serde::Deserialize;

use crate::db::models::CheckpointRow;
use crate::db::{self, StoreError, repo};
use crate::error::ApiError;
use crate::log::TileStore;
use crate::state::AppState;

/// Caching of immutable resources: full tiles and full entry bundles.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Caching of partial tiles: short-lived (a log may drop them once full).
const SHORT_LIVED: &str = "public, max-age=60";
/// Caching of the checkpoint: revalidate every time.
const MUTABLE: &str = "no-cache";

/// Registers the routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    // Entry bundles are compressed when the client accepts it (tlog-tiles:
    // they SHOULD be); hash tiles are random bytes and are not.
    cfg.route("/checkpoint", web::get().to(checkpoint))
        .service(
            web::resource("/tile/entries/{tail:.*}")
                .wrap(Compress::default())
                .route(web::get().to(entry_bundle)),
        )
        .route("/tile/{tail:.*}", web::get().to(tile))
        .route("/v1/log/proof/inclusion", web::get().to(inclusion))
        .route("/v1/log/proof/consistency", web::get().to(consistency));
}

/// The newest signed checkpoint (tlog-checkpoint, a signed note).
#[utoipa::path(get, path = "/checkpoint", tag = "log",
    responses(
        (status = 200, description = "The newest checkpoint: origin, tree size and base64 root hash, signed by the node (C2SP signed-note)", content_type = "text/plain; charset=utf-8", body = String),
        (status = 503, description = "unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let latest = db::run(&state.pool, |conn| Ok(repo::latest_checkpoint(conn)?)).await?;
    // The node publishes one at start-up, so there always is one.
    let latest = latest.ok_or_else(|| ApiError::Unavailable("no checkpoint is published yet".into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((CACHE_CONTROL, MUTABLE))
        .body(latest.note))
}

/// A tile (`tile/<L>/<N>[.p/<W>]`, the hashes) or an entry bundle
/// (`tile/entries/<N>[.p/<W>]`, each signed message with a u16be length).
#[utoipa::path(get, path = "/tile/{tail}", tag = "log",
    params(("tail" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, N in x001/x234/067 form (C2SP tlog-tiles)")),
    responses(
        (status = 200, description = "The tile or entry bundle (entry bundles are compressed as Accept-Encoding allows)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "bad_request: not a tile path", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: beyond the tree", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn tile(state: web::Data<AppState>, tail: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve_tile(state, tail.into_inner()).await
}

async fn serve_tile(state: web::Data<AppState>, tail: String) -> Result<HttpResponse, ApiError> {
    let id =
        TileId::parse(&tail).ok_or_else(|| ApiError::BadRequest(format!("tile/{tail} is not a tlog-tiles path")))?;
    let wanted = id.width.map_or(TILE_WIDTH, u64::from);
    let missing = || ApiError::NotFound(format!("{} is beyond the tree", id.path()));
    let body = state
        .reads
        .run(
            move |conn| {
                let size = u64::try_from(repo::chain_state(conn)?.tree_size).unwrap_or_default();
                let available = tlog::tile_width(id.level, id.index, size);
                // A partial tile of width W exists from the moment the tree has W
                // hashes in that tile (also once it is full: its first W).
                if available < wanted {
                    return Ok(None);
                }
                let start = id.index * TILE_WIDTH;
                read_tile(conn, id.level, start, wanted).map(Some)
            },
            // A tile beyond a replica's tree may be its lag.
            |body, _| body.is_some(),
        )
        .await?
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/octet-stream"))
        .insert_header((CACHE_CONTROL, if id.width.is_none() { IMMUTABLE } else { SHORT_LIVED }))
        .body(body))
}

/// `tile/entries/...`: the same handler, behind compression.
async fn entry_bundle(state: web::Data<AppState>, tail: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve_tile(state, format!("entries/{}", tail.into_inner())).await
}

fn key(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::NotFound)
}

fn read_tile(conn: &mut PgConnection, level: Option<u8>, start: u64, count: u64) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    match level {
        None => {
            let entries = repo::entries(conn, key(start)?, key(count)?)?;
            check_count(entries.len(), count)?;
            for (signature, message) in entries {
                tlog::push_entry(&mut out, &[&signature, &message]).ok_or_else(|| {
                    StoreError::Internal(anyhow::anyhow!("a stored message is too long for an entry bundle"))
                })?;
            }
        }
        Some(0) => {
            let hashes = repo::leaf_hashes(conn, key(start)?, key(count)?)?;
            check_count(hashes.len(), count)?;
            hashes.iter().for_each(|h| out.extend_from_slice(h));
        }
        Some(level) => {
            let hashes = repo::tile_hashes(conn, i16::from(level), key(start)?, key(count)?)?;
            check_count(hashes.len(), count)?;
            hashes.iter().for_each(|h| out.extend_from_slice(h));
        }
    }
    Ok(out)
}

fn check_count(found: usize, wanted: u64) -> Result<(), StoreError> {
    if found as u64 != wanted {
        return Err(StoreError::Internal(anyhow::anyhow!(
            "the tree is missing hashes: found {found} of {wanted}"
        )));
    }
    Ok(())
}

/// Query of `GET /v1/log/proof/inclusion`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The message.
    pub seq: u64,
    /// A published checkpoint's tree size (default: the newest).
    pub tree_size: Option<u64>,
}

/// The checkpoint of `size`, or the newest.
fn published(conn: &mut PgConnection, size: Option<u64>) -> Result<Result<CheckpointRow, String>, StoreError> {
    Ok(match size {
        Some(size) => match i64::try_from(size) {
            Ok(k) => {
                repo::checkpoint(conn, k)?.ok_or_else(|| format!("no checkpoint of tree size {size} was published"))
            }
            Err(_) => Err(format!("no checkpoint of tree size {size} was published")),
        },
        None => repo::latest_checkpoint(conn)?.ok_or_else(|| "no checkpoint is published yet".to_owned()),
    })
}

fn root_of(row: &CheckpointRow) -> Result<Hash, ApiError> {
    Hash::try_from(row.root.as_slice())
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a stored root is not 32 bytes")))
}

/// The inclusion proof of a message in the tree of a published checkpoint.
#[utoipa::path(get, path = "/v1/log/proof/inclusion", tag = "log", params(InclusionQuery),
    responses(
        (status = 200, description = "RFC 6962 audit path from the message's leaf to the checkpoint's root", body = LogInclusionProof),
        (status = 400, description = "bad_request: seq is not in that tree", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no checkpoint of that size", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn inclusion(
    state: web::Data<AppState>,
    query: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let InclusionQuery { seq, tree_size } = query.into_inner();
    let (row, leaf, proof) = db::run(&state.pool, move |conn| {
        let row = match published(conn, tree_size)? {
            Ok(row) => row,
            Err(missing) => return Ok(Err(ApiError::NotFound(missing))),
        };
        let size = u64::try_from(row.tree_size).unwrap_or_default();
        if seq >= size {
            return Ok(Err(ApiError::BadRequest(format!(
                "seq {seq} is not in the tree of size {size}"
            ))));
        }
        let leaf = TileStore(conn).subtrees_one(0, seq)?;
        let proof = tlog::inclusion_proof(&mut TileStore(conn), seq, size)?
            .map_err(|e| StoreError::Internal(anyhow::anyhow!(e)))?;
        Ok(Ok((row, leaf, proof)))
    })
    .await??;
    Ok(HttpResponse::Ok().json(LogInclusionProof {
        seq,
        tree_size: u64::try_from(row.tree_size).unwrap_or_default(),
        leaf_hash: HexBytes(leaf),
        audit_path: proof.into_iter().map(HexBytes).collect(),
        root: HexBytes(root_of(&row)?),
    }))
}

/// Query of `GET /v1/log/proof/consistency`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size: any size from 1 to `to` (it need not be a
    /// published one).
    pub from: u64,
    /// The newer published tree size (default: the newest).
    pub to: Option<u64>,
}

/// The consistency proof from any tree size to a published checkpoint.
#[utoipa::path(get, path = "/v1/log/proof/consistency", tag = "log", params(ConsistencyQuery),
    responses(
        (status = 200, description = "RFC 6962 consistency proof from `from` to `to`", body = ConsistencyProof),
        (status = 400, description = "bad_request: from is 0 or above to", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no checkpoint of size `to` was published", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip(state))]
pub async fn consistency(
    state: web::Data<AppState>,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let ConsistencyQuery { from, to } = query.into_inner();
    if from == 0 {
        return Err(ApiError::BadRequest(
            "from must be at least 1: every tree extends the empty one, there is nothing to prove".into(),
        ));
    }
    let (to, proof) = db::run(&state.pool, move |conn| {
        let new = match published(conn, to)? {
            Ok(row) => row,
            Err(missing) => return Ok(Err(ApiError::NotFound(missing))),
        };
        // `from` need not be a published size: the tree of any size up to
        // a published one is fixed by that checkpoint, and the stored tiles
        // prove it (an auditor compares the first blocks × block_size
        // messages with the log this way).
        let to = u64::try_from(new.tree_size).unwrap_or_default();
        if from > to {
            return Ok(Err(ApiError::BadRequest(format!("from {from} is above to {to}"))));
        }
        let proof = tlog::consistency_proof(&mut TileStore(conn), from, to)?
            .map_err(|e| StoreError::Internal(anyhow::anyhow!(e)))?;
        Ok(Ok((to, proof)))
    })
    .await??;
    Ok(HttpResponse::Ok().json(ConsistencyProof {
        from,
        to,
        proof: proof.into_iter().map(HexBytes).collect(),
    }))
}
