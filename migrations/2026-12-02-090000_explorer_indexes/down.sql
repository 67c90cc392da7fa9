DROP INDEX messages_leaf_hash;
DROP INDEX messages_sender_seq;
