//! The admin API of the allowlist: `POST /v1/clients`, `GET /v1/clients`,
//! `DELETE /v1/clients/{key}`, all behind `Authorization: Bearer <token>`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sealchain_shared::api::{ClientEntry, ClientList, NewClient, Problem};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{parse_hash, require_json};
use crate::db::models::ClientRow;
use crate::db::{self, repo};
use crate::error::ApiError;
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/clients", web::post().to(add_client))
        .route("/v1/clients", web::get().to(list_clients))
        .route("/v1/clients/{key}", web::delete().to(remove_client));
}

/// The credentials of `Authorization: Bearer <token>` (RFC 6750 §2.1).
/// The scheme name is case-insensitive (RFC 9110 §11.1, formerly RFC 7235
/// §2.1: `bearer` and `BEARER` name the same scheme) and is followed by one
/// or more spaces; the token itself is compared exactly.
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <admin token>".into()))?;
    // The scheme is not echoed: a client that sends its bare token would
    // find it in the answer.
    let wrong_scheme = || ApiError::Unauthorized("the Authorization header must be Bearer <admin token>".into());
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .ok_or_else(wrong_scheme)?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(wrong_scheme());
    }
    Ok(token.trim_start_matches(' '))
}

/// Checks the bearer token in constant time. Both sides are hashed first
/// so that the comparison does not leak the token's length either.
fn authorize(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::Unauthorized(
            "the admin API is disabled; start the node with --admin-token".into(),
        ));
    };
    let given = bearer_token(req)?;
    let matches: bool = Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(token.expose()))
        .into();
    if matches {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid admin token".into()))
    }
}

/// Register a client key (allowlist policy). Idempotent.
#[utoipa::path(post, path = "/v1/clients", tag = "admin",
    request_body(content = NewClient, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Registered", body = ClientEntry),
        (status = 200, description = "Was already registered", body = ClientEntry),
        (status = 400, description = "bad_request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: the body is not declared Content-Type: application/json", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn add_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    require_json(&req)?;
    let new: NewClient = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body must be {{\"client_id\": \"<64 hex>\"}}: {e}")))?;
    let row = ClientRow {
        client_id: new.client_id.0.to_vec(),
        added_at: sealchain_shared::now_ms(),
    };
    let (entry, created) = db::run(&state.pool, move |conn| match repo::add_client(conn, &row)? {
        Some(added) => Ok((added, true)),
        None => Ok((
            repo::client(conn, &row.client_id)?.ok_or(diesel::result::Error::NotFound)?,
            false,
        )),
    })
    .await?;
    state.allowlist.changed(new.client_id.0, true);
    tracing::info!(client_id = %new.client_id, created, "client registered");
    let entry = entry.to_entry().map_err(ApiError::Internal)?;
    Ok(if created {
        HttpResponse::Created().json(entry)
    } else {
        HttpResponse::Ok().json(entry)
    })
}

/// List registered client keys.
#[utoipa::path(get, path = "/v1/clients", tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "Registered clients", body = ClientList),
        (status = 401, description = "unauthorized", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_clients(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let rows = db::run(&state.pool, |conn| Ok(repo::list_clients(conn)?)).await?;
    let clients = rows
        .iter()
        .map(ClientRow::to_entry)
        .collect::<Result<_, _>>()
        .map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(ClientList { clients }))
}

/// Remove a client key.
#[utoipa::path(delete, path = "/v1/clients/{key}", tag = "admin", security(("admin_token" = [])),
    params(("key" = String, Path, description = "Client id, 64 lowercase hex characters")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "bad_request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: not registered", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn remove_client(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req)?;
    let key =
        parse_hash(&key).map_err(|_| ApiError::BadRequest("client key must be 64 lowercase hex characters".into()))?;
    let removed = db::run(&state.pool, move |conn| Ok(repo::remove_client(conn, &key)?)).await?;
    if removed {
        state.allowlist.changed(key, false);
        tracing::info!(client_id = %hex::encode(key), "client removed");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!(
            "client {} is not registered",
            hex::encode(key)
        )))
    }
}
