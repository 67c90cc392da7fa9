//! Every row of PROTOCOL §4's table: the status, the `code`, an
//! `application/problem+json` body — and nothing stored: after each
//! rejection the next valid message takes the very next seq.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealchain_shared::api::{Block, BlockMessage, BlockSummary, Problem, Receipt};
use sealchain_shared::audit::{self, AuditError, Auditor};
use sealchain_shared::block::{BlockHeader, GENESIS_PREV_HASH};
use sealchain_shared::envelope::Envelope;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::message::{self, Message, MessageBuilder, SignatureError, SignedMessage};
use sealchain_shared::{SigningKey, VerifyingKey, merkle, now_ms};
use sealchain_tests::{NodeOptions, RawAnswer, TestDb, TestNode, forge, post_chunked, post_raw, post_typed, seal};

/// Sends one bad request at a time and checks that nothing was stored.
struct Checker {
    node: TestNode,
    client: SigningKey,
    next_seq: u64,
}

impl Checker {
    async fn start(db: &TestDb, options: NodeOptions) -> Self {
        let mut checker = Self {
            node: TestNode::spawn(db, options).await,
            client: seal::identity(),
            next_seq: 0,
        };
        checker.accepts_next().await;
        checker
    }

    /// A valid message takes the next seq: nothing was stored in between.
    async fn accepts_next(&mut self) {
        let envelope = seal::envelope(&self.client, &self.node.info, "t", serde_json::json!(null));
        let receipt = self.node.client.submit(&envelope).await.unwrap();
        assert_eq!(
            receipt.seq, self.next_seq,
            "a rejected message consumed a seq or was stored"
        );
        self.next_seq += 1;
    }

    /// `body` gets `status` and `code` as problem+json whose detail contains
    /// `detail`; then the next valid message takes the next seq.
    async fn rejects(&mut self, body: Vec<u8>, status: u16, code: &str, detail: &str) {
        let answer = post_raw(&self.node.base, "/v1/messages", body).await;
        self.rejected(answer, status, code, detail).await;
    }

    /// `answer` is `status` and `code` as problem+json whose detail contains
    /// `detail`; then the next valid message takes the next seq.
    async fn rejected(&mut self, answer: RawAnswer, status: u16, code: &str, detail: &str) {
        let (got, content_type, bytes) = answer;
        let problem: Problem = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not a problem object ({e}): {}", String::from_utf8_lossy(&bytes)));
        assert_eq!(
            (got, problem.code.as_str()),
            (status, code),
            "detail: {}",
            problem.detail
        );
        assert_eq!(problem.status, status);
        assert_eq!(content_type, "application/problem+json");
        assert!(
            problem.detail.contains(detail),
            "detail {:?} should mention {detail:?}",
            problem.detail
        );
        self.accepts_next().await;
    }

    /// `answer` is `202 Accepted` with the receipt of the next seq, signed
    /// by the node.
    fn accepted(&mut self, answer: RawAnswer, what: &str) {
        let (status, _, bytes) = answer;
        assert_eq!(status, 202, "{what}: {}", String::from_utf8_lossy(&bytes));
        let receipt: Receipt = serde_json::from_slice(&bytes).expect("a receipt");
        let key = VerifyingKey::from_bytes(&self.info().signing_key.0).unwrap();
        audit::verify_receipt(&receipt, &key, self.info().block_size).expect("receipt signature");
        assert_eq!(receipt.seq, self.next_seq, "{what}");
        self.next_seq += 1;
    }

    /// Seals `signed` and expects `401 invalid_signature`.
    async fn rejects_signature(&mut self, signed: &SignedMessage) {
        let envelope = seal::seal_bytes(self.info(), &signed.to_bytes());
        self.rejects(
            envelope.to_json().into_bytes(),
            401,
            "invalid_signature",
            "does not verify",
        )
        .await;
    }

    /// Signs `message` (any bytes) with the checker's key and seals it: a
    /// request body.
    fn body_of(&self, message: &str) -> Vec<u8> {
        seal::seal_message_bytes(&self.client, &self.node.info, message.as_bytes())
            .to_json()
            .into_bytes()
    }

    /// Signs `message` (any bytes) with the checker's key, seals it, and
    /// expects the rejection.
    async fn rejects_message(&mut self, message: &str, status: u16, code: &str, detail: &str) {
        let envelope = seal::seal_message_bytes(&self.client, &self.node.info, message.as_bytes());
        self.rejects(envelope.to_json().into_bytes(), status, code, detail)
            .await;
    }

    fn info(&self) -> &sealchain_shared::api::NodeInfo {
        &self.node.info
    }

    /// A well-formed message text for this node, from this client.
    fn message_text(&self, ts: i64, nonce: &str) -> String {
        format!(
            r#"{{"v":1,"sender":"{}","node":"{}","nonce":"{nonce}","ts":{ts},"topic":"t","body":{{}}}}"#,
            hex::encode(self.client.verifying_key().as_bytes()),
            self.info().signing_key
        )
    }
}

#[actix_rt::test]
async fn payload_too_large_413() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    // Just over the default 64 KiB limit, otherwise a valid envelope shape.
    let body = format!(r#"{{"enc":"{}","ct":"{}"}}"#, "00".repeat(32), "A".repeat(64 * 1024));
    c.rejects(body.into_bytes(), 413, "payload_too_large", "65536").await;
    // A configured limit applies too.
    drop(c);
    let db = TestDb::new();
    let mut c = Checker::start(
        &db,
        NodeOptions::default()
            .arg("--max-body-bytes", 2048)
            .arg("--max-message-bytes", 1024),
    )
    .await;
    // A message within --max-message-bytes whose envelope is not within
    // --max-body-bytes cannot exist: take an envelope of 2,049 bytes.
    let big = format!(r#"{{"enc":"{}","ct":"{}"}}"#, "00".repeat(32), "A".repeat(2049 - 82));
    assert_eq!(big.len(), 2049);
    c.rejects(big.into_bytes(), 413, "payload_too_large", "2048").await;
}

#[actix_rt::test]
async fn malformed_envelope_400() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let good = seal::envelope(&c.client, c.info(), "t", serde_json::json!(1));
    let enc = hex::encode(good.enc);
    let ct = STANDARD.encode(&good.ct);
    let cases = [
        ("not json".to_owned(), "enc"),
        (String::new(), "enc"),
        ("[]".to_owned(), "enc"),
        (format!(r#"{{"enc":"{enc}"}}"#), "ct"),
        (format!(r#"{{"ct":"{ct}"}}"#), "enc"),
        (format!(r#"{{"enc":"{enc}","ct":"{ct}","extra":1}}"#), "extra"),
        (format!(r#"{{"enc":"{enc}","ct":"{ct}","ct":"{ct}"}}"#), "ct"),
        (format!(r#"{{"enc":1,"ct":"{ct}"}}"#), "enc"),
        (format!(r#"{{"enc":"{}","ct":"{ct}"}}"#, &enc[..62]), "enc"),
        (format!(r#"{{"enc":"{enc}00","ct":"{ct}"}}"#), "enc"),
        (
            format!(
                r#"{{"enc":"{}","ct":"{ct}"}}"#,
                enc.replace(|ch: char| ch.is_ascii_digit(), "z")
            ),
            "enc",
        ),
        (format!(r#"{{"enc":"{}","ct":"{ct}"}}"#, enc.to_uppercase()), "enc"),
        (format!(r#"{{"enc":"{enc}","ct":"{}"}}"#, &ct[..ct.len() - 1]), "ct"),
        (format!(r#"{{"enc":"{enc}","ct":"***"}}"#), "ct"),
    ];
    for (body, detail) in cases {
        c.rejects(body.into_bytes(), 400, "malformed_envelope", detail).await;
    }
}

#[actix_rt::test]
async fn decryption_failed_400() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let signed = seal::signed(&c.client, c.info(), "t", serde_json::json!(1)).to_bytes();
    let good = seal::seal_bytes(c.info(), &signed);

    // Sealed to another node's key.
    let other = EncryptionKey::generate().unwrap();
    let wrong_key = Envelope::seal(&other.public_key(), &signed).unwrap();
    // One flipped bit in the ciphertext, in the tag, in enc.
    let mut tampered_ct = good.clone();
    tampered_ct.ct[3] ^= 0x01;
    let mut tampered_tag = good.clone();
    *tampered_tag.ct.last_mut().unwrap() ^= 0x80;
    let mut tampered_enc = good.clone();
    tampered_enc.enc[0] ^= 0x01;
    // Truncated: shorter than a tag, and missing its last byte.
    let mut truncated = good.clone();
    truncated.ct.truncate(truncated.ct.len() - 1);
    let tiny = Envelope {
        enc: good.enc,
        ct: vec![0; 8],
    };
    // An all-zero DH output (RFC 9180 §7.1.4): enc is a small-order point.
    let zero_dh = Envelope {
        enc: [0; 32],
        ct: good.ct.clone(),
    };
    for envelope in [
        wrong_key,
        tampered_ct,
        tampered_tag,
        tampered_enc,
        truncated,
        tiny,
        zero_dh,
    ] {
        c.rejects(
            envelope.to_json().into_bytes(),
            400,
            "decryption_failed",
            "could not be opened",
        )
        .await;
    }
}

#[actix_rt::test]
async fn invalid_message_422_names_the_member() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let now = now_ms();
    let nonce = "00112233445566778899aabbccddeeff";
    let good = c.message_text(now, nonce);

    // Plaintext shorter than 65 bytes: no room for signature and message.
    for len in [0, 1, 64] {
        let envelope = seal::seal_bytes(c.info(), &vec![7u8; len]);
        c.rejects(
            envelope.to_json().into_bytes(),
            422,
            "invalid_message",
            "64-byte signature",
        )
        .await;
    }
    // Not UTF-8, not JSON, not an object.
    let mut not_utf8 = vec![0u8; 64];
    not_utf8.extend_from_slice(b"{\"v\":\xff}");
    let envelope = seal::seal_bytes(c.info(), &not_utf8);
    c.rejects(envelope.to_json().into_bytes(), 422, "invalid_message", "UTF-8")
        .await;
    c.rejects_message("not json", 422, "invalid_message", "JSON object")
        .await;
    c.rejects_message("[1,2]", 422, "invalid_message", "JSON object").await;

    let sender = hex::encode(c.client.verifying_key().as_bytes());
    let cases: Vec<(String, &str)> = vec![
        (good.replace(r#""v":1"#, r#""v":2"#), "`v`"),
        (good.replace(r#""v":1"#, r#""v":"1""#), "`v`"),
        (good.replace(&sender, &sender[..63]), "`sender`"),
        (good.replace(&sender, &sender.to_uppercase()), "`sender`"),
        (good.replace(&c.info().signing_key.to_string(), "00"), "`node`"),
        (good.replace(nonce, "0011"), "`nonce`"),
        (good.replace(nonce, &"g".repeat(32)), "`nonce`"),
        (good.replace(&now.to_string(), &format!("\"{now}\"")), "`ts`"),
        (good.replace(&now.to_string(), "1.5"), "`ts`"),
        (good.replace(r#""topic":"t""#, r#""topic":"""#), "`topic`"),
        (good.replace(r#""topic":"t""#, r#""topic":"UPPER""#), "`topic`"),
        (
            good.replace(r#""topic":"t""#, &format!(r#""topic":"{}""#, "a".repeat(65))),
            "`topic`",
        ),
        (good.replace(r#""topic":"t""#, r#""topic":7"#), "`topic`"),
        (good.replace(r#","body":{}"#, ""), "`body`"),
        (good.replace(r#""v":1,"#, ""), "`v`"),
        (good.replace(r#""v":1,"#, r#""v":1,"v":1,"#), "`v`"),
        (good.replace(r#""v":1,"#, r#""v":1,"color":"red","#), "`color`"),
        // A duplicate spelled with an escape is still a duplicate: names
        // are compared after unescaping.
        (
            good.replace(r#""v":1,"#, r#""v":1,"\u0076":1,"#),
            "duplicate member `v`",
        ),
        // Uppercase hex in the other hex members (`sender` is above).
        (
            good.replace(
                &c.info().signing_key.to_string(),
                &c.info().signing_key.to_string().to_uppercase(),
            ),
            "`node`",
        ),
        (good.replace(nonce, &nonce.to_uppercase()), "`nonce`"),
    ];
    for (message, member) in cases {
        c.rejects_message(&message, 422, "invalid_message", member).await;
    }

    // The message size limit (default 16 KiB) applies to message_bytes.
    let big = MessageBuilder::new(c.info().signing_key.0, "t", &serde_json::json!("x".repeat(17 * 1024)))
        .unwrap()
        .sign(&c.client)
        .unwrap();
    let envelope = seal::seal_bytes(c.info(), &big.to_bytes());
    c.rejects(envelope.to_json().into_bytes(), 422, "invalid_message", "16384")
        .await;
}

#[actix_rt::test]
async fn wrong_node_422_and_invalid_signature_401() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;

    // Bound to another node's signing key.
    let other_node = seal::identity().verifying_key();
    let mut info = c.info().clone();
    info.signing_key.0 = other_node.to_bytes();
    let to_other = seal::signed(&c.client, &info, "t", serde_json::json!(1));
    let envelope = seal::seal_bytes(c.info(), &to_other.to_bytes());
    c.rejects(envelope.to_json().into_bytes(), 422, "wrong_node", "node")
        .await;

    // Signed by a key other than `sender`.
    let message = c.message_text(now_ms(), "0102030405060708090a0b0c0d0e0f10");
    let impostor = seal::identity();
    let envelope = seal::seal_message_bytes(&impostor, c.info(), message.as_bytes());
    c.rejects(
        envelope.to_json().into_bytes(),
        401,
        "invalid_signature",
        "does not verify",
    )
    .await;

    // A flipped signature bit.
    let mut signed = seal::signed(&c.client, c.info(), "t", serde_json::json!(2));
    signed.signature[10] ^= 0x04;
    c.rejects_signature(&signed).await;

    // A sender that is not a valid Ed25519 point cannot have signed anything.
    let bad_point = "02".to_owned() + &"00".repeat(30) + "80";
    let message = c
        .message_text(now_ms(), "0102030405060708090a0b0c0d0e0f11")
        .replace(&hex::encode(c.client.verifying_key().as_bytes()), &bad_point);
    c.rejects_message(&message, 401, "invalid_signature", "not a valid Ed25519 public key")
        .await;
}

#[actix_rt::test]
async fn stale_timestamp_422() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default().arg("--max-skew", 60)).await;
    let now = now_ms();
    for (ts, nonce) in [
        (now - 61_000, "000000000000000000000000000000a1"),
        (now + 61_000, "000000000000000000000000000000a2"),
        (0, "000000000000000000000000000000a3"),
        (i64::MAX, "000000000000000000000000000000a4"),
        (i64::MIN, "000000000000000000000000000000a5"),
    ] {
        let message = c.message_text(ts, nonce);
        c.rejects_message(&message, 422, "stale_timestamp", "60000 ms").await;
    }
    // Within the skew is fine.
    let message = c.message_text(now - 30_000, "000000000000000000000000000000a6");
    let envelope = seal::seal_message_bytes(&c.client, c.info(), message.as_bytes());
    assert_eq!(c.node.client.submit(&envelope).await.unwrap().seq, c.next_seq);
    c.next_seq += 1;
}

#[actix_rt::test]
async fn duplicate_409() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let message = c.message_text(now_ms(), "ffeeddccbbaa99887766554433221100");
    let first = seal::seal_message_bytes(&c.client, c.info(), message.as_bytes());
    let receipt = c.node.client.submit(&first).await.unwrap();
    assert_eq!(receipt.seq, c.next_seq);
    c.next_seq += 1;

    // The same envelope again, and the same message resealed: a resend,
    // answered 200 with the original receipt, storing nothing.
    let resealed = seal::seal_message_bytes(&c.client, c.info(), message.as_bytes());
    for envelope in [&first, &resealed] {
        let (status, _, body) = post_raw(&c.node.base, "/v1/messages", envelope.to_json().into_bytes()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let again: sealchain_shared::api::Receipt = serde_json::from_slice(&body).unwrap();
        assert_eq!(again, receipt, "the original receipt, signature included");
    }
    // Another message that reuses the nonce: 409.
    let reuse = c
        .message_text(now_ms() + 1, "ffeeddccbbaa99887766554433221100")
        .replace("\"body\":{}", "\"body\":2");
    let reused_nonce = seal::seal_message_bytes(&c.client, c.info(), reuse.as_bytes());
    c.rejects(reused_nonce.to_json().into_bytes(), 409, "duplicate", "nonce")
        .await;

    // Another sender may use the same nonce.
    let other = seal::identity();
    let theirs = c.message_text(now_ms(), "ffeeddccbbaa99887766554433221100").replace(
        &hex::encode(c.client.verifying_key().as_bytes()),
        &hex::encode(other.verifying_key().as_bytes()),
    );
    let envelope = seal::seal_message_bytes(&other, c.info(), theirs.as_bytes());
    assert_eq!(c.node.client.submit(&envelope).await.unwrap().seq, c.next_seq);
}

#[actix_rt::test]
async fn duplicates_within_one_batch_keep_the_first() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let client = seal::identity();
    let envelope = seal::envelope(&client, &node.info, "t", serde_json::json!(1));
    // The same envelope 20 times at once: the writer sees several in one
    // batch; one is stored, every copy gets its receipt.
    let results = futures_util::future::join_all((0..20).map(|_| node.client.submit(&envelope))).await;
    let receipts: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every copy gets the receipt"))
        .collect();
    assert!(receipts.iter().all(|r| *r == receipts[0]), "one receipt for all copies");
    assert_eq!(receipts[0].seq, 0);
    let next = seal::envelope(&client, &node.info, "t", serde_json::json!(2));
    assert_eq!(
        node.client.submit(&next).await.unwrap().seq,
        1,
        "copies consumed no seq"
    );
}

/// PROTOCOL §2 (1.1): the literal members carry no JSON escape, and `body`
/// holds no lone surrogate; escaped member *names* are unescaped as any JSON
/// parser does (docs/protocol.md). Trailing bytes after the object are not
/// one JSON object. Each refusal stores nothing.
#[actix_rt::test]
async fn escapes_lone_surrogates_and_trailing_bytes_422() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let good = c.message_text(now_ms(), "0123456789abcdef0123456789abcdef");
    let sender = hex::encode(c.client.verifying_key().as_bytes());
    let cases = [
        (
            good.replacen(
                &format!("\"{sender}\""),
                &format!("\"\\u00{:x}{}\"", sender.as_bytes()[0], &sender[1..]),
                1,
            ),
            "sender",
        ),
        (
            good.replacen("\"0123456789abcdef", "\"\\u0030123456789abcdef", 1),
            "nonce",
        ),
        (good.replacen("\"topic\":\"t\"", "\"topic\":\"a\\/b\"", 1), "topic"),
        (good.replacen("\"topic\":\"t\"", "\"topic\":\"\\u0074\"", 1), "topic"),
        (good.replacen("\"body\":{}", "\"body\":\"\\udc00\"", 1), "body"),
        (good.replacen("\"body\":{}", "\"body\":[\"\\ud800x\"]", 1), "body"),
    ];
    for (message, member) in &cases {
        assert_ne!(message, &good, "the case changed the message");
        c.rejects_message(message, 422, "invalid_message", &format!("`{member}`"))
            .await;
    }
    for trailing in [format!("{good} x"), format!("{good}{{}}"), format!("{good}\u{0}")] {
        c.rejects_message(&trailing, 422, "invalid_message", "JSON").await;
    }
    // An escaped member name is the member: accepted, stored as sent.
    let escaped_name = good.replacen("\"v\":1", "\"\\u0076\":1", 1);
    let envelope = seal::seal_message_bytes(&c.client, c.info(), escaped_name.as_bytes());
    let receipt = c.node.client.submit(&envelope).await.unwrap();
    assert_eq!(receipt.seq, c.next_seq);
    let stored = c.node.client.message(receipt.seq).await.unwrap();
    assert_eq!(stored.message, escaped_name, "stored byte for byte");
    c.next_seq += 1;
    // A valid surrogate pair in body is fine.
    let pair = c.message_text(now_ms(), "0123456789abcdef0123456789abcde0").replacen(
        "\"body\":{}",
        "\"body\":\"\\ud83d\\ude00\"",
        1,
    );
    let envelope = seal::seal_message_bytes(&c.client, c.info(), pair.as_bytes());
    assert_eq!(c.node.client.submit(&envelope).await.unwrap().seq, c.next_seq);
}

/// A message text of exactly `len` bytes from the checker's client (the
/// body a string of `x`).
fn message_of_len(c: &Checker, len: usize, nonce: &str) -> String {
    let base = c
        .message_text(now_ms(), nonce)
        .replacen("\"body\":{}", "\"body\":\"\"", 1);
    let text = base.replacen(
        "\"body\":\"\"",
        &format!("\"body\":\"{}\"", "x".repeat(len - base.len())),
        1,
    );
    assert_eq!(text.len(), len);
    text
}

/// A valid envelope of exactly `len` bytes: JSON whitespace after `{`.
fn envelope_of_len(c: &Checker, len: usize, nonce: &str) -> Vec<u8> {
    let json = String::from_utf8(c.body_of(&message_of_len(c, 1000, nonce))).unwrap();
    let body = format!("{{{}{}", " ".repeat(len - json.len()), &json[1..]);
    assert_eq!(body.len(), len);
    body.into_bytes()
}

/// The limits at their exact sizes: a message of 16,384 bytes (the default
/// `--max-message-bytes`) is accepted, one of 16,385 is `422` naming the
/// limit; a request body of 65,536 bytes (`--max-body-bytes`) is read and
/// handled, one of 65,537 is `413`, whether it comes with a
/// `Content-Length` or chunked (where the limit is checked while reading).
#[actix_rt::test]
async fn exact_size_limits_16384_and_65536() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let base = c.node.base.clone();

    let exact = c.body_of(&message_of_len(&c, 16_384, "000000000000000000000000000000b1"));
    c.accepted(
        post_raw(&base, "/v1/messages", exact).await,
        "a message of 16,384 bytes",
    );
    let over = c.body_of(&message_of_len(&c, 16_385, "000000000000000000000000000000b2"));
    c.rejects(over, 422, "invalid_message", "16384").await;

    let at_limit = envelope_of_len(&c, 65_536, "000000000000000000000000000000b3");
    c.accepted(
        post_raw(&base, "/v1/messages", at_limit).await,
        "a body of 65,536 bytes",
    );
    let at_limit = envelope_of_len(&c, 65_536, "000000000000000000000000000000b4");
    c.accepted(
        post_chunked(&base, "/v1/messages", at_limit, 4096).await,
        "a chunked body of 65,536 bytes",
    );
    let over = envelope_of_len(&c, 65_537, "000000000000000000000000000000b5");
    c.rejects(over.clone(), 413, "payload_too_large", "65536").await;
    // Chunks that end exactly at the limit, then one byte more.
    let answer = post_chunked(&base, "/v1/messages", over, 65_536).await;
    c.rejected(answer, 413, "payload_too_large", "65536").await;
}

/// RFC 8259: one JSON value, whitespace around it. Bytes after the
/// envelope's object are `malformed_envelope` (the message's are tested in
/// `escapes_lone_surrogates_and_trailing_bytes_422`); trailing whitespace is
/// allowed in both. Member names of the envelope are compared after JSON
/// unescaping, as the message's are (docs/protocol.md), so `"\u0065nc"` is
/// `enc`, and spelled twice it is a duplicate.
#[actix_rt::test]
async fn envelope_trailing_bytes_and_escaped_member_names() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let base = c.node.base.clone();
    let envelope = seal::envelope(&c.client, c.info(), "t", serde_json::json!("trailing"));
    let json = envelope.to_json();
    for trailing in [" x", "{}", "\u{0}", "]", "\"\""] {
        c.rejects(
            format!("{json}{trailing}").into_bytes(),
            400,
            "malformed_envelope",
            "trailing",
        )
        .await;
    }
    // The envelope was refused each time: it is still new.
    let answer = post_raw(&base, "/v1/messages", format!("{json}\r\n \t").into_bytes()).await;
    c.accepted(answer, "an envelope followed by whitespace");

    // A message followed by whitespace is one JSON object too.
    let message = format!("{}\n", c.message_text(now_ms(), "000000000000000000000000000000c1"));
    let answer = post_raw(&base, "/v1/messages", c.body_of(&message)).await;
    c.accepted(answer, "a message followed by whitespace");

    let fresh = seal::envelope(&c.client, c.info(), "t", serde_json::json!("escaped")).to_json();
    let escaped = fresh.replacen("\"enc\"", "\"\\u0065nc\"", 1);
    assert_ne!(escaped, fresh);
    let twice = fresh.replacen("\"ct\"", &format!("\"\\u0065nc\":\"{}\",\"ct\"", "00".repeat(32)), 1);
    c.rejects(twice.into_bytes(), 400, "malformed_envelope", "enc").await;
    let answer = post_raw(&base, "/v1/messages", escaped.into_bytes()).await;
    c.accepted(answer, "an envelope with an escaped member name");
}

/// PROTOCOL §3 posts envelopes as `Content-Type: application/json`. The
/// node holds clients to it (docs/protocol.md): a missing or other media
/// type is `415 unsupported_media_type`, decided from the headers before
/// the body is read, storing nothing; the type is case-insensitive and its
/// parameters (`charset`) are ignored.
#[actix_rt::test]
async fn content_type_must_be_application_json_415() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let base = c.node.base.clone();
    let body = seal::envelope(&c.client, c.info(), "t", serde_json::json!("typed"))
        .to_json()
        .into_bytes();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/octet-stream"),
        Some("application/jsonx"),
        Some("application/problem+json"),
        Some(""),
    ] {
        let answer = post_typed(&base, "/v1/messages", content_type, body.clone()).await;
        let detail = if content_type.is_none_or(str::is_empty) {
            "no Content-Type"
        } else {
            "send Content-Type: application/json"
        };
        c.rejected(answer, 415, "unsupported_media_type", detail).await;
    }
    // The same envelope, refused each time, is new when properly typed.
    let answer = post_typed(&base, "/v1/messages", Some("Application/JSON; charset=utf-8"), body).await;
    c.accepted(answer, "application/json, any case, with a charset");
    // 415 comes before the body is read, so before the size limit.
    let huge = vec![b' '; 70_000];
    let answer = post_typed(&base, "/v1/messages", Some("text/plain"), huge).await;
    c.rejected(answer, 415, "unsupported_media_type", "application/json")
        .await;
}

/// A one-message block holding `signed`, sealed by the node's key, as the
/// auditor behind `sealchain verify` would receive it.
fn audit_alone(node_key: &SigningKey, signed: &SignedMessage) -> Result<(), AuditError> {
    let parsed = Message::parse(&signed.message_bytes, usize::MAX).expect("well formed");
    let leaf = signed.leaf_hash();
    let header = BlockHeader {
        index: 0,
        prev_hash: GENESIS_PREV_HASH,
        merkle_root: merkle::root(&[leaf]),
        first_seq: 0,
        message_count: 1,
        sealed_at: now_ms(),
    };
    let block = Block {
        summary: BlockSummary {
            index: 0,
            hash: HexBytes(header.hash()),
            prev_hash: HexBytes(header.prev_hash),
            merkle_root: HexBytes(header.merkle_root),
            first_seq: 0,
            message_count: 1,
            sealed_at: header.sealed_at,
            signer: HexBytes(node_key.verifying_key().to_bytes()),
            signature: HexBytes(header.sign(node_key).to_bytes()),
        },
        messages: vec![BlockMessage {
            seq: 0,
            leaf_hash: HexBytes(leaf),
            sender: HexBytes(parsed.sender),
            received_at: header.sealed_at,
            signature: HexBytes(signed.signature),
            message: String::from_utf8(signed.message_bytes.clone()).expect("UTF-8"),
        }],
    };
    Auditor::new(node_key.verifying_key(), 1).check(&block)
}

/// PROTOCOL §2: strict Ed25519. The edge cases of "Taming the many EdDSAs"
/// (Chalkias, Garillot, Nikolaenko, SSR 2020; the speccheck vectors),
/// rebuilt over sealchain's domain-separated signing input as
/// `sealchain_tests::forge` explains: a small-order `sender` (vector 0's key
/// and signature, which anyone can produce), a small-order `R` (the identity,
/// and vector 0's order-8 point) and a non-canonical `S` (`S + L`). Each is
/// first shown to be the case it claims to be, then refused by
/// `message::verify`, by the auditor (`sealchain verify`) on a block holding
/// it, and by the node: `401 invalid_signature`, nothing stored.
#[actix_rt::test]
async fn strict_ed25519_401() {
    let db = TestDb::new();
    let mut c = Checker::start(&db, NodeOptions::default()).await;
    let node_key = c.info().signing_key.0;
    let node_signer = sealchain_shared::keys::load_signing_key(&c.node.keys_dir.join("signing.pem")).unwrap();
    let sender = c.client.verifying_key().to_bytes();

    // Non-canonical S: an honest signature, S re-encoded as S + L.
    let honest = seal::signed(&c.client, c.info(), "t", serde_json::json!("honest"));
    message::verify(&sender, &honest.message_bytes, &honest.signature).expect("the honest signature verifies");
    audit_alone(&node_signer, &honest).expect("the control block audits");
    let s_plus_l = forge::with_s_plus_l(&honest);
    assert!(forge::at_least_l(&s_plus_l.signature[32..]), "S + L is not canonical");
    assert!(!forge::at_least_l(&honest.signature[32..]));

    // A small-order sender: vector 0's key and signature, which verify
    // under the plain RFC 8032 equation although nobody has a secret key.
    let small_sender = forge::small_order_sender(node_key);
    let small_key: [u8; 32] = forge::bytes(forge::VECTOR0_PUBLIC_KEY);
    assert!(VerifyingKey::from_bytes(&small_key).unwrap().is_weak());
    assert!(forge::lenient_verify(
        &small_key,
        &small_sender.message_bytes,
        &small_sender.signature
    ));

    // A small-order R with the honest key: the identity passes the plain
    // equation, the order-8 point the cofactored one.
    let r_identity = forge::small_order_r(&c.client, node_key);
    assert!(forge::lenient_verify(
        &sender,
        &r_identity.message_bytes,
        &r_identity.signature
    ));
    let r_order_8 = forge::small_order_r_cofactored(&c.client, node_key);
    assert!(!forge::lenient_verify(
        &sender,
        &r_order_8.message_bytes,
        &r_order_8.signature
    ));
    assert!(forge::cofactored_verify(
        &sender,
        &r_order_8.message_bytes,
        &r_order_8.signature
    ));

    for (case, signed) in [
        ("S + L", &s_plus_l),
        ("small-order sender", &small_sender),
        ("R = identity", &r_identity),
        ("R of order 8", &r_order_8),
    ] {
        let parsed = Message::parse(&signed.message_bytes, 16_384).expect("the message itself is valid");
        assert_eq!(
            message::verify(&parsed.sender, &signed.message_bytes, &signed.signature),
            Err(SignatureError::Invalid),
            "{case}"
        );
        assert_eq!(
            audit_alone(&node_signer, signed),
            Err(AuditError::MessageSignature { seq: 0 }),
            "{case}"
        );
        c.rejects_signature(signed).await;
    }
}
