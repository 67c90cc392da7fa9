#!/usr/bin/env bash
# What ingest writes to the WAL on a chain (docs/performance.md, part 8):
# right after a checkpoint, when the first change to every page logs an
# image of the whole page, which is when a long chain's random-key
# indexes cost the most.
#
#     SEED_DB=chain10m scripts/seed.sh 10000000
#     scripts/wal-bench.sh chain10m ./seed-keys
#     WAL_CLIENTS=30000 WAL_SKIP_BUILD=1 scripts/wal-bench.sh chain10m ./seed-keys
#
# On the chain in database DB (keys in KEYS): starts the release node,
# loads the messages table's indexes into shared_buffers (pg_prewarm), runs
# a CHECKPOINT, then `sealchain bench --messages WAL_MESSAGES --concurrency
# 64 --clients WAL_CLIENTS` (defaults 30,000 and 100: fresh identities, as
# the bench makes). Prints accepted/s, the node's and the database's
# Postgres backends' CPU per message, and per message the WAL records, the
# bytes of page images among them (pg_waldump --stats over the range) and
# the WAL bytes. Run as root or as the cluster's owner: pg_waldump reads
# the cluster's pg_wal. The messages stay in the chain.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

DB="${1:?usage: scripts/wal-bench.sh DB KEYS}"
KEYS="${2:?usage: scripts/wal-bench.sh DB KEYS}"
MESSAGES="${WAL_MESSAGES:-30000}"
CLIENTS="${WAL_CLIENTS:-100}"

# WAL_SKIP_BUILD, WAL_NODE_BIN: see release_binaries in measure.sh.
release_binaries WAL
eval "$(scripts/test-postgres.sh)"
URL="${TEST_DATABASE_URL%/*}/$DB"
sql() { psql -At "$URL" -c "$1"; }
data_dir="$(sql "SHOW data_directory")"
# Debian's layout; WAL_PG_BIN names another directory holding pg_waldump.
bin_dir="${WAL_PG_BIN:-/usr/lib/postgresql/$(sql "SHOW server_version_num" | cut -c1-2)/bin}"
[ -x "$bin_dir/pg_waldump" ] || { echo "wal-bench: no pg_waldump in $bin_dir (set WAL_PG_BIN)" >&2; exit 1; }
owner="$(stat -c %U "$data_dir")"
waldump() { if [ "$(id -un)" = "$owner" ]; then "$@"; else su "$owner" -c "$(printf '%q ' "$@")"; fi; }

WORK="$(mktemp -d)"
NODE_PID=""
cleanup() {
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(free_port)"
NODE="http://127.0.0.1:$PORT"
"$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$URL" --keys-dir "$KEYS" --log-format json \
    >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$NODE_PID" "$WORK/node.log"

prewarm_message_indexes "$URL"
sql "CHECKPOINT" >/dev/null
lsn0="$(sql "SELECT pg_current_wal_insert_lsn()")"
cpu0="$(cpu_ticks "$NODE_PID")"
pg0="$(backend_ticks "$DB")"
"$CLI_BIN" --node "$NODE" --no-pin --data-dir "$WORK/data" --timeout 60s --json \
    bench --messages "$MESSAGES" --concurrency 64 --clients "$CLIENTS" >"$WORK/bench.json"
cpu1="$(cpu_ticks "$NODE_PID")"
pg_ticks="$(ticks_since "$pg0" "$(backend_ticks "$DB")")"
lsn1="$(sql "SELECT pg_current_wal_insert_lsn()")"
wal_bytes="$(sql "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")"
# The "Total" line of --stats: records, their bytes, page-image bytes, all bytes.
read -r records images < <(waldump "$bin_dir/pg_waldump" -p "$data_dir/pg_wal" -s "$lsn0" -e "$lsn1" --stats \
    | awk '$1 == "Total" { print $2, $5 }')

python3 - "$WORK/bench.json" "$MESSAGES" "$CLIENTS" "$((cpu1 - cpu0))" "$pg_ticks" "$TICK" \
    "$records" "$images" "$wal_bytes" "$DB" <<'EOF'
import json, sys
bench = json.load(open(sys.argv[1]))
n, clients = int(sys.argv[2]), sys.argv[3]
node, pg, tick, records, images, wal = (int(v) for v in sys.argv[4:10])
print(f"chain:   {sys.argv[10]}, {n} messages from {clients} fresh clients after a CHECKPOINT")
print(f"ingest:  {round(bench['accepted_per_second'])} accepted/s, {bench['errors']} errors, "
      f"CPU per message: node {node * 1e6 / tick / n:.0f} µs, Postgres {pg * 1e6 / tick / n:.0f} µs")
print(f"WAL:     per message {records / n:.2f} records, {wal / n:.0f} bytes, "
      f"of which {images / n:.0f} bytes of page images")
EOF
