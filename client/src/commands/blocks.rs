//! `sealchain blocks`: read the chain — count, one block, pages of headers.
//! Every block shown is also checked against the node's pinned key.

use anyhow::{Context, bail};
use clap::Subcommand;
use sealchain_shared::api::{Block, BlockSummary};
use sealchain_shared::audit;
use sealchain_shared::hexbytes::HexBytes;

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
  sealchain blocks list --from 0 --limit 20";

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
    let node = connect(global, 1).await?;
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
        for m in &block.messages {
            text.push_str(&format!(
                "  {:>8}  {}  {}  {}\n",
                m.seq,
                m.sender,
                utc(m.received_at),
                m.message
            ));
        }
    }
    text
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
