DROP TABLE checkpoints;
DROP TABLE tile_hashes;
ALTER TABLE chain_state DROP COLUMN compact_range, DROP COLUMN tree_size, DROP COLUMN origin;
