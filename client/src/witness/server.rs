//! The witness over HTTP (actix-web).
//!
//! | method, path | answer |
//! | --- | --- |
//! | `POST /add-checkpoint` | tlog-witness: `200` with the cosignature line (`text/plain; charset=utf-8`), `409` with `<size>\n` (`text/x.tlog.size`), or `400`/`403`/`404`/`422` with a one-line reason (`text/plain`) |
//! | `GET /checkpoint/<origin>` | the newest checkpoint cosigned for that log, with the log's signature and the witness's cosignature (`text/plain`); `404` if none |
//! | `GET /` | JSON: the witness's name and verifier key, and each log it follows with the size it last cosigned |
//!
//! The submission and the monitoring prefix (tlog-witness's terms) are
//! both the server's root. Request bodies above
//! [`MAX_REQUEST_BYTES`] are malformed (`400`), refused as they arrive.

use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{App, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use sealchain_shared::witness_protocol::{MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE, cosignature_lines, size_body};
use serde::Serialize;

use super::{Answer, Witness};

const TEXT: &str = "text/plain; charset=utf-8";

/// Starts serving `witness` on `listener` with `workers` threads (inside an
/// actix system). Stops on SIGINT/SIGTERM, finishing requests in flight.
pub fn serve(listener: TcpListener, witness: Witness, workers: usize) -> std::io::Result<Server> {
    let witness = web::Data::new(witness);
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(tracing_actix_web::TracingLogger::default())
            .app_data(witness.clone())
            .configure(routes)
    })
    .workers(workers.max(1))
    .client_request_timeout(Duration::from_secs(10))
    .keep_alive(Duration::from_secs(30))
    .shutdown_timeout(10)
    .listen(listener)?
    .run())
}

/// Registers the witness's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/add-checkpoint", web::post().to(add_checkpoint))
        .route("/checkpoint/{origin:.+}", web::get().to(latest))
        .route("/", web::get().to(info))
        .default_service(web::to(|| async {
            text(StatusCode::NOT_FOUND, "no such path\n".into())
        }));
}

fn text(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, TEXT))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Reads the body, refusing it as soon as it passes the limit.
async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            text(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}\n"),
            )
        })?;
        if body.len() + chunk.len() > MAX_REQUEST_BYTES {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes\n"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn add_checkpoint(witness: web::Data<Witness>, payload: web::Payload) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let w = witness.clone();
    let answer = match web::block(move || w.add_checkpoint(&body, now())).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the witness state cannot be written; nothing was cosigned");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness cannot store its state\n".into(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "add-checkpoint task failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into());
        }
    };
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer {
        Answer::Cosigned(lines) => {
            tracing::debug!("cosigned");
            text(status, cosignature_lines(&lines))
        }
        Answer::Conflict(size) => {
            tracing::info!(
                size,
                "409: the old size is not the latest cosigned, or the root differs"
            );
            HttpResponse::Conflict()
                .insert_header((CONTENT_TYPE, SIZE_CONTENT_TYPE))
                .body(size_body(size))
        }
        Answer::BadProof(why) => {
            tracing::warn!(why, "422: a consistency proof from the cosigned checkpoint failed");
            text(status, format!("{why}\n"))
        }
        Answer::BadRequest(why) | Answer::Forbidden(why) | Answer::UnknownLog(why) => {
            tracing::info!(status = status.as_u16(), why, "add-checkpoint refused");
            text(status, format!("{why}\n"))
        }
    }
}

async fn latest(witness: web::Data<Witness>, origin: web::Path<String>) -> HttpResponse {
    let origin = origin.into_inner();
    let w = witness.clone();
    let o = origin.clone();
    match web::block(move || w.latest(&o)).await {
        Ok(Ok(Some(state))) => text(StatusCode::OK, state.checkpoint),
        Ok(Ok(None)) => text(
            StatusCode::NOT_FOUND,
            format!("no checkpoint of {origin:?} was cosigned by this witness\n"),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the witness state");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness cannot read its state\n".into(),
            )
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into()),
    }
}

/// `GET /`.
#[derive(Debug, Serialize)]
struct Info {
    name: String,
    verifier_key: String,
    logs: Vec<LogInfo>,
}

#[derive(Debug, Serialize)]
struct LogInfo {
    origin: String,
    cosigned_size: Option<u64>,
    /// Refused requests with a valid log signature (evidence).
    refusals: u64,
}

async fn info(witness: web::Data<Witness>) -> HttpResponse {
    let w = witness.clone();
    let logs = web::block(move || {
        w.origins()
            .into_iter()
            .map(|origin| {
                Ok(LogInfo {
                    origin: origin.to_owned(),
                    cosigned_size: w.latest(origin)?.map(|s| s.size),
                    refusals: w.refusals(origin)?,
                })
            })
            .collect::<Result<Vec<_>, super::store::StoreError>>()
    })
    .await;
    let Ok(Ok(logs)) = logs else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the witness cannot read its state\n".into(),
        );
    };
    HttpResponse::Ok().json(Info {
        name: witness.cosigner().verifier().name().to_owned(),
        verifier_key: witness.cosigner().verifier().to_vkey(),
        logs,
    })
}
