//! # sealchain-node
//!
//! The node accepts sealed, signed messages (PROTOCOL §3–§4), stores them in
//! Postgres in arrival order, seals a signed block every `block_size`
//! messages (§5–§6) and serves the chain over REST (§7).
//!
//! Follow one message: [`routes::messages`] reads the body and runs the CPU
//! checks of [`ingest::validate`] on the request's worker thread, then hands
//! the verified message to the single writer in [`ingest::writer`], which
//! assigns `seq`, inserts it and seals full blocks in one transaction
//! through [`db::repo`], and answers only after the commit. The handler then
//! signs the receipt.
//!
//! Follow one checkpoint: [`log::Publisher`] signs and stores it, and
//! [`witnessing`] sends it to each witness and gathers their cosignatures;
//! `GET /checkpoint` ([`routes::log`]) serves the newest one that reached
//! the witness quorum.

#![forbid(unsafe_code)]

pub mod allowlist;
pub mod config;
pub mod convert;
pub mod db;
pub mod error;
pub mod explorer;
pub mod ingest;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod ratelimit;
pub mod routes;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod witnessing;
