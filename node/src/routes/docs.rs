//! `GET /openapi.json` (generated from the handlers' annotations) and
//! `GET /docs` (Swagger UI, compiled into the binary).

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{blocks, clients, events, health, log, messages, node};

/// The node's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "sealchain node", description = "A tamper-evident, signed record of messages. \
        Wire contract: sealchain protocol v1 (docs/protocol.md)."),
    paths(
        node::node_info,
        messages::post_message, messages::get_message, messages::get_proof,
        blocks::block_count, blocks::block_by_index, blocks::head_block,
        blocks::block_by_hash, blocks::previous_block, blocks::list_blocks,
        events::events,
        clients::add_client, clients::list_clients, clients::remove_client,
        health::healthz, health::readyz, health::metrics,
        log::checkpoint, log::tile, log::inclusion, log::consistency,
        log::latest_checkpoint, log::witnesses,
    ),
    components(schemas(events::CheckpointEvent)),
    modifiers(&AdminToken),
    tags(
        (name = "messages", description = "Submit messages and read them back with proofs"),
        (name = "blocks", description = "Read the chain"),
        (name = "node", description = "The node's keys and settings"),
        (name = "admin", description = "Allowlist management (bearer token)"),
        (name = "log", description = "The transparency log: C2SP checkpoint, tiles, entry bundles, proofs"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "admin_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Registers the routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", ApiDoc::openapi()))
        .route("/docs", web::get().to(docs_redirect));
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}
