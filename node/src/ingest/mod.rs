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

use std::time::Duration;

use sealchain_shared::api::{ClientPolicy, Receipt};
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::{now_ms, receipt};

use crate::db::{self, StoreError, repo};
use crate::state::AppState;
use writer::{Outcome, QueueError};

/// Why the node refused a message, in the protocol's terms (PROTOCOL §4).
/// How each is answered over HTTP is decided in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The body is not an envelope.
    #[error("{0}")]
    MalformedEnvelope(String),
    /// HPKE open failed.
    #[error("the envelope could not be opened with this node's key")]
    DecryptionFailed,
    /// The plaintext is not a valid signed message; the detail names the
    /// member.
    #[error("{0}")]
    InvalidMessage(String),
    /// The message names another node.
    #[error("the message's node member is not this node's signing key")]
    WrongNode,
    /// The signature does not verify under `sender`.
    #[error("{0}")]
    InvalidSignature(String),
    /// The sender is not on the allowlist.
    #[error("sender is not registered with this node (allowlist policy)")]
    UnknownSender,
    /// `ts` is too far from the node's clock.
    #[error("ts is {skew_ms} ms away from the node's clock; at most {max_ms} ms are allowed")]
    StaleTimestamp {
        /// Signed difference `ts - now`.
        skew_ms: i64,
        /// Allowed difference.
        max_ms: u64,
    },
    /// Another message was stored under this (sender, nonce).
    #[error("another message with this sender and nonce was already accepted")]
    Duplicate,
    /// Too many messages from this address or sender: wait and resend.
    #[error("too many messages from this {what}; retry in {retry_after_secs} s")]
    RateLimited {
        /// `client address` or `sender`.
        what: &'static str,
        /// Seconds until the next message is allowed.
        retry_after_secs: u64,
    },
    /// The node cannot store it now; the detail says whether it may be
    /// stored already. The client resends the same message.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::NotFound | StoreError::Internal(_) => {
                tracing::error!(error = %e, "allowlist lookup failed");
                Self::Unavailable("the node could not check its allowlist".into())
            }
        }
    }
}

/// A stored message's receipt, and whether the node had stored it before
/// this request (a resend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The signed receipt.
    pub receipt: Receipt,
    /// `true` when this request was a resend of a stored message.
    pub resent: bool,
}

/// Runs the checks of PROTOCOL §4 on a request body, stores the message
/// and signs its receipt.
pub async fn ingest(state: &AppState, body: &[u8]) -> Result<Stored, Rejection> {
    // A full queue is answered before any cryptography is spent on the
    // request: overload sheds load instead of burning CPU on messages that
    // cannot be stored anyway.
    let slot = state.ingest.reserve().map_err(|e| {
        Rejection::Unavailable(match e {
            QueueError::Full => "the node is busy (write queue full); retry shortly".into(),
            QueueError::Stopped => "the node is not accepting messages (writer stopped)".into(),
        })
    })?;
    let verified = validate::open_and_verify(
        body,
        &state.encryption_key,
        state.verifying_key.as_bytes(),
        state.max_message_bytes,
    )?;
    state
        .limits
        .check_sender(&verified.sender)
        .map_err(|l| Rejection::RateLimited {
            what: "sender",
            retry_after_secs: l.retry_after_secs,
        })?;
    if state.client_policy == ClientPolicy::Allowlist {
        let sender = verified.sender;
        // The list in memory when it is fresh, else the database.
        let allowed = match state.allowlist.allowed(&sender) {
            Some(allowed) => allowed,
            None => db::run(&state.pool, move |conn| Ok(repo::client_allowed(conn, &sender)?)).await?,
        };
        if !allowed {
            return Err(Rejection::UnknownSender);
        }
    }
    validate::check_skew(verified.ts, now_ms(), state.max_skew)?;
    let leaf_hash = verified.leaf_hash;
    let (seq, received_at, resent) = match slot.submit(verified).await {
        Outcome::Accepted { seq, received_at } => (seq, received_at, false),
        // The same message again (a client that did not see its answer):
        // the original receipt. Ed25519 signatures are deterministic, so
        // signing the same fields again gives the same signature bytes.
        Outcome::Resent { seq, received_at } => (seq, received_at, true),
        Outcome::Duplicate => return Err(Rejection::Duplicate),
        Outcome::Unavailable(detail) => return Err(Rejection::Unavailable(detail)),
    };
    // Reads of this node never show a chain without this message.
    state.reads.saw_messages(seq + 1);
    let signature = receipt::sign(&state.signing_key, seq, &leaf_hash, received_at);
    Ok(Stored {
        receipt: Receipt {
            seq,
            leaf_hash: HexBytes(leaf_hash),
            block_index: seq / u64::from(state.block_size),
            received_at,
            signature: HexBytes(signature.to_bytes()),
        },
        resent,
    })
}

/// `max_skew` in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
