//! HTTP routes (PROTOCOL §7). Each resource module has a `config` that
//! registers its paths; [`config`] registers them all.

pub mod blocks;
pub mod clients;
pub mod docs;
pub mod events;
pub mod health;
pub mod log;
pub mod messages;
pub mod node;

use actix_web::{HttpMessage, HttpRequest, web};

use crate::error::ApiError;

/// Registers every route, and problem+json answers for bad paths, bad
/// queries and unknown routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default().error_handler(|err, _| ApiError::BadRequest(format!("bad path: {err}")).into()),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|err, _| ApiError::BadRequest(format!("bad query: {err}")).into()),
    )
    .configure(node::config)
    .configure(messages::config)
    .configure(blocks::config)
    .configure(events::config)
    .configure(clients::config)
    .configure(health::config)
    .configure(log::config)
    .configure(docs::config)
    .configure(crate::explorer::config)
    .default_service(web::to(not_found));
}

/// Unknown routes: the explorer's HTML page for a browser or an explorer
/// path, problem+json for everything else.
async fn not_found(req: HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    if crate::explorer::wants_html(&req) {
        return crate::explorer::not_found(&req);
    }
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// A request body must be declared `Content-Type: application/json`
/// (PROTOCOL §3). The media type is compared case-insensitively and its
/// parameters are ignored (RFC 8259 defines none; a `charset` changes
/// nothing). A missing or other type is `415 unsupported_media_type`,
/// decided from the headers before the body is read.
pub(crate) fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let declared = req.content_type();
    if declared.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(if declared.is_empty() {
        "the request has no Content-Type; send Content-Type: application/json".into()
    } else {
        format!("Content-Type {declared:?} is not accepted; send Content-Type: application/json")
    }))
}

/// Parses a `{hash}` path segment (64 lowercase hex characters).
pub(crate) fn parse_hash(s: &str) -> Result<[u8; 32], ApiError> {
    sealchain_shared::hexbytes::decode_hex::<32>(s)
        .map_err(|e| ApiError::BadRequest(format!("bad block hash {s:?}: {e}")))
}

/// Converts an API index to a database key; indexes past `i64::MAX` do not
/// exist.
pub(crate) fn db_index(v: u64, what: &str) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| ApiError::NotFound(format!("no {what} {v}")))
}
