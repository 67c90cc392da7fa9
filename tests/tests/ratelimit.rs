//! Rate limits (off by default): per client address before the body is
//! read, per sender after the signature; `429 rate_limited` with
//! `Retry-After`, nothing stored, other clients unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sealchain_tests::{NodeOptions, TestDb, TestNode, seal};

async fn post(base: &str, body: Vec<u8>) -> (u16, Option<String>, String) {
    let mut response = awc::Client::new()
        .post(format!("{base}/v1/messages"))
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    (response.status().as_u16(), retry, body)
}

#[actix_rt::test]
async fn a_sender_over_its_rate_gets_429_and_others_are_served() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--rate-limit-per-sender", 2)).await;
    let (alice, bob) = (seal::identity(), seal::identity());
    let mut limited = None;
    for i in 0..3 {
        let envelope = seal::envelope(&alice, &node.info, "t", serde_json::json!(i));
        let (status, retry, body) = post(&node.base, envelope.to_json().into_bytes()).await;
        if i < 2 {
            assert_eq!(status, 202, "{body}");
        } else {
            limited = Some((status, retry, body));
        }
    }
    let (status, retry, body) = limited.unwrap();
    assert_eq!(status, 429);
    assert!(
        body.contains("\"code\":\"rate_limited\"") && body.contains("sender"),
        "{body}"
    );
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Bob is not Alice; the refused message took no seq.
    let receipt = node
        .client
        .submit(&seal::envelope(&bob, &node.info, "t", serde_json::json!(0)))
        .await
        .unwrap();
    assert_eq!(receipt.seq, 2);
    // Alice's allowance comes back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let envelope = seal::envelope(&alice, &node.info, "t", serde_json::json!("again"));
        let (status, _, _) = post(&node.base, envelope.to_json().into_bytes()).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 429);
        assert!(Instant::now() < deadline, "the allowance never came back");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;
}

#[actix_rt::test]
async fn an_address_over_its_rate_gets_429_before_its_body_is_read() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--rate-limit-per-ip", 3)).await;
    // Undecryptable bodies: 400 while allowed, then 429 without looking.
    let junk = br#"{"enc":"1111111111111111111111111111111111111111111111111111111111111111","ct":"AAAA"}"#.to_vec();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post(&node.base, junk.clone()).await);
    }
    assert_eq!(
        statuses.iter().map(|s| s.0).collect::<Vec<_>>(),
        [400, 400, 400, 429, 429]
    );
    let (_, retry, body) = &statuses[3];
    assert!(body.contains("client address"), "{body}");
    assert!(retry.is_some());
    // Other endpoints are not limited.
    assert_eq!(node.client.block_count().await.unwrap(), 0);
    node.stop().await;
}
