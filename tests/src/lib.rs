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

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod chain;
pub mod db;
pub mod fill;
pub mod node;
pub mod process;
pub mod seal;
pub mod tamper;

pub use chain::{assert_each_exactly_once, audit_chain};
pub use db::TestDb;
pub use node::{NodeOptions, TestNode};
pub use process::NodeProcess;

/// Status, `Content-Type` and body of an answer, uninterpreted.
pub type RawAnswer = (u16, String, Vec<u8>);

async fn raw(request: awc::ClientRequest, body: Option<Vec<u8>>) -> RawAnswer {
    let sent = match body {
        Some(body) => {
            request
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
        }
        None => request.send().await,
    };
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

/// GETs `base + path`.
pub async fn get_raw(base: &str, path: &str) -> RawAnswer {
    raw(awc::Client::new().get(format!("{base}{path}")), None).await
}

/// The value of metric `name` (with its labels, as rendered) in a
/// Prometheus text answer.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}
