//! The promises under faults: a retry always ends with the original
//! receipt, a slow or cancelled database answers 503 (never 500), readiness
//! tells the truth about the writer, concurrent start-ups migrate once, the
//! first batch after a database restart succeeds, and overload is refused
//! before the expensive work.
//!
//! Faults are real: locks held by another Postgres session, statements
//! cancelled with `pg_cancel_backend`, sessions killed with
//! `pg_terminate_backend`, rows deleted behind the node's back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Integer};
use diesel::{QueryableByName, RunQueryDsl};
use sealchain_node::ingest::writer::APPLICATION_NAME;
use sealchain_shared::api::{NodeInfo, Receipt};
use sealchain_shared::envelope::Envelope;
use sealchain_tests::process::binary;
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, metric, seal, wait_until};

/// Status, `Retry-After` and body of a request.
async fn request(method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, Option<String>, String) {
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let req = match method {
        "POST" => client.post(url).insert_header(("content-type", "application/json")),
        _ => client.get(url),
    };
    let mut response = match body {
        Some(body) => req.send_body(body).await,
        None => req.send().await,
    }
    .expect("the node answers");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.body().limit(64 << 20).await.expect("body");
    (
        response.status().as_u16(),
        retry,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn post(base: &str, envelope: &Envelope) -> (u16, Option<String>, String) {
    request(
        "POST",
        &format!("{base}/v1/messages"),
        Some(envelope.to_json().into_bytes()),
    )
    .await
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Backends of this test's database waiting on a lock whose query mentions
/// `needle`.
fn lock_waiters(db: &TestDb, needle: &str) -> Vec<i32> {
    diesel::sql_query(format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query ILIKE '%{needle}%'"
    ))
    .load::<Pid>(&mut db.connect())
    .unwrap()
    .into_iter()
    .map(|p| p.pid)
    .collect()
}

fn message_count(db: &TestDb) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM messages")
        .get_result::<Count>(&mut db.connect())
        .unwrap()
        .n
}

/// A session that holds a lock until it is dropped or released.
struct LockHolder(PgConnection);

impl LockHolder {
    /// Locks the chain state row the writer locks first in every batch.
    fn chain_state(db: &TestDb) -> Self {
        Self::take(db, "SELECT 1 FROM chain_state FOR UPDATE")
    }

    fn take(db: &TestDb, lock_sql: &str) -> Self {
        let mut conn = db.connect();
        diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
        diesel::sql_query(lock_sql).execute(&mut conn).unwrap();
        Self(conn)
    }

    fn release(mut self) {
        diesel::sql_query("COMMIT").execute(&mut self.0).unwrap();
    }
}

fn verify_receipt(info: &NodeInfo, receipt: &Receipt) {
    let key = sealchain_shared::VerifyingKey::from_bytes(&info.signing_key.0).unwrap();
    let signature = sealchain_shared::Signature::from_bytes(&receipt.signature.0);
    assert!(
        sealchain_shared::receipt::verify(&key, receipt.seq, &receipt.leaf_hash.0, receipt.received_at, &signature),
        "the receipt's signature verifies"
    );
}

/// Promise 1: the handler gave up (503) but the commit landed afterwards;
/// the resend of the same message gets the original receipt, not 409.
#[actix_rt::test]
async fn a_commit_that_lands_after_the_handler_gave_up_is_answered_on_resend() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--ingest-timeout", 1)).await;
    let key = seal::identity();
    let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!({"n": 1}));

    // A slowed database: the writer's batch waits on the chain state lock
    // longer than the handler waits for it.
    let lock = LockHolder::chain_state(&db);
    let (status, retry, body) = post(&node.base, &envelope).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(body.contains("may still be committed"), "{body}");
    assert!(!body.contains("nothing was stored"), "{body}");

    // The database recovers; the batch commits although nobody waits.
    lock.release();
    wait_until("the message is stored", Duration::from_secs(30), || async {
        node.client.message(0).await.is_ok()
    })
    .await;

    // The resend: 200 with the original receipt.
    let (status, _, body) = post(&node.base, &envelope).await;
    assert_eq!(status, 200, "{body}");
    let receipt: Receipt = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt.seq, 0);
    verify_receipt(&node.info, &receipt);
    let stored = node.client.message(0).await.unwrap();
    assert_eq!(receipt.received_at, stored.received_at, "the original receive time");
    assert_eq!(receipt.leaf_hash, stored.leaf_hash);
    // And again, resealed (another envelope of the same signed message).
    let resealed = seal::seal_bytes(&node.info, &seal_signed_bytes(&node, &envelope));
    assert_eq!(node.client.submit(&resealed).await.unwrap(), receipt);
    assert_eq!(message_count(&db), 1, "resends store nothing");
    node.stop().await;
}

/// The signed message inside an envelope (opened with the node's key).
fn seal_signed_bytes(node: &TestNode, envelope: &Envelope) -> Vec<u8> {
    let key = sealchain_shared::keys::load_encryption_key(&node.keys_dir.join("encryption.pem")).unwrap();
    envelope.open(&key).unwrap().to_vec()
}

/// Promise 3: a statement timeout on a read is 503 with Retry-After, and
/// so is a statement an administrator cancels; neither is 500.
#[actix_rt::test]
async fn a_slow_or_cancelled_statement_answers_503_not_500() {
    let db = TestDb::new();
    // Statements time out after 2 × --db-timeout = 2 s.
    let node = TestNode::spawn(
        &db,
        NodeOptions::default().arg("--db-timeout", 1).arg("--block-size", 1),
    )
    .await;
    let key = seal::identity();
    node.client
        .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(1)))
        .await
        .unwrap();

    // Another session holds an exclusive lock on `blocks`: the read waits
    // until its statement timeout.
    let lock = LockHolder::take(&db, "LOCK TABLE blocks IN ACCESS EXCLUSIVE MODE");
    let (status, retry, body) = request("GET", &format!("{}/v1/blocks/0", node.base), None).await;
    assert_eq!(status, 503, "statement timeout: {body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(body.contains("\"code\":\"unavailable\""), "{body}");
    lock.release();

    node.stop().await;

    // An administrator cancels a waiting read (statements may last 60 s).
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--db-timeout", 30)).await;
    let lock = LockHolder::take(&db, "LOCK TABLE blocks IN ACCESS EXCLUSIVE MODE");
    let base = node.base.clone();
    let read = actix_rt::spawn(async move { request("GET", &format!("{base}/v1/blocks/head"), None).await });
    wait_until("the read waits on the lock", Duration::from_secs(20), || async {
        !lock_waiters(&db, "blocks").is_empty()
    })
    .await;
    for pid in lock_waiters(&db, "blocks") {
        db.execute(&format!("SELECT pg_cancel_backend({pid})"));
    }
    let (status, retry, body) = read.await.unwrap();
    assert_eq!(status, 503, "admin cancel: {body}");
    assert_eq!(retry.as_deref(), Some("1"));
    lock.release();
    assert_eq!(
        request("GET", &format!("{}/v1/blocks/head", node.base), None).await.0,
        404,
        "no block yet"
    );
    node.stop().await;
}

/// Promise 3 on the ingest path: a writer that cannot get its lock in time
/// answers 503 saying nothing was stored — and indeed nothing was.
#[actix_rt::test]
async fn a_writer_lock_timeout_answers_503_and_stores_nothing() {
    a_lock_timeout_stores_nothing(0).await;
}

/// The same for a batch after the first, which the writer sends as one
/// statement guarded by the chain state it knows: that statement waits on
/// the lock, times out, and stores nothing either.
#[actix_rt::test]
async fn a_one_statement_write_that_times_out_on_the_lock_answers_503_and_stores_nothing() {
    a_lock_timeout_stores_nothing(2).await;
}

/// `before` messages stored, then one sent while another session holds
/// the chain state lock past the node's `--db-timeout`.
async fn a_lock_timeout_stores_nothing(before: u64) {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--db-timeout", 1)).await;
    let key = seal::identity();
    for i in 0..before {
        let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!(["before", i]));
        assert_eq!(node.client.submit(&envelope).await.unwrap().seq, i);
    }
    let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!(1));
    let lock = LockHolder::chain_state(&db);
    let (status, retry, body) = post(&node.base, &envelope).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(body.contains("nothing was stored"), "{body}");
    lock.release();
    assert_eq!(message_count(&db), i64::try_from(before).unwrap());
    // The same message later is stored, next in line.
    assert_eq!(node.client.submit(&envelope).await.unwrap().seq, before);
    node.stop().await;
}

/// Promise 4: /readyz turns 503 while the writer's writes keep failing and
/// back to 200 when the database recovers, without any traffic; the
/// metrics show the failures. (A node process of its own, so its metrics
/// are its own.)
#[actix_rt::test]
async fn readiness_follows_the_writers_failures() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, &keys.path().join("keys"), &["--db-timeout", "1"]);
    let info = node.client.node_info().await.unwrap();
    let ready = |base: String| async move { request("GET", &format!("{base}/readyz"), None).await };
    assert_eq!(ready(node.base.clone()).await.0, 200);

    let lock = LockHolder::chain_state(&db);
    let key = seal::identity();
    let (status, _, _) = post(&node.base, &seal::envelope(&key, &info, "t", serde_json::json!(1))).await;
    assert_eq!(status, 503);
    wait_until(
        "/readyz reports the failing writer",
        Duration::from_secs(60),
        || async {
            let (status, _, body) = ready(node.base.clone()).await;
            status == 503 && body.contains("attempts to write")
        },
    )
    .await;
    let (_, _, metrics) = request("GET", &format!("{}/metrics", node.base), None).await;
    assert!(
        metric(&metrics, "sealchain_writer_consecutive_failures").unwrap() >= 3.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "sealchain_writer_alive"), Some(1.0));

    lock.release();
    wait_until("/readyz is ready again", Duration::from_secs(30), || async {
        ready(node.base.clone()).await.0 == 200
    })
    .await;
    let (_, _, metrics) = request("GET", &format!("{}/metrics", node.base), None).await;
    assert_eq!(metric(&metrics, "sealchain_writer_consecutive_failures"), Some(0.0));
    let (status, _, _) = post(&node.base, &seal::envelope(&key, &info, "t", serde_json::json!(2))).await;
    assert_eq!(status, 202);
}

/// Promise 4: a writer that found the chain inconsistent stops; /readyz
/// says so, the metric says so, and every message is refused with 503.
/// A node process with blocks of 3 and two messages in its open block.
async fn two_messages_open(
    db: &TestDb,
    keys: &std::path::Path,
) -> (NodeProcess, NodeInfo, sealchain_shared::SigningKey) {
    let node = NodeProcess::spawn(db, &keys.join("keys"), &["--block-size", "3"]);
    let info = node.client.node_info().await.unwrap();
    let key = seal::identity();
    for i in 0..2 {
        node.client
            .submit(&seal::envelope(&key, &info, "t", serde_json::json!(i)))
            .await
            .unwrap();
    }
    (node, info, key)
}

/// The next message finds the chain inconsistent: 503 saying so; then
/// /readyz and the metric say the writer stopped, and messages keep
/// getting 503.
async fn assert_the_writer_stops(node: &NodeProcess, info: &NodeInfo, key: &sealchain_shared::SigningKey) {
    let (status, _, body) = post(&node.base, &seal::envelope(key, info, "t", serde_json::json!(2))).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("inconsistent"), "{body}");

    let (status, _, body) = request("GET", &format!("{}/readyz", node.base), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("writer has stopped"), "{body}");
    let (_, _, metrics) = request("GET", &format!("{}/metrics", node.base), None).await;
    assert_eq!(metric(&metrics, "sealchain_writer_alive"), Some(0.0), "{metrics}");
    let (status, _, body) = post(&node.base, &seal::envelope(key, info, "t", serde_json::json!(3))).await;
    assert_eq!(status, 503, "{body}");
}

#[actix_rt::test]
async fn a_stopped_writer_makes_the_node_unready() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let (node, info, key) = two_messages_open(&db, keys.path()).await;
    // A message of the open block disappears behind the node's back; the
    // batch that fills the block cannot seal it.
    db.execute("DELETE FROM messages WHERE seq = 1");
    assert_the_writer_stops(&node, &info, &key).await;
    assert_eq!(message_count(&db), 1, "nothing more was stored");
}

/// Promise 4 again: a message row nobody sent, written behind the node's
/// back after the chain's last message (where the next one goes). The
/// writer meets it when it inserts, finds the chain inconsistent and stops,
/// rather than answering "database unavailable" and retrying for ever; the
/// row is never sealed into a block.
#[actix_rt::test]
async fn a_message_row_the_chain_did_not_assign_stops_the_writer() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let (node, info, key) = two_messages_open(&db, keys.path()).await;
    let extra = seal::signed(&seal::identity(), &info, "t", serde_json::json!("nobody sent this"));
    sealchain_tests::tamper::insert_message(&db, 2, &extra);
    assert_the_writer_stops(&node, &info, &key).await;
    assert_eq!(message_count(&db), 3, "the two sent and the extra row");
    assert_eq!(
        node.client.block_count().await.unwrap(),
        0,
        "nothing was sealed over it"
    );
}

/// Starts `sealchain-node` and reports whether it came up: `Ok(child)`
/// once it logs that it listens, `Err(its output)` if it exits first.
fn start_node(db: &TestDb, keys_dir: &std::path::Path) -> std::thread::JoinHandle<Result<Child, String>> {
    let mut child = Command::new(binary("sealchain-node"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "1"])
        .arg("--database-url")
        .arg(&db.url)
        .arg("--keys-dir")
        .arg(keys_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sealchain-node");
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("\"listening\"") {
                return Ok(child);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        Err(format!("{seen}{err}"))
    })
}

/// Promise 5: node processes starting together on an empty database both
/// come up (the migrations run once, under an advisory lock).
#[test]
fn two_nodes_starting_at_once_on_an_empty_database_both_start() {
    let keys = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().join("keys");
    sealchain_node::keys::NodeKeys::create(&keys_dir).unwrap();
    for round in 0..5 {
        let db = TestDb::empty();
        let (one, two) = (start_node(&db, &keys_dir), start_node(&db, &keys_dir));
        for (which, started) in [("first", one), ("second", two)] {
            let mut child = started
                .join()
                .unwrap()
                .unwrap_or_else(|output| panic!("round {round}: the {which} node failed to start:\n{output}"));
            let _ = child.kill();
            let _ = child.wait();
        }
        let migrations = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result::<Count>(&mut db.connect())
            .unwrap();
        assert_eq!(
            migrations.n as usize,
            sealchain_tests::db::embedded_migrations(),
            "round {round}: every migration applied once"
        );
    }
}

/// Promise 6: after the database dropped every session (a restart), the
/// very first message is accepted: the writer retries on a new connection.
#[actix_rt::test]
async fn the_first_message_after_a_database_restart_is_accepted() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let key = seal::identity();
    node.client
        .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(0)))
        .await
        .unwrap();
    let writers = diesel::sql_query(format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'"
    ))
    .load::<Pid>(&mut db.connect())
    .unwrap();
    assert_eq!(writers.len(), 1, "the writer's session is tagged");
    // Every session of the node ends, as in a restart; the call waits
    // until the backends are gone.
    db.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    let receipt = node
        .client
        .submit(&seal::envelope(&key, &node.info, "t", serde_json::json!(1)))
        .await
        .expect("the first message after the restart is accepted");
    assert_eq!(receipt.seq, 1);
    node.stop().await;
}

/// Promise 6, the statement's answer lost: a batch after the first goes
/// as one statement that commits by itself. Here the node's connection is
/// cut (its socket destroyed, `ss -K`) while that statement runs; the
/// server goes on and commits it, and the node cannot know. It writes the
/// batch again under the lock with its pairs looked up, finds the message
/// where its statement put it, and answers 202 with that receipt: stored
/// once, accepted, not a resend and not a 503.
#[actix_rt::test]
async fn a_one_statement_write_whose_answer_is_lost_is_found_stored_and_accepted() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let key = seal::identity();
    let first = seal::envelope(&key, &node.info, "t", serde_json::json!(0));
    assert_eq!(node.client.submit(&first).await.unwrap().seq, 0);
    // The next insert into messages sleeps 3 s inside its statement, once.
    for sql in [
        "CREATE TABLE slow_once (x int)",
        "INSERT INTO slow_once VALUES (1)",
        "CREATE FUNCTION slow_once() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN DELETE FROM slow_once; IF FOUND THEN PERFORM pg_sleep(3); END IF; RETURN NULL; END $$",
        "CREATE TRIGGER slow_once AFTER INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION slow_once()",
    ] {
        db.execute(sql);
    }

    let envelope = seal::envelope(&key, &node.info, "t", serde_json::json!(1));
    let answer = {
        let (base, envelope) = (node.base.clone(), envelope.clone());
        actix_rt::spawn(async move { post(&base, &envelope).await })
    };
    let sleeping = format!(
        "SELECT client_port AS pid FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = '{APPLICATION_NAME}' AND wait_event = 'PgSleep'"
    );
    let mut port = Vec::new();
    wait_until("the writer's statement sleeps", Duration::from_secs(60), || {
        port = diesel::sql_query(&sleeping).load::<Pid>(&mut db.connect()).unwrap();
        let found = port.len() == 1;
        async move { found }
    })
    .await;
    let port = port[0].pid;
    let killed = Command::new("ss")
        .args([
            "-K",
            "dst",
            "127.0.0.1",
            "dport",
            "=",
            "5432",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()
        .expect("ss (iproute2) runs");
    assert!(killed.status.success(), "{killed:?}");

    let (status, _, body) = answer.await.unwrap();
    assert_eq!(status, 202, "{body}");
    let receipt: Receipt = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt.seq, 1);
    verify_receipt(&node.info, &receipt);
    assert_eq!(
        diesel::sql_query("SELECT count(*) AS n FROM slow_once")
            .get_result::<Count>(&mut db.connect())
            .unwrap()
            .n,
        0,
        "the statement that slept committed"
    );
    assert_eq!(message_count(&db), 2);
    // The resend gets the same receipt; the chain goes on from there.
    assert_eq!(node.client.submit(&envelope).await.unwrap(), receipt);
    let next = seal::envelope(&key, &node.info, "t", serde_json::json!(2));
    assert_eq!(node.client.submit(&next).await.unwrap().seq, 2);
    node.stop().await;
}

/// Promise 7: with the queue full, the node answers 503 before opening the
/// envelope: a body that would fail decryption gets 503, not 400. (A node
/// process of its own, so the queue depth it reports is its own.)
#[actix_rt::test]
async fn a_full_queue_is_refused_before_the_envelope_is_opened() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, &keys.path().join("keys"), &["--queue-capacity", "1"]);
    let info = node.client.node_info().await.unwrap();
    let key = seal::identity();
    let garbage = serde_json::json!({"enc": "11".repeat(32), "ct": "AAAAAAAAAAAAAAAAAAAAAA=="})
        .to_string()
        .into_bytes();
    let url = format!("{}/v1/messages", node.base);
    assert_eq!(
        request("POST", &url, Some(garbage.clone())).await.0,
        400,
        "undecryptable"
    );

    // The writer takes message A and waits on the lock; B fills the queue.
    // Nothing else is posted meanwhile: a probe would take the one place in
    // the queue for a moment and could turn B away.
    let lock = LockHolder::chain_state(&db);
    let (a, b) = (
        seal::envelope(&key, &info, "t", serde_json::json!("a")),
        seal::envelope(&key, &info, "t", serde_json::json!("b")),
    );
    let base = node.base.clone();
    let sent_a = actix_rt::spawn(async move { post(&base, &a).await });
    wait_until("the writer waits on the lock", Duration::from_secs(20), || async {
        !lock_waiters(&db, "chain_state").is_empty()
    })
    .await;
    let base = node.base.clone();
    let sent_b = actix_rt::spawn(async move { post(&base, &b).await });
    let metrics_url = format!("{}/metrics", node.base);
    wait_until("B waits in the queue", Duration::from_secs(20), || async {
        let (_, _, text) = request("GET", &metrics_url, None).await;
        metric(&text, "sealchain_ingest_queue_depth") == Some(1.0)
    })
    .await;
    let (status, retry, body) = request("POST", &url, Some(garbage.clone())).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(body.contains("queue full"), "{body}");
    lock.release();
    assert_eq!(sent_a.await.unwrap().0, 202);
    assert_eq!(sent_b.await.unwrap().0, 202);
    assert_eq!(request("POST", &url, Some(garbage)).await.0, 400, "room again");
}

/// Promise 1, client side: `sealchain send` meets a 503 (its commit is
/// stalled behind a lock and the handler gives up), resends the same
/// message, and ends with the receipt of the one stored copy.
#[actix_rt::test]
async fn send_retries_a_503_and_ends_with_the_original_receipt() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, &keys.path().join("keys"), &["--ingest-timeout", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let client_key = dir.path().join("client.pem");
    sealchain_shared::keys::save_signing_key(&client_key, &seal::identity()).unwrap();

    let lock = LockHolder::chain_state(&db);
    let mut cmd = Command::new(binary("sealchain"));
    cmd.env("SEALCHAIN_DATA_DIR", dir.path().join("data"))
        .args([
            "--json", "--no-pin", "--node", &node.base, "send", "--topic", "t", "--body", "1", "--key",
        ])
        .arg(&client_key);
    let send = actix_rt::task::spawn_blocking(move || cmd.output().unwrap());
    // Release the lock once the node has answered 503 at least once.
    wait_until("the node answered 503", Duration::from_secs(30), || async {
        let (_, _, metrics) = request("GET", &format!("{}/metrics", node.base), None).await;
        metric(&metrics, "sealchain_messages_rejected_total{code=\"unavailable\"}").is_some_and(|n| n >= 1.0)
    })
    .await;
    lock.release();
    let out = send.await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let receipt: Receipt = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt.seq, 0);
    assert_eq!(message_count(&db), 1, "stored once");
    let stored = node.client.message(0).await.unwrap();
    assert_eq!(
        (stored.leaf_hash, stored.received_at),
        (receipt.leaf_hash, receipt.received_at)
    );

    // With --retries 0 the same situation is a clear failure.
    let lock = LockHolder::chain_state(&db);
    let mut cmd = Command::new(binary("sealchain"));
    cmd.env("SEALCHAIN_DATA_DIR", dir.path().join("data"))
        .args([
            "--no-pin",
            "--retries",
            "0",
            "--node",
            &node.base,
            "send",
            "--topic",
            "t",
            "--body",
            "2",
            "--key",
        ])
        .arg(&client_key);
    let out = actix_rt::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    lock.release();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("503") && err.contains("resend the same message"), "{err}");
}
