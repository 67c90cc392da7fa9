//! `sealchain blocks`: read the chain — count, one block, pages of headers,
//! and blocks as they are sealed (`follow`). Every block shown is also
//! checked against the node's pinned key.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use sealchain_shared::api::{Block, BlockSummary};
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::{Hash, audit};

use crate::api::ApiError;
use crate::connect::{Node, connect};
use crate::global::Global;
use crate::output::{emit, emit_json, utc};

/// Largest page the API serves.
const MAX_PAGE: u64 = 1000;

/// Examples shown by `sealchain blocks --help`.
pub const EXAMPLES: &str = "\
Examples:
  sealchain blocks count
  sealchain blocks get 0
  sealchain blocks head --messages
  sealchain blocks list --from 0 --limit 20
  sealchain blocks follow --from 0";

/// The `blocks` subcommands.
#[derive(Debug, Subcommand)]
pub enum BlocksCommand {
    /// How many blocks are sealed.
    #[command(after_help = "Example:\n  sealchain blocks count")]
    Count,
    /// The block at INDEX (from 0), with its messages.
    #[command(after_help = "Example:\n  sealchain blocks get 0 --messages")]
    Get {
        /// Block index.
        index: u64,
        /// Options.
        #[command(flatten)]
        show: Show,
    },
    /// The newest block.
    #[command(after_help = "Example:\n  sealchain blocks head")]
    Head {
        /// Options.
        #[command(flatten)]
        show: Show,
    },
    /// The block with this hash (64 hex characters).
    #[command(after_help = "Example:\n  sealchain blocks hash \"$(sealchain blocks head --json | jq -r .hash)\"")]
    Hash {
        /// Block hash.
        hash: String,
        /// Options.
        #[command(flatten)]
        show: Show,
    },
    /// The block before the block with this hash (walks the chain back).
    #[command(after_help = "Example:\n  sealchain blocks prev \"$(sealchain blocks head --json | jq -r .hash)\"")]
    Prev {
        /// Hash of the later block.
        hash: String,
        /// Options.
        #[command(flatten)]
        show: Show,
    },
    /// Block headers, oldest first, a page at a time.
    #[command(after_help = "Example:\n  sealchain blocks list --from 100 --limit 50")]
    List {
        /// First block index.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// How many blocks.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Print blocks as they are sealed, checking each one, until stopped.
    ///
    /// Follows the node's event stream (GET /v1/events) and fetches every
    /// new block in full, checking it like `blocks get` does (header hash,
    /// node signature, Merkle root, every message signature) and its link
    /// to the block before. When the node goes away it reconnects (waiting
    /// 0.5 s, 1 s, 2 s, … at most 10 s) and carries on from the next block,
    /// so no block is skipped or printed twice. A block that does not
    /// verify is printed, and the command fails naming what is wrong.
    #[command(
        after_help = "Examples:\n  sealchain blocks follow\n  sealchain blocks follow --from 0 --messages\n  \
                            sealchain blocks follow --from 120 --count 10 --json"
    )]
    Follow {
        /// First block to print; blocks sealed before now are read back
        /// first. Default: the next block sealed.
        #[arg(long, value_name = "INDEX")]
        from: Option<u64>,
        /// Stop after printing this many blocks. Default: follow until
        /// interrupted (Ctrl-C).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Options.
        #[command(flatten)]
        show: Show,
    },
}

/// How a block is shown.
#[derive(Debug, clap::Args)]
pub struct Show {
    /// Also list the block's messages (seq, sender, received at, message).
    #[arg(long)]
    pub messages: bool,
}

fn parse_hash(text: &str) -> anyhow::Result<HexBytes<32>> {
    text.trim()
        .to_ascii_lowercase()
        .parse()
        .with_context(|| format!("{text:?} is not a block hash (64 hex characters)"))
}

/// Runs `blocks …`.
pub async fn run(global: &Global, command: &BlocksCommand) -> anyhow::Result<()> {
    // `follow` reads blocks while its event stream holds a connection.
    let connections = if matches!(command, BlocksCommand::Follow { .. }) {
        2
    } else {
        1
    };
    let node = connect(global, connections).await?;
    let c = &node.client;
    let (block, show) = match command {
        BlocksCommand::Count => {
            let count = c.block_count().await.context("counting blocks")?;
            return if global.json {
                emit_json(&serde_json::json!({ "count": count }))
            } else {
                emit(&format!(
                    "{count} blocks sealed ({} messages in sealed blocks, block size {})\n",
                    count.saturating_mul(node.block_size()),
                    node.info.block_size
                ))
            };
        }
        BlocksCommand::List { from, limit } => return list(global, &node, *from, *limit).await,
        BlocksCommand::Follow { from, count, show } => {
            return Follower::new(global, &node, *count, show.messages).run(*from).await;
        }
        BlocksCommand::Get { index, show } => {
            let block = c
                .block(*index)
                .await
                .with_context(|| format!("fetching block {index}"))?;
            if block.summary.index != *index {
                bail!(
                    "asked for block {index}, the node answered block {}",
                    block.summary.index
                );
            }
            (block, show)
        }
        BlocksCommand::Head { show } => (c.head().await.context("fetching the head block")?, show),
        BlocksCommand::Hash { hash, show } => {
            let hash = parse_hash(hash)?;
            let block = c
                .block_by_hash(&hash)
                .await
                .with_context(|| format!("fetching block {hash}"))?;
            if block.summary.hash != hash {
                bail!("asked for block {hash}, the node answered block {}", block.summary.hash);
            }
            (block, show)
        }
        BlocksCommand::Prev { hash, show } => {
            let hash = parse_hash(hash)?;
            let block = c
                .previous(&hash)
                .await
                .with_context(|| format!("fetching the block before {hash}"))?;
            (block, show)
        }
    };
    let check = audit::verify_block(&block, &node.signing_key, node.info.block_size, None);
    if global.json {
        emit_json(&block)?;
    } else {
        emit(&describe_block(&block, show.messages, &check))?;
    }
    check.with_context(|| format!("block {} does not verify", block.summary.index))
}

fn describe_block(block: &Block, messages: bool, check: &Result<(), audit::AuditError>) -> String {
    let b = &block.summary;
    let mut text = format!(
        "block        {}\n\
         hash         {}\n\
         prev hash    {}\n\
         merkle root  {}\n\
         messages     {} (seq {}..={})\n\
         sealed at    {} ({})\n\
         signer       {}\n\
         signature    {}\n",
        b.index,
        b.hash,
        b.prev_hash,
        b.merkle_root,
        b.message_count,
        b.first_seq,
        (b.first_seq + u64::from(b.message_count)).saturating_sub(1),
        utc(b.sealed_at),
        b.sealed_at,
        b.signer,
        b.signature,
    );
    text.push_str(&match check {
        Ok(()) => format!(
            "check        ok: header hash, node signature, Merkle root and {} message signatures verify\n",
            block.messages.len()
        ),
        Err(e) => format!("check        FAILED: {e}\n"),
    });
    if messages {
        text.push_str(&message_lines(block));
    }
    text
}

/// One line per message: seq, sender, time received, the message.
fn message_lines(block: &Block) -> String {
    block
        .messages
        .iter()
        .map(|m| format!("  {:>8}  {}  {}  {}\n", m.seq, m.sender, utc(m.received_at), m.message))
        .collect()
}

async fn list(global: &Global, node: &Node, from: u64, limit: u64) -> anyhow::Result<()> {
    let mut blocks: Vec<BlockSummary> = Vec::new();
    let mut next = Some(from);
    while let Some(at) = next {
        let wanted = limit - blocks.len() as u64;
        if wanted == 0 {
            break;
        }
        let page = node
            .client
            .blocks_page(at, wanted.min(MAX_PAGE))
            .await
            .with_context(|| format!("listing blocks from {at}"))?;
        if page.blocks.is_empty() {
            next = None;
            break;
        }
        blocks.extend(page.blocks);
        next = page.next;
    }
    let next = next.filter(|_| blocks.len() as u64 >= limit);

    // Headers, and the links between consecutive headers.
    let mut check = Ok(());
    let mut prev: Option<&BlockSummary> = None;
    for (expected, b) in (from..).zip(&blocks) {
        if b.index != expected {
            check = Err(audit::AuditError::Index {
                expected,
                found: b.index,
            });
            break;
        }
        let result = audit::verify_block_header(b, &node.signing_key, node.info.block_size, prev.map(|p| &p.hash.0));
        if result.is_err() {
            check = result;
            break;
        }
        prev = Some(b);
    }

    if global.json {
        emit_json(&serde_json::json!({ "blocks": blocks, "next": next }))?;
    } else {
        let mut text = String::new();
        if blocks.is_empty() {
            text.push_str(&format!("no blocks from index {from}\n"));
        } else {
            text.push_str(&format!(
                "{:>8}  {:<64}  {:>8}  sealed at\n",
                "index", "hash", "messages"
            ));
            for b in &blocks {
                text.push_str(&format!(
                    "{:>8}  {}  {:>8}  {}\n",
                    b.index,
                    b.hash,
                    b.message_count,
                    utc(b.sealed_at)
                ));
            }
            if check.is_ok() {
                text.push_str(&format!(
                    "check: ok ({} headers: hash, node signature, links)\n",
                    blocks.len()
                ));
            }
        }
        if let Some(n) = next {
            text.push_str(&format!("more: sealchain blocks list --from {n} --limit {limit}\n"));
        }
        emit(&text)?;
    }
    check.context("block headers do not verify")
}

/// Longest silence on the event stream before `follow` reconnects (the node
/// sends a comment at least every 15 s).
const FOLLOW_IDLE: Duration = Duration::from_secs(45);
/// Longest wait between two attempts to reach the node again.
const FOLLOW_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why following stopped for now.
enum Interrupted {
    /// The node went away: reconnect.
    Lost(String),
    /// A block does not verify, or an answer makes no sense: stop.
    Fatal(anyhow::Error),
}

impl From<ApiError> for Interrupted {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unreachable { .. } | ApiError::Problem { status: 503, .. } => Self::Lost(e.to_string()),
            other => Self::Fatal(other.into()),
        }
    }
}

/// `blocks follow`: prints every block from `next` on, in order, each
/// checked and linked to the one before.
struct Follower<'a> {
    global: &'a Global,
    node: &'a Node,
    /// The next block to print.
    next: u64,
    /// The hash of block `next - 1`, once checked.
    prev: Option<Hash>,
    /// Blocks still to print (`None`: no end).
    left: Option<u64>,
    messages: bool,
}

impl<'a> Follower<'a> {
    fn new(global: &'a Global, node: &'a Node, count: Option<u64>, messages: bool) -> Self {
        Self {
            global,
            node,
            next: 0,
            prev: None,
            left: count,
            messages,
        }
    }

    async fn run(mut self, from: Option<u64>) -> anyhow::Result<()> {
        self.next = match from {
            Some(from) => from,
            None => self.node.client.block_count().await.context("counting blocks")?,
        };
        eprintln!(
            "following the blocks of {} from block {} (Ctrl-C stops)",
            self.node.client.base(),
            self.next
        );
        let mut backoff = Duration::from_millis(500);
        loop {
            let before = self.next;
            match self.follow().await {
                Ok(()) => return Ok(()),
                Err(Interrupted::Fatal(e)) => return Err(e),
                Err(Interrupted::Lost(reason)) => {
                    if self.next > before {
                        backoff = Duration::from_millis(500);
                    }
                    eprintln!(
                        "lost the node ({reason}); reconnecting in {}",
                        crate::duration::format_duration(backoff)
                    );
                    actix_rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FOLLOW_MAX_BACKOFF);
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.left == Some(0)
    }

    /// Reads the sealed blocks up to `upto` (exclusive) by index, then
    /// waits on the event stream for more; returns once `--count` blocks
    /// are printed.
    async fn follow(&mut self) -> Result<(), Interrupted> {
        let count = self.node.client.block_count().await?;
        self.catch_up(count).await?;
        if self.done() {
            return Ok(());
        }
        let mut events = self.node.client.events(self.next).await?.eventsource();
        loop {
            let event = match actix_rt::time::timeout(FOLLOW_IDLE, events.next()).await {
                Err(_) => {
                    return Err(Interrupted::Lost(format!(
                        "no event or keep-alive for {}",
                        crate::duration::format_duration(FOLLOW_IDLE)
                    )));
                }
                Ok(None) => return Err(Interrupted::Lost("the node closed the event stream".into())),
                Ok(Some(Err(e))) => return Err(Interrupted::Lost(format!("the event stream broke: {e}"))),
                Ok(Some(Ok(event))) => event,
            };
            if event.event != "block" {
                continue;
            }
            let header: BlockSummary = serde_json::from_str(&event.data).map_err(|e| {
                Interrupted::Fatal(anyhow::anyhow!(
                    "the node sent a block event that is not a block header: {e}"
                ))
            })?;
            // The event only says that the block exists: it is fetched and
            // checked whole, with every block before it not yet printed.
            self.catch_up(header.index.saturating_add(1)).await?;
            if self.done() {
                return Ok(());
            }
        }
    }

    /// Prints blocks `next .. upto`.
    async fn catch_up(&mut self, upto: u64) -> Result<(), Interrupted> {
        while self.next < upto && !self.done() {
            if self.prev.is_none() && self.next > 0 {
                let header = self
                    .node
                    .client
                    .block_header(self.next - 1)
                    .await?
                    .ok_or_else(|| Interrupted::Fatal(anyhow::anyhow!("block {} is missing", self.next - 1)))?;
                audit::verify_block_header(&header, &self.node.signing_key, self.node.info.block_size, None).map_err(
                    |e| {
                        Interrupted::Fatal(
                            anyhow::Error::new(e).context("the block before the first one does not verify"),
                        )
                    },
                )?;
                self.prev = Some(header.hash.0);
            }
            let index = self.next;
            let block = self.node.client.block(index).await?;
            if block.summary.index != index {
                return Err(Interrupted::Fatal(anyhow::anyhow!(
                    "asked for block {index}, the node answered block {}",
                    block.summary.index
                )));
            }
            let check = audit::verify_block(
                &block,
                &self.node.signing_key,
                self.node.info.block_size,
                self.prev.as_ref(),
            );
            self.print(&block, &check).map_err(Interrupted::Fatal)?;
            check.map_err(|e| {
                Interrupted::Fatal(anyhow::Error::new(e).context(format!("block {index} does not verify")))
            })?;
            self.prev = Some(block.summary.hash.0);
            self.next += 1;
            self.left = self.left.map(|n| n - 1);
        }
        Ok(())
    }

    fn print(&self, block: &Block, check: &Result<(), audit::AuditError>) -> anyhow::Result<()> {
        if self.global.json {
            let mut line = serde_json::to_string(block)?;
            line.push('\n');
            return emit(&line);
        }
        let b = &block.summary;
        let mut text = format!(
            "block {:>6}  {}  {} messages  seq {}..={}  sealed {}  {}\n",
            b.index,
            b.hash,
            b.message_count,
            b.first_seq,
            (b.first_seq + u64::from(b.message_count)).saturating_sub(1),
            utc(b.sealed_at),
            match check {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        if self.messages {
            text.push_str(&message_lines(block));
        }
        emit(&text)
    }
}
