#!/usr/bin/env bash
# Reads with and without a streaming replica, under the same write load
# (docs/performance.md, "Reads on a replica"):
#
#     scripts/replica-bench.sh
#     REPLICA_MESSAGES=1000000 REPLICA_READ_SECONDS=30 scripts/replica-bench.sh
#
# 1. creates a private primary cluster (initdb, in a temporary directory,
#    on a free port) and seeds a chain of REPLICA_MESSAGES messages
#    (`sealchain-node seed`);
# 2. takes a streaming replica of it (`pg_basebackup -R`) and starts it;
# 3. twice — reads on the primary, then with `--read-database-url` on the
#    replica — starts a node, runs `sealchain simulate` at
#    REPLICA_WRITE_RATE messages/s and wrk (2 threads, 32 connections)
#    reading random blocks, messages and inclusion proofs, and reports
#    reads/s, p50/p99, the ingest rate during the reads, and the CPU time
#    of the primary's and the replica's Postgres processes per 1,000 reads.
#
# Run as root (the clusters run as the postgres user) or as postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

MESSAGES="${REPLICA_MESSAGES:-300000}"
READ_SECONDS="${REPLICA_READ_SECONDS:-15}"
WRITE_RATE="${REPLICA_WRITE_RATE:-500}"
say() { echo "replica-bench: $*" >&2; }
command -v wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
# REPLICA_SKIP_BUILD, REPLICA_NODE_BIN: see release_binaries in measure.sh.
release_binaries REPLICA
PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

WORK="$(mktemp -d)"
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
P1="$(free_port)"
P2="$(free_port)"
NODE_PID=""
SIM_PID=""
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    for c in replica primary; do
        [ -d "$WORK/$c" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
# Every process of a cluster: the postmaster and its children.
cluster_pids() {
    local pm
    pm="$(head -n 1 "$WORK/$1/postmaster.pid")"
    echo "$pm $(pgrep -P "$pm" | tr '\n' ' ')"
}

say "primary on port $P1"
as_pg "$PGBIN/initdb" -D "$WORK/primary" --auth=trust -U postgres >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w \
    -o "-p $P1 -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PRIMARY="postgres://postgres@127.0.0.1:$P1"
psql -q "$PRIMARY/postgres" -c "CREATE DATABASE chain"
say "seeding $MESSAGES messages"
"$NODE_BIN" seed --database-url "$PRIMARY/chain" --keys-dir "$WORK/keys" --messages "$MESSAGES" \
    >"$WORK/seed.log" 2>&1
say "replica on port $P2"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$WORK/replica" -R -X stream -c fast >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/replica" -l "$WORK/replica.log" -w \
    -o "-p $P2 -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
REPLICA="postgres://postgres@127.0.0.1:$P2"

blocks="$(psql -At "$PRIMARY/chain" -c "SELECT block_count FROM chain_state")"
sealed="$(psql -At "$PRIMARY/chain" -c "SELECT COALESCE(MAX(first_seq + message_count), 0) FROM blocks")"
python3 - "$WORK/reads.paths" "$blocks" "$sealed" <<'EOF'
import random, sys
out, blocks, msgs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
paths = []
for _ in range(3000):
    paths += [f"/v1/blocks/{random.randrange(blocks)}", f"/v1/messages/{random.randrange(msgs)}",
              f"/v1/messages/{random.randrange(msgs)}/proof"]
open(out, "w").write("\n".join(paths) + "\n")
EOF

# run LABEL [node args...]
run() {
    local label="$1"; shift
    local port node p0 r0 t0 s0 p1 r1 t1 s1
    port="$(free_port)"
    node="http://127.0.0.1:$port"
    "$NODE_BIN" --listen "127.0.0.1:$port" --database-url "$PRIMARY/chain" \
        --keys-dir "$WORK/keys" --log-format json "$@" >"$WORK/node-$label.log" 2>&1 &
    NODE_PID=$!
    wait_ready "$node" "$NODE_PID" "$WORK/node-$label.log"
    "$CLI_BIN" --node "$node" --no-pin --data-dir "$WORK/data" simulate --keys "$WORK/sim-keys" \
        --clients $((WRITE_RATE / 10)) --interval 100ms --duration 1h >"$WORK/sim-$label.log" 2>&1 &
    SIM_PID=$!
    sleep 3
    # shellcheck disable=SC2046
    p0="$(cpu_ticks $(cluster_pids primary))"
    # shellcheck disable=SC2046
    r0="$(cpu_ticks $(cluster_pids replica))"
    s0="$(psql -At "$PRIMARY/chain" -c "SELECT next_seq FROM chain_state")"
    t0="$(date +%s.%N)"
    SEALCHAIN_PATHS="$WORK/reads.paths" wrk -t2 -c32 -d"${READ_SECONDS}s" --latency -s scripts/wrk-paths.lua "$node" \
        >"$WORK/$label.wrk"
    t1="$(date +%s.%N)"
    s1="$(psql -At "$PRIMARY/chain" -c "SELECT next_seq FROM chain_state")"
    # shellcheck disable=SC2046
    p1="$(cpu_ticks $(cluster_pids primary))"
    # shellcheck disable=SC2046
    r1="$(cpu_ticks $(cluster_pids replica))"
    kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=""
    kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
    NODE_PID=""
    python3 - "$label" "$WORK/$label.wrk" "$p0" "$p1" "$r0" "$r1" "$s0" "$s1" "$t0" "$t1" "$TICK" <<'EOF'
import re, sys
label, wrk = sys.argv[1], open(sys.argv[2]).read()
p0, p1, r0, r1, s0, s1 = (int(x) for x in sys.argv[3:9])
t0, t1, tick = float(sys.argv[9]), float(sys.argv[10]), int(sys.argv[11])
def ms(s):
    v, unit = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", wrk, re.M))
total = int(re.search(r"(\d+) requests in", wrk).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
k = total / 1000
print(f"{label:>8}: {rps:,.0f} reads/s, p50 {ms(p['50']):.2f} ms, p99 {ms(p['99']):.2f} ms, "
      f"{bad.group(1) if bad else 0} non-2xx; ingest {(s1 - s0) / (t1 - t0):,.0f} messages/s; "
      f"CPU per 1,000 reads: primary {1000 * (p1 - p0) / tick / k:.0f} ms, replica {1000 * (r1 - r0) / tick / k:.0f} ms")
EOF
}

say "reads on the primary"
run primary
say "reads on the replica"
run replica --read-database-url "$REPLICA/chain"
