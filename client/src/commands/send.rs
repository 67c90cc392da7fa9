//! `sealchain send`: one message, its receipt checked.

use std::path::PathBuf;

use anyhow::Context;
use sealchain_shared::keys;
use sealchain_shared::message::check_topic;

use crate::connect::{connect, retry_policy};
use crate::global::Global;
use crate::output::{emit, emit_json, utc};
use crate::receipts::ReceiptLog;
use crate::sealing::{check_receipt, seal};

/// Sign, seal and send one message; verify and print the node's receipt.
///
/// The message (PROTOCOL §2) names you (the public half of --key), the
/// node (its pinned signing key), a random nonce, the current time, --topic
/// and --body. It is signed with --key, sealed to the node's encryption key
/// (HPKE) and posted. The node answers once the message is committed, with a
/// receipt: its position (seq), block, leaf hash and the node's signature.
/// The receipt is checked: its signature verifies under the node's key and
/// it names exactly the message sent. A 503 (node busy) or no answer at all is
/// retried with the same message (see --retries): a message the node stored
/// without its answer reaching you is answered with its original receipt.
/// With --receipts the receipt is also
/// appended to FILE (one JSON object per line) for `sealchain verify
/// --receipts FILE` later.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example:
  sealchain send --key ./client-keys/client-000.pem --topic sensors/temp \\
      --body '{\"reading\": 21.5, \"unit\": \"C\"}' --receipts ./receipts.jsonl")]
pub struct Args {
    /// Your client key (PKCS#8 PEM, mode 0600; see `sealchain keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Topic: 1 to 64 characters of a-z 0-9 . _ / -
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Body: any JSON value, e.g. '{"reading": 21.5}' or '"text"' or 42.
    #[arg(long, value_name = "JSON")]
    pub body: String,
    /// Append the receipt to this file (created if missing).
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,
}

/// Runs `send`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    // Everything that can be wrong locally is checked before the network.
    let body: serde_json::Value = serde_json::from_str(&args.body).context("--body is not JSON")?;
    check_topic(&args.topic).context("--topic")?;
    let key = keys::load_signing_key(&args.key)?;
    let mut log = args.receipts.as_deref().map(ReceiptLog::open).transpose()?;

    let node = connect(global, 1).await?;
    let sealed = seal(&node, &key, &args.topic, &body)?;
    let policy = retry_policy(global);
    let submitted = node
        .client
        .submit_retrying(sealed.envelope_json, policy)
        .await
        .map_err(|(e, attempts)| {
            let tries = if attempts > 1 {
                format!(" (gave up after {attempts} attempts)")
            } else {
                String::new()
            };
            anyhow::Error::new(e).context(format!("sending the message{tries}"))
        })?;
    let receipt = submitted.receipt;
    check_receipt(&node, &receipt, &sealed.leaf_hash)?;
    if let Some(log) = log.as_mut() {
        log.append(&receipt)?;
        log.flush()?;
    }

    if global.json {
        return emit_json(&receipt);
    }
    let mut text = format!(
        "accepted     seq {} in block {}\n\
         leaf hash    {}\n\
         received at  {} ({})\n\
         signature    {} (verified under the node's key {})\n",
        receipt.seq,
        receipt.block_index,
        receipt.leaf_hash,
        utc(receipt.received_at),
        receipt.received_at,
        receipt.signature,
        node.info.signing_key,
    );
    if submitted.attempts > 1 {
        text.push_str(&format!(
            "attempts     {} (the node was busy or did not answer)\n",
            submitted.attempts
        ));
    }
    if let Some(log) = &log {
        text.push_str(&format!("receipt appended to {}\n", log.path().display()));
    }
    emit(&text)
}
