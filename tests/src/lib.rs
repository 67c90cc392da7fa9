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
pub mod seal;

pub use db::TestDb;
pub use node::{NodeOptions, TestNode};
