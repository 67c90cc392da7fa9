//! What a dishonest node holding its own signing key can do to its chain
//! in Postgres: rewrite rows, then reseal every block from the first changed
//! one so that each block, on its own, verifies again. Tests use it to show
//! which rewrites an auditor still catches.

use std::path::Path;

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Bytea, Integer};
use sealchain_shared::block::{BlockHeader, GENESIS_PREV_HASH};
use sealchain_shared::{Hash, merkle};

use crate::TestDb;

#[derive(diesel::QueryableByName)]
struct BlockFields {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = BigInt)]
    first_seq: i64,
    #[diesel(sql_type = Integer)]
    message_count: i32,
    #[diesel(sql_type = BigInt)]
    sealed_at: i64,
}

#[derive(diesel::QueryableByName)]
struct Leaf {
    #[diesel(sql_type = Bytea)]
    leaf_hash: Vec<u8>,
}

#[derive(diesel::QueryableByName)]
struct HashRow {
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

/// Recomputes the Merkle root, previous hash, hash and signature of every
/// block from index `from` on (from the messages' stored leaf hashes), signs
/// them with the node key in `keys_dir`, and moves the chain's head to the
/// new last hash.
pub fn reseal_blocks(db: &TestDb, keys_dir: &Path, from: i64) {
    let key = sealchain_shared::keys::load_signing_key(&keys_dir.join("signing.pem")).expect("node key");
    let mut conn = db.connect();
    let mut prev: Hash = if from == 0 {
        GENESIS_PREV_HASH
    } else {
        let row: HashRow = diesel::sql_query(format!("SELECT hash FROM blocks WHERE idx = {}", from - 1))
            .get_result(&mut conn)
            .expect("the block before");
        row.hash.as_slice().try_into().expect("32 bytes")
    };
    let blocks: Vec<BlockFields> = diesel::sql_query(format!(
        "SELECT idx, first_seq, message_count, sealed_at FROM blocks WHERE idx >= {from} ORDER BY idx"
    ))
    .load(&mut conn)
    .expect("blocks");
    for b in blocks {
        let leaves: Vec<Hash> = diesel::sql_query(format!(
            "SELECT leaf_hash FROM messages WHERE seq >= {} AND seq < {} ORDER BY seq",
            b.first_seq,
            b.first_seq + i64::from(b.message_count)
        ))
        .load::<Leaf>(&mut conn)
        .expect("leaves")
        .into_iter()
        .map(|l| l.leaf_hash.as_slice().try_into().expect("32 bytes"))
        .collect();
        let header = BlockHeader {
            index: b.idx as u64,
            prev_hash: prev,
            merkle_root: merkle::root(&leaves),
            first_seq: b.first_seq as u64,
            message_count: b.message_count as u32,
            sealed_at: b.sealed_at,
        };
        let hash = header.hash();
        diesel::sql_query(
            "UPDATE blocks SET hash = $1, prev_hash = $2, merkle_root = $3, signature = $4 WHERE idx = $5",
        )
        .bind::<Bytea, _>(hash.to_vec())
        .bind::<Bytea, _>(prev.to_vec())
        .bind::<Bytea, _>(header.merkle_root.to_vec())
        .bind::<Bytea, _>(header.sign(&key).to_bytes().to_vec())
        .bind::<BigInt, _>(b.idx)
        .execute(&mut conn)
        .expect("reseal");
        prev = hash;
    }
    diesel::sql_query("UPDATE chain_state SET head_hash = $1")
        .bind::<Bytea, _>(prev.to_vec())
        .execute(&mut conn)
        .expect("head");
}

/// The start of a statement that stores a message of the sender whose key
/// is `$1`: numbers the key if it has no number yet ([`SENDER_ID`] is then
/// its number).
const NUMBERED: &str =
    "WITH numbered AS (INSERT INTO senders (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING id)";

/// The number of the sender whose key is `$1`, after [`NUMBERED`].
const SENDER_ID: &str = "coalesce((SELECT id FROM numbered), (SELECT id FROM senders WHERE key = $1))";

/// Makes message `at` a copy of message `of` (same sender, nonce, signature
/// and bytes: a replay), dropping the uniqueness constraint that would stop
/// an honest node.
pub fn replay_message(db: &TestDb, of: i64, at: i64) {
    db.execute("ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_sender_nonce_key");
    let changed = db.execute(&format!(
        "UPDATE messages SET (sender_id, nonce, signature, message, leaf_hash) = \
         (SELECT sender_id, nonce, signature, message, leaf_hash FROM messages WHERE seq = {of}) WHERE seq = {at}"
    ));
    assert_eq!(changed, 1, "message {at} exists");
}

/// Replaces message `seq` with another, validly signed one (`signed`:
/// `signature || message_bytes`), updating its sender, nonce and leaf hash:
/// each message still verifies on its own, only history can tell.
pub fn replace_message(db: &TestDb, seq: i64, signed: &sealchain_shared::message::SignedMessage) {
    let parsed = sealchain_shared::message::Message::parse(&signed.message_bytes, usize::MAX).expect("a valid message");
    let mut conn = db.connect();
    let changed = diesel::sql_query(format!(
        "{NUMBERED} UPDATE messages SET sender_id = {SENDER_ID}, nonce = $2, signature = $3, message = $4, \
         leaf_hash = $5 WHERE seq = $6"
    ))
    .bind::<Bytea, _>(parsed.sender.to_vec())
    .bind::<Bytea, _>(parsed.nonce.to_vec())
    .bind::<Bytea, _>(signed.signature.to_vec())
    .bind::<Bytea, _>(signed.message_bytes.clone())
    .bind::<Bytea, _>(signed.leaf_hash().to_vec())
    .bind::<BigInt, _>(seq)
    .execute(&mut conn)
    .expect("replace the message");
    assert_eq!(changed, 1, "message {seq} exists");
}

/// Throws the log's state away (tree, tile hashes, checkpoints), as a node
/// rewriting its history would: the next start of the node re-derives the
/// tree from the stored messages and signs a checkpoint of it with its own
/// key. The node must be stopped.
pub fn forget_log(db: &TestDb) {
    db.execute("DELETE FROM tile_hashes");
    db.execute("DELETE FROM checkpoints");
    db.execute("UPDATE chain_state SET tree_size = 0, compact_range = '\\x'");
}

/// Inserts `signed` as a message row at `seq`, as someone writing to the
/// database behind the node's back would (received now).
pub fn insert_message(db: &TestDb, seq: i64, signed: &sealchain_shared::message::SignedMessage) {
    let parsed = sealchain_shared::message::Message::parse(&signed.message_bytes, usize::MAX).expect("well formed");
    diesel::sql_query(format!(
        "{NUMBERED} INSERT INTO messages (seq, sender_id, nonce, signature, message, leaf_hash, received_at) \
         VALUES ($2, {SENDER_ID}, $3, $4, $5, $6, $7)"
    ))
    .bind::<Bytea, _>(parsed.sender.to_vec())
    .bind::<BigInt, _>(seq)
    .bind::<Bytea, _>(parsed.nonce.to_vec())
    .bind::<Bytea, _>(signed.signature.to_vec())
    .bind::<Bytea, _>(signed.message_bytes.clone())
    .bind::<Bytea, _>(signed.leaf_hash().to_vec())
    .bind::<BigInt, _>(sealchain_shared::now_ms())
    .execute(&mut db.connect())
    .expect("insert a message row");
}

/// Renumbers every message from seq `from` on by `by` (positive or
/// negative), in two steps so that no two rows share a seq on the way.
pub fn shift_messages(db: &TestDb, from: i64, by: i64) {
    const PARK: i64 = 1 << 40;
    db.execute(&format!("UPDATE messages SET seq = seq + {PARK} WHERE seq >= {from}"));
    db.execute(&format!(
        "UPDATE messages SET seq = seq - {PARK} + {by} WHERE seq >= {}",
        from + PARK
    ));
}

/// Exchanges the positions of blocks `a` and `b` (in three steps: the
/// index is the primary key), which is the same as exchanging every other
/// column of their rows.
pub fn swap_blocks(db: &TestDb, a: i64, b: i64) {
    const PARK: i64 = 1 << 40;
    db.execute(&format!("UPDATE blocks SET idx = {PARK} WHERE idx = {a}"));
    db.execute(&format!("UPDATE blocks SET idx = {a} WHERE idx = {b}"));
    db.execute(&format!("UPDATE blocks SET idx = {b} WHERE idx = {PARK}"));
}
