-- The log of PROTOCOL §9: the RFC 6962 tree over every message in seq
-- order, kept by the writer in the same transaction as the messages.

-- The log's origin (fixed for the chain's life, like block_size), its size
-- (always next_seq once the node has caught up) and its compact range: the
-- hashes of the complete subtrees that make up the tree, largest first, 32
-- bytes each, one per set bit of tree_size (at most 64).
ALTER TABLE chain_state
    ADD COLUMN origin        TEXT,
    ADD COLUMN tree_size     BIGINT NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
    ADD COLUMN compact_range BYTEA  NOT NULL DEFAULT '\x'
        CHECK (length(compact_range) % 32 = 0 AND length(compact_range) <= 2048);

-- Hashes of the complete subtrees of 256^level messages (tlog-tiles: the
-- hashes of tiles at `level`). Level-0 hashes are messages.leaf_hash.
CREATE TABLE tile_hashes (
    level SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 7),
    idx   BIGINT   NOT NULL CHECK (idx >= 0),
    hash  BYTEA    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Every checkpoint the node published (a signed note, tlog-checkpoint).
CREATE TABLE checkpoints (
    tree_size    BIGINT PRIMARY KEY CHECK (tree_size >= 0),
    root         BYTEA  NOT NULL CHECK (length(root) = 32),
    note         TEXT   NOT NULL,
    published_at BIGINT NOT NULL
);
