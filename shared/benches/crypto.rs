//! The protocol's crypto costs, per operation.
//!
//! - `node_per_message_crypto`: what the node must do for every accepted
//!   message however fast its storage is (PROTOCOL §3, §2, §5, §4): parse
//!   the envelope JSON, HPKE-open it, split and schema-check the message,
//!   strictly verify the client's signature, hash the Merkle leaf and sign
//!   the receipt; and the three dominant steps on their own.
//! - `merkle_root_100`, `audit_path_100`: sealing a default-size block (§5).
//! - `client_seal`: what a client does per message (§2 sign, §3 seal).
//!
//! Run: `cargo bench -p sealchain-shared --bench crypto`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sealchain_shared::envelope::Envelope;
use sealchain_shared::keys::EncryptionKey;
use sealchain_shared::message::{self, Message, MessageBuilder, SignedMessage};
use sealchain_shared::{Hash, SigningKey, merkle, receipt};

const RECEIVED_AT: i64 = 1_764_000_000_000;

fn node_keys() -> (SigningKey, EncryptionKey) {
    (
        SigningKey::from_bytes(&[0x42; 32]),
        EncryptionKey::from_bytes([0x24; 32]),
    )
}

/// A typical sensor reading: 277 bytes of `message_bytes` (341 with the
/// signature), about the smallest a real message gets, since the two keys
/// and the nonce alone take 160 hex characters.
fn builder(node: &SigningKey) -> MessageBuilder {
    MessageBuilder::new(
        node.verifying_key().to_bytes(),
        "sensors/temp",
        &serde_json::json!({"reading": 21.5, "unit": "C"}),
    )
    .unwrap()
}

fn node_per_message_crypto(c: &mut Criterion) {
    let (node, encryption) = node_keys();
    let client = SigningKey::from_bytes(&[0x07; 32]);
    let signed = builder(&node).sign(&client).unwrap();
    let plaintext = signed.to_bytes();
    // Sealed once, outside the timing loops.
    let envelope = Envelope::seal(&encryption.public_key(), &plaintext).unwrap();
    let body = envelope.to_json();
    let node_id = node.verifying_key().to_bytes();

    let mut group = c.benchmark_group("node_per_message_crypto");
    group.bench_function("all", |b| {
        b.iter(|| {
            let envelope = Envelope::from_json(black_box(body.as_bytes())).unwrap();
            let plaintext = envelope.open(&encryption).unwrap();
            let signed = SignedMessage::from_bytes(&plaintext).unwrap();
            let parsed = Message::parse(&signed.message_bytes, message::DEFAULT_MAX_MESSAGE_BYTES).unwrap();
            assert_eq!(parsed.node, node_id);
            message::verify(&parsed.sender, &signed.message_bytes, &signed.signature).unwrap();
            let leaf = signed.leaf_hash();
            receipt::sign(&node, 1234, &leaf, RECEIVED_AT)
        })
    });
    group.bench_function("open", |b| b.iter(|| black_box(&envelope).open(&encryption).unwrap()));
    group.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(&signed.message_bytes), message::DEFAULT_MAX_MESSAGE_BYTES).unwrap())
    });
    let sender = client.verifying_key().to_bytes();
    group.bench_function("verify", |b| {
        b.iter(|| message::verify(&sender, black_box(&signed.message_bytes), &signed.signature).unwrap())
    });
    let leaf = signed.leaf_hash();
    group.bench_function("receipt_sign", |b| {
        b.iter(|| receipt::sign(&node, 1234, black_box(&leaf), RECEIVED_AT))
    });
    group.finish();
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect()
}

fn merkle_root_100(c: &mut Criterion) {
    let leaves = leaves(100);
    c.bench_function("merkle_root_100", |b| b.iter(|| merkle::root(black_box(&leaves))));
}

fn audit_path_100(c: &mut Criterion) {
    let leaves = leaves(100);
    c.bench_function("audit_path_100", |b| {
        b.iter(|| merkle::audit_path(black_box(37), black_box(&leaves)).unwrap())
    });
}

fn client_seal(c: &mut Criterion) {
    let (node, encryption) = node_keys();
    let node_pk = encryption.public_key();
    let client = SigningKey::from_bytes(&[0x07; 32]);
    let builder = builder(&node);
    c.bench_function("client_seal", |b| {
        b.iter(|| {
            // A fresh nonce and timestamp each time, as a client does.
            let signed = black_box(&builder).sign(&client).unwrap();
            Envelope::seal(&node_pk, &signed.to_bytes()).unwrap()
        })
    });
}

criterion_group!(
    benches,
    node_per_message_crypto,
    merkle_root_100,
    audit_path_100,
    client_seal
);
criterion_main!(benches);
