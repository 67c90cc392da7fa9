// @generated automatically by Diesel CLI.

diesel::table! {
    blocks (idx) {
        idx -> Int8,
        hash -> Bytea,
        prev_hash -> Bytea,
        merkle_root -> Bytea,
        first_seq -> Int8,
        message_count -> Int4,
        sealed_at -> Int8,
        signer -> Bytea,
        signature -> Bytea,
    }
}

diesel::table! {
    chain_state (id) {
        id -> Bool,
        block_size -> Int4,
        signing_key -> Bytea,
        next_seq -> Int8,
        block_count -> Int8,
        head_hash -> Bytea,
        created_at -> Int8,
        origin -> Nullable<Text>,
        tree_size -> Int8,
        compact_range -> Bytea,
    }
}

diesel::table! {
    checkpoints (tree_size) {
        tree_size -> Int8,
        root -> Bytea,
        note -> Text,
        published_at -> Int8,
        cosigned_note -> Nullable<Text>,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Bytea,
        added_at -> Int8,
    }
}

diesel::table! {
    messages (seq) {
        seq -> Int8,
        sender_id -> Int8,
        nonce -> Bytea,
        signature -> Bytea,
        message -> Bytea,
        leaf_hash -> Bytea,
        received_at -> Int8,
    }
}

diesel::table! {
    senders (id) {
        id -> Int8,
        key -> Bytea,
    }
}

diesel::table! {
    tile_hashes (level, idx) {
        level -> Int2,
        idx -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    witness_cosignatures (tree_size, witness) {
        tree_size -> Int8,
        witness -> Text,
        line -> Text,
        cosigned_at -> Int8,
    }
}

diesel::joinable!(witness_cosignatures -> checkpoints (tree_size));

diesel::allow_tables_to_appear_in_same_query!(
    blocks,
    chain_state,
    checkpoints,
    clients,
    messages,
    senders,
    tile_hashes,
    witness_cosignatures,
);
