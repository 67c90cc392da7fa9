DROP TABLE clients;
DROP TABLE blocks;
DROP TABLE messages;
DROP TABLE chain_state;
