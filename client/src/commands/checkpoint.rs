//! `sealchain checkpoint`: the node's log checkpoint, verified and checked
//! against the one this client saw before.

use serde::Serialize;

use crate::connect::connect;
use crate::global::Global;
use crate::output::{emit, emit_json};
use crate::trusted_log::TrustedLog;
use crate::witnessed::PolicyArgs;

/// Fetch, verify and remember the log's newest checkpoint (GET /checkpoint).
///
/// The checkpoint is the node's signed tree head (PROTOCOL §9, C2SP
/// tlog-checkpoint): a signed note of the log's origin, tree size and root
/// hash over every message so far. It must carry a valid Ed25519 signature
/// by the node's pinned signing key under the key name = the pinned origin
/// (together: the verifier key printed below). It is then checked against
/// the checkpoint this client saw before of this log (kept in
/// DATA_DIR/tlog/SIGNING_KEY/checkpoint): the same size must have the same
/// root, and a larger tree must extend the older one, which the node proves
/// with GET /v1/log/proof/consistency. A newer checkpoint replaces the
/// remembered one. A badly signed or inconsistent checkpoint fails loudly
/// (exit 1), naming both sizes: the node showed two different histories.
///
/// Other signatures on the note (witness cosignatures) are counted, not
/// checked — unless --witness-policy is given: then the checkpoint must be
/// cosigned by a quorum of the policy's witnesses (C2SP tlog-cosignature),
/// every cosignature of a known witness must verify, and the witnesses that
/// cosigned it are printed. A checkpoint without enough valid cosignatures
/// is refused (exit 1) before it is compared or remembered: the node may be
/// showing you a history the witnesses did not see.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain checkpoint
  sealchain --node https://log.example.com checkpoint --json
  sealchain checkpoint --witness-policy ./witnesses.policy")]
pub struct Args {
    /// Witnesses that must have cosigned the checkpoint.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Serialize)]
struct Shown<'a> {
    node: &'a str,
    origin: &'a str,
    size: u64,
    root: String,
    root_hex: String,
    verifier_key: String,
    note: &'a str,
    other_signatures: usize,
    history: &'static str,
    seen_before: Option<u64>,
    remembered: Option<String>,
    /// With a policy: the witnesses that cosigned it, with their timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    cosigned_by: Option<Vec<(String, u64)>>,
}

/// Runs `checkpoint`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let policy = args.policy.load()?;
    let node = connect(global, 2).await?;
    let log = TrustedLog::remembered(global, &node)?.with_policy(policy.as_ref().map(|(_, p)| p.clone()));
    let refreshed = log.refresh().await?;
    let witnessed = log.witnesses_of(&refreshed.latest)?;
    let latest = &refreshed.latest;
    let cp = &latest.checkpoint;
    // The note parsed when it was verified; count the signatures besides
    // the log's.
    let other_signatures = sealchain_shared::note::Note::parse(latest.note.as_bytes())
        .map(|n| n.signatures.len().saturating_sub(1))
        .unwrap_or_default();
    let remembered = log.memory().map(|m| m.checkpoint_file().display().to_string());
    if global.json {
        return emit_json(&Shown {
            node: node.client.base(),
            origin: &cp.origin,
            size: cp.size,
            root: latest.root_base64(),
            root_hex: hex::encode(cp.root),
            verifier_key: log.verifier().to_vkey(),
            note: &latest.note,
            other_signatures,
            history: refreshed.history_code(),
            seen_before: refreshed.seen_before.as_ref().map(|c| c.size),
            remembered,
            cosigned_by: witnessed.as_ref().map(|w| w.cosigned_by.clone()),
        });
    }
    let mut text = format!(
        "node          {}\n\
         origin        {}\n\
         tree size     {}\n\
         root          {} (hex {})\n\
         verifier key  {}\n\
         signature     ok: Ed25519 by the node's pinned signing key {} (key ID {})\n",
        node.client.base(),
        cp.origin,
        cp.size,
        latest.root_base64(),
        hex::encode(cp.root),
        log.verifier().to_vkey(),
        node.info.signing_key,
        hex::encode(log.verifier().id()),
    );
    match (&witnessed, &policy) {
        (Some(w), Some((file, policy))) => {
            let names: Vec<&str> = w.cosigned_by.iter().map(|(n, _)| n.as_str()).collect();
            text.push_str(&format!(
                "witnessed     ok: cosigned by {} (policy {}: {})\n",
                names.join(", "),
                file.display(),
                policy.describe_quorum()
            ));
        }
        _ if other_signatures > 0 => text.push_str(&format!(
            "cosignatures  {other_signatures} other signature line(s), not checked (no --witness-policy)\n"
        )),
        _ => {}
    }
    text.push_str(&format!("history       ok: {}\n", refreshed.history()));
    if let Some(file) = remembered {
        let what = if refreshed.recorded {
            "remembered in"
        } else {
            "the remembered one is in"
        };
        text.push_str(&format!("memory        {what} {file}\n"));
    }
    emit(&text)
}
