//! Slow, idle and hostile clients against a node process: a request head
//! trickled byte by byte (slowloris), a body trickled, 5,000 idle
//! connections, a chunked body over the limit, deeply nested JSON. The
//! node cuts the slow ones off within `--client-timeout`, its memory stays
//! bounded, and other clients keep being served throughout. Every loop is
//! bounded in count and time; all traffic stays on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sealchain_tests::{NodeProcess, TestDb, seal};

fn addr(node: &NodeProcess) -> String {
    node.base.trim_start_matches("http://").to_owned()
}

/// The node's resident memory, from /proc.
fn rss_kib(node: &NodeProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Writes `step` every `every` until the node closes the connection or
/// answers; returns how long that took and what it answered.
fn trickle(mut stream: TcpStream, head: &[u8], step: &[u8], every: Duration, limit: Duration) -> (Duration, String) {
    let started = Instant::now();
    stream.set_read_timeout(Some(every)).unwrap();
    stream.write_all(head).unwrap();
    let mut answer = Vec::new();
    while started.elapsed() < limit {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if stream.write_all(step).is_err() {
            break;
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

/// A normal client is served while `busy` runs on another thread.
async fn served_meanwhile(node: &NodeProcess) {
    let info = node.client.node_info().await.unwrap();
    let receipt = node
        .client
        .submit(&seal::envelope(
            &seal::identity(),
            &info,
            "t",
            serde_json::json!("meanwhile"),
        ))
        .await
        .expect("a normal client is served");
    assert!(receipt.seq < 1_000);
}

#[actix_rt::test]
async fn a_trickled_head_and_a_trickled_body_are_cut_off_while_others_are_served() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, &keys.path().join("k"), &["--client-timeout", "2"]);
    let a = addr(&node);

    // Slowloris: the head never ends.
    let head_loris = {
        let a = a.clone();
        actix_rt::task::spawn_blocking(move || {
            trickle(
                TcpStream::connect(&a).unwrap(),
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n",
                b"X-Slow: 1\r\n",
                Duration::from_millis(300),
                Duration::from_secs(20),
            )
        })
    };
    // A body announced but trickled.
    let body_loris = {
        let a = a.clone();
        actix_rt::task::spawn_blocking(move || {
            trickle(
                TcpStream::connect(&a).unwrap(),
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{",
                b" ",
                Duration::from_millis(300),
                Duration::from_secs(20),
            )
        })
    };
    served_meanwhile(&node).await;
    let (took, answer) = head_loris.await.unwrap();
    assert!(
        took < Duration::from_secs(8),
        "the trickled head held its connection {took:?}"
    );
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (took, answer) = body_loris.await.unwrap();
    assert!(
        took < Duration::from_secs(8),
        "the trickled body held its connection {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    served_meanwhile(&node).await;
}

#[actix_rt::test]
async fn five_thousand_idle_connections_keep_memory_bounded_and_are_closed() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, &keys.path().join("k"), &["--client-timeout", "2"]);
    served_meanwhile(&node).await;
    let before = rss_kib(&node);
    let a = addr(&node);
    let idle = actix_rt::task::spawn_blocking(move || {
        let mut conns = Vec::with_capacity(5_000);
        while conns.len() < 5_000 {
            match TcpStream::connect(&a) {
                Ok(c) => conns.push(c),
                // The listen backlog is full for a moment: let it drain.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        conns
    })
    .await
    .unwrap();
    assert_eq!(idle.len(), 5_000);
    served_meanwhile(&node).await;
    let during = rss_kib(&node);
    eprintln!("node RSS: {before} KiB before, {during} KiB with 5,000 idle connections");
    assert!(
        during < before + 100 * 1024,
        "5,000 idle connections grew the node by {} KiB",
        during - before
    );
    // The node closes connections that never send a request head.
    let closed = actix_rt::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        idle.into_iter()
            .step_by(50)
            .filter(|conn| {
                let mut c = conn.try_clone().unwrap();
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10));
                c.set_read_timeout(Some(left)).unwrap();
                let mut buf = [0u8; 64];
                // Closed, or answered 408 before being closed.
                match c.read(&mut buf) {
                    Ok(0) => true,
                    Ok(n) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
                    Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 100, "every sampled idle connection was closed");
    served_meanwhile(&node).await;
}

#[actix_rt::test]
async fn a_chunked_body_over_the_limit_and_deeply_nested_json_are_refused_cleanly() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(
        &db,
        &keys.path().join("k"),
        &["--max-message-bytes", "65471", "--max-body-bytes", "100000"],
    );
    let a = addr(&node);
    // Chunked, no Content-Length: refused once the limit is passed.
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 10_000, "a".repeat(10_000));
        for _ in 0..20 {
            if s.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // 30,000 nested arrays in body, sealed and signed: refused as invalid
    // (deeper than 100), no stack overflow, the node serves on.
    let info = node.client.node_info().await.unwrap();
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let key = seal::identity();
    let message = format!(
        r#"{{"v":1,"sender":"{}","node":"{}","nonce":"00112233445566778899aabbccddeeff","ts":{},"topic":"t","body":{deep}}}"#,
        hex::encode(key.verifying_key().as_bytes()),
        info.signing_key,
        sealchain_shared::now_ms()
    );
    let envelope = seal::seal_message_bytes(&key, &info, message.as_bytes());
    let err = node.client.submit(&envelope).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("invalid_message")),
        "{err}"
    );
    assert!(err.to_string().contains("deeper than 100"), "{err}");
    served_meanwhile(&node).await;
}

/// A client connection left idle for longer than the node keeps one open
/// (5 s) is not used again, even when the client was too busy to notice
/// the node closing it. `sealchain bench --messages 200000` sealed its
/// envelopes on its only thread for longer than that after its first
/// request, then sent one message on the closed connection and got no
/// answer ("connector has been disconnected").
#[actix_rt::test]
async fn a_connection_the_node_closed_as_idle_is_not_used_again() {
    let db = TestDb::new();
    let keys = tempfile::tempdir().unwrap();
    let node = NodeProcess::spawn(&db, keys.path(), &[]);
    assert!(sealchain_client::api::IDLE_CONNECTION_REUSE < sealchain_node::startup::KEEP_ALIVE);
    let info = node.client.node_info().await.unwrap();
    // Busy, as with sealing: this thread's event loop does not run.
    std::thread::sleep(sealchain_node::startup::KEEP_ALIVE + Duration::from_secs(1));
    let envelope = seal::envelope(&seal::identity(), &info, "t", serde_json::json!(1));
    let receipt = node
        .client
        .submit(&envelope)
        .await
        .expect("the first request after the idle time is answered");
    assert_eq!(receipt.seq, 0);
}
