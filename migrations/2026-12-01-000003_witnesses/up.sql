-- Witnesses (PROTOCOL §10): the cosignatures the node gathered for its
-- checkpoints (C2SP tlog-witness, tlog-cosignature), and the note it serves
-- at GET /checkpoint once a checkpoint reached the witness quorum.

-- One row per checkpoint and witness: the newest cosignature that witness
-- returned for that checkpoint.
CREATE TABLE witness_cosignatures (
    tree_size   BIGINT NOT NULL REFERENCES checkpoints (tree_size),
    -- The witness's verifier key string (name+keyid+base64 key): the
    -- witness's identity, whatever the operator calls it locally.
    witness     TEXT   NOT NULL,
    -- The cosignature line, without its newline.
    line        TEXT   NOT NULL,
    -- Its timestamp, POSIX seconds.
    cosigned_at BIGINT NOT NULL CHECK (cosigned_at >= 0),
    PRIMARY KEY (tree_size, witness)
);

-- Where each witness stands (the newest size it cosigned), at start-up.
CREATE INDEX witness_cosignatures_by_witness ON witness_cosignatures (witness, tree_size);

-- The checkpoint with every cosignature gathered, set once the quorum is
-- reached (and refreshed as more arrive); NULL while it waits.
ALTER TABLE checkpoints ADD COLUMN cosigned_note TEXT;
CREATE INDEX checkpoints_cosigned ON checkpoints (tree_size) WHERE cosigned_note IS NOT NULL;
