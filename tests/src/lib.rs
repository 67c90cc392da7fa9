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

pub mod db;
pub mod node;
pub mod process;
pub mod seal;

pub use db::TestDb;
pub use node::{NodeOptions, TestNode};
pub use process::NodeProcess;

/// POSTs raw bytes to `base + path` and returns the status, the
/// `Content-Type` and the body, uninterpreted.
pub async fn post_raw(base: &str, path: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let mut response = awc::Client::new()
        .post(format!("{base}{path}"))
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .expect("node answers");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.body().limit(64 << 20).await.expect("body").to_vec();
    (response.status().as_u16(), content_type, bytes)
}

/// GETs `base + path`: status, `Content-Type`, body.
pub async fn get_raw(base: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut response = awc::Client::new()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("node answers");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.body().limit(64 << 20).await.expect("body").to_vec();
    (response.status().as_u16(), content_type, bytes)
}
