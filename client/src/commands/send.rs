//! `sealchain send`: one message, its receipt checked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use sealchain_shared::keys;
use sealchain_shared::message::check_topic;

use crate::connect::{connect, retry_policy};
use crate::duration::parse_duration;
use crate::global::Global;
use crate::output::{emit, emit_json, utc};
use crate::receipts::{ReceiptLine, ReceiptLog};
use crate::sealing::{check_receipt, seal};
use crate::trusted_log::TrustedLog;

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
///
/// With --wait-inclusion the receipt is completed with a proof, the way a
/// transparency log answers: the command waits for a signed checkpoint of
/// the node's log that covers the message (verified under the node's
/// verifier key and proven consistent with the checkpoint this client saw
/// before), fetches the message's inclusion proof and checks it against that
/// checkpoint's root. The receipt line then carries the message's tlog-proof
/// bundle (`tlog_proof`), which `sealchain proof --verify` checks offline.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain send --key ./client-keys/client-000.pem --topic sensors/temp \\
      --body '{\"reading\": 21.5, \"unit\": \"C\"}' --receipts ./receipts.jsonl
  sealchain send --key ./client-keys/client-000.pem --topic t --body 1 --wait-inclusion --inclusion-timeout 5s")]
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
    /// After the receipt, wait until a verified checkpoint of the log covers
    /// the message and check its inclusion proof (recorded with the receipt).
    #[arg(long)]
    pub wait_inclusion: bool,
    /// How long --wait-inclusion waits for a checkpoint covering the message
    /// before failing (the node publishes one about every second).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub inclusion_timeout: Duration,
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
    let mut line = ReceiptLine::from(receipt.clone());
    let mut included = None;
    if args.wait_inclusion {
        let started = Instant::now();
        let tlog = TrustedLog::remembered(global, &node)?;
        let proven = tlog
            .prove_entry(receipt.seq, &sealed.signed_message, args.inclusion_timeout)
            .await;
        let (bundle, checkpoint) = match proven {
            Ok(proven) => proven,
            Err(e) => {
                // The receipt is kept all the same.
                if let Some(log) = log.as_mut() {
                    log.append(&line)?;
                    log.flush()?;
                }
                return Err(e.context(format!(
                    "message {} was accepted (receipt checked), but its inclusion could not be proven",
                    receipt.seq
                )));
            }
        };
        line.tlog_proof = Some(bundle.to_text());
        included = Some((bundle, checkpoint.size(), started.elapsed(), tlog.verifier().to_vkey()));
    }
    if let Some(log) = log.as_mut() {
        log.append(&line)?;
        log.flush()?;
    }

    if global.json {
        let mut value = serde_json::to_value(&line)?;
        if let (Some(object), Some((_, _, after, _))) = (value.as_object_mut(), &included) {
            object.insert("provable_after_ms".into(), (after.as_secs_f64() * 1000.0).into());
        }
        return emit_json(&value);
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
    if let Some((bundle, size, after, vkey)) = &included {
        text.push_str(&format!(
            "included     in the log's checkpoint of size {size}: {} proof hashes lead to its root (verified under {vkey})\n\
             provable     {:.2} s after the receipt\n",
            bundle.proof.len(),
            after.as_secs_f64(),
        ));
    }
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
