//! 200 concurrent clients against one node process over HTTP, on a real
//! Postgres: seqs gapless, every message stored exactly once, a writer batch
//! of exactly `--max-batch` messages that seals several blocks in its one
//! transaction, and a chain that audits.
//!
//! Which messages shared a writer batch is read from the database, not
//! assumed: each batch is one transaction, and Postgres stamps every row a
//! transaction inserts with its id (`xmin`). The node's own
//! `sealchain_writer_batch_size` histogram must agree bucket for bucket. A
//! node process of its own, so its metrics count only this test's messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use sealchain_client::api::NodeClient;
use sealchain_node::ingest::writer::APPLICATION_NAME;
use sealchain_shared::api::Receipt;
use sealchain_tests::{
    NodeProcess, TestDb, assert_each_exactly_once, audit_chain, metric, metrics_text, seal, wait_until,
};

const CLIENTS: usize = 200;
const PER_CLIENT: usize = 5;
const MESSAGES: usize = CLIENTS * PER_CLIENT;
const BLOCK_SIZE: i64 = 10;
const MAX_BATCH: i64 = 64;
/// The node's HTTP workers (`NodeProcess` starts it with two).
const WORKERS: usize = 2;

/// Rows one transaction inserted: its id, how many, the first and last key.
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
struct Transaction {
    #[diesel(sql_type = BigInt)]
    tx: i64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = BigInt)]
    last: i64,
}

/// The transactions that inserted `table`'s rows, by their first `key`.
fn transactions(db: &TestDb, table: &str, key: &str) -> Vec<Transaction> {
    diesel::sql_query(format!(
        "SELECT xmin::text::bigint AS tx, count(*) AS rows, min({key}) AS first, max({key}) AS last \
         FROM {table} GROUP BY xmin ORDER BY min({key})"
    ))
    .load(&mut db.connect())
    .unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(db: &TestDb, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(&mut db.connect()).unwrap().n
}

/// Waits until the node's writer session waits for a lock (the chain
/// state row another session holds).
async fn writer_waits_on_the_lock(db: &TestDb) {
    let writer_waits = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = '{APPLICATION_NAME}' AND wait_event_type = 'Lock'"
    );
    wait_until("the writer waits on the lock", Duration::from_secs(60), || {
        let waiting = count(db, &writer_waits) == 1;
        async move { waiting }
    })
    .await;
}

#[actix_rt::test]
async fn two_hundred_concurrent_clients_one_gapless_chain_and_a_full_batch_sealing_blocks() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(
        &db,
        keys.path(),
        &[
            "--block-size",
            &BLOCK_SIZE.to_string(),
            "--max-batch",
            &MAX_BATCH.to_string(),
            // The writer waits behind a lock below; give its statements
            // room (they get twice this).
            "--db-timeout",
            "30",
        ],
    );
    let info = node.client.node_info().await.unwrap();
    // 200 clients, each with its own identity and its own connection.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            (
                NodeClient::new(&node.base, Duration::from_secs(60), 1),
                seal::identity(),
            )
        })
        .collect();
    let receipts: Rc<RefCell<Vec<Receipt>>> = Rc::default();

    // Another session holds the chain state lock. Client 0's first message
    // goes alone and the writer takes it as a batch of one, then waits on
    // the lock.
    let lock = db.lock_chain_state();
    let first = {
        let (client, key) = clients[0].clone();
        let (info, receipts) = (info.clone(), receipts.clone());
        actix_rt::spawn(async move {
            let envelope = seal::envelope(&key, &info, "load", serde_json::json!([0, 0]));
            let receipt = client.submit(&envelope).await.unwrap();
            receipts.borrow_mut().push(receipt);
        })
    };
    writer_waits_on_the_lock(&db).await;

    // Every client sends its messages one after another, all at once.
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, (client, key))| {
            let (client, key, info, receipts) = (client.clone(), key.clone(), info.clone(), receipts.clone());
            let from = usize::from(c == 0);
            actix_rt::spawn(async move {
                for i in from..PER_CLIENT {
                    let envelope = seal::envelope(&key, &info, "load", serde_json::json!([c, i]));
                    let receipt = client
                        .submit(&envelope)
                        .await
                        .unwrap_or_else(|e| panic!("client {c}: {e}"));
                    receipts.borrow_mut().push(receipt);
                }
            })
        })
        .collect();
    // All 200 clients' requests are inside the node at once: one in the
    // writer, the other 199 queued behind it (the depth gauge is set by the
    // HTTP workers without ordering among them, so it may lag by one per
    // worker), and none is answered while the writer waits.
    wait_until("199 messages are queued", Duration::from_secs(60), || {
        let node = &node;
        async move {
            let text = metrics_text(&node.base).await;
            metric(&text, "sealchain_ingest_queue_depth").unwrap_or(0.0) >= (CLIENTS - 1 - WORKERS) as f64
        }
    })
    .await;
    assert!(receipts.borrow().is_empty(), "nothing is answered before its commit");

    // Released, the writer commits its batch of one, then takes a full
    // batch of MAX_BATCH from the queue.
    lock.release();
    first.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let receipts = receipts.take();
    assert_eq!(receipts.len(), MESSAGES);

    // Gapless and exactly once: the receipts' seqs are 0..1000, each once,
    // and so are the stored rows.
    let by_seq: BTreeMap<u64, &Receipt> = receipts.iter().map(|r| (r.seq, r)).collect();
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (0..MESSAGES as u64).collect::<Vec<_>>()
    );
    assert_eq!(count(&db, "SELECT count(*) AS n FROM messages"), MESSAGES as i64);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT seq) AS n FROM messages"),
        MESSAGES as i64
    );
    assert_eq!(count(&db, "SELECT max(seq) AS n FROM messages"), MESSAGES as i64 - 1);

    // The chain audits as a whole and holds each acknowledged message once.
    let blocks = audit_chain(&node.client, &info).await;
    assert_eq!(blocks.len() as i64, MESSAGES as i64 / BLOCK_SIZE);
    assert_each_exactly_once(&blocks, &receipts, &info);

    // The writer's batches, from the rows' transaction ids: each holds
    // consecutive seqs and at most MAX_BATCH of them.
    let batches = transactions(&db, "messages", "seq");
    for b in &batches {
        assert_eq!(b.last - b.first + 1, b.rows, "a batch is a run of seqs: {b:?}");
        assert!(b.rows <= MAX_BATCH, "{b:?}");
    }
    assert_eq!(batches.iter().map(|b| b.rows).sum::<i64>(), MESSAGES as i64);
    assert_eq!(
        (batches[0].first, batches[0].rows),
        (0, 1),
        "client 0's first message alone"
    );
    let full = batches[1];
    assert_eq!(
        (full.first, full.rows),
        (1, MAX_BATCH),
        "the queued messages went in a batch of exactly --max-batch"
    );
    // That one transaction sealed every block its seqs completed: blocks
    // 0..=5 (seqs 0..=59) — several blocks in one batch.
    let sealed_by = transactions(&db, "blocks", "idx");
    let sealed_by_full: Vec<_> = sealed_by.iter().filter(|t| t.tx == full.tx).collect();
    assert_eq!(sealed_by_full.len(), 1, "{sealed_by:?}");
    assert_eq!(
        (sealed_by_full[0].first, sealed_by_full[0].last, sealed_by_full[0].rows),
        (0, (full.last + 1) / BLOCK_SIZE - 1, (full.last + 1) / BLOCK_SIZE),
    );
    assert!(sealed_by_full[0].rows >= 2);
    // Every block was sealed by the batch that completed it.
    for t in &sealed_by {
        let batch = batches.iter().find(|b| b.tx == t.tx).expect("a batch sealed it");
        assert_eq!(t.last, (batch.last + 1) / BLOCK_SIZE - 1, "{t:?} by {batch:?}");
    }

    // The node's own metrics agree: as many batches, as many messages, and
    // the same count in every bucket of the batch-size histogram.
    let text = metrics_text(&node.base).await;
    let value = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("/metrics has no {name}:\n{text}"));
    assert_eq!(value("sealchain_writer_batch_size_count"), batches.len() as f64);
    assert_eq!(value("sealchain_writer_batch_size_sum"), MESSAGES as f64);
    for le in [1, 2, 4, 8, 16, 32, 64, 128] {
        let at_most = batches.iter().filter(|b| b.rows <= le).count();
        assert_eq!(
            value(&format!("sealchain_writer_batch_size_bucket{{le=\"{le}\"}}")),
            at_most as f64,
            "batches of at most {le}"
        );
    }
    assert!(
        value("sealchain_writer_batch_size_bucket{le=\"64\"}") > value("sealchain_writer_batch_size_bucket{le=\"32\"}"),
        "a batch of 33..=64 messages"
    );
    assert_eq!(value("sealchain_messages_accepted_total"), MESSAGES as f64);
    assert_eq!(value("sealchain_blocks_sealed_total"), blocks.len() as f64);
}

/// The writer does not look a batch's (sender, nonce) pairs up before it
/// inserts: the unique index finds a stored one. A batch that holds a
/// resend and a nonce reused with other content among new messages is
/// rolled back whole and written again with its pairs looked up: the
/// resend gets its original receipt, the reuse `409`, the new messages
/// consecutive seqs in one transaction, and nothing is stored twice.
#[actix_rt::test]
async fn a_batch_that_meets_a_stored_pair_is_written_again_whole_with_its_pairs_looked_up() {
    const NEW: usize = 10;
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "4", "--db-timeout", "30"]);
    let info = node.client.node_info().await.unwrap();
    let key = seal::identity();
    let stored = seal::signed(&key, &info, "t", serde_json::json!("stored"));
    let stored_envelope = seal::seal_bytes(&info, &stored.to_bytes());
    let original = node.client.submit(&stored_envelope).await.unwrap();
    assert_eq!(original.seq, 0);
    let lookups = |text: &str| metric(text, "sealchain_writer_resend_lookups_total").unwrap_or(0.0);
    assert_eq!(
        lookups(&metrics_text(&node.base).await),
        0.0,
        "a batch of new messages is written at once"
    );

    // The writer takes one message alone and waits behind another
    // session's lock; the rest queue up and go as one batch.
    let lock = db.lock_chain_state();
    let alone = {
        let (client, envelope) = (
            node.client.clone(),
            seal::envelope(&key, &info, "t", serde_json::json!("alone")),
        );
        actix_rt::spawn(async move { client.submit(&envelope).await.unwrap() })
    };
    writer_waits_on_the_lock(&db).await;
    let text = String::from_utf8(stored.message_bytes.clone()).unwrap();
    assert!(text.contains("\"body\":\"stored\""), "{text}");
    let reuse = seal::seal_message_bytes(&key, &info, text.replace("\"stored\"", "\"other\"").as_bytes());
    let mut envelopes = vec![stored_envelope.clone(), reuse];
    envelopes.extend((0..NEW).map(|i| seal::envelope(&key, &info, "t", serde_json::json!(i))));
    let total = envelopes.len();
    let answers: Vec<_> = envelopes
        .into_iter()
        .map(|envelope| {
            let client = node.client.clone();
            actix_rt::spawn(async move { client.submit(&envelope).await })
        })
        .collect();
    wait_until("the batch is queued", Duration::from_secs(60), || {
        let node = &node;
        async move {
            let text = metrics_text(&node.base).await;
            metric(&text, "sealchain_ingest_queue_depth").unwrap_or(0.0) >= (total - WORKERS) as f64
        }
    })
    .await;
    lock.release();
    assert_eq!(alone.await.unwrap().seq, 1);
    let mut answers = futures_util::future::join_all(answers)
        .await
        .into_iter()
        .map(Result::unwrap);

    let resend = answers.next().unwrap().expect("the resend is answered");
    assert_eq!(resend, original, "the original receipt, signature included");
    match answers.next().unwrap() {
        Err(sealchain_client::api::ApiError::Problem { status, problem, .. }) => {
            assert_eq!((status, problem.code.as_str()), (409, "duplicate"), "{problem:?}");
        }
        other => panic!("the reused nonce was not refused as a duplicate: {other:?}"),
    }
    let mut seqs: Vec<u64> = answers.map(|a| a.expect("a new message is stored").seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..2 + NEW as u64).collect::<Vec<_>>());

    // The new messages went in one transaction, the one that wrote the
    // batch again; nothing of the rolled-back attempt is left.
    let batches = transactions(&db, "messages", "seq");
    let rows: Vec<_> = batches.iter().map(|b| (b.first, b.rows)).collect();
    assert_eq!(rows, [(0, 1), (1, 1), (2, NEW as i64)]);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM messages"), 2 + NEW as i64);
    assert_eq!(
        lookups(&metrics_text(&node.base).await),
        1.0,
        "the batch was written twice"
    );

    // The chain after it audits, and later messages go on from there.
    let next = node
        .client
        .submit(&seal::envelope(&key, &info, "t", serde_json::json!("next")))
        .await
        .unwrap();
    assert_eq!(next.seq, 2 + NEW as u64);
    let blocks = audit_chain(&node.client, &info).await;
    let stored = 3 + NEW; // the first, the one alone, the batch's new ones, the next
    assert_eq!(blocks.len(), stored / 4, "every full block of 4 is sealed");
}

/// The pairs are unique by one constraint with the sender's number first,
/// and the writer's lookup of a batch's pairs (node/src/db/repo.rs,
/// `StoredMessages`) reads it. The nonce first was measured and not kept:
/// it spreads every insert over the whole index, where the sender first
/// keeps a sender's inserts in its own range, and at ten million messages
/// it wrote twice the WAL per message (docs/performance.md, part 8). The
/// number instead of the key is part 9.
#[actix_rt::test]
async fn the_pair_constraint_keeps_the_sender_first_and_serves_the_writers_lookup() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &[]);
    let mut conn = db.connect();
    let pair_keys: Vec<Line> = diesel::sql_query(
        "SELECT conname AS line FROM pg_constraint \
         WHERE conrelid = 'messages'::regclass AND contype = 'u' ORDER BY conname",
    )
    .load(&mut conn)
    .unwrap();
    let pair_keys: Vec<String> = pair_keys.into_iter().map(|l| l.line).collect();
    assert_eq!(
        pair_keys,
        ["messages_sender_nonce_key"],
        "one unique constraint on messages"
    );
    let definition: Line = diesel::sql_query(
        "SELECT pg_get_constraintdef(oid) AS line FROM pg_constraint WHERE conname = 'messages_sender_nonce_key'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(definition.line, "UNIQUE (sender_id, nonce)");
    // On an empty table Postgres would scan; price that out, as the
    // explorer's plan test does.
    for setting in [
        "enable_seqscan",
        "enable_bitmapscan",
        "enable_hashjoin",
        "enable_mergejoin",
    ] {
        diesel::sql_query(format!("SET {setting} = off"))
            .execute(&mut conn)
            .unwrap();
    }
    let plan = sealchain_tests::db::explain(
        &mut conn,
        "SELECT c.sender, m.nonce, m.leaf_hash, m.seq, m.received_at FROM messages m \
         JOIN unnest(ARRAY[1::bigint], ARRAY['\\x01'::bytea], ARRAY['\\x02'::bytea]) AS c(sender_id, sender, nonce) \
         ON m.sender_id = c.sender_id AND m.nonce = c.nonce",
    );
    assert!(
        plan.contains("Index Scan using messages_sender_nonce_key"),
        "the lookup does not read the pair constraint's index:\n{plan}"
    );
    drop(node);
}

/// One text column of a catalogue query.
#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// After its first batch, written under the chain state lock, the writer
/// knows the state it left and writes each later batch as one statement:
/// the messages, the sealed block and the new chain state in one implicit
/// transaction (one `xmin`), and the metrics count each kind. The chain
/// audits.
#[actix_rt::test]
async fn batches_after_the_first_are_written_in_one_statement_that_moves_the_chain_state() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &["--block-size", "3"]);
    let info = node.client.node_info().await.unwrap();
    let key = seal::identity();
    for i in 0..4u64 {
        let envelope = seal::envelope(&key, &info, "t", serde_json::json!(i));
        assert_eq!(node.client.submit(&envelope).await.unwrap().seq, i);
    }
    let text = metrics_text(&node.base).await;
    let batches = |how: &str| metric(&text, &format!("sealchain_writer_batches_total{{write=\"{how}\"}}"));
    assert_eq!((batches("locked"), batches("one_statement")), (Some(1.0), Some(3.0)));
    assert_eq!(metric(&text, "sealchain_writer_stale_chain_state_total"), None);

    // Message 2 sealed block 0: its row, the block's and the chain state's
    // as it then was came from one transaction; message 3's and the chain
    // state's now from another.
    let tx_of = |sql: &str| count(&db, &format!("SELECT xmin::text::bigint AS n FROM {sql}"));
    let (sealing, last) = (tx_of("messages WHERE seq = 2"), tx_of("messages WHERE seq = 3"));
    assert_eq!(tx_of("blocks WHERE idx = 0"), sealing);
    assert_ne!(sealing, last);
    assert_eq!(tx_of("chain_state"), last);
    assert_eq!(count(&db, "SELECT next_seq AS n FROM chain_state"), 4);

    let blocks = audit_chain(&node.client, &info).await;
    assert_eq!(blocks.len(), 1);
}

/// A message of a sender whose key is `key`, as the writer takes it.
fn verified(key: [u8; 32], nonce: u8) -> sealchain_node::ingest::validate::Verified {
    sealchain_node::ingest::validate::Verified {
        sender: key,
        nonce: [nonce; 16],
        ts: 0,
        signature: [0; 64],
        message_bytes: vec![nonce],
        leaf_hash: [nonce; 32],
    }
}

/// One number column.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Two node processes meet the same new sender at once: one numbers it,
/// and the other, whose statement started before that commit, neither
/// numbers it again (the unique key waits, then skips) nor sees it in that
/// statement; it asks again and gets the same number. A known sender is
/// answered from memory, and senders of one batch keep its order.
#[test]
fn a_sender_numbered_by_another_process_meanwhile_gets_that_number() {
    use diesel::Connection;
    use sealchain_node::ingest::writer::SenderIds;
    let db = TestDb::new();
    let (old, new) = ([7u8; 32], [9u8; 32]);
    let mut other = db.connect();
    diesel::sql_query("INSERT INTO senders (key) VALUES ($1)")
        .bind::<diesel::sql_types::Bytea, _>(old.to_vec())
        .execute(&mut other)
        .unwrap();
    // The other process has inserted `new` and not committed yet.
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    let theirs: Number = diesel::sql_query("INSERT INTO senders (key) VALUES ($1) RETURNING id AS n")
        .bind::<diesel::sql_types::Bytea, _>(new.to_vec())
        .get_result(&mut other)
        .unwrap();
    let url = db.url.clone();
    let numbering = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        let mut ids = SenderIds::default();
        let (a, b, c) = (verified(new, 1), verified(old, 2), verified(new, 3));
        let first = ids.number(&mut conn, &[&a, &b, &c]).unwrap();
        // Known now: no statement runs (a closed connection would fail it).
        diesel::sql_query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(&mut conn)
            .ok();
        let again = ids.number(&mut conn, &[&b, &a]).unwrap();
        (first, again)
    });
    // Let the numbering statement reach the unique key and wait there.
    let mut watcher = db.connect();
    let mut waiting = || -> i64 {
        let rows: Vec<Number> = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO senders%'",
        )
        .load(&mut watcher)
        .unwrap();
        rows[0].n
    };
    let started = std::time::Instant::now();
    while waiting() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the numbering never waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    let (first, again) = numbering.join().unwrap();
    let old_id: Number = diesel::sql_query("SELECT id AS n FROM senders WHERE key = $1")
        .bind::<diesel::sql_types::Bytea, _>(old.to_vec())
        .get_result(&mut other)
        .unwrap();
    assert_eq!(first, [theirs.n, old_id.n, theirs.n]);
    assert_eq!(again, [old_id.n, theirs.n]);
    let count: Number = diesel::sql_query("SELECT count(*) AS n FROM senders")
        .get_result(&mut other)
        .unwrap();
    assert_eq!(count.n, 2, "each key numbered once");
}

/// A sender's number is for ever: messages hold it, and the writer keeps
/// it in memory, so the database refuses to change or delete one.
#[test]
fn sender_numbers_cannot_be_changed_or_deleted() {
    let db = TestDb::new();
    let mut conn = db.connect();
    diesel::sql_query("INSERT INTO senders (key) VALUES ($1)")
        .bind::<diesel::sql_types::Bytea, _>(vec![1u8; 32])
        .execute(&mut conn)
        .unwrap();
    for sql in [
        "UPDATE senders SET key = '\\x0202020202020202020202020202020202020202020202020202020202020202'",
        "DELETE FROM senders",
        "TRUNCATE senders",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).unwrap_err();
        assert!(err.to_string().contains("never changed or deleted"), "{sql}: {err}");
    }
    let count: Number = diesel::sql_query("SELECT count(*) AS n FROM senders")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(count.n, 1);
}
