//! `sealchain proof`: one message's inclusion proof, verified — in its
//! block (PROTOCOL §5–§6), or in the log as a C2SP tlog-proof bundle (§9)
//! that anyone can check offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sealchain_shared::api::Receipt;
use sealchain_shared::audit;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::merkle;
use sealchain_shared::message::{self, Message};
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::tlog_proof::ProofBundle;
use serde::Serialize;

use crate::connect::{Node, connect};
use crate::global::Global;
use crate::output::{emit, emit_json, utc};
use crate::trusted_log::{TrustedLog, verify_bundle, witnessed};
use crate::witnessed::PolicyArgs;

/// Prove that message SEQ is recorded: in its block, or in the log as an
/// offline-verifiable proof bundle.
///
/// `proof SEQ` (the block proof) fetches the message (GET /v1/messages/SEQ), its RFC 6962 audit path
/// (GET /v1/messages/SEQ/proof) and the header of its block, then checks:
/// the message's signature verifies under its sender and its leaf hash is
/// SHA256(0x00 || signature || message); the block header hashes to its
/// hash and carries the node's signature (pinned key); and the audit path
/// leads from the leaf hash to the block's Merkle root. Prints the path from
/// the leaf upwards. A message whose block is not sealed yet has no block
/// proof (409 not_sealed); its log proof exists within about a second.
///
/// `proof SEQ --out FILE` writes the message's proof in the log as a C2SP
/// tlog-proof bundle: the signed message (in the `extra` line, base64), its
/// index, the inclusion proof, a blank line and the log's checkpoint
/// verbatim (with any cosignatures). The checkpoint is verified under the
/// node's verifier key and proven consistent with the one this client saw
/// before; the bundle is checked as `--verify` checks it before it is
/// written.
///
/// `proof --verify FILE --vkey KEY` checks a bundle offline, contacting no
/// node: the checkpoint's signature under KEY (the log's verifier key, as
/// `sealchain node-info` or `checkpoint` print it), the inclusion proof from
/// the message's leaf hash to the checkpoint's root, the message's
/// signature under its sender, and that it names the node whose key KEY
/// holds. Any malformed or changed line fails, naming it.
///
/// With --witness-policy the bundle's checkpoint must also be cosigned as
/// the policy requires (C2SP tlog-cosignature): `--out` refuses to write a
/// bundle around a checkpoint that is not, and `--verify` refuses such a
/// bundle. A bundle that meets a policy proves the message is in the
/// history the witnesses saw, not only in one the node showed you.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain proof 42
  sealchain proof 42 --json
  sealchain proof 42 --out 42.tlog-proof
  sealchain proof --verify 42.tlog-proof --vkey 'log.example.com/sealchain+ebc93979+AWaFwzMg0DzF6c8QCp6uROjnlRLDB+KwWTMo9o3AG4j4'
  sealchain proof --verify 42.tlog-proof --vkey '…' --witness-policy ./witnesses.policy")]
pub struct Args {
    /// The message's seq (its position in arrival order, from 0).
    #[arg(required_unless_present = "verify", conflicts_with = "verify")]
    pub seq: Option<u64>,
    /// Write the message's proof in the log to FILE as a C2SP tlog-proof
    /// bundle (by convention named *.tlog-proof) instead of printing its
    /// block proof; waits up to --timeout for a checkpoint that covers it.
    #[arg(long, value_name = "FILE", requires = "seq")]
    pub out: Option<PathBuf>,
    /// Check the tlog-proof bundle in FILE offline (needs --vkey).
    #[arg(long, value_name = "FILE", requires = "vkey")]
    pub verify: Option<PathBuf>,
    /// The log's verifier key (origin+keyid+base64 key) to check --verify
    /// against.
    #[arg(long, value_name = "KEY", requires = "verify")]
    pub vkey: Option<String>,
    /// Witnesses that must have cosigned the bundle's checkpoint (with
    /// --out or --verify).
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Serialize)]
struct Verified<'a> {
    seq: u64,
    sender: HexBytes<32>,
    block_index: u64,
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: HexBytes<32>,
    audit_path: &'a [HexBytes<32>],
    merkle_root: HexBytes<32>,
    block_hash: HexBytes<32>,
    verified: bool,
}

/// Runs `proof`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let policy = args.policy.load()?;
    if let (Some(file), Some(vkey)) = (&args.verify, &args.vkey) {
        return verify_offline(global, file, vkey, policy.as_ref());
    }
    let Some(seq) = args.seq else {
        bail!("give a SEQ, or --verify FILE --vkey KEY");
    };
    if policy.is_some() && args.out.is_none() {
        bail!("--witness-policy applies to the log's proof bundles: use it with --out FILE or --verify FILE");
    }
    let node = connect(global, 2).await?;
    match &args.out {
        Some(file) => write_bundle(global, &node, seq, file, policy).await,
        None => block_proof(global, &node, seq).await,
    }
}

/// The message `seq` as the node serves it, checked on its own: well formed,
/// signed by its sender, hashing to its leaf hash.
async fn fetch_message(node: &Node, seq: u64) -> anyhow::Result<sealchain_shared::api::MessageRecord> {
    let record = node
        .client
        .message(seq)
        .await
        .with_context(|| format!("fetching message {seq}"))?;
    let bytes = record.message.as_bytes();
    if record.seq != seq {
        bail!("asked for message {seq}, the node answered message {}", record.seq);
    }
    let parsed = Message::parse(bytes, usize::MAX).map_err(|error| audit::AuditError::InvalidMessage { seq, error })?;
    if parsed.sender != record.sender.0 {
        bail!(audit::AuditError::SenderMismatch { seq });
    }
    message::verify(&parsed.sender, bytes, &record.signature.0)
        .map_err(|_| audit::AuditError::MessageSignature { seq })?;
    if merkle::leaf_hash_parts(&record.signature.0, bytes) != record.leaf_hash.0 {
        bail!(audit::AuditError::LeafHash { seq });
    }
    Ok(record)
}

#[derive(Debug, Serialize)]
struct Bundled<'a> {
    seq: u64,
    file: &'a Path,
    tree_size: u64,
    proof_hashes: usize,
    verifier_key: String,
    bundle: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cosigned_by: Option<Vec<(String, u64)>>,
}

/// `, cosigned by A, B` for a checkpoint a policy accepted.
fn cosigned_text(cosigned_by: Option<&[(String, u64)]>) -> String {
    cosigned_by.map_or_else(String::new, |names| {
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        format!(", cosigned by {}", names.join(", "))
    })
}

/// `proof SEQ --out FILE`.
async fn write_bundle(
    global: &Global,
    node: &Node,
    seq: u64,
    file: &Path,
    policy: Option<(PathBuf, sealchain_shared::policy::Policy)>,
) -> anyhow::Result<()> {
    let record = fetch_message(node, seq).await?;
    let policy_hint = policy
        .as_ref()
        .map(|(file, _)| format!(" --witness-policy {}", file.display()))
        .unwrap_or_default();
    let policy = policy.map(|(_, p)| p);
    let mut entry = record.signature.0.to_vec();
    entry.extend_from_slice(record.message.as_bytes());
    let log = TrustedLog::remembered(global, node)?.with_policy(policy);
    let (bundle, checkpoint) = log
        .prove_entry(seq, &entry, global.timeout)
        .await
        .with_context(|| format!("proving message {seq} in the log"))?;
    let cosigned_by = log.witnesses_of(&checkpoint)?.map(|w| w.cosigned_by);
    let text = bundle.to_text();
    crate::files::replace(file, text.as_bytes())?;
    if global.json {
        return emit_json(&Bundled {
            seq,
            file,
            tree_size: checkpoint.size(),
            proof_hashes: bundle.proof.len(),
            verifier_key: log.verifier().to_vkey(),
            bundle: &text,
            cosigned_by,
        });
    }
    emit(&format!(
        "message      {seq} from {}\n\
         checkpoint   size {}, root {} (verified under {}{})\n\
         proof        {} hashes from the leaf up to the root\n\
         written      {} (c2sp.org/tlog-proof@v1; check it offline with `sealchain proof --verify {} --vkey '{}'{}`)\n",
        record.sender,
        checkpoint.size(),
        checkpoint.root_base64(),
        log.verifier().to_vkey(),
        cosigned_text(cosigned_by.as_deref()),
        bundle.proof.len(),
        file.display(),
        file.display(),
        log.verifier().to_vkey(),
        policy_hint,
    ))
}

#[derive(Debug, Serialize)]
struct Checked<'a> {
    file: &'a Path,
    seq: u64,
    sender: String,
    topic: String,
    ts: i64,
    leaf_hash: String,
    origin: String,
    tree_size: u64,
    root: String,
    proof_hashes: usize,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cosigned_by: Option<Vec<(String, u64)>>,
}

/// `proof --verify FILE --vkey KEY`: no node is contacted.
fn verify_offline(
    global: &Global,
    file: &Path,
    vkey: &str,
    policy: Option<&(PathBuf, sealchain_shared::policy::Policy)>,
) -> anyhow::Result<()> {
    let log = NoteVerifier::parse(vkey).context("--vkey")?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle =
        ProofBundle::parse(&bytes).with_context(|| format!("{} is not a valid tlog-proof bundle", file.display()))?;
    let (checkpoint, message) =
        verify_bundle(&bundle, &log).with_context(|| format!("{} does not verify", file.display()))?;
    let cosigned_by = policy
        .map(|(policy_file, policy)| {
            witnessed(bundle.checkpoint_note(), &log, policy)
                .map(|w| w.cosigned_by)
                .with_context(|| format!("{} does not meet the policy {}", file.display(), policy_file.display()))
        })
        .transpose()?;
    let leaf = bundle.extra.as_deref().map(merkle::leaf_hash).unwrap_or_default();
    let checked = Checked {
        file,
        seq: bundle.index,
        sender: hex::encode(message.sender),
        topic: message.topic.clone(),
        ts: message.ts,
        leaf_hash: hex::encode(leaf),
        origin: checkpoint.checkpoint.origin.clone(),
        tree_size: checkpoint.size(),
        root: checkpoint.root_base64(),
        proof_hashes: bundle.proof.len(),
        verified: true,
        cosigned_by,
    };
    if global.json {
        return emit_json(&checked);
    }
    emit(&format!(
        "bundle       {} (c2sp.org/tlog-proof@v1)\n\
         message      {} from {}, topic {}, ts {}\n\
         leaf hash    {}\n\
         checkpoint   {} size {}, root {}{}\n\
         verified offline: the checkpoint's signature under {}, the {} proof hashes from the leaf to its root, \
         the message's signature under its sender, and its binding to the node\n",
        file.display(),
        checked.seq,
        checked.sender,
        checked.topic,
        utc(checked.ts),
        checked.leaf_hash,
        checked.origin,
        checked.tree_size,
        checked.root,
        cosigned_text(checked.cosigned_by.as_deref()),
        vkey,
        checked.proof_hashes,
    ))
}

/// `proof SEQ`: the message's proof in its sealed block.
async fn block_proof(global: &Global, node: &Node, seq: u64) -> anyhow::Result<()> {
    let c = &node.client;
    let record = fetch_message(node, seq).await?;
    let proof = c
        .proof(seq)
        .await
        .with_context(|| format!("fetching the inclusion proof of message {seq}"))?;
    let block = node.header(proof.block_index).await?;

    let leaf_hash = record.leaf_hash.0;

    // The block header, then the path from that leaf to its root.
    audit::verify_block_header(&block, &node.signing_key, node.info.block_size, None)?;
    let claim = Receipt {
        seq,
        leaf_hash: HexBytes(leaf_hash),
        block_index: proof.block_index,
        received_at: record.received_at,
        // Not checked by verify_inclusion: the claim is the message's own
        // leaf hash, not a receipt.
        signature: HexBytes([0; 64]),
    };
    audit::verify_inclusion(&claim, &proof, &block, node.info.block_size)?;

    if global.json {
        return emit_json(&Verified {
            seq,
            sender: record.sender,
            block_index: proof.block_index,
            leaf_index: proof.leaf_index,
            tree_size: proof.tree_size,
            leaf_hash: proof.leaf_hash,
            audit_path: &proof.audit_path,
            merkle_root: proof.merkle_root,
            block_hash: proof.block_hash,
            verified: true,
        });
    }
    let mut text = format!(
        "message      {seq} from {}\n\
         block        {} (leaf {} of {})\n\
         leaf hash    {}\n\
         audit path   {} hashes, from the leaf up\n",
        record.sender,
        proof.block_index,
        proof.leaf_index,
        proof.tree_size,
        proof.leaf_hash,
        proof.audit_path.len(),
    );
    for (level, h) in proof.audit_path.iter().enumerate() {
        text.push_str(&format!("  {:>3}        {h}\n", level + 1));
    }
    text.push_str(&format!(
        "merkle root  {}\n\
         block hash   {}\n\
         verified: the message's signature and leaf hash, the block header and node signature, \
         and the path to the Merkle root\n",
        proof.merkle_root, proof.block_hash
    ));
    emit(&text)
}
