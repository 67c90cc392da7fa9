//! Every query the node runs. Reads are index lookups (primary keys on
//! `seq` and `idx`, a unique index on block `hash`), so their cost does not
//! grow with the chain.

use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bytea, Integer, SmallInt, Untyped};

use super::models::{
    BlockRow, ChainState, CheckpointRow, ClientRow, CosignatureRow, MessageRow, NewChainState, TileHashRow,
};
use super::schema::{blocks, chain_state, checkpoints, clients, messages, tile_hashes, witness_cosignatures};

/// Creates the chain state row if the database is new, then returns it.
#[tracing::instrument(skip_all)]
pub fn init_chain_state(conn: &mut PgConnection, new: &NewChainState<'_>) -> QueryResult<ChainState> {
    diesel::insert_into(chain_state::table)
        .values(new)
        .on_conflict_do_nothing()
        .execute(conn)?;
    chain_state::table.select(ChainState::as_select()).first(conn)
}

/// Reads the chain state under a row lock, held until the transaction ends.
/// Every writer takes this lock first, so writers in several node processes
/// run one after another and build one chain.
pub fn lock_chain_state(conn: &mut PgConnection) -> QueryResult<ChainState> {
    chain_state::table
        .select(ChainState::as_select())
        .for_update()
        .first(conn)
}

/// Reads the chain state without locking.
pub fn chain_state(conn: &mut PgConnection) -> QueryResult<ChainState> {
    chain_state::table.select(ChainState::as_select()).first(conn)
}

/// The chain state a writer transaction leaves behind.
#[derive(Debug, Clone, Copy)]
pub struct ChainUpdate<'a> {
    /// Next seq to assign.
    pub next_seq: i64,
    /// Sealed blocks.
    pub block_count: i64,
    /// Hash of the newest block.
    pub head_hash: &'a [u8],
    /// Messages in the log's tree.
    pub tree_size: i64,
    /// The tree's compact range (32-byte hashes).
    pub compact_range: &'a [u8],
}

/// Stores the new chain state (inside the writer's transaction).
pub fn update_chain_state(conn: &mut PgConnection, update: &ChainUpdate<'_>) -> QueryResult<()> {
    diesel::update(chain_state::table)
        .set((
            chain_state::next_seq.eq(update.next_seq),
            chain_state::block_count.eq(update.block_count),
            chain_state::head_hash.eq(update.head_hash),
            chain_state::tree_size.eq(update.tree_size),
            chain_state::compact_range.eq(update.compact_range),
        ))
        .execute(conn)
        .map(drop)
}

/// Records the log's origin on a chain that began before the log existed.
pub fn set_origin(conn: &mut PgConnection, origin: &str) -> QueryResult<()> {
    diesel::update(chain_state::table.filter(chain_state::origin.is_null()))
        .set(chain_state::origin.eq(origin))
        .execute(conn)
        .map(drop)
}

/// Stores tile hashes (inside the writer's transaction).
pub fn insert_tile_hashes(conn: &mut PgConnection, rows: &[TileHashRow]) -> QueryResult<()> {
    diesel::insert_into(tile_hashes::table)
        .values(rows)
        .execute(conn)
        .map(drop)
}

/// Tile hashes of `level` with indexes `start .. start + count`, in order.
pub fn tile_hashes(conn: &mut PgConnection, level: i16, start: i64, count: i64) -> QueryResult<Vec<Vec<u8>>> {
    tile_hashes::table
        .filter(tile_hashes::level.eq(level))
        .filter(tile_hashes::idx.ge(start))
        .filter(tile_hashes::idx.lt(start + count))
        .order(tile_hashes::idx.asc())
        .select(tile_hashes::hash)
        .load(conn)
}

/// `signed_message` (signature and message bytes) of messages
/// `first_seq .. first_seq + count`, in seq order.
pub fn entries(conn: &mut PgConnection, first_seq: i64, count: i64) -> QueryResult<Vec<(Vec<u8>, Vec<u8>)>> {
    messages::table
        .filter(messages::seq.ge(first_seq))
        .filter(messages::seq.lt(first_seq + count))
        .order(messages::seq.asc())
        .select((messages::signature, messages::message))
        .load(conn)
}

/// Stores a checkpoint; another node process may have published the same
/// size first, which is fine (same tree, same root).
pub fn insert_checkpoint(conn: &mut PgConnection, row: &CheckpointRow) -> QueryResult<()> {
    diesel::insert_into(checkpoints::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)
        .map(drop)
}

/// The newest checkpoint.
pub fn latest_checkpoint(conn: &mut PgConnection) -> QueryResult<Option<CheckpointRow>> {
    checkpoints::table
        .order(checkpoints::tree_size.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// The checkpoint of one tree size.
pub fn checkpoint(conn: &mut PgConnection, tree_size: i64) -> QueryResult<Option<CheckpointRow>> {
    checkpoints::table
        .find(tree_size)
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// The checkpoint of one tree size, under a row lock held until the
/// transaction ends.
pub fn lock_checkpoint(conn: &mut PgConnection, tree_size: i64) -> QueryResult<Option<CheckpointRow>> {
    checkpoints::table
        .find(tree_size)
        .select(CheckpointRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Stores a witness's cosignature of a checkpoint, replacing an older one
/// of the same witness for the same checkpoint.
pub fn upsert_cosignature(conn: &mut PgConnection, row: &CosignatureRow) -> QueryResult<()> {
    diesel::insert_into(witness_cosignatures::table)
        .values(row)
        .on_conflict((witness_cosignatures::tree_size, witness_cosignatures::witness))
        .do_update()
        .set((
            witness_cosignatures::line.eq(&row.line),
            witness_cosignatures::cosigned_at.eq(row.cosigned_at),
        ))
        .execute(conn)
        .map(drop)
}

/// The cosignatures gathered for the checkpoint of `tree_size` from the
/// witnesses `witnesses` (verifier keys), in no particular order.
pub fn cosignatures(conn: &mut PgConnection, tree_size: i64, witnesses: &[String]) -> QueryResult<Vec<CosignatureRow>> {
    witness_cosignatures::table
        .filter(witness_cosignatures::tree_size.eq(tree_size))
        .filter(witness_cosignatures::witness.eq_any(witnesses))
        .select(CosignatureRow::as_select())
        .load(conn)
}

/// The newest tree size `witness` cosigned, if any.
pub fn witness_cosigned_size(conn: &mut PgConnection, witness: &str) -> QueryResult<Option<i64>> {
    witness_cosignatures::table
        .filter(witness_cosignatures::witness.eq(witness))
        .select(diesel::dsl::max(witness_cosignatures::tree_size))
        .first(conn)
}

/// Records the note served for a checkpoint that reached the quorum.
pub fn set_cosigned_note(conn: &mut PgConnection, tree_size: i64, note: &str) -> QueryResult<()> {
    diesel::update(checkpoints::table.find(tree_size))
        .set(checkpoints::cosigned_note.eq(note))
        .execute(conn)
        .map(drop)
}

/// The newest checkpoint that reached the quorum: its size and its note
/// with the cosignatures.
pub fn latest_cosigned(conn: &mut PgConnection) -> QueryResult<Option<(i64, String)>> {
    checkpoints::table
        .filter(checkpoints::cosigned_note.is_not_null())
        .order(checkpoints::tree_size.desc())
        .select((checkpoints::tree_size, checkpoints::cosigned_note.assume_not_null()))
        .first(conn)
        .optional()
}

/// What a resend is answered with: the stored message under a (sender,
/// nonce) pair.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoredMessage {
    /// Sender key.
    #[diesel(sql_type = Bytea)]
    pub sender: Vec<u8>,
    /// Nonce.
    #[diesel(sql_type = Bytea)]
    pub nonce: Vec<u8>,
    /// Its leaf hash: a resend has the same one.
    #[diesel(sql_type = Bytea)]
    pub leaf_hash: Vec<u8>,
    /// Where it was stored.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// When, by the node's clock.
    #[diesel(sql_type = BigInt)]
    pub received_at: i64,
}

/// The writer's statements have SQL texts that never change, so each
/// connection prepares each of them once, and Postgres parses and plans it
/// once per session instead of once per batch. diesel keeps a prepared
/// statement only for a query type that declares its text fixed
/// ([`QueryId::HAS_STATIC_QUERY_ID`]); `sql_query`, `UPDATE` and multi-row
/// inserts never do.
macro_rules! prepared_once {
    ($name:ident) => {
        impl QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl RunQueryDsl<PgConnection> for $name<'_> {}
    };
}

/// The stored messages among the candidate pairs (`senders[i]`,
/// `nonces[i]`), where `sender_ids[i]` is the number of `senders[i]`: one
/// probe of the unique index per pair.
/// (`sender_id = ANY(..) AND nonce = ANY(..)` would probe every
/// combination — quadratic in the batch size.)
struct StoredMessages<'a> {
    sender_ids: &'a [i64],
    senders: &'a [Vec<u8>],
    nonces: &'a [Vec<u8>],
}

prepared_once!(StoredMessages);

impl Query for StoredMessages<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for StoredMessages<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT c.sender, m.nonce, m.leaf_hash, m.seq, m.received_at FROM messages m \
             JOIN unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(self.sender_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bytea>, _>(self.senders)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bytea>, _>(self.nonces)?;
        out.push_sql(") AS c(sender_id, sender, nonce) ON m.sender_id = c.sender_id AND m.nonce = c.nonce");
        Ok(())
    }
}

/// The stored messages among the candidate pairs (`senders[i]`,
/// `nonces[i]`); `sender_ids[i]` is the number of `senders[i]`.
pub fn stored_messages(
    conn: &mut PgConnection,
    sender_ids: &[i64],
    senders: &[Vec<u8>],
    nonces: &[Vec<u8>],
) -> QueryResult<Vec<StoredMessage>> {
    StoredMessages {
        sender_ids,
        senders,
        nonces,
    }
    .load(conn)
}

/// A sender's number, as [`sender_ids`] reads it.
#[derive(Debug, Clone, QueryableByName)]
pub struct SenderId {
    /// Its number.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its key.
    #[diesel(sql_type = Bytea)]
    pub key: Vec<u8>,
}

/// The numbers of `keys` (distinct, in any order), numbering those that have
/// none yet, in one statement that commits by itself when run outside a
/// transaction. New keys are inserted in key order, so that two node
/// processes numbering overlapping sets wait for each other instead of
/// deadlocking. A key another process numbered after this statement's
/// snapshot is neither inserted (the unique index waits for that process
/// and skips it) nor seen, and is missing from the answer: ask again.
pub fn sender_ids(conn: &mut PgConnection, keys: &[&[u8]]) -> QueryResult<Vec<SenderId>> {
    diesel::sql_query(
        "WITH k AS (SELECT DISTINCT unnest($1::bytea[]) AS key), \
         new AS (INSERT INTO senders (key) SELECT key FROM k ORDER BY key \
                 ON CONFLICT (key) DO NOTHING RETURNING id, key) \
         SELECT id, key FROM new UNION ALL SELECT s.id, s.key FROM senders s JOIN k ON s.key = k.key",
    )
    .bind::<Array<Bytea>, _>(keys)
    .load(conn)
}

/// What one writer transaction adds to the chain, and the chain state it
/// leaves behind.
#[derive(Debug, Clone, Copy)]
pub struct Append<'a> {
    /// New messages.
    pub messages: &'a [MessageRow],
    /// New tile hashes.
    pub tiles: &'a [TileHashRow],
    /// Newly sealed blocks.
    pub blocks: &'a [BlockRow],
    /// The chain state after them.
    pub state: ChainUpdate<'a>,
}

/// One column of an unnested insert: every row's value, bound as one array.
enum Column<'a> {
    Int8(Vec<i64>),
    Int4(Vec<i32>),
    Int2(Vec<i16>),
    Bytea(Vec<&'a [u8]>),
}

impl<'a> Column<'a> {
    fn bytea<T>(rows: &'a [T], f: fn(&'a T) -> &'a [u8]) -> Self {
        Self::Bytea(rows.iter().map(f).collect())
    }

    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            Self::Int8(v) => out.push_bind_param::<Array<BigInt>, _>(v),
            Self::Int4(v) => out.push_bind_param::<Array<Integer>, _>(v),
            Self::Int2(v) => out.push_bind_param::<Array<SmallInt>, _>(v),
            Self::Bytea(v) => out.push_bind_param::<Array<Bytea>, _>(v),
        }
    }
}

/// `INSERT INTO table (names…) SELECT * FROM unnest(arrays…)`: a text that
/// is the same whatever the number of rows; empty arrays insert nothing.
struct UnnestInsert<'a> {
    table: &'static str,
    columns: Vec<(&'static str, Column<'a>)>,
}

impl UnnestInsert<'_> {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        out.push_sql(&format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest(",
            self.table,
            names.join(", ")
        ));
        for (i, (_, column)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            column.push(out)?;
        }
        out.push_sql(")");
        Ok(())
    }
}

/// [`Append`] as one statement: an [`UnnestInsert`] per table, each in a
/// `WITH` clause, then the chain state's update.
struct AppendStatement<'a> {
    inserts: [UnnestInsert<'a>; 3],
    state: ChainUpdate<'a>,
}

prepared_once!(AppendStatement);

impl<'a> AppendStatement<'a> {
    fn new(append: &Append<'a>) -> Self {
        use Column::{Int2, Int4, Int8};
        let Append {
            messages,
            tiles,
            blocks,
            state,
        } = *append;
        Self {
            inserts: [
                UnnestInsert {
                    table: "messages",
                    columns: vec![
                        ("seq", Int8(messages.iter().map(|r| r.seq).collect())),
                        ("sender_id", Int8(messages.iter().map(|r| r.sender_id).collect())),
                        ("nonce", Column::bytea(messages, |r| &r.nonce)),
                        ("signature", Column::bytea(messages, |r| &r.signature)),
                        ("message", Column::bytea(messages, |r| &r.message)),
                        ("leaf_hash", Column::bytea(messages, |r| &r.leaf_hash)),
                        ("received_at", Int8(messages.iter().map(|r| r.received_at).collect())),
                    ],
                },
                UnnestInsert {
                    table: "tile_hashes",
                    columns: vec![
                        ("level", Int2(tiles.iter().map(|t| t.level).collect())),
                        ("idx", Int8(tiles.iter().map(|t| t.idx).collect())),
                        ("hash", Column::bytea(tiles, |t| &t.hash)),
                    ],
                },
                UnnestInsert {
                    table: "blocks",
                    columns: vec![
                        ("idx", Int8(blocks.iter().map(|r| r.idx).collect())),
                        ("hash", Column::bytea(blocks, |r| &r.hash)),
                        ("prev_hash", Column::bytea(blocks, |r| &r.prev_hash)),
                        ("merkle_root", Column::bytea(blocks, |r| &r.merkle_root)),
                        ("first_seq", Int8(blocks.iter().map(|r| r.first_seq).collect())),
                        ("message_count", Int4(blocks.iter().map(|r| r.message_count).collect())),
                        ("sealed_at", Int8(blocks.iter().map(|r| r.sealed_at).collect())),
                        ("signer", Column::bytea(blocks, |r| &r.signer)),
                        ("signature", Column::bytea(blocks, |r| &r.signature)),
                    ],
                },
            ],
            state,
        }
    }
}

impl QueryFragment<Pg> for AppendStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (i, insert) in self.inserts.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("new_{} AS (", insert.table));
            insert.push(&mut out)?;
            out.push_sql(")");
        }
        out.push_sql(" UPDATE chain_state SET ");
        self.state.push_columns(&mut out, ", ")
    }
}

impl<'a> ChainUpdate<'a> {
    /// `next_seq = $1<separator>block_count = $2…`: every column, as the
    /// `SET` list of an update (separator `", "`) or its guard (`" AND "`).
    fn push_columns<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>, separator: &str) -> QueryResult<()> {
        out.push_sql("next_seq = ");
        out.push_bind_param::<BigInt, _>(&self.next_seq)?;
        out.push_sql(separator);
        out.push_sql("block_count = ");
        out.push_bind_param::<BigInt, _>(&self.block_count)?;
        out.push_sql(separator);
        out.push_sql("head_hash = ");
        out.push_bind_param::<Bytea, _>(self.head_hash)?;
        out.push_sql(separator);
        out.push_sql("tree_size = ");
        out.push_bind_param::<BigInt, _>(&self.tree_size)?;
        out.push_sql(separator);
        out.push_sql("compact_range = ");
        out.push_bind_param::<Bytea, _>(self.compact_range)
    }
}

/// Stores what one writer transaction adds and the chain state after it, in
/// one statement (one round trip, prepared once per connection).
pub fn append(conn: &mut PgConnection, append: &Append<'_>) -> QueryResult<()> {
    match AppendStatement::new(append).execute(conn)? {
        1 => Ok(()),
        n => Err(diesel::result::Error::QueryBuilderError(
            format!("the chain state update changed {n} rows instead of 1").into(),
        )),
    }
}

/// [`Append`] on its own, outside any transaction, if and only if the
/// stored chain state is still `expected` (every column the writer
/// planned from): the update of `chain_state` comes first, as a `WITH`
/// clause guarded by the expected values, and every insert takes its rows
/// only if that update changed the row. The update takes the row lock
/// that [`lock_chain_state`] takes, and under read committed a concurrent
/// writer's commit makes it look at the new row version again; so either
/// everything is stored, in one implicit transaction, or nothing is.
struct GuardedAppend<'a> {
    append: AppendStatement<'a>,
    expected: ChainUpdate<'a>,
}

prepared_once!(GuardedAppend);

impl QueryFragment<Pg> for GuardedAppend<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH guard AS (UPDATE chain_state SET ");
        self.append.state.push_columns(&mut out, ", ")?;
        out.push_sql(" WHERE ");
        self.expected.push_columns(&mut out, " AND ")?;
        out.push_sql(" RETURNING 1)");
        for insert in &self.append.inserts {
            out.push_sql(&format!(", new_{} AS (", insert.table));
            insert.push(&mut out)?;
            out.push_sql(" WHERE EXISTS (SELECT 1 FROM guard))");
        }
        out.push_sql(" SELECT 1 FROM guard");
        Ok(())
    }
}

/// Stores [`Append`] in one statement outside a transaction if the stored
/// chain state is still `expected`; whether it was (false: nothing was
/// stored, the chain moved on or was changed, read it again under the
/// lock).
pub fn append_if_unchanged(
    conn: &mut PgConnection,
    append: &Append<'_>,
    expected: &ChainUpdate<'_>,
) -> QueryResult<bool> {
    let statement = GuardedAppend {
        append: AppendStatement::new(append),
        expected: *expected,
    };
    match statement.execute(conn)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(diesel::result::Error::QueryBuilderError(
            format!("the guarded chain state update changed {n} rows instead of 1").into(),
        )),
    }
}

/// Leaf hashes of messages `first_seq .. first_seq + count`, in seq order.
pub fn leaf_hashes(conn: &mut PgConnection, first_seq: i64, count: i64) -> QueryResult<Vec<Vec<u8>>> {
    messages::table
        .filter(messages::seq.ge(first_seq))
        .filter(messages::seq.lt(first_seq + count))
        .order(messages::seq.asc())
        .select(messages::leaf_hash)
        .load(conn)
}

/// One message by seq.
#[tracing::instrument(skip(conn))]
pub fn message(conn: &mut PgConnection, seq: i64) -> QueryResult<Option<MessageRow>> {
    messages::table
        .find(seq)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

/// Messages `first_seq .. first_seq + count`, in seq order.
#[tracing::instrument(skip(conn))]
pub fn messages_range(conn: &mut PgConnection, first_seq: i64, count: i64) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(messages::seq.ge(first_seq))
        .filter(messages::seq.lt(first_seq + count))
        .order(messages::seq.asc())
        .select(MessageRow::as_select())
        .load(conn)
}

/// A block by index.
#[tracing::instrument(skip(conn))]
pub fn block(conn: &mut PgConnection, index: i64) -> QueryResult<Option<BlockRow>> {
    blocks::table
        .find(index)
        .select(BlockRow::as_select())
        .first(conn)
        .optional()
}

/// A block by hash.
#[tracing::instrument(skip_all)]
pub fn block_by_hash(conn: &mut PgConnection, hash: &[u8]) -> QueryResult<Option<BlockRow>> {
    blocks::table
        .filter(blocks::hash.eq(hash))
        .select(BlockRow::as_select())
        .first(conn)
        .optional()
}

/// The newest block.
#[tracing::instrument(skip_all)]
pub fn head_block(conn: &mut PgConnection) -> QueryResult<Option<BlockRow>> {
    blocks::table
        .order(blocks::idx.desc())
        .select(BlockRow::as_select())
        .first(conn)
        .optional()
}

/// Whether block `index` is sealed.
pub fn block_exists(conn: &mut PgConnection, index: i64) -> QueryResult<bool> {
    diesel::select(exists(blocks::table.find(index))).get_result(conn)
}

/// Up to `limit` block headers from index `from`, ascending.
#[tracing::instrument(skip(conn))]
pub fn blocks_page(conn: &mut PgConnection, from: i64, limit: i64) -> QueryResult<Vec<BlockRow>> {
    blocks::table
        .filter(blocks::idx.ge(from))
        .order(blocks::idx.asc())
        .limit(limit)
        .select(BlockRow::as_select())
        .load(conn)
}

/// Whether `client_id` is on the allowlist.
pub fn client_allowed(conn: &mut PgConnection, client_id: &[u8]) -> QueryResult<bool> {
    diesel::select(exists(clients::table.find(client_id))).get_result(conn)
}

/// Registers a client; `None` if it was already registered.
pub fn add_client(conn: &mut PgConnection, row: &ClientRow) -> QueryResult<Option<ClientRow>> {
    diesel::insert_into(clients::table)
        .values(row)
        .on_conflict_do_nothing()
        .returning(ClientRow::as_returning())
        .get_result(conn)
        .optional()
}

/// Removes a client; whether it was registered.
pub fn remove_client(conn: &mut PgConnection, client_id: &[u8]) -> QueryResult<bool> {
    diesel::delete(clients::table.find(client_id))
        .execute(conn)
        .map(|n| n > 0)
}

/// All registered clients, by key.
pub fn list_clients(conn: &mut PgConnection) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .order(clients::client_id.asc())
        .select(ClientRow::as_select())
        .load(conn)
}

/// One registered client.
pub fn client(conn: &mut PgConnection, client_id: &[u8]) -> QueryResult<Option<ClientRow>> {
    clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}
