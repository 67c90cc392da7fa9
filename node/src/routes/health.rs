//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// Registers the routes.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The node is running")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the writer runs, its recent writes succeed, and the
/// database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "The node can accept messages"),
    (status = 503, description = "The writer has stopped or keeps failing, or the store is unreachable (the detail says which)",
     body = sealchain_shared::api::Problem, content_type = "application/problem+json")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(problem) = state.ingest.health().problem() {
        tracing::warn!(problem, "not ready");
        return Err(ApiError::Unavailable(problem));
    }
    db::run(&state.pool, |conn| Ok(diesel::sql_query("SELECT 1").execute(conn)?))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::Unavailable("the database does not answer".into())
        })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// Prometheus text format (see the `metrics` module for the list).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::handle().render())
}
