//! `sealchain node-info`: the node's keys and settings, and the pin.

use sealchain_shared::api::ClientPolicy;

use crate::connect::connect;
use crate::global::Global;
use crate::output::{emit, emit_json};
use crate::pin::PinStatus;

/// Show the node's keys and settings (GET /v1/node), and pin its keys.
///
/// On first contact the node's signing key, encryption key, block size and
/// log origin are written as a line of the known-nodes file (--pin-file,
/// default DATA_DIR/known_nodes): trust on first use. From then on this and
/// every other command refuses a node at that URL whose keys, block size or
/// origin differ,
/// naming the file and line to remove. To pin a signing key you got out of
/// band instead, pass --node-key HEX (or set SEALCHAIN_NODE_KEY).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain node-info
  sealchain --node http://10.0.0.5:8080 node-info --json
  sealchain --node-key \"$(cat node-signing-key.hex)\" node-info")]
pub struct Args {}

/// Describes how the keys were checked.
pub fn describe_pin(pin: &PinStatus) -> String {
    match pin {
        PinStatus::Matched { file, line } => format!("keys match {}:{line}", file.display()),
        PinStatus::Pinned { file, line } => format!("first contact: keys pinned in {}:{line}", file.display()),
        PinStatus::NodeKeyOnly => "signing key matches --node-key (no pin file)".into(),
        PinStatus::Off => "not checked (--no-pin)".into(),
    }
}

/// Runs `node-info`.
pub async fn run(global: &Global, _args: &Args) -> anyhow::Result<()> {
    let node = connect(global, 1).await?;
    let info = &node.info;
    if global.json {
        let mut value = serde_json::to_value(info)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("node".into(), node.client.base().into());
            object.insert("pin".into(), serde_json::to_value(&node.pin)?);
        }
        return emit_json(&value);
    }
    let policy = match info.client_policy {
        ClientPolicy::Open => "open (any client key)",
        ClientPolicy::Allowlist => "allowlist (registered client keys only)",
    };
    emit(&format!(
        "node            {}\n\
         protocol        {}\n\
         signing key     {}\n\
         encryption key  {}\n\
         block size      {} messages\n\
         max message     {} bytes\n\
         max clock skew  {} ms\n\
         client policy   {policy}\n\
         log origin      {}\n\
         verifier key    {}\n\
         pin             {}\n",
        node.client.base(),
        info.protocol,
        info.signing_key,
        info.encryption_key,
        info.block_size,
        info.max_message_bytes,
        info.max_skew_ms,
        info.origin,
        info.verifier_key,
        describe_pin(&node.pin),
    ))
}
