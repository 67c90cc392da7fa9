DROP INDEX messages_leaf_hash;
CREATE INDEX messages_leaf_hash ON messages (leaf_hash);
