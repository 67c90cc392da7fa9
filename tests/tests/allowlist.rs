//! The allowlist policy and its admin API: registered senders are
//! accepted, unknown ones get 403 (and nothing is stored), and the admin
//! API wants the bearer token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use sealchain_client::api::NodeClient;
use sealchain_node::allowlist::{APPLICATION_NAME, FRESH_FOR};
use sealchain_shared::SigningKey;
use sealchain_shared::api::{ClientList, ClientPolicy, NodeInfo, Problem};
use sealchain_tests::{NodeOptions, NodeProcess, TestDb, TestNode, get_raw, seal};

const TOKEN: &str = "correct-horse-battery-staple";

/// Allowlist policy, admin token [`TOKEN`].
fn allowlist_options() -> NodeOptions {
    NodeOptions::default()
        .arg("--client-policy", "allowlist")
        .arg("--admin-token", TOKEN)
}

#[actix_rt::test]
async fn registered_senders_only() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, allowlist_options()).await;
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
            .content_type("application/json")
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

/// An admin request with exactly this `Authorization` header (or none):
/// status, `WWW-Authenticate`, body.
async fn admin(
    base: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<String>,
) -> (u16, String, Vec<u8>) {
    let client = awc::Client::new();
    let url = format!("{base}{path}");
    let mut request = match method {
        "POST" => client.post(url).content_type("application/json"),
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    if let Some(value) = authorization {
        request = request.insert_header(("authorization", value));
    }
    let sent = match body {
        Some(body) => request.send_body(body).await,
        None => request.send().await,
    };
    let mut response = sent.expect("the node answers");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.body().await.unwrap().to_vec();
    (response.status().as_u16(), challenge, bytes)
}

fn new_client_body(key: &SigningKey) -> String {
    format!(r#"{{"client_id":"{}"}}"#, hex::encode(key.verifying_key().as_bytes()))
}

/// Whether `key` may send to the node: 202, or 403 `unknown_sender`.
async fn allowed(client: &NodeClient, info: &NodeInfo, key: &SigningKey) -> bool {
    match client
        .submit(&seal::envelope(key, info, "t", serde_json::json!("allowed?")))
        .await
    {
        Ok(_) => true,
        Err(e) if e.code() == Some("unknown_sender") => false,
        Err(e) => panic!("{e}"),
    }
}

/// RFC 6750 §2.1 and RFC 9110 §11: the credentials are `Bearer <token>`,
/// the scheme name case-insensitive. No token, another scheme, a token
/// that is a prefix or an extension of the real one (or differs in case):
/// `401 unauthorized` with `WWW-Authenticate: Bearer`, for POST, DELETE and
/// GET alike, and the allowlist is unchanged. `bearer`, `BEARER` and several
/// spaces are the same credentials as `Bearer `.
#[actix_rt::test]
async fn admin_credentials_must_be_exactly_the_bearer_token() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, allowlist_options()).await;
    let (alice, bob) = (seal::identity(), seal::identity());
    let bob_hex = hex::encode(bob.verifying_key().as_bytes());
    let bob_entry = node
        .client
        .add_client(TOKEN, bob.verifying_key().to_bytes())
        .await
        .unwrap();

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{TOKEN}"));
    let wrong: Vec<Option<String>> = vec![
        None,
        Some(format!("Basic {basic}")),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Token {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {}", &TOKEN[..1])),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {TOKEN} {TOKEN}")),
        Some(format!("Bearer {}", TOKEN.to_uppercase())),
        Some(format!("Bearer{TOKEN}")),
    ];
    for authorization in &wrong {
        let auth = authorization.as_deref();
        for (method, path, body) in [
            ("POST", "/v1/clients".to_owned(), Some(new_client_body(&alice))),
            ("DELETE", format!("/v1/clients/{bob_hex}"), None),
            ("GET", "/v1/clients".to_owned(), None),
        ] {
            let (status, challenge, bytes) = admin(&node.base, method, &path, auth, body).await;
            assert_eq!(status, 401, "{method} with {auth:?}");
            assert_eq!(challenge, "Bearer", "{method} with {auth:?}");
            let problem: Problem = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(problem.code, "unauthorized", "{method} with {auth:?}");
            assert!(!problem.detail.contains(TOKEN), "the token is never echoed");
        }
    }
    // Nothing changed: bob is still the only client, alice is refused.
    let listed = node.client.list_clients(TOKEN).await.unwrap();
    assert_eq!(listed.clients, vec![bob_entry.clone()]);
    assert!(!allowed(&node.client, &node.info, &alice).await);
    assert!(allowed(&node.client, &node.info, &bob).await);

    // The scheme in any case, followed by one or more spaces.
    let alice_hex = hex::encode(alice.verifying_key().as_bytes());
    for scheme in ["Bearer ", "bearer ", "BEARER ", "bEaReR   "] {
        let auth = format!("{scheme}{TOKEN}");
        let (status, _, body) = admin(
            &node.base,
            "POST",
            "/v1/clients",
            Some(&auth),
            Some(new_client_body(&alice)),
        )
        .await;
        assert_eq!(status, 201, "{auth:?}: {}", String::from_utf8_lossy(&body));
        let (status, _, body) = admin(&node.base, "GET", "/v1/clients", Some(&auth), None).await;
        assert_eq!(status, 200);
        let list: ClientList = serde_json::from_slice(&body).unwrap();
        assert_eq!(list.clients.len(), 2, "{auth:?}");
        let (status, _, _) = admin(
            &node.base,
            "DELETE",
            &format!("/v1/clients/{alice_hex}"),
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, 204, "{auth:?}");
    }

    // Authorized, but uppercase hex or a body not declared JSON: 400 and
    // 415, nothing changed.
    let bearer = format!("Bearer {TOKEN}");
    let upper = format!(r#"{{"client_id":"{}"}}"#, alice_hex.to_uppercase());
    let (status, _, _) = admin(&node.base, "POST", "/v1/clients", Some(&bearer), Some(upper)).await;
    assert_eq!(status, 400, "uppercase client_id");
    let path = format!("/v1/clients/{}", bob_hex.to_uppercase());
    let (status, _, _) = admin(&node.base, "DELETE", &path, Some(&bearer), None).await;
    assert_eq!(status, 400, "uppercase key in the path");
    let untyped = awc::Client::new()
        .post(format!("{}/v1/clients", node.base))
        .bearer_auth(TOKEN)
        .send_body(new_client_body(&alice))
        .await
        .unwrap();
    assert_eq!(untyped.status().as_u16(), 415, "no Content-Type");
    assert_eq!(node.client.list_clients(TOKEN).await.unwrap().clients, vec![bob_entry]);
    node.stop().await;
}

/// The allowlist lives in the database: a restarted node keeps it.
#[actix_rt::test]
async fn the_allowlist_survives_a_restart() {
    let db = TestDb::new();
    let mut node = TestNode::spawn(&db, allowlist_options()).await;
    let _keys = node.take_keys();
    let keys_dir = node.keys_dir.clone();
    let (alice, mallory) = (seal::identity(), seal::identity());
    let entry = node
        .client
        .add_client(TOKEN, alice.verifying_key().to_bytes())
        .await
        .unwrap();
    assert!(allowed(&node.client, &node.info, &alice).await);
    node.stop().await;

    let node = TestNode::spawn(&db, allowlist_options().keys_dir(&keys_dir)).await;
    assert_eq!(node.client.list_clients(TOKEN).await.unwrap().clients, vec![entry]);
    assert!(allowed(&node.client, &node.info, &alice).await);
    assert!(!allowed(&node.client, &node.info, &mallory).await);
    node.stop().await;
}

/// Two node processes in allowlist mode on `db`, with the node keys in
/// `keys`, and the node's info.
async fn two_allowlist_processes(db: &TestDb, keys: &std::path::Path) -> (NodeProcess, NodeProcess, NodeInfo) {
    let args = ["--client-policy", "allowlist", "--admin-token", TOKEN];
    let a = NodeProcess::spawn(db, keys, &args);
    let b = NodeProcess::spawn(db, keys, &args);
    let info = a.client.node_info().await.unwrap();
    (a, b, info)
}

/// Two node processes on one database share one allowlist table: what one
/// registers the other lists at once and registers again as the same
/// entry, what one removes the other no longer lists and cannot remove.
/// (Whether each process *accepts* a sender follows its cache, within the
/// bound of the test below.)
#[actix_rt::test]
async fn two_processes_share_one_allowlist() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let (a, b, info) = two_allowlist_processes(&db, keys.path()).await;
    let alice = seal::identity();
    let alice_id = alice.verifying_key().to_bytes();
    assert!(!allowed(&b.client, &info, &alice).await);

    let entry = a.client.add_client(TOKEN, alice_id).await.unwrap();
    assert_eq!(b.client.list_clients(TOKEN).await.unwrap().clients, vec![entry.clone()]);
    // Registering again on b finds a's entry (200, the same entry).
    assert_eq!(b.client.add_client(TOKEN, alice_id).await.unwrap(), entry);

    b.client.remove_client(TOKEN, alice_id).await.unwrap();
    assert!(a.client.list_clients(TOKEN).await.unwrap().clients.is_empty());
    let err = a.client.remove_client(TOKEN, alice_id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
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
    let (a, b, info) = two_allowlist_processes(&db, keys.path()).await;
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
