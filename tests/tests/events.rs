//! `GET /v1/events`: block and checkpoint events from what is committed,
//! replay and resume by `Last-Event-ID`, readers that fall behind dropped
//! while ingest goes on, streams that end when the node stops, and events
//! of blocks another process sealed, those of this process sent at their
//! commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::time::{Duration, Instant};

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use sealchain_shared::api::BlockSummary;
use sealchain_shared::{Hash, VerifyingKey, audit};
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, fill, get_raw, metric};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any one event may take to arrive.
const DEADLINE: Duration = Duration::from_secs(20);

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, String>>>>;

/// Opens `GET /v1/events{query}`, optionally resuming after `last_id`.
async fn open(base: &str, query: &str, last_id: Option<&str>) -> EventStream {
    let mut request = awc::Client::new()
        .get(format!("{base}/v1/events{query}"))
        .insert_header(("Accept", "text/event-stream"));
    if let Some(id) = last_id {
        request = request.insert_header(("Last-Event-ID", id));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/event-stream");
    assert_eq!(header("cache-control"), "no-cache");
    Box::pin(response.eventsource().map(|e| e.map_err(|e| e.to_string())))
}

async fn next(events: &mut EventStream) -> Event {
    actix_rt::time::timeout(DEADLINE, events.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {DEADLINE:?}"))
        .expect("the stream ended")
        .expect("a well-formed event")
}

/// The next block event (skipping checkpoints) and its header.
async fn next_block(events: &mut EventStream) -> (String, BlockSummary) {
    loop {
        let e = next(events).await;
        if e.event == "block" {
            return (e.id, serde_json::from_str(&e.data).unwrap());
        }
        assert_eq!(e.event, "checkpoint", "unknown event {e:?}");
    }
}

fn key(node: &TestNode) -> VerifyingKey {
    VerifyingKey::from_bytes(&node.info.signing_key.0).unwrap()
}

#[actix_rt::test]
async fn blocks_replay_go_live_and_resume_after_the_last_event_id() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 2)).await;
    let clients = fill::identities(2);
    fill::send(&node.client, &node.info, &clients, 6).await;

    // From block 0: the three sealed blocks, in order, each a header that
    // verifies and links to the one before; ids count the blocks seen.
    let mut events = open(&node.base, "?from=0", None).await;
    let mut prev: Option<Hash> = None;
    let mut ids = Vec::new();
    for index in 0..3 {
        let (id, header) = next_block(&mut events).await;
        assert_eq!(header.index, index);
        audit::verify_block_header(&header, &key(&node), 2, prev.as_ref()).unwrap();
        assert_eq!(header, node.client.block(index).await.unwrap().summary);
        assert!(id.starts_with(&format!("{}-", index + 1)), "id {id} of block {index}");
        prev = Some(header.hash.0);
        ids.push(id);
    }
    // Then live: the next block as it is sealed.
    fill::send(&node.client, &node.info, &clients, 2).await;
    let (id, header) = next_block(&mut events).await;
    assert_eq!(header.index, 3);
    audit::verify_block_header(&header, &key(&node), 2, prev.as_ref()).unwrap();
    // And the checkpoint that covers all 8 messages, signed by the node.
    let checkpoint = loop {
        let e = next(&mut events).await;
        assert_eq!(e.event, "checkpoint", "{e:?}");
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        if data["tree_size"] == 8 {
            assert_eq!(e.id, "4-8");
            break data;
        }
    };
    let note = checkpoint["note"].as_str().unwrap();
    let verifier = sealchain_shared::note::NoteVerifier::parse(&node.info.verifier_key).unwrap();
    let (parsed, _) = sealchain_shared::note::Checkpoint::verify(note.as_bytes(), &verifier).unwrap();
    assert_eq!(parsed.size, 8);
    assert_eq!(hex::encode(parsed.root), checkpoint["root"].as_str().unwrap());
    assert!(id.starts_with("4-"));
    drop(events);

    // Resuming after block 1 replays blocks 2 and 3 from the database, then
    // the newest checkpoint (newer than the one the id names).
    let mut resumed = open(&node.base, "?from=0", Some(&ids[1])).await;
    let (_, header) = next_block(&mut resumed).await;
    assert_eq!(header.index, 2, "Last-Event-ID wins over from");
    assert_eq!(next_block(&mut resumed).await.1.index, 3);
    // Resuming at the head with the newest checkpoint: nothing is replayed;
    // the next event is the next block.
    let mut current = open(&node.base, "", Some("4-8")).await;
    fill::send(&node.client, &node.info, &clients, 2).await;
    let first = next(&mut current).await;
    assert_eq!(first.event, "block", "nothing is sent twice: {first:?}");
    assert_eq!(serde_json::from_str::<BlockSummary>(&first.data).unwrap().index, 4);
    assert_eq!(first.id, "5-8");

    // A new reader starts with the newest checkpoint, then new blocks only.
    let mut fresh = open(&node.base, "", None).await;
    let first = next(&mut fresh).await;
    assert_eq!(first.event, "checkpoint");
    assert!(first.id.starts_with("5-"), "{}", first.id);
    fill::send(&node.client, &node.info, &clients, 2).await;
    assert_eq!(next_block(&mut fresh).await.1.index, 5);
    node.stop().await;
}

#[actix_rt::test]
async fn bad_resume_points_are_refused_and_the_stream_is_documented() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    for (path, header) in [
        ("/v1/events", Some("junk")),
        ("/v1/events", Some("1-")),
        ("/v1/events", Some("-1-0")),
        ("/v1/events?from=x", None),
        ("/v1/events?from=-1", None),
        ("/v1/events?since=1", None),
    ] {
        let mut request = awc::Client::new().get(format!("{}{path}", node.base));
        if let Some(id) = header {
            request = request.insert_header(("Last-Event-ID", id));
        }
        let mut response = request.send().await.unwrap();
        let body = response.body().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path} {header:?}");
        let problem: sealchain_shared::api::Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.code, "bad_request", "{path} {header:?}");
    }
    let (_, _, doc) = get_raw(&node.base, "/openapi.json").await;
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    let events = &doc["paths"]["/v1/events"]["get"];
    assert!(
        events["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{events}"
    );
    let params: Vec<&str> = events["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"from") && params.contains(&"Last-Event-ID"),
        "{params:?}"
    );
    assert!(doc["components"]["schemas"]["CheckpointEvent"].is_object());
    node.stop().await;
}

/// Reads a chunked HTTP response to its end: (head, body).
async fn read_all_chunked(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    actix_rt::time::timeout(DEADLINE, socket.read_to_end(&mut raw))
        .await
        .expect("the node closes the dropped reader's connection")
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    assert!(
        head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    let mut rest = &raw[split + 4..];
    let mut body = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap().trim(), 16).unwrap();
        rest = &rest[line + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    (head, body)
}

#[actix_rt::test]
async fn a_reader_that_stops_reading_is_dropped_and_ingest_goes_on() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "1"]);
    let info = node.client.node_info().await.unwrap();

    // A reader that asks for every block and then reads nothing. Its small
    // receive buffer and segment size keep what the node's kernel holds for
    // it small (about 100 KiB; a socket of ordinary settings could take
    // megabytes first), so the stream feels it soon.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_tcp_mss(536).unwrap();
    let port: u16 = node.base.rsplit(':').next().unwrap().parse().unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let socket: std::net::TcpStream = socket.into();
    socket.set_nonblocking(true).unwrap();
    let mut slow = tokio::net::TcpStream::from_std(socket).unwrap();
    slow.write_all(b"GET /v1/events?from=0 HTTP/1.1\r\nHost: node\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();

    // Ingest is not held up by it: 1,500 messages, a block each.
    let sent = 1500;
    let receipts = fill::send_with(&node.client, &info, &fill::identities(4), sent, 32).await;
    assert_eq!(receipts.len(), sent);
    assert_eq!(node.client.block_count().await.unwrap(), sent as u64);
    // ... while the node dropped the reader, which read nothing meanwhile.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, _, text) = get_raw(&node.base, "/metrics").await;
        let text = String::from_utf8(text).unwrap();
        if metric(&text, "sealchain_event_readers_dropped_total") == Some(1.0) {
            assert_eq!(metric(&text, "sealchain_event_readers"), Some(0.0));
            break;
        }
        assert!(Instant::now() < deadline, "the slow reader was not dropped:\n{text}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    // What it was sent ends with a comment saying why, and its last id.
    let (_, body) = read_all_chunked(&mut slow).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(": dropped: this reader fell 256 events behind"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    let got = text.matches("event: block\n").count();
    assert!(got > 0 && got < sent, "{got} of {sent} blocks before the drop");
    let last_id = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let resume_at: u64 = last_id.split('-').next().unwrap().parse().unwrap();
    assert_eq!(resume_at, got as u64, "the id counts the blocks it was sent");

    // Resuming with that id gives exactly the rest, in order.
    let mut events = open(&node.base, "", Some(&last_id)).await;
    for index in resume_at..sent as u64 {
        assert_eq!(next_block(&mut events).await.1.index, index);
    }
}

#[actix_rt::test]
async fn stopping_the_node_ends_its_event_streams() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let mut events = open(&node.base, "", None).await;
    assert_eq!(next(&mut events).await.event, "checkpoint");
    // A graceful stop does not wait for the reader (it would for 30 s).
    actix_rt::time::timeout(Duration::from_secs(10), node.stop())
        .await
        .expect("the node stops with a reader connected");
    let end = actix_rt::time::timeout(DEADLINE, events.next()).await.unwrap();
    assert!(end.is_none(), "the stream ends: {end:?}");

    // The same for SIGTERM to a process.
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let process = NodeProcess::spawn(&db, keys.path(), &[]);
    let mut events = open(&process.base, "", None).await;
    assert_eq!(next(&mut events).await.event, "checkpoint");
    process.signal("TERM");
    assert_eq!(process.exit_code(Duration::from_secs(10)).await, Some(0));
}

#[actix_rt::test]
async fn a_reader_of_one_process_sees_the_blocks_another_sealed() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let a = NodeProcess::spawn(&db, keys.path(), &["--block-size", "3"]);
    let b = NodeProcess::spawn(&db, keys.path(), &["--block-size", "3"]);
    let info = a.client.node_info().await.unwrap();
    let mut events = open(&a.base, "?from=0", None).await;
    fill::send(&b.client, &info, &fill::identities(2), 6).await;
    for index in 0..2 {
        let (_, header) = next_block(&mut events).await;
        assert_eq!(header, b.client.block(index).await.unwrap().summary);
    }
}

/// Reads events until `blocks` block events and a checkpoint of at least
/// `tree_size` have come, in whatever order; returns the block headers.
async fn blocks_and_checkpoint(events: &mut EventStream, blocks: usize, tree_size: u64) -> Vec<BlockSummary> {
    let (mut headers, mut size) = (Vec::new(), 0);
    while headers.len() < blocks || size < tree_size {
        let e = next(events).await;
        match e.event.as_str() {
            "block" => headers.push(serde_json::from_str(&e.data).unwrap()),
            "checkpoint" => {
                let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                size = size.max(data["tree_size"].as_u64().unwrap());
            }
            other => panic!("unknown event {other:?}"),
        }
    }
    headers
}

#[actix_rt::test]
async fn a_process_sends_its_own_events_at_their_commit_and_reads_the_gaps_others_leave() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    // A looks at the chain once, at start-up, and then only when woken:
    // its readers get what it commits from its writer and publisher, and
    // what B commits only when a gap is noticed.
    let a = NodeProcess::spawn(
        &db,
        keys.path(),
        &["--block-size", "3", "--event-poll-interval", "3600"],
    );
    let b = NodeProcess::spawn(&db, keys.path(), &["--block-size", "3"]);
    let info = a.client.node_info().await.unwrap();
    let who = fill::identities(2);
    let header = async |index| a.client.block(index).await.unwrap().summary;
    let mut events = open(&a.base, "", None).await;
    assert_eq!(
        next(&mut events).await.event,
        "checkpoint",
        "the stream starts with the newest checkpoint"
    );

    fill::send(&a.client, &info, &who, 3).await;
    assert_eq!(
        blocks_and_checkpoint(&mut events, 1, 3).await,
        vec![header(0).await],
        "A's own block and checkpoint, with no poll"
    );

    // B seals block 1: A has no reason to look. A then seals block 2, whose
    // hand-off finds block 1 missing and wakes A's poller.
    fill::send(&b.client, &info, &who, 3).await;
    fill::send(&a.client, &info, &who, 3).await;
    assert_eq!(
        blocks_and_checkpoint(&mut events, 2, 9).await,
        vec![header(1).await, header(2).await],
        "the gap first, then A's block"
    );
}
