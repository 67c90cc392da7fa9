//! `GET /v1/node`: the node's keys and settings.

use actix_web::{HttpResponse, web};
use sealchain_shared::api::NodeInfo;
use sealchain_shared::hexbytes::HexBytes;

use crate::state::AppState;

/// Registers the route.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/node", web::get().to(node_info));
}

/// The node's public keys and settings; clients pin these keys.
#[utoipa::path(get, path = "/v1/node", tag = "node",
    responses((status = 200, description = "Keys and settings", body = NodeInfo)))]
pub async fn node_info(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(NodeInfo {
        signing_key: HexBytes(state.verifying_key.to_bytes()),
        encryption_key: HexBytes(state.encryption_key.public_key().to_bytes()),
        block_size: state.block_size,
        max_message_bytes: state.max_message_bytes as u64,
        max_skew_ms: u64::try_from(state.max_skew.as_millis()).unwrap_or(u64::MAX),
        client_policy: state.client_policy,
        protocol: sealchain_shared::PROTOCOL.into(),
        origin: state.log.name().to_owned(),
        verifier_key: state.log.to_vkey(),
    })
}
