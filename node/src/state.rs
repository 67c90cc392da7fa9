//! What every request handler shares.

use std::time::Duration;

use sealchain_shared::api::ClientPolicy;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::{SigningKey, VerifyingKey};

use crate::config::Secret;
use crate::db::DbPool;
use crate::ingest::writer::IngestHandle;
use crate::ratelimit::RateLimits;

/// Shared, read-only state of a running node.
#[derive(Debug)]
pub struct AppState {
    /// Database pool for reads and allowlist checks.
    pub pool: DbPool,
    /// Block, message, proof and tile reads (the read replica, if any).
    pub reads: crate::db::reads::Reads,
    /// The single writer's queue.
    pub ingest: IngestHandle,
    /// Signs receipts.
    pub signing_key: SigningKey,
    /// Its public half.
    pub verifying_key: VerifyingKey,
    /// Opens envelopes.
    pub encryption_key: EncryptionKey,
    /// Messages per block.
    pub block_size: u32,
    /// Allowed clock skew.
    pub max_skew: Duration,
    /// Limit on message_bytes.
    pub max_message_bytes: usize,
    /// Limit on request bodies.
    pub max_body_bytes: usize,
    /// Deadline of a request body.
    pub client_timeout: Duration,
    /// Who may send.
    pub client_policy: ClientPolicy,
    /// Admin API token.
    pub admin_token: Option<Secret>,
    /// The log's checkpoint key: origin and the node's signing key.
    pub log: NoteVerifier,
    /// Rate limits of the ingest path.
    pub limits: std::sync::Arc<RateLimits>,
    /// The allowlist in memory (followed only with the allowlist policy).
    pub allowlist: std::sync::Arc<crate::allowlist::Allowlist>,
}
