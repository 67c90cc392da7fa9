//! `sealchain monitor`: follow the node's log like a Certificate
//! Transparency monitor.

use std::time::Duration;

use anyhow::{Context, anyhow};
use futures_util::{StreamExt, stream};
use sealchain_shared::audit;
use sealchain_shared::merkle;
use sealchain_shared::tlog::{self, CompactRange, TILE_WIDTH, TileId};
use serde::Serialize;

use crate::connect::{Node, connect};
use crate::duration::parse_duration;
use crate::global::Global;
use crate::log_memory::LogMemory;
use crate::output::{emit, one_line, utc};
use crate::progress;
use crate::trusted_log::{LogMisbehaviour, Refreshed, TrustedLog, VerifiedCheckpoint, is_transient};
use crate::witnessed::PolicyArgs;

/// Entry bundles fetched ahead while earlier ones are checked.
const FETCH_AHEAD: usize = 4;
/// The entries progress is saved after this many bundles, so an
/// interrupted download resumes.
const SAVE_EVERY: u64 = 64;

/// Follow the log: check every new checkpoint, and optionally every entry.
///
/// Every --interval the monitor fetches the log's checkpoint (GET
/// /checkpoint), checks its signature under the node's verifier key (pinned
/// signing key and origin), and proves it consistent with the last
/// checkpoint this client saw of the log (GET /v1/log/proof/consistency;
/// remembered in DATA_DIR/tlog/SIGNING_KEY/checkpoint, so a restarted
/// monitor carries on where it stopped, and shared with `sealchain
/// checkpoint` and the other commands that read the log).
///
/// With --entries it also downloads every new entry from the log's entry
/// bundles (GET /tile/entries/N[.p/W], partial bundles at the right edge
/// of the tree), checks each message's signature under its sender and its
/// binding to this node, and that the leaf hashes of all entries so far
/// rebuild the checkpoint's root. How far it got is kept in
/// DATA_DIR/tlog/SIGNING_KEY/entries.json (a compact range: at most 64
/// hashes), so each entry is downloaded once.
///
/// Any inconsistency — a bad signature, a checkpoint that does not extend
/// the one seen before (both sizes are named), an entry that is not a valid
/// message, entries that do not rebuild the root — stops the monitor with
/// exit status 1. A node that cannot be reached is retried at the next
/// interval (with a warning on stderr). --once checks once and exits (0 when
/// all is well), for scripts and cron. Ctrl-C stops it.
///
/// With --witness-policy every checkpoint must also be cosigned as the
/// policy requires (C2SP tlog-cosignature); one that is not stops the
/// monitor like any other inconsistency, and each line names the witnesses
/// that cosigned.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  sealchain monitor
  sealchain monitor --entries --interval 10s
  sealchain monitor --once --entries --json
  sealchain monitor --witness-policy ./witnesses.policy")]
pub struct Args {
    /// Time between two checks of the log.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Also download and check every new entry.
    #[arg(long)]
    pub entries: bool,
    /// Check once and exit.
    #[arg(long)]
    pub once: bool,
    /// Witnesses that must have cosigned every checkpoint.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// One line of output (`--json`: one JSON object per line).
#[derive(Debug, Serialize)]
struct Event {
    time: String,
    size: u64,
    root: String,
    history: &'static str,
    seen_before: Option<u64>,
    /// With --entries: entries checked in this round (from..to).
    #[serde(skip_serializing_if = "Option::is_none")]
    entries_checked: Option<(u64, u64)>,
    /// With --witness-policy: the witnesses that cosigned the checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    cosigned_by: Option<Vec<String>>,
}

/// Runs `monitor`.
pub async fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    if args.interval.is_zero() {
        anyhow::bail!("--interval must be longer than 0");
    }
    let policy = args.policy.load()?.map(|(_, policy)| policy);
    let node = connect(global, FETCH_AHEAD + 1).await?;
    let memory = LogMemory::new(global.log_dir(&node.info.signing_key)?);
    let log = TrustedLog::new(&node, Some(memory.clone()))?.with_policy(policy);
    if !global.json && !args.once {
        eprintln!(
            "monitoring {} ({}), remembering in {}",
            log.verifier().to_vkey(),
            node.client.base(),
            memory.checkpoint_file().display()
        );
    }
    let stop = crate::signals::stop_requested();
    tokio::pin!(stop);
    let mut shown: Option<u64> = None;
    loop {
        match round(&node, &log, &memory, args.entries).await {
            Ok((refreshed, entries)) => {
                let size = refreshed.latest.size();
                if args.once || shown != Some(size) || entries.is_some() {
                    show(global, &log, &refreshed, entries)?;
                    shown = Some(size);
                }
            }
            Err(e) if !args.once && is_transient(&e) => {
                eprintln!("warning: {} (trying again in {:?})", one_line(&e), args.interval);
            }
            Err(e) => return Err(e.context("monitor stopped")),
        }
        if args.once {
            return Ok(());
        }
        tokio::select! {
            () = actix_rt::time::sleep(args.interval) => {}
            () = &mut stop => return Ok(()),
        }
    }
}

/// One check: the checkpoint, then (with `entries`) the new entries.
async fn round(
    node: &Node,
    log: &TrustedLog,
    memory: &LogMemory,
    entries: bool,
) -> anyhow::Result<(Refreshed, Option<(u64, u64)>)> {
    let refreshed = log.refresh().await?;
    if !entries {
        return Ok((refreshed, None));
    }
    let checked = check_entries(node, memory, &refreshed.latest).await?;
    Ok((refreshed, checked))
}

fn show(global: &Global, log: &TrustedLog, refreshed: &Refreshed, entries: Option<(u64, u64)>) -> anyhow::Result<()> {
    let cosigned_by = log
        .witnesses_of(&refreshed.latest)?
        .map(|w| w.cosigned_by.into_iter().map(|(name, _)| name).collect::<Vec<_>>());
    let event = Event {
        time: utc(sealchain_shared::now_ms()),
        size: refreshed.latest.size(),
        root: refreshed.latest.root_base64(),
        history: refreshed.history_code(),
        seen_before: refreshed.seen_before.as_ref().map(|c| c.size),
        entries_checked: entries,
        cosigned_by,
    };
    if global.json {
        return emit(&format!("{}\n", serde_json::to_string(&event)?));
    }
    let witnessed = match &event.cosigned_by {
        Some(names) => format!(", cosigned by {}", names.join(", ")),
        None => String::new(),
    };
    let mut text = format!(
        "{}  checkpoint {} root {}: signature ok{witnessed}, {}\n",
        event.time,
        event.size,
        event.root,
        refreshed.history()
    );
    if let Some((from, to)) = entries {
        text.push_str(&format!(
            "{}  entries {from}..{to}: {} new, every message signature verified; the {to} leaf hashes rebuild the root\n",
            event.time,
            to - from
        ));
    }
    emit(&text)
}

/// Downloads and checks the entries the remembered progress does not
/// cover yet, up to `checkpoint`; returns the range checked, if any.
async fn check_entries(
    node: &Node,
    memory: &LogMemory,
    checkpoint: &VerifiedCheckpoint,
) -> anyhow::Result<Option<(u64, u64)>> {
    let mut range = memory.load_entries()?.unwrap_or_default();
    let (start, end) = (range.size(), checkpoint.size());
    if start > end {
        // The node served an older checkpoint (consistent with the one
        // seen before): nothing new.
        return Ok(None);
    }
    if start < end {
        fetch_and_check(node, memory, &mut range, end).await?;
    }
    if range.root() != checkpoint.checkpoint.root {
        return Err(anyhow!(LogMisbehaviour(format!(
            "the log's entries 0..{end} hash to root {}, but its checkpoint of size {end} says {} \
             (entries progress in {})",
            hex::encode(range.root()),
            hex::encode(checkpoint.checkpoint.root),
            memory.entries_file().display()
        ))));
    }
    memory.save_entries(&range)?;
    Ok((start < end).then_some((start, end)))
}

/// Folds entries `range.size()..end` into `range`, checking each.
async fn fetch_and_check(node: &Node, memory: &LogMemory, range: &mut CompactRange, end: u64) -> anyhow::Result<()> {
    let start = range.size();
    let bar = progress::counter(end - start, "entries");
    let tiles = (start / TILE_WIDTH)..=((end - 1) / TILE_WIDTH);
    let mut bundles = stream::iter(tiles)
        .map(|index| {
            // The bundle as the checkpoint of size `end` implies it: full,
            // or partial at the right edge.
            let width = tlog::tile_width(None, index, end);
            let id = TileId {
                level: None,
                index,
                width: (width < TILE_WIDTH).then(|| u8::try_from(width).unwrap_or(u8::MAX)),
            };
            let client = node.client.clone();
            async move {
                let bytes = client
                    .tile(&id)
                    .await
                    .with_context(|| format!("fetching {}", id.path()))?;
                anyhow::Ok((id, width, bytes))
            }
        })
        .buffered(FETCH_AHEAD);
    let mut done = 0;
    while let Some(fetched) = bundles.next().await {
        let (id, width, bytes) = fetched?;
        let entries = tlog::split_entry_bundle(&bytes, width)
            .map_err(|e| anyhow!(LogMisbehaviour(format!("{}: {e}", id.path()))))?;
        let first = id.index * TILE_WIDTH;
        for (seq, entry) in (first..).zip(entries) {
            if seq < start {
                continue;
            }
            audit::verify_entry(seq, entry, &node.signing_key)
                .map_err(|e| anyhow!(LogMisbehaviour(format!("log entry {seq} ({}): {e}", id.path()))))?;
            range.append(merkle::leaf_hash(entry), |_| {});
            bar.inc(1);
        }
        done += 1;
        if done % SAVE_EVERY == 0 {
            memory.save_entries(range)?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}
