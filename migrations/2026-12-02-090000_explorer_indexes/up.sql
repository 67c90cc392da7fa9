-- Indexes for the block explorer (node/src/explorer/queries.rs), so that its
-- pages cost the same on any size of chain.
--
-- A sender's page lists that sender's messages newest first, a page at a
-- time (WHERE sender = $1 AND seq < $2 ORDER BY seq DESC LIMIT n): without
-- this index Postgres would sort every message of the sender for each page.
CREATE INDEX messages_sender_seq ON messages (sender, seq);
-- The search box finds a message by its leaf hash.
CREATE INDEX messages_leaf_hash ON messages (leaf_hash);
