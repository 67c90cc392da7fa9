#!/usr/bin/env bash
# What a chain costs as it grows (docs/performance.md, "Growth"): run it on
# chains of 0.1 M, 1 M and 10 M messages built by scripts/seed.sh.
#
#     SEED_DB=chain1m scripts/seed.sh 1000000
#     scripts/growth.sh chain1m ./seed-keys
#     GROWTH_VERIFY=0 scripts/growth.sh chain10m ./seed-keys   # skip the full audit
#     GROWTH_SKIP_BUILD=1 GROWTH_NODE_BIN=/path/to/other/sealchain-node scripts/growth.sh chain1m ./seed-keys
#
# On the chain in database DB (keys in KEYS), with the release binaries:
# 1. start-up: from starting the node to its first `/readyz` 200;
# 2. ingest: `sealchain bench --messages GROWTH_INGEST --concurrency 64`,
#    after loading the messages table's indexes into shared_buffers
#    (pg_prewarm; GROWTH_PREWARM=0 skips it),
#    with the node's and the database's Postgres backends' CPU time per
#    accepted message (utime + stime from /proc) — CPU time, so that the neighbours of a shared machine do not
#    change the figure;
# 3. reads under a write load: while `sealchain simulate` sends
#    GROWTH_WRITE_RATE messages/s (default 500), scripts/read-probe.py
#    sends GROWTH_READ_COUNT GETs (default 2,000) of each kind, one after
#    another at GROWTH_READ_RATE a second (default 200), for random rows:
#    blocks by index, by hash, the head, messages, inclusion proofs and
#    pages of `GET /v1/blocks?from=`; prints each kind's p50, p99, maximum,
#    and first the same for `/healthz` (no database, no work: what the
#    machine itself adds to a request's latency);
# 4. the node's resident memory (RSS, and its peak) after all that;
# 5. `sealchain verify` of the whole chain: messages/s and peak RSS;
# 6. bytes per message in Postgres (tables and indexes).
#
# Every message the script adds stays in the chain (the chain grows by
# GROWTH_INGEST plus the simulate load, a few percent of 1 M).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

DB="${1:?usage: scripts/growth.sh DB KEYS}"
KEYS="${2:?usage: scripts/growth.sh DB KEYS}"
INGEST="${GROWTH_INGEST:-30000}"
WRITE_RATE="${GROWTH_WRITE_RATE:-500}"
READ_RATE="${GROWTH_READ_RATE:-200}"
READ_COUNT="${GROWTH_READ_COUNT:-2000}"
VERIFY="${GROWTH_VERIFY:-1}"
PREWARM="${GROWTH_PREWARM:-1}"

say() { echo "growth: $*" >&2; }
# GROWTH_SKIP_BUILD, GROWTH_NODE_BIN: see release_binaries in measure.sh.
release_binaries GROWTH
eval "$(scripts/test-postgres.sh)"
BASE_URL="${TEST_DATABASE_URL%/*}"
URL="$BASE_URL/$DB"
WORK="$(mktemp -d)"
NODE_PID=""
SIM_PID=""
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    [ -n "${GROWTH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
sql() { psql -At "$URL" -c "$1"; }
now() { date +%s.%N; }

messages="$(sql "SELECT next_seq FROM chain_state")"
settings="$(pg_settings "$URL")"
say "chain $DB: $messages messages"

# 1. start-up
PORT="$(free_port)"
NODE="http://127.0.0.1:$PORT"
t0="$(now)"
"$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$URL" --keys-dir "$KEYS" --log-format json \
    >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$NODE_PID" "$WORK/node.log"
startup="$(echo "$(now) - $t0" | bc)"
say "ready in $startup s"
CLI=("$CLI_BIN" --node "$NODE" --no-pin --data-dir "$WORK/data" --timeout 60s)

# 2. ingest, on a warm cache: a node that has been running holds the
# indexes it inserts into in shared_buffers (if they fit); right after a
# seed or a restart they would come from the disk or the page cache.
if [ "$PREWARM" = 1 ]; then
    prewarm_message_indexes "$URL"
fi
cpu0="$(cpu_ticks "$NODE_PID")"
pg0="$(backend_ticks "$DB")"
"${CLI[@]}" --json bench --messages "$INGEST" --concurrency 64 --clients 100 >"$WORK/bench.json"
cpu1="$(cpu_ticks "$NODE_PID")"
pg_us="$(echo "$(ticks_since "$pg0" "$(backend_ticks "$DB")") * 1000000 / $TICK / $INGEST" | bc)"
rate="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["accepted_per_second"]))' "$WORK/bench.json")"
errors="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$WORK/bench.json")"
node_us="$(echo "($cpu1 - $cpu0) * 1000000 / $TICK / $INGEST" | bc)"
say "ingest: $rate accepted/s, $errors errors, node CPU $node_us µs, Postgres $pg_us µs per message"

# 3. reads under a write load
sealed_blocks="$(sql "SELECT block_count FROM chain_state")"
sealed_msgs="$(sql "SELECT COALESCE(MAX(first_seq + message_count), 0) FROM blocks")"
SAMPLE=2000
python3 - "$WORK" "$sealed_blocks" "$sealed_msgs" "$SAMPLE" <<'EOF'
import random, sys
work, blocks, msgs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kinds = {
    "block": [f"/v1/blocks/{random.randrange(blocks)}" for _ in range(n)],
    "message": [f"/v1/messages/{random.randrange(msgs)}" for _ in range(n)],
    "proof": [f"/v1/messages/{random.randrange(msgs)}/proof" for _ in range(n)],
    "page": [f"/v1/blocks?from={random.randrange(blocks)}" for _ in range(n)],
    "head": ["/v1/blocks/head"],
    "health": ["/healthz"],
}
for kind, paths in kinds.items():
    open(f"{work}/{kind}.paths", "w").write("\n".join(paths) + "\n")
EOF
# Hashes of random blocks (a sample of the table's pages).
sql "SELECT '/v1/blocks/hash/' || encode(hash, 'hex') FROM blocks TABLESAMPLE SYSTEM (1) LIMIT $SAMPLE" \
    >"$WORK/hash.paths"
[ -s "$WORK/hash.paths" ] || sql "SELECT '/v1/blocks/hash/' || encode(hash, 'hex') FROM blocks LIMIT $SAMPLE" \
    >"$WORK/hash.paths"
clients=$((WRITE_RATE / 10))
"$CLI_BIN" --node "$NODE" --no-pin --data-dir "$WORK/data" simulate --keys "$WORK/sim-keys" \
    --clients "$clients" --interval 100ms --duration 1h >"$WORK/simulate.log" 2>&1 &
SIM_PID=$!
sleep 3
seq_before="$(sql "SELECT next_seq FROM chain_state")"
t_reads="$(now)"
reads=()
for kind in health block hash head message proof page; do
    line="$(scripts/read-probe.py "$NODE" "$WORK/$kind.paths" "$READ_RATE" "$READ_COUNT")"
    reads+=("$kind: $line")
    say "read $kind: $line"
done
seq_after="$(sql "SELECT next_seq FROM chain_state")"
write_rate="$(echo "($seq_after - $seq_before) / ($(now) - $t_reads)" | bc)"
kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true
SIM_PID=""
say "write load during the reads: $write_rate messages/s"

# 4. memory
rss="$(status_kb "$NODE_PID" VmRSS)"
hwm="$(status_kb "$NODE_PID" VmHWM)"

# 5. verify
verify_line="skipped"
if [ "$VERIFY" = 1 ]; then
    /usr/bin/time -f '%e %M' -o "$WORK/verify.time" "${CLI[@]}" --json verify --no-checkpoint >"$WORK/verify.json"
    read -r vsecs vkb <"$WORK/verify.time"
    vmsgs="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages_verified"])' "$WORK/verify.json")"
    verify_line="$vmsgs messages in $vsecs s = $(echo "$vmsgs / $vsecs" | bc) messages/s, peak RSS $((vkb / 1024)) MB"
    say "verify: $verify_line"
fi

# 6. storage
total="$(sql "SELECT next_seq FROM chain_state")"
bytes="$(sql "SELECT round(sum(pg_total_relation_size(c.oid))::numeric / $total, 1) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")"

cat <<EOF
chain:            $DB, $messages messages at the start, $total at the end
Postgres:         $settings
start-up:         $startup s
ingest:           $rate accepted/s, $errors errors, CPU per message: node $node_us µs, Postgres $pg_us µs (bench --messages $INGEST --concurrency 64)
reads ($READ_COUNT of each kind at $READ_RATE/s, scripts/read-probe.py, under $write_rate messages/s of writes):
$(printf '  %s\n' "${reads[@]}")
node RSS:         $((rss / 1024)) MB (peak $((hwm / 1024)) MB)
verify:           $verify_line
storage:          $bytes bytes per message (tables, indexes, TOAST)
EOF
