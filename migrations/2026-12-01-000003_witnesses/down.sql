DROP INDEX checkpoints_cosigned;
ALTER TABLE checkpoints DROP COLUMN cosigned_note;
DROP TABLE witness_cosignatures;
