//! The explorer's read-only queries beyond the API's (`crate::db::repo`).
//! Each is an index lookup or a bounded index range, so a page costs the
//! same on a chain of a thousand messages or a billion:
//!
//! | query | index |
//! | --- | --- |
//! | newest blocks first | `blocks` primary key, backwards |
//! | a sender's number | `senders_key_key` |
//! | a sender's messages, newest first, a page at a time; their count up to 10,001 | `messages_sender_seq` (`sender_id`, `seq`) |
//! | a message by leaf hash | `messages_leaf_hash` |
//! | the checkpoint of a minute ago | `checkpoints` primary key, backwards, stopping at the first match |

use diesel::dsl::exists;
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::db::models::{BlockRow, CheckpointRow, MessageRow};
use crate::db::schema::{blocks, checkpoints, messages, senders};

/// `messages.sender_id = (SELECT id FROM senders WHERE key = sender)`:
/// the messages of `sender`; none for a key that has no number.
#[diesel::dsl::auto_type]
fn of_sender<'a>(sender: &'a [u8]) -> _ {
    messages::sender_id.nullable().eq(senders::table
        .filter(senders::key.eq(sender))
        .select(senders::id)
        .single_value())
}

/// Up to `limit` blocks with index at most `top`, newest first.
pub(crate) fn blocks_desc(conn: &mut PgConnection, top: i64, limit: i64) -> QueryResult<Vec<BlockRow>> {
    blocks::table
        .filter(blocks::idx.le(top))
        .order(blocks::idx.desc())
        .limit(limit)
        .select(BlockRow::as_select())
        .load(conn)
}

/// Up to `limit` messages of `sender` with seq below `before`, newest first.
pub(crate) fn sender_messages(
    conn: &mut PgConnection,
    sender: &[u8],
    before: i64,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(of_sender(sender))
        .filter(messages::seq.lt(before))
        .order(messages::seq.desc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)
}

/// The seq and time of a sender's first message.
pub(crate) fn sender_first(conn: &mut PgConnection, sender: &[u8]) -> QueryResult<Option<(i64, i64)>> {
    messages::table
        .filter(of_sender(sender))
        .order(messages::seq.asc())
        .select((messages::seq, messages::received_at))
        .first(conn)
        .optional()
}

/// How many messages `sender` has, counting at most `cap`: an index scan of
/// at most `cap` entries. (Ordered as the index is, so that Postgres never
/// prefers a sequential scan for a sender with many messages: one that sent
/// only near the end of the table would have it read the whole table.)
pub(crate) fn sender_count(conn: &mut PgConnection, sender: &[u8], cap: i64) -> QueryResult<i64> {
    let capped = messages::table
        .filter(of_sender(sender))
        .order((messages::sender_id.asc(), messages::seq.asc()))
        .select(messages::seq)
        .limit(cap)
        .load::<i64>(conn)?;
    Ok(capped.len() as i64)
}

/// Whether `sender` has any message.
pub(crate) fn sender_exists(conn: &mut PgConnection, sender: &[u8]) -> QueryResult<bool> {
    diesel::select(exists(messages::table.filter(of_sender(sender)))).get_result(conn)
}

/// The seq of the message with this leaf hash.
pub(crate) fn seq_by_leaf_hash(conn: &mut PgConnection, leaf_hash: &[u8]) -> QueryResult<Option<i64>> {
    messages::table
        .filter(messages::leaf_hash.eq(leaf_hash))
        .select(messages::seq)
        .first(conn)
        .optional()
}

/// The newest checkpoint published at or before `at` (Unix ms), else the
/// oldest one.
pub(crate) fn checkpoint_at(conn: &mut PgConnection, at: i64) -> QueryResult<Option<CheckpointRow>> {
    let before = checkpoints::table
        .filter(checkpoints::published_at.le(at))
        .order(checkpoints::tree_size.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?;
    match before {
        Some(row) => Ok(Some(row)),
        None => checkpoints::table
            .order(checkpoints::tree_size.asc())
            .select(CheckpointRow::as_select())
            .first(conn)
            .optional(),
    }
}
