CREATE TABLE messages_by_key (
    seq         BIGINT  NOT NULL CONSTRAINT messages_seq_check CHECK (seq >= 0),
    sender      BYTEA   NOT NULL CONSTRAINT messages_sender_check CHECK (length(sender) = 32),
    nonce       BYTEA   NOT NULL CONSTRAINT messages_nonce_check CHECK (length(nonce) = 16),
    signature   BYTEA   NOT NULL CONSTRAINT messages_signature_check CHECK (length(signature) = 64),
    message     BYTEA   NOT NULL,
    leaf_hash   BYTEA   NOT NULL CONSTRAINT messages_leaf_hash_check CHECK (length(leaf_hash) = 32),
    received_at BIGINT  NOT NULL
);
INSERT INTO messages_by_key
SELECT m.seq, s.key, m.nonce, m.signature, m.message, m.leaf_hash, m.received_at
FROM messages m JOIN senders s ON s.id = m.sender_id
ORDER BY m.seq;
DROP TABLE messages;
ALTER TABLE messages_by_key RENAME TO messages;
ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (seq);
ALTER TABLE messages ADD CONSTRAINT messages_sender_nonce_key UNIQUE (sender, nonce);
CREATE INDEX messages_sender_seq ON messages (sender, seq);
CREATE INDEX messages_leaf_hash ON messages USING hash (leaf_hash);
ANALYZE messages;
DROP TABLE senders;
DROP FUNCTION senders_are_immutable();
