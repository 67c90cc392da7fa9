#!/usr/bin/env bash
# What the classic scenario (10 clients, one message a second each, for a
# minute) costs the node and Postgres, as a share of one core:
#
#     scripts/classic-cpu.sh                 # the scenario on a fresh chain
#     CLASSIC_SECONDS=300 scripts/classic-cpu.sh
#     CLASSIC_NODE_BIN=/path/to/old/sealchain-node CLASSIC_SKIP_BUILD=1 scripts/classic-cpu.sh
#
# Starts a node (release build, default settings: a checkpoint a second,
# the event stream's poller, metrics upkeep) on a fresh database, measures
# it idle (CLASSIC_IDLE_SECONDS, default 20: alone, then with the reader
# attached), runs
# `sealchain simulate --clients 10 --interval 1s`, with one `sealchain
# blocks follow` reader attached to the event stream, and reads the CPU
# time (utime + stime from /proc) of the node and of the database's
# Postgres backends before and after. Prints each as a percentage of one
# core over the scenario's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

DURATION="${CLASSIC_SECONDS:-60}"
# CLASSIC_SKIP_BUILD, CLASSIC_NODE_BIN: see release_binaries in measure.sh.
release_binaries CLASSIC
eval "$(scripts/test-postgres.sh)"
BASE_URL="${TEST_DATABASE_URL%/*}"
DB="sealchain_classic_cpu_$$"
WORK="$(mktemp -d)"
NODE_PID=""
FOLLOW_PID=""
cleanup() {
    [ -n "$FOLLOW_PID" ] && kill "$FOLLOW_PID" 2>/dev/null
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $DB"
PORT="$(free_port)"
NODE="http://127.0.0.1:$PORT"
"$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$BASE_URL/$DB" --keys-dir "$WORK/keys" \
    --log-format json >"$WORK/node.log" 2>&1 &
NODE_PID=$!
wait_ready "$NODE" "$NODE_PID" "$WORK/node.log"
CLI=("$CLI_BIN" --node "$NODE" --no-pin --data-dir "$WORK/data")

# The node's CPU over IDLE seconds with no traffic, as a share of one core.
idle_share() {
    local a b t0 t1
    read -r a t0 <<<"$(cpu_ticks "$NODE_PID") $(date +%s.%N)"
    sleep "$IDLE"
    read -r b t1 <<<"$(cpu_ticks "$NODE_PID") $(date +%s.%N)"
    python3 -c "import sys; a, b, t0, t1, tick = map(float, sys.argv[1:]); print(f'{100 * (b - a) / tick / (t1 - t0):.2f} %')" \
        "$a" "$b" "$t0" "$t1" "$TICK"
}
IDLE="${CLASSIC_IDLE_SECONDS:-20}"
sleep 2
idle_alone="$(idle_share)"
"${CLI[@]}" blocks follow >/dev/null 2>&1 &
FOLLOW_PID=$!
sleep 2
idle_reader="$(idle_share)"

pg="$(psql -At "$TEST_DATABASE_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB'" | tr '\n' ' ')"
# shellcheck disable=SC2086
read -r node0 pg0 t0 <<<"$(cpu_ticks "$NODE_PID") $(cpu_ticks $pg) $(date +%s.%N)"
"${CLI[@]}" simulate --keys "$WORK/client-keys" --clients 10 --interval 1s --duration "${DURATION}s" \
    >"$WORK/simulate.out" 2>&1
# Backends that started during the scenario count whole.
pg="$(psql -At "$TEST_DATABASE_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()" | tr '\n' ' ')"
# shellcheck disable=SC2086
read -r node1 pg1 t1 <<<"$(cpu_ticks "$NODE_PID") $(cpu_ticks $pg) $(date +%s.%N)"
stored="$(psql -At "$BASE_URL/$DB" -c "SELECT next_seq FROM chain_state")"

echo "node idle: $idle_alone of one core alone, $idle_reader with the reader attached (${IDLE} s each)"
python3 - "$node0" "$node1" "$pg0" "$pg1" "$t0" "$t1" "$TICK" "$stored" <<'EOF'
import sys
n0, n1, p0, p1 = (int(x) for x in sys.argv[1:5])
t0, t1, tick, stored = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
wall = t1 - t0
node = (n1 - n0) / tick
pg = (p1 - p0) / tick
print(f"classic scenario: {stored} messages in {wall:.1f} s")
print(f"node CPU:     {node:.2f} s = {100 * node / wall:.2f} % of one core")
print(f"Postgres CPU: {pg:.2f} s = {100 * pg / wall:.2f} % of one core (the database's backends)")
EOF
