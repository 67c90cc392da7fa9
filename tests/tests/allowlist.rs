//! The allowlist policy and its admin API: registered senders are
//! accepted, unknown ones get 403 (and nothing is stored), and the admin
//! API wants the bearer token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sealchain_client::api::NodeClient;
use sealchain_node::allowlist::{APPLICATION_NAME, FRESH_FOR};
use sealchain_shared::SigningKey;
use sealchain_shared::api::{ClientPolicy, NodeInfo, Problem};
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, get_raw, seal};

const TOKEN: &str = "correct-horse-battery-staple";

#[actix_rt::test]
async fn registered_senders_only() {
    let db = TestDb::new();
    let node = TestNode::spawn(
        &db,
        NodeOptions::default()
            .arg("--client-policy", "allowlist")
            .arg("--admin-token", TOKEN),
    )
    .await;
    assert_eq!(node.info.client_policy, ClientPolicy::Allowlist);
    let c = &node.client;
    let alice = seal::identity();
    let mallory = seal::identity();
    let alice_id = alice.verifying_key().to_bytes();

    // Unknown sender: 403, nothing stored.
    let err = c
        .submit(&seal::envelope(&mallory, &node.info, "t", serde_json::json!(1)))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("unknown_sender")));

    // The admin API without, or with a wrong, token: 401.
    for token in ["", "wrong-token-of-some-length"] {
        let err = c.add_client(token, alice_id).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(401), Some("unauthorized")),
            "{token:?}"
        );
        let err = c.list_clients(token).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        let err = c.remove_client(token, alice_id).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
    }
    let (status, _, _) = get_raw(&node.base, "/v1/clients").await;
    assert_eq!(status, 401);

    // Register alice (idempotently); she is accepted at seq 0.
    let entry = c.add_client(TOKEN, alice_id).await.unwrap();
    assert_eq!(entry.client_id.0, alice_id);
    assert_eq!(c.add_client(TOKEN, alice_id).await.unwrap(), entry);
    let listed = c.list_clients(TOKEN).await.unwrap();
    assert_eq!(listed.clients, vec![entry]);
    let receipt = c
        .submit(&seal::envelope(&alice, &node.info, "t", serde_json::json!(2)))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 0);

    // Still 403 for mallory.
    let err = c
        .submit(&seal::envelope(&mallory, &node.info, "t", serde_json::json!(3)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("unknown_sender"));

    // Bad bodies and keys are 400.
    for body in [r#"{"client_id":"xyz"}"#, r#"{}"#, "nope", r#"{"client_id":"00","x":1}"#] {
        let response = awc::Client::new()
            .post(format!("{}/v1/clients", node.base))
            .bearer_auth(TOKEN)
            .send_body(body)
            .await;
        let mut response = response.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let problem: Problem = serde_json::from_slice(&response.body().await.unwrap()).unwrap();
        assert_eq!(problem.code, "bad_request");
    }
    let response = awc::Client::new()
        .delete(format!("{}/v1/clients/XYZ", node.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // Remove alice: 204, then 404; she is refused again.
    c.remove_client(TOKEN, alice_id).await.unwrap();
    let err = c.remove_client(TOKEN, alice_id).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    let err = c
        .submit(&seal::envelope(&alice, &node.info, "t", serde_json::json!(4)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("unknown_sender"));
    assert!(c.list_clients(TOKEN).await.unwrap().clients.is_empty());
    node.stop().await;
}

#[actix_rt::test]
async fn the_admin_api_is_closed_without_a_configured_token() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--client-policy", "allowlist")).await;
    let err = node.client.add_client(TOKEN, [1; 32]).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("--admin-token"), "{err}");
    node.stop().await;
}

#[actix_rt::test]
async fn open_policy_accepts_anyone_and_short_tokens_are_refused() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    assert_eq!(node.info.client_policy, ClientPolicy::Open);
    let receipt = node
        .client
        .submit(&seal::envelope(
            &seal::identity(),
            &node.info,
            "t",
            serde_json::json!(1),
        ))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 0);
    node.stop().await;

    let err = TestNode::try_spawn(&db, NodeOptions::default().arg("--admin-token", "short"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 16 characters"), "{err}");
}

/// Sends fresh messages from `key` until the node answers as `allowed`
/// says, asserting that the other answer only ever comes to a message sent
/// within [`FRESH_FOR`] of `changed` (the documented bound). Returns how
/// long the change took to show.
async fn shows_within_the_bound(
    client: &NodeClient,
    info: &NodeInfo,
    key: &SigningKey,
    changed: Instant,
    allowed: bool,
) -> Duration {
    let mut i = 0u64;
    loop {
        let sent = Instant::now();
        let envelope = seal::envelope(key, info, "t", serde_json::json!(i));
        i += 1;
        let answer = client.submit(&envelope).await;
        if answer.is_ok() == allowed {
            return sent - changed;
        }
        match answer {
            Ok(r) => assert!(
                sent - changed < FRESH_FOR,
                "seq {} accepted {:?} after the client was removed",
                r.seq,
                sent - changed
            ),
            Err(e) => {
                assert_eq!(e.code(), Some("unknown_sender"), "{e}");
                assert!(
                    sent - changed < FRESH_FOR,
                    "still refused {:?} after the client was registered",
                    sent - changed
                );
            }
        }
    }
}

/// The allowlist is cached in every node process and follows changes made
/// through another process (LISTEN/NOTIFY), or by an operator's SQL while
/// the process's listening session is down, within the documented bound.
#[actix_rt::test]
async fn two_processes_follow_each_others_allowlist_changes_within_the_bound() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let args = ["--client-policy", "allowlist", "--admin-token", TOKEN];
    let a = NodeProcess::spawn(&db, keys.path(), &args);
    let b = NodeProcess::spawn(&db, keys.path(), &args);
    let info = a.client.node_info().await.unwrap();
    let alice = seal::identity();
    let alice_id = alice.verifying_key().to_bytes();
    let refused = b
        .client
        .submit(&seal::envelope(&alice, &info, "t", serde_json::json!("first")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("unknown_sender"));

    // Registered through A: B accepts her within the bound.
    a.client.add_client(TOKEN, alice_id).await.unwrap();
    let took = shows_within_the_bound(&b.client, &info, &alice, Instant::now(), true).await;
    eprintln!("registration on A seen by B after {took:?}");

    // Removed through A: B refuses her within the bound.
    a.client.remove_client(TOKEN, alice_id).await.unwrap();
    let took = shows_within_the_bound(&b.client, &info, &alice, Instant::now(), false).await;
    eprintln!("removal on A seen by B after {took:?}");

    // B's listening session ends and an operator registers her with SQL
    // meanwhile: B misses the notification but not the change (it asks the
    // database until its session is back, then reloads the list).
    let ended = db.execute(&format!(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'"
    ));
    assert_eq!(ended, 2, "each process has one listening session");
    db.execute(&format!(
        "INSERT INTO clients (client_id, added_at) VALUES ('\\x{}', 0)",
        hex::encode(alice_id)
    ));
    let took = shows_within_the_bound(&b.client, &info, &alice, Instant::now(), true).await;
    eprintln!("SQL registration seen by B after {took:?} (its session was down)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.execute(&format!(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{APPLICATION_NAME}'"
    )) < 2
    {
        assert!(Instant::now() < deadline, "the listeners did not reconnect");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Back on the cache: a TRUNCATE (no row events) is followed too.
    db.execute("TRUNCATE clients");
    shows_within_the_bound(&a.client, &info, &alice, Instant::now(), false).await;
    shows_within_the_bound(&b.client, &info, &alice, Instant::now(), false).await;
}
