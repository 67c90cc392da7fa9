#!/usr/bin/env bash
# Times the explorer's pages on a big chain, to show they do not grow with it.
#
#   scripts/explorer-bench.sh [MESSAGES]        (default 1,000,000)
#
# Needs TEST_DATABASE_URL (scripts/test-postgres.sh) and a built node
# (NODE=target/release/sealchain-node by default; target/debug works too).
# It creates the database sealchain_explorer_bench, lets the node create its
# schema and keys, then fills the chain behind its back with SQL: MESSAGES
# messages in blocks of 100, from 1,000 senders, one of which sent a tenth
# of all (the sender page's worst case). The rows are shaped like real ones
# but not signed: this measures the pages' queries, not verification. The
# node then adds them to its log at start-up, and each page is fetched 5
# times with curl; the median is printed, and EXPLAIN ANALYZE of the
# explorer's own queries shows their plans and times.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

MESSAGES="${1:-1000000}"
BLOCK_SIZE=100
NODE="${NODE:-target/release/sealchain-node}"
PORT="${PORT:-18590}"
: "${TEST_DATABASE_URL:?set TEST_DATABASE_URL (eval \"\$(scripts/test-postgres.sh)\")}"
[[ -x "$NODE" ]] || { echo "no node binary at $NODE (cargo build --release, or NODE=target/debug/sealchain-node)" >&2; exit 1; }

DB=sealchain_explorer_bench
BASE_URL="${TEST_DATABASE_URL%/*}"
URL="$BASE_URL/$DB"
WORK="$(mktemp -d)"
NODE_PID=
cleanup() {
    [[ -n "$NODE_PID" ]] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

start_node() {
    "$NODE" --listen "127.0.0.1:$PORT" --database-url "$URL" --keys-dir "$WORK/keys" \
        --block-size "$BLOCK_SIZE" >"$WORK/node.log" 2>&1 &
    NODE_PID=$!
    # The first start after the fill adds a million leaves to the log.
    wait_ready "http://127.0.0.1:$PORT" "$NODE_PID" "$WORK/node.log" 300
}
stop_node() { kill "$NODE_PID"; wait "$NODE_PID" || true; NODE_PID=; }

psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
start_node
stop_node

BLOCKS=$((MESSAGES / BLOCK_SIZE))
echo "filling $MESSAGES messages in $BLOCKS blocks…"
time psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
DELETE FROM checkpoints;
INSERT INTO senders (key)
SELECT sha256('big'::bytea) UNION ALL SELECT sha256(int4send(i)) FROM generate_series(0, 999) AS i WHERE i % 10 <> 0;
INSERT INTO messages (seq, sender_id, nonce, signature, message, leaf_hash, received_at)
SELECT s,
       (SELECT id FROM senders WHERE senders.key = k.key),
       substring(sha256(int8send(s)) from 1 for 16),
       sha256(int8send(s)) || sha256(int8send(-s)),
       convert_to('{"v":1,"sender":"' || encode(k.key, 'hex')
                  || '","node":"' || encode(sha256('node'::bytea), 'hex') || '","nonce":"'
                  || encode(substring(sha256(int8send(s)) from 1 for 16), 'hex') || '","ts":1764000000000,'
                  || '"topic":"sensors/temperature","body":{"reading":' || (s % 300) / 10.0 || ',"unit":"C","n":' || s || '}}', 'UTF8'),
       sha256(int8send(s)),
       1764000000000 + s
FROM generate_series(0, $MESSAGES - 1) AS s,
     LATERAL (SELECT CASE WHEN s % 10 = 0 THEN sha256('big'::bytea) ELSE sha256(int4send((s % 1000)::int)) END AS key) AS k;
INSERT INTO blocks (idx, hash, prev_hash, merkle_root, first_seq, message_count, sealed_at, signer, signature)
SELECT i, sha256(int8send(i)),
       CASE WHEN i = 0 THEN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea ELSE sha256(int8send(i - 1)) END,
       sha256(int8send(-i)), i * $BLOCK_SIZE, $BLOCK_SIZE, 1764000000000 + (i + 1) * $BLOCK_SIZE,
       (SELECT signing_key FROM chain_state), sha256(int8send(i)) || sha256(int8send(i))
FROM generate_series(0, $BLOCKS - 1) AS i;
UPDATE chain_state SET next_seq = $MESSAGES, block_count = $BLOCKS, head_hash = sha256(int8send($BLOCKS - 1)),
       tree_size = 0, compact_range = '\x';
-- As autovacuum would after a bulk load: index-only scans need the visibility map.
VACUUM ANALYZE;
SQL

echo "starting the node (it adds the messages to its log)…"
time start_node
BIG=$(psql -Atq "$URL" -c "SELECT encode(sha256('big'::bytea), 'hex')")
SMALL=$(psql -Atq "$URL" -c "SELECT encode(sha256(int4send(7)), 'hex')")
LEAF=$(psql -Atq "$URL" -c "SELECT encode(leaf_hash, 'hex') FROM messages WHERE seq = $((MESSAGES / 2))")
HASH=$(psql -Atq "$URL" -c "SELECT encode(hash, 'hex') FROM blocks WHERE idx = $((BLOCKS / 3))")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_page() {
    local label="$1" path="$2" times=()
    for _ in 1 2 3 4 5; do
        times+=("$(curl -s -o /dev/null -w '%{time_total}' -H 'Accept: text/html' "http://127.0.0.1:$PORT$path")")
    done
    printf '%-44s %6.1f ms\n' "$label" "$(printf '%s\n' "${times[@]}" | median | awk '{print $1 * 1000}')"
}
echo
echo "median of 5, $MESSAGES messages, $BLOCKS blocks ($(basename "$(dirname "$NODE")") build):"
for path in / /blocks "/blocks?from=$((BLOCKS / 2))" "/blocks/$((BLOCKS - 1))" "/blocks/0" \
            "/messages/$((MESSAGES / 2))" "/senders/$BIG" "/senders/$BIG?before=100" "/senders/$SMALL" \
            "/search?q=$LEAF" "/search?q=$HASH" "/search?q=$BIG" "/search?q=$((BLOCKS / 2))"; do
    label="${path//$BIG/<sender of $((MESSAGES / 10))>}"
    label="${label//$SMALL/<sender of $((MESSAGES / 1000))>}"
    label="${label//$LEAF/<leaf hash>}"
    time_page "${label//$HASH/<block hash>}" "$path"
done

echo
echo "the explorer's queries (EXPLAIN ANALYZE):"
psql -Atq "$URL" <<SQL | grep -E "^(Limit|Index|  ->|Planning|Execution)|Scan"
EXPLAIN ANALYZE SELECT m.*, (SELECT key FROM senders WHERE id = m.sender_id) FROM messages m
    WHERE m.sender_id = (SELECT id FROM senders WHERE key = '\\x$BIG') AND m.seq < 100 ORDER BY m.seq DESC LIMIT 51;
EXPLAIN ANALYZE SELECT seq FROM messages WHERE sender_id = (SELECT id FROM senders WHERE key = '\\x$BIG')
    ORDER BY sender_id, seq LIMIT 10001;
EXPLAIN ANALYZE SELECT seq FROM messages WHERE leaf_hash = '\\x$LEAF' LIMIT 1;
EXPLAIN ANALYZE SELECT * FROM blocks WHERE idx <= $((BLOCKS / 2)) ORDER BY idx DESC LIMIT 25;
SQL
