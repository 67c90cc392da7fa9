//! # sealchain-tests: the integration test harness
//!
//! Real parts only: every test gets its own Postgres database and its own
//! node listening on a free port, and talks to it over HTTP with the real
//! client library.
//!
//! - [`TestDb`]: a fresh database cloned from a migrated template
//!   (`CREATE DATABASE … TEMPLATE …`), dropped when the value is dropped.
//!   The server comes from `TEST_DATABASE_URL` when set, otherwise from a
//!   testcontainers `postgres:16-alpine`; with neither, tests fail with a
//!   message saying how to provide one.
//! - [`TestNode`]: a node built from the same code as the binary
//!   (`Application::build`) on port 0.
//! - [`seal`]: helpers that build signed, sealed messages — and broken ones.
//! - [`forge`]: the Ed25519 edge cases that only strict verification
//!   refuses (small-order keys and `R`, non-canonical `S`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chain;
pub mod cli;
pub mod cluster;
pub mod db;
pub mod fill;
pub mod forge;
pub mod node;
pub mod process;
pub mod seal;
pub mod tamper;
pub mod witness;

pub use chain::{assert_each_exactly_once, audit_chain};
pub use db::TestDb;
pub use node::{NodeOptions, TestNode};
pub use process::NodeProcess;
pub use witness::WitnessProcess;

/// Status, `Content-Type` and body of an answer, uninterpreted.
pub type RawAnswer = (u16, String, Vec<u8>);

async fn raw(request: awc::ClientRequest, body: Option<Vec<u8>>) -> RawAnswer {
    match body {
        Some(body) => typed(request, Some("application/json"), body).await,
        None => answer(request.send().await).await,
    }
}

/// Sends `body` with this `Content-Type` (none when `None`), with a
/// `Content-Length`.
async fn typed(request: awc::ClientRequest, content_type: Option<&str>, body: Vec<u8>) -> RawAnswer {
    let request = match content_type {
        Some(value) => request.insert_header(("content-type", value)),
        None => request,
    };
    answer(request.send_body(body).await).await
}

async fn answer(sent: Result<awc::ClientResponse, awc::error::SendRequestError>) -> RawAnswer {
    let mut response = sent.expect("node answers");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.body().limit(64 << 20).await.expect("body").to_vec();
    (response.status().as_u16(), content_type, bytes)
}

/// POSTs raw bytes as JSON to `base + path`.
pub async fn post_raw(base: &str, path: &str, body: Vec<u8>) -> RawAnswer {
    raw(awc::Client::new().post(format!("{base}{path}")), Some(body)).await
}

/// POSTs raw bytes to `base + path` with this `Content-Type`, or none.
pub async fn post_typed(base: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> RawAnswer {
    typed(awc::Client::new().post(format!("{base}{path}")), content_type, body).await
}

/// POSTs raw bytes as JSON to `base + path` in chunks of `chunk` bytes
/// (`Transfer-Encoding: chunked`, no `Content-Length`).
pub async fn post_chunked(base: &str, path: &str, body: Vec<u8>, chunk: usize) -> RawAnswer {
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = body
        .chunks(chunk)
        .map(|c| Ok(actix_web::web::Bytes::copy_from_slice(c)))
        .collect();
    let request = awc::Client::new()
        .post(format!("{base}{path}"))
        .insert_header(("content-type", "application/json"));
    answer(request.send_stream(futures_util::stream::iter(chunks)).await).await
}

/// Waits (without blocking the runtime) until `check` holds, polling every
/// 50 ms; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The value of the sample `name` (with its labels, e.g.
/// `sealchain_writer_batch_size_bucket{le="64"}`) in a Prometheus text
/// exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The node's `/metrics` text (asserting a 200).
pub async fn metrics_text(base: &str) -> String {
    let (status, _, body) = get_raw(base, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics");
    String::from_utf8(body).expect("the metrics are UTF-8")
}

/// GETs `base + path`.
pub async fn get_raw(base: &str, path: &str) -> RawAnswer {
    raw(awc::Client::new().get(format!("{base}{path}")), None).await
}
