//! The explorer's pages: each handler reads what it shows in one database
//! round trip (index lookups only, see [`super::queries`]) and renders a
//! template.

use actix_web::{HttpResponse, web};
use askama::Template;
use sealchain_shared::api::{ClientPolicy, Receipt};
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::{Hash, now_ms};
use serde::Deserialize;

use super::format::{MessageView, age, iso, short, thousands, utc};
use super::{Page, PageError, queries, render};
use crate::db::models::{BlockRow, CheckpointRow};
use crate::db::{self, StoreError, repo};
use crate::state::AppState;

/// Blocks on the overview.
const OVERVIEW_BLOCKS: i64 = 10;
/// Blocks per page of the block list (at most [`MAX_PAGE`] with `limit`).
const BLOCKS_PAGE: i64 = 25;
/// The largest `limit` of the block list.
const MAX_PAGE: i64 = 200;
/// Messages per page of a sender.
const SENDER_PAGE: i64 = 50;
/// A sender's messages are counted up to this many.
const SENDER_COUNT_CAP: i64 = 10_000;
/// The ingest rate is measured over this much time.
const RATE_WINDOW_MS: i64 = 60_000;

/// A block header for display.
#[derive(Debug, Clone)]
pub(crate) struct BlockView {
    pub(crate) index: u64,
    pub(crate) hash: String,
    pub(crate) prev_hash: String,
    pub(crate) merkle_root: String,
    pub(crate) first_seq: u64,
    pub(crate) message_count: u32,
    pub(crate) sealed_at: i64,
    pub(crate) signer: String,
    pub(crate) signature: String,
}

impl BlockView {
    fn from_row(row: &BlockRow) -> Result<Self, PageError> {
        let b = row.to_summary().map_err(PageError::Internal)?;
        Ok(Self {
            index: b.index,
            hash: b.hash.to_string(),
            prev_hash: b.prev_hash.to_string(),
            merkle_root: b.merkle_root.to_string(),
            first_seq: b.first_seq,
            message_count: b.message_count,
            sealed_at: b.sealed_at,
            signer: b.signer.to_string(),
            signature: b.signature.to_string(),
        })
    }

    fn many(rows: &[BlockRow]) -> Result<Vec<Self>, PageError> {
        rows.iter().map(Self::from_row).collect()
    }

    pub(crate) fn hash_short(&self) -> String {
        short(&self.hash)
    }

    pub(crate) fn root_short(&self) -> String {
        short(&self.merkle_root)
    }

    pub(crate) fn sealed(&self) -> String {
        utc(self.sealed_at)
    }

    pub(crate) fn sealed_iso(&self) -> String {
        iso(self.sealed_at)
    }

    pub(crate) fn last_seq(&self) -> u64 {
        (self.first_seq + u64::from(self.message_count)).saturating_sub(1)
    }
}

/// A checkpoint for display.
#[derive(Debug, Clone)]
pub(crate) struct CheckpointView {
    pub(crate) tree_size: String,
    pub(crate) root: String,
    pub(crate) published: String,
    pub(crate) published_iso: String,
    pub(crate) note: String,
}

impl CheckpointView {
    fn from_row(row: &CheckpointRow) -> Self {
        Self {
            tree_size: thousands(u64::try_from(row.tree_size).unwrap_or_default()),
            root: hex::encode(&row.root),
            published: utc(row.published_at),
            published_iso: iso(row.published_at),
            note: row.note.clone(),
        }
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

/// `GET /`.
#[derive(Template)]
#[template(path = "overview.html")]
pub(crate) struct Overview {
    page: Page,
    blocks: u64,
    messages: u64,
    rate: String,
    /// The ingest rate's starting point, for the script to go on from.
    rate_base: (i64, i64),
    now: i64,
    open_block: u64,
    open_count: u64,
    latest: Vec<BlockView>,
    checkpoint: Option<CheckpointView>,
    signing_key: String,
    encryption_key: String,
    verifier_key: String,
    origin: String,
    block_size: u32,
    max_message_bytes: String,
    policy: &'static str,
    created: String,
    protocol: &'static str,
}

impl Overview {
    fn n(&self, v: &u64) -> String {
        thousands(*v)
    }
}

pub(crate) async fn overview(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let now = now_ms();
    let (chain, latest, checkpoint, then) = db::run(&state.pool, move |conn| {
        let chain = repo::chain_state(conn)?;
        let latest = queries::blocks_desc(conn, i64::MAX, OVERVIEW_BLOCKS)?;
        let checkpoint = repo::latest_checkpoint(conn)?;
        let then = queries::checkpoint_at(conn, now - RATE_WINDOW_MS)?;
        Ok((chain, latest, checkpoint, then))
    })
    .await?;
    let messages = count(chain.next_seq);
    let blocks = count(chain.block_count);
    let (rate, rate_base) = match &then {
        Some(then) if now > then.published_at => {
            let per_s = (chain.next_seq - then.tree_size).max(0) as f64 * 1000.0 / (now - then.published_at) as f64;
            (format!("{per_s:.1}"), (then.published_at, then.tree_size))
        }
        _ => ("0.0".to_owned(), (now, chain.next_seq)),
    };
    render(&Overview {
        page: Page::new(&state, "Overview", "overview"),
        blocks,
        messages,
        rate,
        rate_base,
        now,
        open_block: blocks,
        open_count: messages.saturating_sub(blocks * u64::from(state.block_size)),
        latest: BlockView::many(&latest)?,
        checkpoint: checkpoint.as_ref().map(CheckpointView::from_row),
        signing_key: hex::encode(state.verifying_key.to_bytes()),
        encryption_key: hex::encode(state.encryption_key.public_key().to_bytes()),
        verifier_key: state.log.to_vkey(),
        origin: state.log.name().to_owned(),
        block_size: state.block_size,
        max_message_bytes: thousands(state.max_message_bytes as u64),
        policy: match state.client_policy {
            ClientPolicy::Open => "open: any client key may send",
            ClientPolicy::Allowlist => "allowlist: only registered client keys may send",
        },
        created: format!("{} ({} ago)", utc(chain.created_at), age(now - chain.created_at)),
        protocol: sealchain_shared::PROTOCOL,
    })
}

/// Query of the block list.
#[derive(Debug, Deserialize)]
pub(crate) struct BlocksQuery {
    from: Option<String>,
    limit: Option<String>,
}

/// `GET /blocks`.
#[derive(Template)]
#[template(path = "blocks.html")]
pub(crate) struct Blocks {
    page: Page,
    blocks: Vec<BlockView>,
    count: u64,
    newer: Option<u64>,
    older: Option<u64>,
    newest: Option<u64>,
    limit: i64,
}

fn number<T: std::str::FromStr>(what: &str, text: Option<&str>) -> Result<Option<T>, PageError> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().map_err(|_| {
                PageError::bad_request(
                    format!("{what} must be a number"),
                    format!("{t:?} is not a whole number of 0 or more."),
                )
            })
        })
        .transpose()
}

pub(crate) async fn blocks(
    state: web::Data<AppState>,
    query: web::Query<BlocksQuery>,
) -> Result<HttpResponse, PageError> {
    let from: Option<u64> = number("from", query.from.as_deref())?;
    let limit = number::<i64>("limit", query.limit.as_deref())?.unwrap_or(BLOCKS_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(PageError::bad_request(
            "limit is out of range",
            format!("Show 1 to {MAX_PAGE} blocks a page."),
        ));
    }
    let top = from.map_or(i64::MAX, |f| i64::try_from(f).unwrap_or(i64::MAX));
    let (chain, rows) = db::run(&state.pool, move |conn| {
        Ok((repo::chain_state(conn)?, queries::blocks_desc(conn, top, limit)?))
    })
    .await?;
    let total = count(chain.block_count);
    let blocks = BlockView::many(&rows)?;
    let first = blocks.first().map(|b| b.index);
    let last = blocks.last().map(|b| b.index);
    let newer = first
        .filter(|f| f + 1 < total)
        .map(|f| (f + limit as u64).min(total - 1));
    let older = last.and_then(|l| l.checked_sub(1));
    render(&Blocks {
        page: Page::new(&state, "Blocks", "blocks"),
        blocks,
        count: total,
        newer,
        older,
        newest: total.checked_sub(1),
        limit,
    })
}

/// `GET /blocks/{index}`.
#[derive(Template)]
#[template(path = "block.html")]
pub(crate) struct BlockPage {
    page: Page,
    block: BlockView,
    messages: Vec<MessageView>,
    prev: Option<u64>,
    next: Option<u64>,
}

fn parse_index(what: &str, text: &str) -> Result<i64, PageError> {
    text.parse::<u64>()
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| {
            PageError::bad_request(
                format!("{text:?} is not a {what}"),
                format!("A {what} is a whole number from 0, like /blocks/0 or /messages/42."),
            )
        })
}

pub(crate) async fn block(state: web::Data<AppState>, index: web::Path<String>) -> Result<HttpResponse, PageError> {
    let key = parse_index("block index", &index)?;
    let block_size = i64::from(state.block_size);
    let (chain, found) = db::run(&state.pool, move |conn| {
        let chain = repo::chain_state(conn)?;
        let found = match repo::block(conn, key)? {
            Some(row) => {
                let messages = repo::messages_range(conn, row.first_seq, i64::from(row.message_count))?;
                Some((row, messages))
            }
            None => None,
        };
        Ok((chain, found))
    })
    .await?;
    let Some((row, rows)) = found else {
        let detail = if key == chain.block_count {
            let held = (chain.next_seq - key * block_size).max(0);
            format!(
                "Block {key} is still open: it holds {held} of its {block_size} messages, and is sealed when full. \
                 Its messages have seqs from {}.",
                key * block_size
            )
        } else {
            format!(
                "The chain has {} sealed blocks (0 to {}).",
                chain.block_count,
                chain.block_count - 1
            )
        };
        return Err(PageError::not_found(format!("Block {key} is not sealed"), detail));
    };
    let block = BlockView::from_row(&row)?;
    let total = count(chain.block_count);
    render(&BlockPage {
        page: Page::new(&state, format!("Block {}", block.index), "blocks"),
        prev: block.index.checked_sub(1),
        next: Some(block.index + 1).filter(|n| *n < total),
        messages: rows.iter().map(MessageView::from_row).collect(),
        block,
    })
}

/// `GET /messages/{seq}`.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    page: Page,
    m: MessageView,
    block_index: u64,
    block: Option<BlockView>,
    leaf_index: u64,
    receipt: Receipt,
    receipt_json: String,
    checkpoint: Option<CheckpointView>,
    in_checkpoint: bool,
}

pub(crate) async fn message(state: web::Data<AppState>, seq: web::Path<String>) -> Result<HttpResponse, PageError> {
    let key = parse_index("seq", &seq)?;
    let block_key = key / i64::from(state.block_size);
    let (chain, found, block, checkpoint) = db::run(&state.pool, move |conn| {
        Ok((
            repo::chain_state(conn)?,
            repo::message(conn, key)?,
            repo::block(conn, block_key)?,
            repo::latest_checkpoint(conn)?,
        ))
    })
    .await?;
    let Some(row) = found else {
        return Err(PageError::not_found(
            format!("No message with seq {key}"),
            format!(
                "The node has stored {} messages (seqs 0 to {}).",
                chain.next_seq,
                chain.next_seq - 1
            ),
        ));
    };
    let m = MessageView::from_row(&row);
    let leaf = Hash::try_from(row.leaf_hash.as_slice())
        .map_err(|_| PageError::Internal(anyhow::anyhow!("the leaf hash of seq {key} is not 32 bytes")))?;
    let seq = count(key);
    let signature = sealchain_shared::receipt::sign(&state.signing_key, seq, &leaf, row.received_at);
    let receipt = Receipt {
        seq,
        leaf_hash: HexBytes(leaf),
        block_index: count(block_key),
        received_at: row.received_at,
        signature: HexBytes(signature.to_bytes()),
    };
    let receipt_json = serde_json::to_string(&receipt).map_err(|e| PageError::Internal(anyhow::Error::new(e)))?;
    let block = block.as_ref().map(BlockView::from_row).transpose()?;
    render(&MessagePage {
        page: Page::new(&state, format!("Message {seq}"), ""),
        leaf_index: seq - count(block_key) * u64::from(state.block_size),
        block_index: count(block_key),
        in_checkpoint: checkpoint.as_ref().is_some_and(|c| c.tree_size > key),
        checkpoint: checkpoint.as_ref().map(CheckpointView::from_row),
        block,
        receipt,
        receipt_json,
        m,
    })
}

/// Query of a sender's page.
#[derive(Debug, Deserialize)]
pub(crate) struct SenderQuery {
    before: Option<String>,
}

/// `GET /senders/{key}`.
#[derive(Template)]
#[template(path = "sender.html")]
pub(crate) struct SenderPage {
    page: Page,
    key: String,
    short_key: String,
    count: String,
    first_seq: i64,
    first_at: String,
    messages: Vec<MessageView>,
    newest: bool,
    older: Option<i64>,
}

impl SenderPage {
    fn block_of(&self, seq: &i64) -> i64 {
        *seq / i64::from(self.page.block_size.max(1))
    }
}

/// Parses a sender key from a path (64 hex digits, any case).
pub(crate) fn parse_key(text: &str) -> Option<[u8; 32]> {
    sealchain_shared::hexbytes::decode_hex::<32>(&text.trim().to_ascii_lowercase()).ok()
}

pub(crate) async fn sender(
    state: web::Data<AppState>,
    key: web::Path<String>,
    query: web::Query<SenderQuery>,
) -> Result<HttpResponse, PageError> {
    let sender = parse_key(&key).ok_or_else(|| {
        PageError::bad_request(
            "Not a sender key",
            format!(
                "{:?} is not a client key: a sender is named by its Ed25519 public key, 64 hex digits.",
                key.as_str()
            ),
        )
    })?;
    let before: Option<i64> = number("before", query.before.as_deref())?;
    let cursor = before.unwrap_or(i64::MAX);
    let (first, total, rows) = db::run(&state.pool, move |conn| {
        let Some(first) = queries::sender_first(conn, &sender)? else {
            return Ok((None, 0, Vec::new()));
        };
        let total = queries::sender_count(conn, &sender, SENDER_COUNT_CAP + 1)?;
        // One more than a page tells whether an older page exists.
        let rows = queries::sender_messages(conn, &sender, cursor, SENDER_PAGE + 1)?;
        Ok::<_, StoreError>((Some(first), total, rows))
    })
    .await?;
    let key = hex::encode(sender);
    let Some((first_seq, first_at)) = first else {
        return Err(PageError::not_found(
            "No messages from this sender",
            format!("The node has stored no message signed by {key}."),
        ));
    };
    let more = rows.len() as i64 > SENDER_PAGE;
    let messages: Vec<MessageView> = rows
        .iter()
        .take(SENDER_PAGE as usize)
        .map(MessageView::from_row)
        .collect();
    let older = if more { messages.last().map(|m| m.seq) } else { None };
    render(&SenderPage {
        page: Page::new(&state, format!("Sender {}", short(&key)), ""),
        count: if total > SENDER_COUNT_CAP {
            format!("more than {}", thousands(SENDER_COUNT_CAP as u64))
        } else {
            thousands(count(total))
        },
        first_seq,
        first_at: utc(first_at),
        messages,
        newest: before.is_none(),
        older,
        short_key: short(&key),
        key,
    })
}
