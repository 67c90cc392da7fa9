#!/usr/bin/env bash
# Builds a long chain for benchmarks with `sealchain-node seed` (real
# signed messages, committed through the writer's own transaction, so the
# chain, its log and its tiles are what a node builds):
#
#     scripts/seed.sh 1000000                 # database sealchain_seed, keys in ./seed-keys
#     SEED_DB=chain10m scripts/seed.sh 10000000
#     SEED_VERIFY=1 scripts/seed.sh 100000    # then serve it and run sealchain verify
#
# The database is created if missing and extended if it exists (with the
# same keys directory). Prints the time taken and the chain's size.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

MESSAGES="${1:?usage: scripts/seed.sh MESSAGES}"
DB="${SEED_DB:-sealchain_seed}"
KEYS="${SEED_KEYS:-./seed-keys}"

# SEED_SKIP_BUILD, SEED_NODE_BIN: see release_binaries in measure.sh.
release_binaries SEED
eval "$(scripts/test-postgres.sh)"
BASE_URL="${TEST_DATABASE_URL%/*}"
if ! psql -At "$TEST_DATABASE_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $DB"
fi
"$NODE_BIN" seed --database-url "$BASE_URL/$DB" --keys-dir "$KEYS" --messages "$MESSAGES"
psql -At "$BASE_URL/$DB" -c "SELECT 'database ' || current_database() || ': ' || \
    pg_size_pretty(pg_database_size(current_database())) || ', ' || next_seq || ' messages' FROM chain_state"

if [ -n "${SEED_VERIFY:-}" ]; then
    PORT="$(free_port)"
    LOG="$(mktemp)"
    "$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$BASE_URL/$DB" --keys-dir "$KEYS" \
        --log-format json >"$LOG" 2>&1 &
    NODE_PID=$!
    trap 'kill $NODE_PID 2>/dev/null; rm -f "$LOG"' EXIT
    wait_ready "http://127.0.0.1:$PORT" "$NODE_PID" "$LOG"
    DATA="$(mktemp -d)"
    time "$CLI_BIN" --node "http://127.0.0.1:$PORT" --data-dir "$DATA" verify
    rm -rf "$DATA"
fi
