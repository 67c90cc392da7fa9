//! `sealchain witness serve` as a real process, spoken to over HTTP:
//!
//! - every answer of tlog-witness's add-checkpoint (200, 400, 403, 404,
//!   409 with `text/x.tlog.size`, 422) and the monitoring GET;
//! - concurrent requests from one old size: exactly one advances the state;
//! - interop: checkpoints signed by an independent signer written here from
//!   the signed-note text, and by the `signed_note` crate, are cosigned; the
//!   cosignatures verify with a verifier written here from the
//!   tlog-cosignature text, plugged into `signed_note`'s note verification;
//!   the same holds for a real node's cosigned `GET /checkpoint`;
//! - restarts and `kill -9` of a witness under a stream of checkpoints from
//!   a real node: no cosigned checkpoint is forgotten, and afterwards the
//!   witness refuses anything inconsistent with what it last cosigned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sealchain_shared::Hash;
use sealchain_shared::merkle::{leaf_hash, root};
use sealchain_shared::note::{Checkpoint, NoteVerifier};
use sealchain_shared::policy::Policy;
use sealchain_shared::tlog::consistency_proof;
use sealchain_tests::witness::{log_arg, node_keys, policy_text, text, wait_witnessed};
use sealchain_tests::{NodeProcess, TestDb, WitnessProcess, seal};
use sha2::{Digest, Sha256};

// ---- an independent log signer and cosignature verifier, from the spec text ----

/// signed-note: `key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]`.
fn spec_key_id(name: &str, signature_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut input = name.as_bytes().to_vec();
    input.push(0x0a);
    input.push(signature_type);
    input.extend_from_slice(key.as_bytes());
    Sha256::digest(&input)[..4].try_into().unwrap()
}

/// A log that signs its checkpoints itself: text `origin\nsize\nbase64(root)\n`,
/// a blank line, `— origin base64(key ID || Ed25519(text))`.
struct SpecLog {
    origin: String,
    key: SigningKey,
}

impl SpecLog {
    fn new(origin: &str, seed: u8) -> Self {
        Self {
            origin: origin.into(),
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    fn vkey(&self) -> String {
        let vk = self.key.verifying_key();
        let mut raw = vec![0x01];
        raw.extend_from_slice(vk.as_bytes());
        format!(
            "{}+{}+{}",
            self.origin,
            hex::encode(spec_key_id(&self.origin, 0x01, &vk)),
            STANDARD.encode(raw)
        )
    }

    fn text(&self, size: u64, root: &Hash) -> String {
        format!("{}\n{size}\n{}\n", self.origin, STANDARD.encode(root))
    }

    fn note(&self, size: u64, root: &Hash) -> String {
        let text = self.text(size, root);
        let mut sig = spec_key_id(&self.origin, 0x01, &self.key.verifying_key()).to_vec();
        sig.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.origin, STANDARD.encode(sig))
    }
}

/// tlog-cosignature, Ed25519: the line is `— name base64(keyID || u64be(t) || sig)`
/// with key ID type 0x04, over `cosignature/v1\ntime t\n` + the checkpoint text.
/// Returns the timestamp.
fn spec_verify_cosignature(vkey: &str, text: &str, line: &str) -> Result<u64, String> {
    let mut parts = vkey.splitn(3, '+');
    let (name, id_hex, key_b64) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let raw = STANDARD.decode(key_b64).unwrap();
    assert_eq!(raw[0], 0x04, "a cosignature key has type 0x04");
    let key = VerifyingKey::from_bytes(&raw[1..].try_into().unwrap()).unwrap();
    assert_eq!(hex::encode(spec_key_id(name, 0x04, &key)), id_hex);
    let rest = line.strip_prefix("\u{2014} ").ok_or("no em dash")?;
    let (line_name, b64) = rest.split_once(' ').ok_or("no signature")?;
    if line_name != name {
        return Err(format!("name {line_name}"));
    }
    let sig = STANDARD.decode(b64).map_err(|e| e.to_string())?;
    if sig.len() != 4 + 8 + 64 || sig[..4] != spec_key_id(name, 0x04, &key) {
        return Err("not a timestamped signature by this key".into());
    }
    let t = u64::from_be_bytes(sig[4..12].try_into().unwrap());
    let message = format!("cosignature/v1\ntime {t}\n{text}");
    let signature = ed25519_dalek::Signature::from_slice(&sig[12..]).unwrap();
    key.verify(message.as_bytes(), &signature).map_err(|e| e.to_string())?;
    Ok(t)
}

/// The same cosignature check as a `signed_note` verifier, so the crate's
/// note parsing and key matching run over our witness's lines.
struct CosignatureVerifier {
    name: String,
    id: u32,
    vkey: String,
}

impl CosignatureVerifier {
    fn new(vkey: &str) -> Self {
        let mut parts = vkey.splitn(3, '+');
        let name = parts.next().unwrap().to_owned();
        let id = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
        Self {
            name,
            id,
            vkey: vkey.into(),
        }
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(sig);
        let line = format!("\u{2014} {} {}", self.name, STANDARD.encode(raw));
        spec_verify_cosignature(&self.vkey, std::str::from_utf8(msg).unwrap(), &line).is_ok()
    }
}

// ---- requests ----

async fn post(base: &str, body: impl Into<Vec<u8>>) -> (u16, String, String) {
    let mut response = awc::Client::new()
        .post(format!("{base}/add-checkpoint"))
        .send_body(body.into())
        .await
        .expect("the witness answers");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.body().limit(1 << 20).await.unwrap();
    (
        response.status().as_u16(),
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn leaves(n: usize, fork: u8) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[fork, (i & 0xff) as u8, (i >> 8) as u8]))
        .collect()
}

fn proof(all: &[Hash], old: u64, new: u64) -> Vec<Hash> {
    if old == 0 || old == new {
        return vec![];
    }
    let mut source: &[Hash] = all;
    consistency_proof(&mut source, old, new).unwrap().unwrap()
}

fn body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&STANDARD.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    out
}

fn request(log: &SpecLog, all: &[Hash], old: u64, size: u64) -> String {
    body(
        old,
        &proof(all, old, size),
        &log.note(size, &root(&all[..size as usize])),
    )
}

#[actix_rt::test]
async fn every_status_code_of_add_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = SpecLog::new("spec.example/log", 1);
    let other_log = SpecLog::new("other.example/log", 2);
    let impostor = SpecLog::new("spec.example/log", 3);
    let mut w = WitnessProcess::start(
        dir.path(),
        "w.example/witness",
        &[format!("{}={}", log.origin, log.vkey())],
    );
    let history = leaves(100, 0);
    let fork = leaves(100, 1);

    // Nothing cosigned yet: the monitoring GET has nothing.
    let (status, _) = text(&w.base, "/checkpoint/spec.example/log").await;
    assert_eq!(status, 404);

    // 200: first contact with old 0; the answer is the cosignature line.
    let (status, content_type, lines) = post(&w.base, request(&log, &history, 0, 10)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/plain; charset=utf-8"),
        "{lines}"
    );
    assert_eq!(lines.lines().count(), 1);
    spec_verify_cosignature(&w.vkey, &log.text(10, &root(&history[..10])), lines.trim_end()).unwrap();
    // 200 with a proof.
    let (status, _, lines) = post(&w.base, request(&log, &history, 10, 37)).await;
    assert_eq!(status, 200, "{lines}");

    // 409, text/x.tlog.size: a stale old size, or old 0 to ask.
    for old in [0, 10, 36] {
        let (status, content_type, size) = post(&w.base, request(&log, &history, old, 40)).await;
        assert_eq!(
            (status, content_type.as_str(), size.as_str()),
            (409, "text/x.tlog.size", "37\n")
        );
    }
    // 409: the same size with another root.
    let (status, content_type, size) = post(&w.base, request(&log, &fork, 37, 37)).await;
    assert_eq!(
        (status, content_type.as_str(), size.as_str()),
        (409, "text/x.tlog.size", "37\n")
    );
    // 422: a proof from 37 that does not lead from the cosigned root —
    // another history's, one hash flipped, or a proof of other sizes.
    let mut flipped = proof(&history, 37, 60);
    flipped[1][0] ^= 1;
    let note = log.note(60, &root(&history[..60]));
    for bad in [
        request(&log, &fork, 37, 60),
        body(37, &flipped, &note),
        body(37, &proof(&history, 36, 60), &note),
        body(37, &[], &note),
        body(37, &proof(&history, 10, 37), &log.note(37, &root(&history[..37]))),
    ] {
        let (status, _, why) = post(&w.base, bad).await;
        assert_eq!(status, 422, "{why}");
    }
    // 404: a log it does not follow. 403: no signature by its key (another
    // key under the same name, or the right text with no trusted signer).
    let (status, _, why) = post(&w.base, request(&other_log, &history, 0, 5)).await;
    assert_eq!(status, 404, "{why}");
    let (status, _, why) = post(&w.base, request(&impostor, &history, 37, 37)).await;
    assert_eq!(status, 403, "{why}");
    let mut tampered = request(&log, &history, 37, 60);
    tampered = tampered.replacen("spec.example/log\n60\n", "spec.example/log\n61\n", 1);
    let (status, _, why) = post(&w.base, tampered).await;
    assert_eq!(status, 403, "{why}");
    // 400: malformed requests, an old size above the checkpoint's, a proof
    // with old 0, more than 63 proof lines, a body over the limit.
    let note37 = log.note(37, &root(&history[..37]));
    let many = vec![[7u8; 32]; 64];
    let cases = [
        "".to_owned(),
        "old 37\n".to_owned(),
        format!("old 037\n\n{note37}"),
        format!("old 37\nnot base64\n\n{note37}"),
        format!("old 37\n\n{}", note37.replace('\u{2014}', "-")),
        format!("old 37\n\nnot a checkpoint\n\n{}", note37.lines().last().unwrap()),
        body(38, &[], &note37),
        body(0, &proof(&history, 10, 37), &note37),
        body(10, &many, &note37),
        format!("old 37\n\n{note37}{}", "x".repeat(100_000)),
    ];
    for bad in cases {
        let (status, content_type, why) = post(&w.base, bad.clone()).await;
        assert_eq!(status, 400, "{bad:.80?}: {why}");
        assert_eq!(content_type, "text/plain; charset=utf-8");
    }
    // None of it moved the state; the monitoring GET shows the checkpoint
    // with the log's signature and the witness's cosignature.
    let (status, held) = text(&w.base, "/checkpoint/spec.example/log").await;
    assert_eq!(status, 200);
    let log_key = NoteVerifier::parse(&log.vkey()).unwrap();
    let (cp, note) = Checkpoint::verify(held.as_bytes(), &log_key).unwrap();
    assert_eq!((cp.size, cp.root), (37, root(&history[..37])));
    let cosig = note.signatures.iter().find(|s| s.name == "w.example/witness").unwrap();
    spec_verify_cosignature(&w.vkey, &cp.to_text(), &cosig.line()).unwrap();
    // The state survives a restart.
    w.stop("TERM");
    w.restart();
    let (_, _, size) = post(&w.base, request(&log, &history, 0, 40)).await;
    assert_eq!(size, "37\n");
    let (_, info) = text(&w.base, "/").await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["verifier_key"], w.vkey.as_str());
    assert_eq!(info["logs"][0]["cosigned_size"], 37);
    // Evidence: the 409 of another root and the four failed proofs (a
    // proof between equal sizes that is not empty is refused, not kept).
    assert_eq!(info["logs"][0]["refusals"], 5);
}

#[actix_rt::test]
async fn concurrent_requests_from_one_old_size_cannot_both_advance() {
    let dir = tempfile::tempdir().unwrap();
    let log = SpecLog::new("spec.example/log", 1);
    let w = WitnessProcess::start(
        dir.path(),
        "w.example/witness",
        &[format!("{}={}", log.origin, log.vkey())],
    );
    let history = leaves(200, 0);
    let mut old = 0u64;
    for round in 0..30 {
        // Two requests from the same old size for two different sizes.
        let (a, b) = (old + 1 + round % 3, old + 4);
        let (ra, rb) = futures_util::join!(
            post(&w.base, request(&log, &history, old, a)),
            post(&w.base, request(&log, &history, old, b)),
        );
        let won: Vec<u64> = [(a, &ra), (b, &rb)]
            .iter()
            .filter(|(_, r)| r.0 == 200)
            .map(|(size, _)| *size)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {ra:?} {rb:?}");
        let lost = if won[0] == a { &rb } else { &ra };
        assert_eq!(
            (lost.0, lost.2.clone()),
            (409, format!("{}\n", won[0])),
            "round {round}"
        );
        old = won[0];
        let (_, held) = text(&w.base, "/checkpoint/spec.example/log").await;
        assert!(
            held.starts_with(&format!("spec.example/log\n{old}\n")),
            "round {round}: {held}"
        );
    }
}

#[actix_rt::test]
async fn interop_independent_signers_and_verifiers() {
    let dir = tempfile::tempdir().unwrap();
    // A log signed by signed_note's own signer, and one by the signer above.
    // signed_note's signer key string: PRIVATE+KEY+name+id+base64(0x01 || seed).
    let seed = [5u8; 32];
    let crate_log = SpecLog::new("crate.example/log", 5);
    let vkey = crate_log.vkey();
    let id = vkey.split('+').nth(1).unwrap();
    let skey = format!(
        "PRIVATE+KEY+crate.example/log+{id}+{}",
        STANDARD.encode([&[1u8][..], &seed].concat())
    );
    let signer = signed_note::StandardSigner::new(&skey).unwrap();
    let spec = SpecLog::new("spec.example/log", 9);
    let w = WitnessProcess::start(
        dir.path(),
        "w.example/witness",
        &[
            format!("crate.example/log={vkey}"),
            format!("{}={}", spec.origin, spec.vkey()),
        ],
    );
    let history = leaves(50, 0);
    for (size, old) in [(20u64, 0u64), (50, 20)] {
        let text = format!(
            "crate.example/log\n{size}\n{}\n",
            STANDARD.encode(root(&history[..size as usize]))
        );
        let mut note = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
        note.add_sigs(&[&signer]).unwrap();
        let note = String::from_utf8(note.to_bytes()).unwrap();
        let (status, _, lines) = post(&w.base, body(old, &proof(&history, old, size), &note)).await;
        assert_eq!(status, 200, "signed_note's checkpoint: {lines}");
        // signed_note verifies the note with the log's key and ours.
        let both = format!("{note}{lines}");
        let parsed = signed_note::Note::from_bytes(both.as_bytes()).unwrap();
        let verifiers = signed_note::VerifierList::new(vec![
            Box::new(signed_note::StandardVerifier::new(&vkey).unwrap()),
            Box::new(CosignatureVerifier::new(&w.vkey)),
        ]);
        let (verified, unverified) = parsed.verify(&verifiers).expect("signed_note verifies both");
        assert_eq!((verified.len(), unverified.len()), (2, 0));
        let t = spec_verify_cosignature(&w.vkey, &text, lines.trim_end()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            t <= now && now - t < 600,
            "the timestamp is the witness's clock: {t} vs {now}"
        );
        // A flipped cosignature bit is refused by the crate too.
        let mut raw = STANDARD.decode(lines.trim_end().rsplit_once(' ').unwrap().1).unwrap();
        raw[20] ^= 1;
        let bad = format!("{note}\u{2014} w.example/witness {}\n", STANDARD.encode(raw));
        assert!(
            signed_note::Note::from_bytes(bad.as_bytes())
                .unwrap()
                .verify(&verifiers)
                .is_err()
        );
    }
    let (status, _, lines) = post(&w.base, request(&spec, &history, 0, 30)).await;
    assert_eq!(status, 200, "the spec-text signer's checkpoint: {lines}");
    spec_verify_cosignature(&w.vkey, &spec.text(30, &root(&history[..30])), lines.trim_end()).unwrap();

    // A real node's cosigned checkpoint, verified by signed_note with the
    // node's verifier key and the witness's cosignature key.
    let (keys_dir, log) = node_keys(dir.path(), "node.example/log");
    let nw = WitnessProcess::start(dir.path(), "nw.example/witness", &[log_arg(&log)]);
    let db = TestDb::new();
    let node = NodeProcess::spawn(
        &db,
        &keys_dir,
        &[
            "--origin",
            "node.example/log",
            "--checkpoint-interval",
            "0.1",
            "--witness",
            &nw.arg("nw"),
        ],
    );
    let info = node.client.node_info().await.unwrap();
    let key = seal::identity();
    node.client
        .submit(&seal::envelope(&key, &info, "interop", serde_json::json!(1)))
        .await
        .unwrap();
    let policy = Policy::parse(policy_text(None, &[&nw], 1).as_bytes()).unwrap();
    wait_witnessed(&node.base, &policy, &log, 1, Duration::from_secs(20)).await;
    let (_, served) = text(&node.base, "/checkpoint").await;
    let parsed = signed_note::Note::from_bytes(served.as_bytes()).unwrap();
    let verifiers = signed_note::VerifierList::new(vec![
        Box::new(signed_note::StandardVerifier::new(&info.verifier_key).unwrap()),
        Box::new(CosignatureVerifier::new(&nw.vkey)),
    ]);
    let (verified, _) = parsed
        .verify(&verifiers)
        .expect("signed_note verifies the node's cosigned checkpoint");
    assert_eq!(verified.len(), 2);
}

#[actix_rt::test]
async fn kill_9_and_restarts_of_a_witness_under_a_stream_of_checkpoints_forget_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (keys_dir, log) = node_keys(dir.path(), "stream.example/log");
    let mut w = WitnessProcess::start(dir.path(), "w.example/witness", &[log_arg(&log)]);
    let db = TestDb::new();
    let node = NodeProcess::spawn(
        &db,
        &keys_dir,
        &[
            "--origin",
            "stream.example/log",
            "--checkpoint-interval",
            "0.05",
            "--witness",
            &w.arg("w"),
            "--witness-timeout",
            "2",
        ],
    );
    let info = node.client.node_info().await.unwrap();
    let policy = Policy::parse(policy_text(None, &[&w], 1).as_bytes()).unwrap();
    // A stream of messages, so checkpoints keep coming while the witness dies.
    let client = node.client.clone();
    let stream_info = info.clone();
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let stopping = stop.clone();
    let sender = actix_rt::spawn(async move {
        let key = seal::identity();
        let mut sent = 0u64;
        while !stopping.get() {
            client
                .submit(&seal::envelope(&key, &stream_info, "stream", serde_json::json!(sent)))
                .await
                .unwrap();
            sent += 1;
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    });
    let mut cosigned = 0;
    for round in 0..6 {
        // The node holds a cosignature of size S: the witness said 200 for S.
        let seen = wait_witnessed(&node.base, &policy, &log, cosigned + 1, Duration::from_secs(30)).await;
        cosigned = seen.checkpoint.size;
        w.stop(if round % 3 == 2 { "TERM" } else { "KILL" });
        // Checkpoints pile up while it is down.
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        w.restart();
        let (status, held) = text(&w.base, "/checkpoint/stream.example/log").await;
        assert_eq!(status, 200, "round {round}");
        let (cp, note) = Checkpoint::verify(held.as_bytes(), &log).unwrap();
        assert!(
            cp.size >= cosigned,
            "round {round}: the witness forgot: it holds {} after the node got its cosignature of {cosigned}",
            cp.size
        );
        let cosig = note.signatures.iter().find(|s| s.name == w.name).unwrap();
        spec_verify_cosignature(&w.vkey, &cp.to_text(), &cosig.line()).unwrap();
    }
    stop.set(true);
    let sent = sender.await.unwrap();
    // The node catches up after the last restart: everything is cosigned.
    let last = wait_witnessed(&node.base, &policy, &log, sent, Duration::from_secs(30)).await;
    assert_eq!(last.checkpoint.size, sent);

    // Then the witness refuses anything inconsistent with what it holds:
    // a fork signed with the log's own key, at its size and beyond.
    let keys = sealchain_node::keys::NodeKeys::load_or_create(&keys_dir).unwrap().0;
    let forged = |size: u64, root: Hash| {
        Checkpoint {
            origin: "stream.example/log".into(),
            size,
            root,
            extensions: vec![],
        }
        .sign(&keys.signing)
        .unwrap()
        .to_text()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let (_, held) = text(&w.base, "/checkpoint/stream.example/log").await;
        let (cp, _) = Checkpoint::verify(held.as_bytes(), &log).unwrap();
        if cp.size == sent || Instant::now() > deadline {
            break cp;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(held.size, sent);
    let (status, _, size) = post(&w.base, body(0, &[], &forged(sent + 5, [1; 32]))).await;
    assert_eq!((status, size), (409, format!("{sent}\n")));
    let (status, _, _) = post(&w.base, body(sent, &[], &forged(sent, [2; 32]))).await;
    assert_eq!(status, 409);
    let (status, _, _) = post(&w.base, body(sent, &[[3; 32]], &forged(sent + 5, [4; 32]))).await;
    assert_eq!(status, 422);
    let (status, _, _) = post(&w.base, body(sent, &[], &forged(sent - 1, held.root))).await;
    assert_eq!(status, 400, "old above the size: it never goes back");
}
