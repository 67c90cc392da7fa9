//! The ingest path.
//!
//! 1. [`validate`]: the CPU work — envelope parsing, HPKE open, schema,
//!    node binding, signature, clock skew — runs on the HTTP worker that
//!    received the request, so it spreads over every core.
//! 2. [`writer`]: verified messages go over a bounded queue to one writer
//!    thread, which commits them in batches (group commit) and seals full
//!    blocks in the same transaction. Nothing is acknowledged before its
//!    commit.

pub mod validate;
pub mod writer;
