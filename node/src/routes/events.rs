//! `GET /v1/events`: the chain as it grows, as Server-Sent Events.
//!
//! Two kinds of event (docs/protocol.md, "The event stream"):
//!
//! - `block`: a block was sealed; `data` is its header object (the block
//!   object of PROTOCOL §7 without `messages`). Every block is sent, in
//!   index order, none twice.
//! - `checkpoint`: the log has a newer signed checkpoint (§9); `data` is
//!   `{"tree_size","root","published_at","note"}`. Only the newest is sent:
//!   each checkpoint is consistent with every earlier one, so a reader that
//!   skipped some lost nothing.
//!
//! Every event has the `id` `B-T`: the reader has now seen blocks `0..B`
//! and the checkpoint of size `T`. A reader that reconnects with
//! `Last-Event-ID: B-T` (browsers do so by themselves) gets blocks from
//! index `B` on, replayed from the database, and a checkpoint only if one
//! newer than `T` exists. `?from=I` starts at block `I`; without either the
//! stream starts with the newest checkpoint and then sends the blocks sealed
//! from now on.
//!
//! **Events come from what is committed.** Several node processes may
//! share one database, and any of them may seal a block. This process's
//! writer hands the blocks it sealed to the [`EventHub`] right after their
//! commit ([`EventHub::sealed`]), and its checkpoint publisher each
//! checkpoint once stored ([`EventHub::checkpointed`]). What other
//! processes commit is found by one task per process (the [`poller`]): it
//! reads the chain state row and the newest checkpoint every
//! `--event-poll-interval` (two primary-key lookups), and when they moved,
//! reads the new block headers once. The hub remembers what it has handed
//! on, so each block goes out once and in order whichever of them saw it
//! first; a hand-off that would skip a block another process sealed wakes
//! the poller at once to read the gap. The cost is the same for one reader
//! or a thousand, and nothing here ever waits for a reader: each reader has a
//! buffer of [`READER_BUFFER`] events, and a reader whose buffer is full is
//! dropped (its stream ends after what it was sent; it resumes with
//! `Last-Event-ID`). Replay reads pages of headers from the database, and a
//! reader only joins the live feed once it has caught up.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use sealchain_shared::api::{BlockSummary, Problem};
use sealchain_shared::hexbytes::HexBytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::db::models::{BlockRow, CheckpointRow};
use crate::db::{self, DbPool, StoreError, repo};
use crate::error::ApiError;
use crate::metrics as m;

/// How often the poller looks at the committed chain by default
/// (`--event-poll-interval`): the bound on how late a reader sees what
/// another process committed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Events one reader may have waiting; a reader further behind is dropped.
pub const READER_BUFFER: usize = 256;
/// Streams one process serves at once (replaying or live); more are
/// answered 503.
pub const MAX_READERS: usize = 1000;
/// Block headers read per database round trip (replay and poller).
pub const PAGE: i64 = 100;
/// A comment line is sent after this much silence, so proxies and readers
/// can tell a quiet chain from a dead connection.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The reconnection delay suggested to browsers (`retry:`), in ms.
pub const RETRY_MS: u64 = 1000;

/// Registers the route.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/events", web::get().to(events));
}

/// The `data` of a `checkpoint` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointEvent {
    /// Messages in the log's tree.
    pub tree_size: u64,
    /// The tree's RFC 6962 root, hex.
    #[schema(value_type = String)]
    pub root: HexBytes<32>,
    /// When the node published it, Unix ms.
    pub published_at: i64,
    /// The signed note (C2SP tlog-checkpoint), as `GET /checkpoint` serves it.
    pub note: String,
}

impl CheckpointEvent {
    fn from_row(row: &CheckpointRow) -> Result<Self, StoreError> {
        Ok(Self {
            tree_size: u64::try_from(row.tree_size).unwrap_or_default(),
            root: crate::convert::fixed("root", &row.root).map_err(StoreError::Internal)?,
            published_at: row.published_at,
            note: row.note.clone(),
        })
    }
}

/// One thing that happened to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A sealed block's header.
    Block(BlockSummary),
    /// A newer checkpoint.
    Checkpoint(CheckpointEvent),
}

/// Where a reader stands: blocks `0..blocks` seen, and the checkpoint of
/// size `tree_size` (none yet: `None`). Its text form is the event `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The next block index the reader wants.
    pub blocks: u64,
    /// The size of the newest checkpoint it was sent.
    pub tree_size: Option<u64>,
}

impl Cursor {
    /// Parses a `Last-Event-ID` (`B-T`).
    pub fn parse(text: &str) -> Option<Self> {
        let (b, t) = text.trim().split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit());
        if !digits(b) || !digits(t) {
            return None;
        }
        Some(Self {
            blocks: b.parse().ok()?,
            tree_size: Some(t.parse().ok()?),
        })
    }

    /// The event id of this position.
    pub fn id(&self) -> String {
        format!("{}-{}", self.blocks, self.tree_size.unwrap_or(0))
    }
}

/// Writes one event in the text/event-stream format. `data` is compact
/// JSON, which never holds a line break, so it is a single `data:` line.
pub fn encode(out: &mut Vec<u8>, id: &str, kind: &str, data: &str) {
    debug_assert!(!data.contains(['\n', '\r']));
    out.extend_from_slice(format!("id: {id}\nevent: {kind}\ndata: {data}\n\n").as_bytes());
}

/// A comment line (ignored by readers).
fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
}

struct Inner {
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    /// Open streams, replaying or in the live feed.
    streams: std::sync::atomic::AtomicUsize,
    closed: watch::Sender<bool>,
    /// What has been handed to the readers; `None` until the poller's first
    /// look learned where the chain stands.
    seen: Mutex<Option<Seen>>,
    /// Asks the poller to look before its next tick.
    wake: tokio::sync::Notify,
}

/// The readers of this process, and the live feed the poller fills.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").field("readers", &self.readers()).finish()
    }
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

/// One open stream, counted against [`MAX_READERS`] until dropped.
pub struct StreamSlot(EventHub);

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamSlot")
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.inner.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A reader's place in the live feed; leaving it (drop) unsubscribes.
pub struct Subscription {
    hub: EventHub,
    id: u64,
    /// Events in order; `None` once the hub dropped this reader.
    pub rx: mpsc::Receiver<Arc<Event>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl EventHub {
    /// A hub with no readers.
    pub fn new() -> Self {
        let (closed, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                subscribers: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(0),
                streams: std::sync::atomic::AtomicUsize::new(0),
                closed,
                seen: Mutex::new(None),
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // A panic while holding the lock leaves a plain Vec; keep using it.
        self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Readers in the live feed now.
    pub fn readers(&self) -> usize {
        self.lock().len()
    }

    /// A place for one more stream, or `None` when [`MAX_READERS`] are
    /// open; the stream holds it until it ends.
    pub fn open_stream(&self) -> Option<StreamSlot> {
        let streams = &self.inner.streams;
        streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_READERS).then_some(n + 1)
            })
            .ok()?;
        Some(StreamSlot(self.clone()))
    }

    /// Joins the live feed.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel(READER_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = self.lock();
        subscribers.push(Subscriber { id, tx });
        metrics::gauge!(m::EVENT_READERS).set(subscribers.len() as f64);
        drop(subscribers);
        Subscription {
            hub: self.clone(),
            id,
            rx,
        }
    }

    fn remove(&self, id: u64) {
        let mut subscribers = self.lock();
        subscribers.retain(|s| s.id != id);
        metrics::gauge!(m::EVENT_READERS).set(subscribers.len() as f64);
    }

    /// Hands an event to every reader without waiting: a reader whose
    /// buffer is full is dropped. Returns how many were dropped.
    pub fn publish(&self, event: Event) -> usize {
        let event = Arc::new(event);
        let mut dropped = 0;
        let mut subscribers = self.lock();
        subscribers.retain(|s| match s.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped += 1;
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        metrics::gauge!(m::EVENT_READERS).set(subscribers.len() as f64);
        drop(subscribers);
        if dropped > 0 {
            metrics::counter!(m::EVENT_READERS_DROPPED).increment(dropped as u64);
            tracing::info!(
                dropped,
                buffer = READER_BUFFER,
                "dropped event readers that fell behind"
            );
        }
        dropped
    }

    /// Ends every stream (the node is stopping), so a graceful stop does
    /// not wait for readers that would never leave.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        self.lock().clear();
    }

    fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Option<Seen>> {
        self.inner.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks this process has just committed, in index order (the writer,
    /// after its COMMIT). Those not yet handed on go to the readers now; if
    /// another process sealed blocks before them that this hub has not
    /// seen, the poller is woken to read those first, and it hands these on
    /// after them.
    pub fn sealed(&self, rows: &[BlockRow]) {
        if rows.is_empty() {
            return;
        }
        let headers = match headers(rows) {
            Ok(headers) => headers,
            Err(e) => {
                tracing::warn!(error = %e, "a sealed block cannot be sent as an event; the poller reads it");
                self.inner.wake.notify_one();
                return;
            }
        };
        if !self.deliver(headers) {
            self.inner.wake.notify_one();
        }
    }

    /// A checkpoint this process has just stored (the publisher).
    pub fn checkpointed(&self, row: &CheckpointRow) {
        match CheckpointEvent::from_row(row) {
            Ok(checkpoint) => self.deliver_checkpoint(checkpoint),
            Err(e) => tracing::warn!(error = %e, "a checkpoint cannot be sent as an event"),
        }
    }

    /// Hands on the headers that follow what was handed on, skipping those
    /// that were already. Returns `false` at a gap (a header further on
    /// than the next one), leaving it and the rest to the poller. Before the
    /// poller's first look there is nothing to hand on: readers replay from
    /// the database.
    fn deliver(&self, headers: Vec<BlockSummary>) -> bool {
        let mut seen = self.seen();
        let Some(seen) = seen.as_mut() else {
            return true;
        };
        let listening = self.readers() > 0;
        for header in headers {
            let index = i64::try_from(header.index).unwrap_or(i64::MAX);
            if index < seen.blocks {
                continue;
            }
            if index > seen.blocks {
                return false;
            }
            if listening {
                self.publish(Event::Block(header));
            }
            seen.blocks += 1;
        }
        true
    }

    /// Hands on a checkpoint newer than the last one handed on.
    fn deliver_checkpoint(&self, checkpoint: CheckpointEvent) {
        let mut seen = self.seen();
        let Some(seen) = seen.as_mut() else {
            return;
        };
        let size = i64::try_from(checkpoint.tree_size).unwrap_or(i64::MAX);
        if seen.tree_size.is_some_and(|t| size <= t) {
            return;
        }
        seen.tree_size = Some(size);
        if self.readers() > 0 {
            self.publish(Event::Checkpoint(checkpoint));
        }
    }
}

/// What the hub has handed on.
#[derive(Debug, Clone, Copy)]
struct Seen {
    blocks: i64,
    tree_size: Option<i64>,
}

fn headers(rows: &[BlockRow]) -> Result<Vec<BlockSummary>, StoreError> {
    rows.iter()
        .map(|r| r.to_summary().map_err(StoreError::Internal))
        .collect()
}

/// One look at the committed chain: hands on the blocks sealed and the
/// checkpoint published since what the hub has handed on. The first look
/// only learns where the chain stands: readers replay what came before
/// from the database.
fn poll_once(pool: &DbPool, hub: &EventHub) -> Result<(), StoreError> {
    let mut conn = pool.get()?;
    let state = repo::chain_state(&mut conn)?;
    let latest = repo::latest_checkpoint(&mut conn)?;
    let from = {
        let mut seen = hub.seen();
        match *seen {
            Some(seen) => seen.blocks,
            None => {
                *seen = Some(Seen {
                    blocks: state.block_count,
                    tree_size: latest.map(|row| row.tree_size),
                });
                return Ok(());
            }
        }
    };
    let mut next = from;
    while next < state.block_count {
        if hub.readers() == 0 {
            // Nobody to hand them to: note them as seen without reading.
            let mut seen = hub.seen();
            if let Some(seen) = seen.as_mut() {
                seen.blocks = seen.blocks.max(state.block_count);
            }
            break;
        }
        let rows = repo::blocks_page(&mut conn, next, PAGE.min(state.block_count - next))?;
        if rows.is_empty() {
            break;
        }
        next += rows.len() as i64;
        hub.deliver(headers(&rows)?);
    }
    if let Some(row) = latest {
        hub.deliver_checkpoint(CheckpointEvent::from_row(&row)?);
    }
    Ok(())
}

/// Watches the committed chain every `interval`, and when
/// [`EventHub::sealed`] asks, until the process ends; failures are logged
/// and retried at the next tick.
pub fn poller(pool: DbPool, hub: EventHub, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = hub.inner.wake.notified() => {}
            }
            let (pool, looking) = (pool.clone(), hub.clone());
            match tokio::task::spawn_blocking(move || poll_once(&pool, &looking)).await {
                Ok(Ok(())) => {
                    if failing {
                        tracing::info!("the event poller reads the chain again");
                        failing = false;
                    }
                }
                Ok(Err(e)) => {
                    // What was handed on before the failure stays handed on.
                    if !failing {
                        tracing::warn!(error = %e, "the event poller cannot read the chain; retrying");
                        failing = true;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the event poller stopped");
                    return;
                }
            }
        }
    })
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Replay blocks from this index on before the live feed (ignored when
    /// the request has a `Last-Event-ID`).
    pub from: Option<u64>,
}

/// A reader's connection.
struct Reader {
    pool: DbPool,
    hub: EventHub,
    cursor: Cursor,
    /// Blocks are replayed from the database until this is set and a last
    /// replay found nothing new.
    live: Option<Subscription>,
    replaying: bool,
    closed: watch::Receiver<bool>,
    started: bool,
    done: bool,
    _slot: StreamSlot,
}

impl Reader {
    fn block_event(&mut self, out: &mut Vec<u8>, header: &BlockSummary) -> Result<(), StoreError> {
        self.cursor.blocks = header.index + 1;
        let data = serde_json::to_string(header).map_err(|e| StoreError::Internal(e.into()))?;
        encode(out, &self.cursor.id(), "block", &data);
        Ok(())
    }

    fn checkpoint_event(&mut self, out: &mut Vec<u8>, checkpoint: &CheckpointEvent) -> Result<(), StoreError> {
        if self.cursor.tree_size.is_some_and(|t| checkpoint.tree_size <= t) {
            return Ok(());
        }
        self.cursor.tree_size = Some(checkpoint.tree_size);
        let data = serde_json::to_string(checkpoint).map_err(|e| StoreError::Internal(e.into()))?;
        encode(out, &self.cursor.id(), "checkpoint", &data);
        Ok(())
    }

    /// One page of blocks from the database, and the newest checkpoint.
    async fn replay(&mut self) -> Result<Vec<u8>, StoreError> {
        let from = i64::try_from(self.cursor.blocks).unwrap_or(i64::MAX);
        let (rows, latest) = db::run(&self.pool, move |conn| {
            Ok((repo::blocks_page(conn, from, PAGE)?, repo::latest_checkpoint(conn)?))
        })
        .await?;
        let mut out = Vec::new();
        for header in headers(&rows)? {
            if header.index != self.cursor.blocks {
                return Err(StoreError::Internal(anyhow::anyhow!(
                    "block {} is missing from the database",
                    self.cursor.blocks
                )));
            }
            self.block_event(&mut out, &header)?;
        }
        if let Some(row) = latest {
            self.checkpoint_event(&mut out, &CheckpointEvent::from_row(&row)?)?;
        }
        if rows.is_empty() {
            if self.live.is_some() {
                // Caught up after joining the feed: nothing committed
                // before joining was missed.
                self.replaying = false;
            } else {
                self.live = Some(self.hub.subscribe());
            }
        }
        Ok(out)
    }

    /// The next bytes to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
        }
        loop {
            if *self.closed.borrow() {
                self.done = true;
                return Some(comment("the node is stopping; reconnect with Last-Event-ID to resume"));
            }
            if self.replaying {
                match self.replay().await {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Some(Bytes::from(out)),
                    Err(e) => {
                        tracing::warn!(error = %e, "ending an event stream: the chain cannot be read");
                        self.done = true;
                        return Some(comment(&format!(
                            "the node cannot read its chain now ({e}); reconnect to resume"
                        )));
                    }
                }
            }
            let live = self.live.as_mut()?;
            let event = tokio::select! {
                event = live.rx.recv() => event,
                _ = self.closed.changed() => continue,
                () = tokio::time::sleep(HEARTBEAT) => return Some(comment("keep-alive")),
            };
            let Some(event) = event else {
                self.done = true;
                return Some(comment(&format!(
                    "dropped: this reader fell {READER_BUFFER} events behind; reconnect with Last-Event-ID to resume"
                )));
            };
            let mut out = Vec::new();
            let written = match event.as_ref() {
                Event::Block(header) if header.index < self.cursor.blocks => continue,
                Event::Block(header) if header.index == self.cursor.blocks => self.block_event(&mut out, header),
                // A block this reader has not seen the one before of: read
                // the gap from the database.
                Event::Block(_) => {
                    self.replaying = true;
                    continue;
                }
                Event::Checkpoint(checkpoint) => self.checkpoint_event(&mut out, checkpoint),
            };
            if let Err(e) = written {
                tracing::error!(error = %e, "an event could not be encoded");
                self.done = true;
                return None;
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }
}

/// The chain as it grows, as Server-Sent Events (`text/event-stream`).
///
/// Events: `block` (data: the block's header object) for every sealed
/// block, in order; `checkpoint` (data: `{tree_size, root, published_at,
/// note}`) when a newer checkpoint is published. Each event's `id` is
/// `B-T`: blocks `0..B` and the checkpoint of size `T` have been sent.
/// Reconnect with `Last-Event-ID: B-T` to resume exactly there (blocks are
/// replayed from the database); `?from=I` starts at block `I`; neither
/// starts with the newest checkpoint and the blocks sealed from now on.
/// A reader more than 256 events behind is dropped (the stream ends with a
/// comment saying so) and resumes with `Last-Event-ID`.
#[utoipa::path(get, path = "/v1/events", tag = "blocks", params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after the event with this id (`B-T`)")),
    responses(
        (status = 200, description = "An endless stream of `block` and `checkpoint` events", content_type = "text/event-stream", body = String),
        (status = 400, description = "bad_request: a Last-Event-ID that is not `B-T`, or a bad query", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "unavailable: the database does not answer, or too many readers", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn events(
    state: web::Data<crate::state::AppState>,
    hub: web::Data<EventHub>,
    req: HttpRequest,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let resume = match req.headers().get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(Cursor::parse).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Last-Event-ID {:?} is not an event id of this node (B-T, two decimal numbers)",
                String::from_utf8_lossy(v.as_bytes())
            ))
        })?),
    };
    let slot = hub
        .open_stream()
        .ok_or_else(|| ApiError::Unavailable(format!("this node serves {MAX_READERS} event streams already")))?;
    let cursor = match (resume, query.from) {
        (Some(cursor), _) => cursor,
        (None, Some(from)) => Cursor {
            blocks: from,
            tree_size: None,
        },
        (None, None) => {
            let count = db::run(&state.pool, |conn| Ok(repo::chain_state(conn)?.block_count)).await?;
            Cursor {
                blocks: u64::try_from(count).unwrap_or_default(),
                tree_size: None,
            }
        }
    };
    let reader = Reader {
        pool: state.pool.clone(),
        hub: hub.get_ref().clone(),
        cursor,
        live: None,
        replaying: true,
        closed: hub.closed(),
        started: false,
        done: false,
        _slot: slot,
    };
    let body = stream::unfold(reader, |mut reader| async move {
        let bytes = reader.next().await?;
        Some((Ok::<_, Infallible>(bytes), reader))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Reverse proxies (nginx) must not hold events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn header(index: u64) -> Event {
        Event::Block(block(index))
    }

    /// The header of [`row`]`(index)`, as the hub hands it on.
    fn block(index: u64) -> BlockSummary {
        row(i64::try_from(index).unwrap()).to_summary().unwrap()
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor {
            blocks: 42,
            tree_size: Some(4250),
        };
        assert_eq!(c.id(), "42-4250");
        assert_eq!(Cursor::parse("42-4250"), Some(c));
        assert_eq!(Cursor::parse(" 0-0 ").map(|c| c.id()), Some("0-0".into()));
        for junk in [
            "",
            "42",
            "42-",
            "-1",
            "a-b",
            "1-2-3",
            "+1-2",
            "1 -2",
            "99999999999999999999999-0",
        ] {
            assert_eq!(Cursor::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn events_are_one_data_line_each() {
        let mut out = Vec::new();
        encode(&mut out, "1-0", "block", r#"{"index":0}"#);
        encode(&mut out, "1-5", "checkpoint", r#"{"tree_size":5}"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 1-0\nevent: block\ndata: {\"index\":0}\n\nid: 1-5\nevent: checkpoint\ndata: {\"tree_size\":5}\n\n"
        );
    }

    #[tokio::test]
    async fn a_full_reader_is_dropped_and_the_others_keep_their_events() {
        let hub = EventHub::new();
        let mut fast = hub.subscribe();
        let slow = hub.subscribe();
        let mut dropped = 0;
        for i in 0..READER_BUFFER as u64 {
            dropped += hub.publish(header(i));
            assert_eq!(fast.rx.recv().await.unwrap().as_ref(), &header(i));
        }
        assert_eq!((dropped, hub.readers()), (0, 2), "a full buffer is not yet an overflow");
        assert_eq!(
            hub.publish(header(READER_BUFFER as u64)),
            1,
            "the slow reader is dropped"
        );
        assert_eq!(hub.readers(), 1);
        let mut slow = slow;
        let mut got = 0;
        while let Some(event) = slow.rx.recv().await {
            assert_eq!(event.as_ref(), &header(got));
            got += 1;
        }
        assert_eq!(
            got, READER_BUFFER as u64,
            "it keeps what it was sent, then its feed ends"
        );
        assert!(fast.rx.recv().await.is_some());
        drop(fast);
        assert_eq!(hub.readers(), 0, "leaving unsubscribes");
    }

    #[tokio::test]
    async fn closing_clears_the_feed_and_tells_every_stream() {
        let hub = EventHub::new();
        let mut sub = hub.subscribe();
        let mut closed = hub.closed();
        hub.close();
        assert!(*closed.borrow_and_update());
        assert!(sub.rx.recv().await.is_none());
        assert_eq!(hub.readers(), 0);
    }

    fn row(index: i64) -> BlockRow {
        BlockRow {
            idx: index,
            hash: vec![1; 32],
            prev_hash: vec![0; 32],
            merkle_root: vec![2; 32],
            first_seq: index * 100,
            message_count: 100,
            sealed_at: 0,
            signer: vec![3; 32],
            signature: vec![4; 64],
        }
    }

    fn checkpoint(tree_size: i64) -> CheckpointRow {
        CheckpointRow {
            tree_size,
            root: vec![5; 32],
            note: format!("log.example/x\n{tree_size}\n"),
            published_at: 0,
        }
    }

    fn looked(hub: &EventHub, blocks: i64, tree_size: Option<i64>) {
        *hub.seen() = Some(Seen { blocks, tree_size });
    }

    fn waiting(sub: &mut Subscription) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(event) = sub.rx.try_recv() {
            events.push(event.as_ref().clone());
        }
        events
    }

    #[tokio::test]
    async fn a_hand_off_goes_out_once_in_order_and_a_gap_wakes_the_poller() {
        let hub = EventHub::new();
        let mut sub = hub.subscribe();
        hub.sealed(&[row(0)]);
        hub.checkpointed(&checkpoint(100));
        assert!(
            waiting(&mut sub).is_empty(),
            "before the first look nothing is handed on"
        );

        looked(&hub, 1, Some(100));
        hub.sealed(&[row(1), row(2)]);
        hub.sealed(&[row(2), row(3)]);
        hub.sealed(&[row(1)]);
        assert_eq!(
            waiting(&mut sub),
            vec![header(1), header(2), header(3)],
            "each block once, in order"
        );

        hub.checkpointed(&checkpoint(400));
        hub.checkpointed(&checkpoint(300));
        hub.checkpointed(&checkpoint(400));
        let events = waiting(&mut sub);
        assert_eq!(events.len(), 1, "only a newer checkpoint: {events:?}");
        assert!(matches!(&events[0], Event::Checkpoint(c) if c.tree_size == 400));

        // Block 4 was sealed by another process: 5 and 6 wait for the poller.
        let woken = hub.inner.wake.notified();
        tokio::pin!(woken);
        hub.sealed(&[row(5), row(6)]);
        assert!(waiting(&mut sub).is_empty(), "nothing after a gap");
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("the gap wakes the poller");
        assert!(!hub.deliver(vec![block(5)]), "still a gap");
        assert!(hub.deliver(vec![block(4), block(5), block(6)]));
        assert_eq!(waiting(&mut sub), vec![header(4), header(5), header(6)]);
        assert_eq!(hub.seen().map(|s| (s.blocks, s.tree_size)), Some((7, Some(400))));
    }

    #[test]
    fn with_no_reader_hand_offs_are_noted_as_seen() {
        let hub = EventHub::new();
        looked(&hub, 0, None);
        hub.sealed(&[row(0), row(1)]);
        hub.checkpointed(&checkpoint(200));
        assert_eq!(hub.seen().map(|s| (s.blocks, s.tree_size)), Some((2, Some(200))));
        let mut sub = hub.subscribe();
        hub.sealed(&[row(1), row(2)]);
        assert_eq!(waiting(&mut sub), vec![header(2)], "a new reader gets only what is new");
    }

    #[test]
    fn streams_are_capped() {
        let hub = EventHub::new();
        let slots: Vec<_> = (0..MAX_READERS).map(|_| hub.open_stream().unwrap()).collect();
        assert!(hub.open_stream().is_none());
        drop(slots);
        assert!(hub.open_stream().is_some());
    }
}
