//! `sealchain verify`: audit the chain (PROTOCOL §8) and receipts, trusting
//! nothing the node says beyond its pinned signing key.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use sealchain_shared::api::{Block, BlockSummary, Receipt};
use sealchain_shared::audit::{self, AuditError, ChainCursor, CheckedBlock};
use sealchain_shared::note::NoteVerifier;
use sealchain_shared::tlog::CompactRange;
use sealchain_shared::tlog_proof::ProofBundle;
use sealchain_shared::{Hash, hexbytes::HexBytes, merkle};
use serde::Serialize;

use crate::api::NodeClient;
use crate::audit_checkpoint::{AuditCheckpoint, PairFileRef, pair_file_path};
use crate::connect::{Node, connect};
use crate::global::Global;
use crate::log_memory::LogMemory;
use crate::output::{emit, emit_json, one_line};
use crate::pair_sort::{Found, PairFile, PairFileWriter, PairSorter, RUN_RECORDS, Remembered};
use crate::progress;
use crate::receipts::{self, ReceiptLine};
use crate::trusted_log::{LogMisbehaviour, TrustedLog, verify_bundle};
use crate::witnessed::{HistoryCheck, PolicyArgs, WitnessReport, witnessed_checkpoint};

/// Blocks (and proofs) fetched ahead while earlier ones are checked.
const FETCH_AHEAD: usize = 16;

/// Blocks being checked at once per core (on the blocking thread pool).
const CHECKS_PER_CORE: usize = 2;

/// Audit the chain as PROTOCOL §8 says, and optionally your receipts.
///
/// Fetches every sealed block from --from to the head and checks, block by
/// block: the block is signed by the node's pinned signing key; its header
/// fields re-encode to its hash; the node's signature over the hash
/// verifies; prev_hash is the previous block's hash (zeros for block 0); its
/// messages' seqs run gapless from first_seq; every message is well formed,
/// bound to this node, and its signature verifies under its sender; the
/// RFC 6962 root over the messages equals merkle_root; and no (sender,
/// nonce) pair appears twice in the chain (a replayed message; both seqs are
/// named). One changed byte anywhere in a block fails the audit. When --from is above 0 the link of
/// the first block is checked against the (verified) header of the block
/// before it.
///
/// Each block's own checks (the signatures, hashes and Merkle root) run on
/// every core, a bounded number of blocks at a time; the checks that need
/// the order (index, link, history) follow in block order, so the first bad
/// block is the one named. Memory stays flat however long the chain: the
/// (sender, nonce) pairs are sorted on disk, in runs of about a million,
/// next to the checkpoint file (or in the temporary directory with
/// --no-checkpoint), and a replay is found by merging them at the end. The
/// report gives the elapsed time and the messages verified per second.
///
/// With --receipts FILE (written by `send` or `simulate --receipts`), each
/// receipt's node signature is checked, and for receipts whose block is
/// sealed: the block lists the message with the receipt's leaf hash and
/// receipt time, and the node's inclusion proof leads from the leaf hash to
/// the block's verified Merkle root. Receipts whose block is still open are
/// counted as pending.
///
/// The blocks and the log (PROTOCOL §9) must hold the same messages: the
/// leaf hashes of every verified block's messages are folded into the log's
/// compact range as the blocks stream by (at most 64 hashes in memory), and
/// at the end the root of the first (blocks × block size) messages is
/// checked against the node's newest checkpoint (verified under its
/// verifier key and consistent with the checkpoint this client saw before),
/// with the node's consistency proof from that size to the checkpoint's.
/// This needs the blocks from block 0, or from the block after the one the
/// audit checkpoint records (whose range it keeps); other --from values skip
/// it, saying so. Receipts that carry a tlog-proof bundle (`send --wait-
/// inclusion`) are checked too: the bundle verifies, names the receipt's
/// message, and its checkpoint is consistent with the newest one.
///
/// A valid chain can still have been rewritten or cut short since your last
/// audit. After each successful audit the last verified block (index and
/// hash) is recorded in the checkpoint file; the next audit fails if the
/// chain no longer reaches that block or holds another block there. A pair
/// file next to it (FILE.HASH.pairs, checked against the SHA-256 the
/// checkpoint records) keeps a digest of every audited (sender, nonce)
/// pair, so an audit with --from still catches a replay of a message
/// audited before.
///
/// With --witness-policy FILE the node's checkpoint (GET /checkpoint) must
/// first satisfy the policy: signed by the node's log key and cosigned by a
/// quorum of the policy's witnesses (C2SP tlog-policy, tlog-cosignature),
/// else nothing is audited. The audited chain is then tied to it: the RFC
/// 6962 tree of the audited messages (and of the open block's, up to the
/// cosigned size) must have the cosigned root. A node showing you a history
/// the witnesses did not see (a split view) fails here.
///
/// Exits non-zero naming the first bad block, message or receipt.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain verify
  sealchain verify --from 1000
  sealchain verify --receipts ./receipts.jsonl --json
  sealchain verify --witness-policy ./witnesses.policy")]
pub struct Args {
    /// First block to verify.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Also verify the receipts in this file (one JSON receipt per line).
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,
    /// Where the last verified block is remembered between audits.
    /// Default: DATA_DIR/checkpoints/<the node's signing key>.json, one per
    /// chain.
    #[arg(long, env = "SEALCHAIN_CHECKPOINT", value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Neither read nor write the checkpoint file, nor the log checkpoint
    /// remembered from earlier commands (the blocks are still compared with
    /// the node's current checkpoint).
    #[arg(long)]
    pub no_checkpoint: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Pairs sorted in memory before a run is written to disk (tests
    /// lower it to exercise the merge of many runs).
    #[arg(long, hide = true, default_value_t = RUN_RECORDS)]
    pub pair_run_records: usize,
}

/// What was verified (`--json` prints it, with `ok` and `error`).
#[derive(Debug, Default, Serialize)]
struct Report {
    node: String,
    signing_key: String,
    from: u64,
    blocks_in_chain: u64,
    blocks_verified: u64,
    messages_verified: u64,
    last_verified: Option<BlockRef>,
    receipts: Option<ReceiptReport>,
    log: Option<LogReport>,
    checkpoint: Option<CheckpointReport>,
    witnessed: Option<WitnessReport>,
    /// Wall-clock time of the chain's audit (fetching, checking, the
    /// replay merge), milliseconds.
    elapsed_ms: u64,
    /// Messages verified per second of `elapsed_ms`.
    messages_per_second: u64,
    /// The pairs of earlier audits and this one, sorted, to be recorded
    /// with the checkpoint.
    #[serde(skip)]
    pair_file: Option<PairFile>,
    /// The log's compact range over the verified blocks' messages.
    #[serde(skip)]
    log_range: Option<CompactRange>,
    /// The checkpoints (size, root) of the receipts' proof bundles, each to
    /// be proven consistent with the log's newest.
    #[serde(skip)]
    log_proof_checkpoints: Vec<(u64, Hash, u64)>,
}

/// How the blocks compare with the log.
#[derive(Debug, Serialize)]
struct LogReport {
    /// Whether the blocks' messages were compared with the log.
    compared: bool,
    /// Messages compared (blocks × block size).
    messages: u64,
    /// The checkpoint they were compared with.
    checkpoint_size: Option<u64>,
    verifier_key: String,
    /// Why they were not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

#[derive(Debug, Serialize)]
struct CheckpointReport {
    file: PathBuf,
    /// The block an earlier audit verified, which this chain still holds.
    previous: Option<u64>,
    /// The block recorded now.
    recorded: Option<u64>,
}

#[derive(Debug, Serialize)]
struct BlockRef {
    index: u64,
    hash: HexBytes<32>,
}

#[derive(Debug, Default, Serialize)]
struct ReceiptReport {
    file: PathBuf,
    total: u64,
    included: u64,
    pending: u64,
    /// Receipts whose tlog-proof bundle verified.
    log_proofs: u64,
}

/// Runs `verify`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let receipts = args.receipts.as_deref().map(receipts::read).transpose()?;
    let policy = args.policy.load()?;
    let node = connect(global, FETCH_AHEAD * 2).await?;
    // Before anything else (and before the chain's length is read, so the
    // cosigned tree is at most one open block ahead of the sealed blocks).
    let witnessed = match &policy {
        Some((file, policy)) => {
            let witnessed = witnessed_checkpoint(&node, policy).await?;
            Some((WitnessReport::new(file, policy, &witnessed), witnessed))
        }
        None => None,
    };
    let checkpoint_file = match &args.checkpoint {
        Some(file) => file.clone(),
        None => global.checkpoint_file(&node.info.signing_key)?,
    };
    let checkpoint = if args.no_checkpoint {
        None
    } else {
        Some((checkpoint_file.as_path(), AuditCheckpoint::load(&checkpoint_file)?))
    };
    let memory = if args.no_checkpoint {
        None
    } else {
        Some(LogMemory::new(global.log_dir(&node.info.signing_key)?))
    };
    let tlog = TrustedLog::new(&node, memory)?;
    let mut report = Report {
        node: node.client.base().to_owned(),
        signing_key: node.info.signing_key.to_hex(),
        from: args.from,
        receipts: args.receipts.as_ref().map(|file| ReceiptReport {
            file: file.clone(),
            ..ReceiptReport::default()
        }),
        ..Report::default()
    };
    let previous = checkpoint.as_ref().and_then(|(file, c)| c.as_ref().map(|c| (*file, c)));
    let pairs = PairStore {
        dir: match &checkpoint {
            Some(_) => checkpoint_file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
            None => std::env::temp_dir(),
        },
        keep: checkpoint.is_some(),
        run_records: args.pair_run_records,
    };
    let started = Instant::now();
    let mut result = audit_chain(
        &node,
        args.from,
        receipts.unwrap_or_default(),
        previous,
        witnessed,
        &pairs,
        &mut report,
    )
    .await;
    let elapsed = started.elapsed();
    report.elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    report.messages_per_second = (report.messages_verified as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
    if result.is_ok() {
        result = compare_with_log(&node, &tlog, args.from, global.timeout, &mut report).await;
    }
    if let (Ok(()), Some((file, previous))) = (&result, &checkpoint) {
        result = record_checkpoint(&node, file, previous.as_ref(), &mut report);
    }
    if global.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("ok".into(), result.is_ok().into());
            if let Err(e) = &result {
                object.insert("error".into(), one_line(e).into());
            }
        }
        emit_json(&value)?;
    } else if result.is_ok() {
        emit(&describe(&report))?;
    }
    result
}

fn describe(r: &Report) -> String {
    let mut text = match &r.last_verified {
        Some(last) => format!(
            "chain ok: blocks {}..={} ({} blocks, {} messages) verified against signing key {}\n\
             last block {} {}\n\
             throughput: {} messages in {:.1} s ({} messages/s)\n",
            r.from,
            last.index,
            r.blocks_verified,
            r.messages_verified,
            r.signing_key,
            last.index,
            last.hash,
            r.messages_verified,
            r.elapsed_ms as f64 / 1000.0,
            r.messages_per_second
        ),
        None => format!(
            "chain ok: no sealed blocks from {} ({} in the chain)\n",
            r.from, r.blocks_in_chain
        ),
    };
    if let Some(cp) = &r.checkpoint {
        if let Some(previous) = cp.previous {
            text.push_str(&format!(
                "history ok: block {previous} of an earlier audit is unchanged\n"
            ));
        }
        if let Some(recorded) = cp.recorded {
            text.push_str(&format!(
                "checkpoint: block {recorded} recorded in {}\n",
                cp.file.display()
            ));
        }
    }
    if let Some(w) = &r.witnessed {
        text.push_str(&w.describe());
        text.push('\n');
        text.push_str(&format!(
            "history ok: the audited chain is the cosigned history ({} audited messages in the cosigned tree)\n",
            w.covered
        ));
    }
    if let Some(log) = &r.log {
        match (&log.skipped, log.checkpoint_size) {
            (Some(why), _) => text.push_str(&format!("log: not compared with the blocks ({why})\n")),
            (None, Some(size)) if log.compared => text.push_str(&format!(
                "log ok: the {} messages of the sealed blocks are the first {} entries of the log \
                 (checkpoint of size {size}, verified under {})\n",
                log.messages, log.messages, log.verifier_key
            )),
            _ => {}
        }
    }
    if let Some(rr) = &r.receipts {
        text.push_str(&format!(
            "receipts ok: {} in {}: {} signed by the node and included in verified blocks, {} pending (block not sealed yet)\n",
            rr.total,
            rr.file.display(),
            rr.included,
            rr.pending
        ));
        if rr.log_proofs > 0 {
            text.push_str(&format!(
                "log proofs ok: {} receipts carry a tlog-proof bundle that verifies, against checkpoints consistent with the log\n",
                rr.log_proofs
            ));
        }
    }
    text
}

/// Records the last verified block, unless an earlier audit got further.
fn record_checkpoint(
    node: &Node,
    file: &Path,
    previous: Option<&AuditCheckpoint>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut cp_report = CheckpointReport {
        file: file.to_owned(),
        previous: previous.map(|c| c.index),
        recorded: None,
    };
    if let Some(last) = &report.last_verified
        && previous.is_none_or(|p| last.index >= p.index)
    {
        // The pair file first: the checkpoint names it by its hash.
        let pair_file = match report.pair_file.take() {
            Some(pairs) => {
                let recorded = PairFileRef {
                    records: pairs.records,
                    sha256: HexBytes(pairs.sha256),
                };
                let path = pair_file_path(file, &pairs.sha256);
                pairs.persist(&path)?;
                Some(recorded)
            }
            None => None,
        };
        AuditCheckpoint {
            signing_key: node.info.signing_key,
            index: last.index,
            hash: last.hash,
            verified_at: sealchain_shared::now_ms(),
            pairs: None,
            pair_file: pair_file.clone(),
            log_range: report
                .log_range
                .as_ref()
                .map(|r| r.hashes().iter().copied().map(HexBytes).collect()),
        }
        .save(file)?;
        // The pair file the checkpoint no longer names.
        if let Some(old) = previous.and_then(|p| p.pair_file.as_ref())
            && pair_file.as_ref().is_none_or(|new| new.sha256 != old.sha256)
        {
            std::fs::remove_file(pair_file_path(file, &old.sha256.0)).ok();
        }
        cp_report.recorded = Some(last.index);
    }
    report.checkpoint = Some(cp_report);
    Ok(())
}

/// Where the audit's (sender, nonce) pairs are sorted, and whether the
/// merged pairs are kept for the checkpoint.
struct PairStore {
    dir: PathBuf,
    keep: bool,
    run_records: usize,
}

async fn audit_chain(
    node: &Node,
    from: u64,
    receipts: Vec<ReceiptLine>,
    checkpoint_file: Option<(&Path, &AuditCheckpoint)>,
    witnessed: Option<(WitnessReport, sealchain_shared::policy::Witnessed)>,
    pairs: &PairStore,
    report: &mut Report,
) -> anyhow::Result<()> {
    let checkpoint = checkpoint_file.map(|(_, cp)| cp);
    let key = &node.signing_key;
    let block_size = node.info.block_size;
    let count = node.client.block_count().await.context("counting blocks")?;
    report.blocks_in_chain = count;
    if let Some(cp) = checkpoint {
        cp.check_reach(&node.info.signing_key, count)?;
        // A checkpoint before --from is checked on its own.
        if cp.index < from {
            let header = node.header(cp.index).await?;
            audit::verify_block_header(&header, key, block_size, None)?;
            cp.check_block(cp.index, &header.hash)?;
        }
    }
    if from > count {
        bail!("--from {from} is past the chain's end ({count} blocks are sealed)");
    }

    // Receipt signatures first: they need nothing from the chain; then the
    // proof bundles some carry, offline.
    let mut by_block: BTreeMap<u64, Vec<Receipt>> = BTreeMap::new();
    let log_key = crate::trusted_log::verifier(node)?;
    for line in receipts {
        audit::verify_receipt(&line.receipt, key, block_size)?;
        if let Some(text) = &line.tlog_proof {
            report
                .log_proof_checkpoints
                .push(check_receipt_bundle(&log_key, &line.receipt, text)?);
            if let Some(rr) = report.receipts.as_mut() {
                rr.log_proofs += 1;
            }
        }
        by_block.entry(line.receipt.block_index).or_default().push(line.receipt);
    }
    if let Some(rr) = report.receipts.as_mut() {
        rr.total = by_block.values().map(|v| v.len() as u64).sum();
    }

    // The block before --from anchors the first link.
    let mut prev: Option<Hash> = None;
    if from > 0 {
        let before = node.header(from - 1).await?;
        audit::verify_block_header(&before, key, block_size, None)?;
        prev = Some(before.hash.0);
    }
    let mut history = match &witnessed {
        Some((_, w)) => Some(HistoryCheck::start(node, w, from * u64::from(block_size)).await?),
        None => None,
    };
    // Replays of messages audited before, also before --from.
    let mut remembered = match checkpoint_file {
        Some((file, cp)) => cp.remembered(file)?,
        None => Remembered::None,
    };
    // The log's range over the blocks' messages: from the empty tree, or
    // from the range an earlier audit recorded right before --from.
    report.log_range = match checkpoint {
        _ if from == 0 => Some(CompactRange::new()),
        Some(cp) if cp.index + 1 == from => cp.compact_range(block_size)?,
        _ => None,
    };

    let bar = progress::messages((count - from) * u64::from(block_size), "verifying");
    let client = node.client.clone();
    let node_key = *key;
    let in_flight = std::thread::available_parallelism().map_or(1, NonZeroUsize::get) * CHECKS_PER_CORE;
    // Fetched in order, FETCH_AHEAD at a time; then decoded and checked on
    // the blocking pool, `in_flight` at a time, and handed on in order.
    let mut blocks = stream::iter(from..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let bytes = client.block_bytes(i).await.map_err(|e| fetch_error(e, i, count))?;
                anyhow::Ok((i, bytes))
            }
        })
        .buffered(FETCH_AHEAD)
        .map(|fetched| async move {
            let (i, bytes) = fetched?;
            actix_rt::task::spawn_blocking(move || {
                let block = NodeClient::decode_block(&bytes).map_err(|e| fetch_error(e, i, count))?;
                let checked = CheckedBlock::new(&block, &node_key, block_size);
                anyhow::Ok((block, checked))
            })
            .await
            .context("checking a block")?
        })
        .buffered(in_flight);
    let mut cursor = ChainCursor::starting_at(from, prev);
    let mut sorter = PairSorter::new(&pairs.dir, pairs.run_records);
    let mut expected = from;
    while let Some(next) = blocks.next().await {
        let step = async {
            let (block, checked) = next?;
            let digests = cursor.accept(&checked).map_err(|e| fail(e, from, expected))?;
            for (seq, digest) in (checked.first_seq..).zip(digests) {
                sorter.push(*digest, seq).context("sorting the audited pairs")?;
            }
            cursor.advance(&checked);
            if let Some(history) = history.as_mut() {
                for m in &block.messages {
                    history.push(m.leaf_hash.0)?;
                }
            }
            if let Some(cp) = checkpoint {
                cp.check_block(expected, &block.summary.hash)?;
            }
            if let Some(range) = report.log_range.as_mut() {
                // Verified: each is SHA-256(0x00 || signature || message).
                block.messages.iter().for_each(|m| range.append(m.leaf_hash.0, |_| {}));
            }
            if let Some(receipts) = by_block.remove(&expected) {
                check_receipts_in_block(node, &block, &receipts).await?;
                if let Some(rr) = report.receipts.as_mut() {
                    rr.included += receipts.len() as u64;
                }
            }
            report.blocks_verified += 1;
            report.messages_verified += block.messages.len() as u64;
            report.last_verified = Some(BlockRef {
                index: expected,
                hash: block.summary.hash,
            });
            bar.inc(block.messages.len() as u64);
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = step {
            bar.finish_and_clear();
            // A replay among the blocks before this one is met first.
            let found = sorter
                .find_replay(&mut remembered, None)
                .context("sorting the audited pairs")?;
            return Err(match found {
                Some(found) => replay_error(node, found, from).await?,
                None => error,
            });
        }
        expected += 1;
    }
    bar.finish_and_clear();
    let mut out = match pairs.keep {
        true => Some(PairFileWriter::new(&pairs.dir).with_context(|| format!("writing in {}", pairs.dir.display()))?),
        false => None,
    };
    if let Some(found) = sorter
        .find_replay(&mut remembered, out.as_mut())
        .context("sorting the audited pairs")?
    {
        return Err(replay_error(node, found, from).await?);
    }
    report.pair_file = out
        .map(PairFileWriter::finish)
        .transpose()
        .context("writing the audited pairs")?;
    if let (Some(history), Some((mut witness_report, _))) = (history, witnessed) {
        witness_report.covered = history.finish(node, count * u64::from(block_size)).await?;
        report.witnessed = Some(witness_report);
    }

    // Receipts of blocks before --from: their headers are checked on their
    // own (no link), then the proofs. Receipts beyond the head are pending.
    for (index, receipts) in by_block {
        if index >= count {
            if let Some(rr) = report.receipts.as_mut() {
                rr.pending += receipts.len() as u64;
            }
            continue;
        }
        let summary = node.header(index).await?;
        audit::verify_block_header(&summary, key, block_size, None)?;
        check_proofs(node, &summary, &receipts).await?;
        if let Some(rr) = report.receipts.as_mut() {
            rr.included += receipts.len() as u64;
        }
    }
    Ok(())
}

/// Why block `i` could not be fetched.
fn fetch_error(e: crate::api::ApiError, i: u64, count: u64) -> anyhow::Error {
    match e.status() {
        // The node counts it as sealed but cannot produce it.
        Some(404) => anyhow!("block {i} is missing: the node counts {count} sealed blocks but answers {e}"),
        _ => anyhow::Error::new(e).context(format!("fetching block {i}")),
    }
}

/// The replay the pair merge found, named as an audit in order names it:
/// the block holding the message is fetched again for its sender and
/// nonce, and must still verify and hold that pair.
async fn replay_error(node: &Node, found: Found, from: u64) -> anyhow::Result<anyhow::Error> {
    let at = found.seq / node.block_size();
    let block = node.client.block(at).await.map_err(|e| fetch_error(e, at, at + 1))?;
    let checked = CheckedBlock::new(&block, &node.signing_key, node.info.block_size);
    let message = found
        .seq
        .checked_sub(block.summary.first_seq)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| Some((block.messages.get(i)?, *checked.result.as_ref().ok()?.get(i)?)))
        .filter(|(_, digest)| *digest == found.digest)
        .and_then(|(m, _)| sealchain_shared::message::Message::parse(m.message.as_bytes(), usize::MAX).ok());
    let Some(parsed) = message else {
        bail!(
            "block {at} changed during the audit: it no longer holds the verified message {} it held",
            found.seq
        );
    };
    Ok(fail(
        audit::replay(found.seq, found.other, &parsed.sender, &parsed.nonce),
        from,
        at,
    ))
}

/// The audit error, and how far the audit got before it.
fn fail(error: AuditError, from: u64, at: u64) -> anyhow::Error {
    // Block-level errors name the block; message-level ones get it here.
    let what = match error.to_string() {
        text if text.starts_with("block") => text,
        text => format!("block {at}: {text}"),
    };
    if at > from {
        anyhow!("{what} (blocks {from}..={} verified before it)", at - 1)
    } else {
        anyhow!(what)
    }
}

/// Receipts against a verified block: the block lists each message with the
/// receipt's leaf hash and time, and the node's proofs lead to its root.
async fn check_receipts_in_block(node: &Node, block: &Block, receipts: &[Receipt]) -> anyhow::Result<()> {
    for r in receipts {
        let listed = r
            .seq
            .checked_sub(block.summary.first_seq)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| block.messages.get(i))
            .ok_or_else(|| anyhow!("receipt {}: block {} does not list it", r.seq, block.summary.index))?;
        if listed.seq != r.seq || listed.leaf_hash != r.leaf_hash {
            bail!(
                "receipt {}: block {} lists leaf hash {} at that seq, the receipt says {}",
                r.seq,
                block.summary.index,
                listed.leaf_hash,
                r.leaf_hash
            );
        }
        if listed.received_at != r.received_at {
            bail!(
                "receipt {}: block {} lists received_at {}, the receipt says {}",
                r.seq,
                block.summary.index,
                listed.received_at,
                r.received_at
            );
        }
    }
    check_proofs(node, &block.summary, receipts).await
}

/// Fetches each receipt's inclusion proof and checks it against `block`, a
/// verified header.
async fn check_proofs(node: &Node, block: &BlockSummary, receipts: &[Receipt]) -> anyhow::Result<()> {
    let block_size = node.info.block_size;
    stream::iter(receipts)
        .map(|r| {
            let client = node.client.clone();
            async move {
                let proof = client
                    .proof(r.seq)
                    .await
                    .with_context(|| format!("fetching the inclusion proof of seq {}", r.seq))?;
                audit::verify_inclusion(r, &proof, block, block_size)?;
                anyhow::Ok(())
            }
        })
        .buffered(FETCH_AHEAD * 2)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Checks a receipt's tlog-proof bundle offline: it verifies under the
/// node's verifier key and proves this very message (seq and leaf hash).
/// Returns its checkpoint's size and root, and the receipt's seq.
fn check_receipt_bundle(log: &NoteVerifier, receipt: &Receipt, text: &str) -> anyhow::Result<(u64, Hash, u64)> {
    let seq = receipt.seq;
    let bad = |why: String| anyhow!("receipt {seq}: its tlog_proof {why}");
    let bundle = ProofBundle::parse(text.as_bytes()).map_err(|e| bad(format!("is not a tlog-proof bundle: {e}")))?;
    let (checkpoint, _) = verify_bundle(&bundle, log).map_err(|e| bad(format!("does not verify: {e}")))?;
    if bundle.index != seq {
        return Err(bad(format!("proves entry {}", bundle.index)));
    }
    let leaf = bundle.extra.as_deref().map(merkle::leaf_hash);
    if leaf != Some(receipt.leaf_hash.0) {
        return Err(bad("proves another message than the receipt's leaf hash".into()));
    }
    Ok((checkpoint.size(), checkpoint.checkpoint.root, seq))
}

/// The blocks against the log: the root of the verified blocks' messages is
/// a prefix of the node's newest checkpoint, and so is the checkpoint of
/// every receipt's proof bundle.
async fn compare_with_log(
    node: &Node,
    tlog: &TrustedLog,
    from: u64,
    timeout: std::time::Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let messages = report.blocks_in_chain * node.block_size();
    let verifier_key = tlog.verifier().to_vkey();
    let range = match report.log_range.take() {
        Some(range) if range.size() == messages => Some(range),
        Some(range) => bail!(
            "internal: the log's range covers {} messages, the blocks {messages}",
            range.size()
        ),
        None => {
            report.log = Some(LogReport {
                compared: false,
                messages: 0,
                checkpoint_size: None,
                verifier_key: verifier_key.clone(),
                skipped: Some(format!(
                    "the audit starts at block {from}, and no earlier audit recorded the log's range up to block {}",
                    from.saturating_sub(1)
                )),
            });
            None
        }
    };
    let newest_bundle = report.log_proof_checkpoints.iter().map(|(size, _, _)| *size).max();
    if range.is_none() && newest_bundle.is_none() {
        return Ok(());
    }
    // The checkpoint may trail the blocks by up to an interval: wait for one
    // that covers them.
    let covers = messages.max(newest_bundle.unwrap_or(0));
    let refreshed = tlog
        .wait_for(covers, timeout)
        .await
        .context("comparing the blocks with the log")?;
    let checkpoint = &refreshed.latest.checkpoint;
    if let Some(range) = &range {
        if messages > 0 {
            tlog.consistency(messages, &range.root(), checkpoint)
                .await?
                .map_err(|why| {
                    anyhow!(LogMisbehaviour(format!(
                        "the sealed blocks and the log disagree: the {messages} messages of blocks 0..={} hash to root {}, \
                         which is not the first {messages} entries of the log's checkpoint of size {} (root {}): {why}",
                        report.blocks_in_chain - 1,
                        hex::encode(range.root()),
                        checkpoint.size,
                        hex::encode(checkpoint.root)
                    )))
                })?;
        }
        report.log = Some(LogReport {
            compared: messages > 0,
            messages,
            checkpoint_size: Some(checkpoint.size),
            verifier_key,
            skipped: None,
        });
    }
    let mut distinct: Vec<(u64, Hash, u64)> = report.log_proof_checkpoints.clone();
    distinct.sort();
    distinct.dedup_by_key(|(size, root, _)| (*size, *root));
    for (size, root, seq) in distinct {
        tlog.consistency(size, &root, checkpoint).await?.map_err(|why| {
            anyhow!(LogMisbehaviour(format!(
                "receipt {seq}: the checkpoint of size {size} its proof leads to is not consistent with the log's \
                 checkpoint of size {}: {why}",
                checkpoint.size
            )))
        })?;
    }
    // Keep the range for the audit checkpoint.
    report.log_range = range;
    Ok(())
}
