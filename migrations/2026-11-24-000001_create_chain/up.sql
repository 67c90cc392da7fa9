-- The chain's state: one row, locked (SELECT ... FOR UPDATE) by every
-- writer transaction so that any number of node processes on this database
-- build one chain. See docs/architecture.md.
CREATE TABLE chain_state (
    id          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    -- Fixed for the life of the chain (PROTOCOL §6).
    block_size  INTEGER NOT NULL CHECK (block_size > 0),
    -- The node signing key that built this chain; a node with another key
    -- refuses to start rather than sign a mixed chain.
    signing_key BYTEA   NOT NULL CHECK (length(signing_key) = 32),
    -- seq of the next accepted message.
    next_seq    BIGINT  NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    -- Number of sealed blocks, and the hash of the newest (zeros if none).
    block_count BIGINT  NOT NULL DEFAULT 0 CHECK (block_count >= 0),
    head_hash   BYTEA   NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
                        CHECK (length(head_hash) = 32),
    created_at  BIGINT  NOT NULL
);

-- Accepted messages in arrival order.
CREATE TABLE messages (
    seq         BIGINT  PRIMARY KEY CHECK (seq >= 0),
    sender      BYTEA   NOT NULL CHECK (length(sender) = 32),
    nonce       BYTEA   NOT NULL CHECK (length(nonce) = 16),
    -- The client's Ed25519 signature and the exact message_bytes.
    signature   BYTEA   NOT NULL CHECK (length(signature) = 64),
    message     BYTEA   NOT NULL,
    leaf_hash   BYTEA   NOT NULL CHECK (length(leaf_hash) = 32),
    received_at BIGINT  NOT NULL,
    -- (sender, nonce) is accepted once (PROTOCOL §4, `duplicate`).
    CONSTRAINT messages_sender_nonce_key UNIQUE (sender, nonce)
);

-- Sealed blocks (PROTOCOL §6).
CREATE TABLE blocks (
    idx           BIGINT  PRIMARY KEY CHECK (idx >= 0),
    hash          BYTEA   NOT NULL UNIQUE CHECK (length(hash) = 32),
    prev_hash     BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    merkle_root   BYTEA   NOT NULL CHECK (length(merkle_root) = 32),
    first_seq     BIGINT  NOT NULL CHECK (first_seq >= 0),
    message_count INTEGER NOT NULL CHECK (message_count > 0),
    sealed_at     BIGINT  NOT NULL,
    signer        BYTEA   NOT NULL CHECK (length(signer) = 32),
    signature     BYTEA   NOT NULL CHECK (length(signature) = 64)
);

-- Senders allowed when the node runs with --client-policy allowlist.
CREATE TABLE clients (
    client_id BYTEA  PRIMARY KEY CHECK (length(client_id) = 32),
    added_at  BIGINT NOT NULL
);
