-- Senders by number (docs/performance.md, part 9). Each message kept its
-- sender's 32-byte key, and both indexes that start with the sender — the
-- unique (sender, nonce) pair and the explorer's (sender, seq) — kept it in
-- every entry and compared it first in every step of every insert. Now a
-- sender's key is stored once, here, and messages hold its 8-byte number:
-- the indexes' entries shrink from 64 and 56 bytes to 40 and 24, and an
-- insert compares integers where it compared 32 equal bytes.
--
-- A sender gets its number when its first message is written; numbers are
-- never reused and rows never change (the writer keeps them in memory).
-- There is no foreign key from messages: its check would lock the sender's
-- row for every message stored. The reads take each message's key from
-- here by its number, so a number without a row would fail the read, and
-- the audit.
CREATE TABLE senders (
    id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key BYTEA  NOT NULL UNIQUE CHECK (length(key) = 32)
);

CREATE FUNCTION senders_are_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'senders rows are never changed or deleted: messages refer to them by id';
END
$$;
CREATE TRIGGER senders_immutable BEFORE UPDATE OR DELETE ON senders
    FOR EACH ROW EXECUTE FUNCTION senders_are_immutable();
CREATE TRIGGER senders_not_truncated BEFORE TRUNCATE ON senders
    FOR EACH STATEMENT EXECUTE FUNCTION senders_are_immutable();

-- An existing chain's senders, numbered in the order of their first message.
INSERT INTO senders (key)
SELECT sender FROM messages GROUP BY sender ORDER BY min(seq);

-- The messages table is rebuilt rather than updated in place: an UPDATE
-- of every row would leave a dead copy of each and keep the dropped
-- column's bytes in every live one.
CREATE TABLE messages_by_id (
    seq         BIGINT  NOT NULL CONSTRAINT messages_seq_check CHECK (seq >= 0),
    sender_id   BIGINT  NOT NULL,
    nonce       BYTEA   NOT NULL CONSTRAINT messages_nonce_check CHECK (length(nonce) = 16),
    signature   BYTEA   NOT NULL CONSTRAINT messages_signature_check CHECK (length(signature) = 64),
    message     BYTEA   NOT NULL,
    leaf_hash   BYTEA   NOT NULL CONSTRAINT messages_leaf_hash_check CHECK (length(leaf_hash) = 32),
    received_at BIGINT  NOT NULL
);
INSERT INTO messages_by_id
SELECT m.seq, s.id, m.nonce, m.signature, m.message, m.leaf_hash, m.received_at
FROM messages m JOIN senders s ON s.key = m.sender
ORDER BY m.seq;
DROP TABLE messages;
ALTER TABLE messages_by_id RENAME TO messages;
ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (seq);
-- (sender, nonce) is accepted once (PROTOCOL §4, `duplicate`): a sender
-- has one number, so this is the same constraint under the same name.
ALTER TABLE messages ADD CONSTRAINT messages_sender_nonce_key UNIQUE (sender_id, nonce);
-- The explorer's sender page (2026-12-02-090000_explorer_indexes).
CREATE INDEX messages_sender_seq ON messages (sender_id, seq);
-- The explorer's search by leaf hash (2026-12-03-000000_leaf_hash_hash_index).
CREATE INDEX messages_leaf_hash ON messages USING hash (leaf_hash);
-- Statistics for the planner now, not at autovacuum's first visit. That
-- first visit still reads the whole rebuilt table once, to mark its pages
-- all-visible (docs/performance.md, part 9; `VACUUM messages` after the
-- upgrade, at a quiet time, does it when the operator chooses).
ANALYZE messages;
ANALYZE senders;
