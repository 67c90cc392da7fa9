#!/usr/bin/env bash
# The node's performance in one run (docs/performance.md):
#
#     scripts/bench.sh                 # 150,000 envelopes replayed by wrk, then sealchain bench
#     BENCH_MESSAGES=100000 BENCH_SECONDS=10 scripts/bench.sh
#     BENCH_NODE_BIN=/path/to/old/sealchain-node BENCH_SKIP_BUILD=1 scripts/bench.sh
#     BENCH_ROUNDS=5 scripts/bench.sh  # five open and five allowlist loads, and their medians
#
# 1. builds the release binaries and starts a local PostgreSQL
#    (scripts/test-postgres.sh);
# 2. measures the crypto floor on one core (`sealchain bench --floor`),
#    before and after each load (each load's ratios divide by the mean of
#    the two);
# 3. starts a node on a fresh database, seals BENCH_MESSAGES envelopes
#    (before any timing), runs a CHECKPOINT, and replays them with wrk over
#    BENCH_CONNECTIONS connections, each envelope once, sampling the CPU
#    time (utime + stime from /proc) of the node and of Postgres (the bench
#    database's backends, and the server's shared processes: WAL writer,
#    checkpointer, ...) and the server's WAL counters (pg_stat_wal) before
#    and after;
# 4. prints accepted/s, p50/p99, node and Postgres CPU per accepted message
#    divided by the floor, the least the node could cost (the floor with
#    the parsing, and its kernel time), the writer's mean batch, the WAL
#    records, full-page images and bytes per message, and the floor-bound
#    maximum for the cores the node had;
# 5. does it again with --client-policy allowlist (every client registered);
#    steps 3-5 run BENCH_ROUNDS times (default 1), each load on a fresh
#    database, and with more than one round the median and range of each
#    ratio over the loads close the report;
# 6. runs `sealchain bench --messages BENCH_CHECK_MESSAGES --concurrency 64`
#    (p99, zero errors, every receipt checked) and reports the storage per
#    message.
#
# Needs wrk (apt-get install wrk; installed when missing and run as root).
# CPU time, not wall time, is what the ratios divide: the machine may be
# shared, and a process that waits for a core costs no CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
. scripts/measure.sh

MESSAGES="${BENCH_MESSAGES:-150000}"
SECONDS_MAX="${BENCH_SECONDS:-600}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_WRK_THREADS:-2}"
CLIENTS="${BENCH_CLIENTS:-100}"
CHECK_MESSAGES="${BENCH_CHECK_MESSAGES:-200000}"
ROUNDS="${BENCH_ROUNDS:-1}"
TOKEN="bench-admin-token-0123456789"

say() { echo "bench: $*" >&2; }

need_wrk
# BENCH_SKIP_BUILD, BENCH_NODE_BIN: see release_binaries in measure.sh.
release_binaries BENCH
eval "$(scripts/test-postgres.sh)"
ADMIN_URL="$TEST_DATABASE_URL"
BASE_URL="${ADMIN_URL%/*}"

# BENCH_WORK keeps the run's files (the wrk outputs, the JSON of each run).
WORK="${BENCH_WORK:-$(mktemp -d)}"
mkdir -p "$WORK"
NODE_PID=""
DATABASES=()
# drop_database DB: a bench database (each round's loads start on fresh
# ones; whatever is left is dropped on exit).
drop_database() { psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }
cleanup() {
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
    for db in "${DATABASES[@]}"; do
        drop_database "$db" 2>/dev/null || true
    done
    [ -n "${BENCH_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

CORES="$(nproc)"

# stime alone, in clock ticks, of one pid.
sys_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    echo "${13}"
}

# The server's shared processes (which also work for every other database
# on the server).
pg_shared_pids() {
    psql -At "$ADMIN_URL" -c "SELECT pid FROM pg_stat_activity WHERE backend_type IN \
        ('walwriter', 'checkpointer', 'background writer', 'autovacuum launcher', 'walsender', \
         'logical replication launcher')"
}

# start_node DB [extra args...]: starts a node on a new database DB.
start_node() {
    local db="$1"; shift
    psql -q "$ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
    DATABASES+=("$db")
    PORT="$(free_port)"
    NODE_URL="http://127.0.0.1:$PORT"
    "$NODE_BIN" --listen "127.0.0.1:$PORT" --database-url "$BASE_URL/$db" --keys-dir "$WORK/keys" \
        --log-format json "$@" >"$WORK/$db.log" 2>&1 &
    NODE_PID=$!
    wait_ready "$NODE_URL" "$NODE_PID" "$WORK/$db.log"
}

stop_node() {
    if kill "$NODE_PID"; then wait "$NODE_PID" || true; fi
    NODE_PID=""
}

stored() { psql -At "$BASE_URL/$1" -c "SELECT next_seq FROM chain_state"; }
# The server's WAL records, full-page images and bytes so far (the whole
# server: nothing else runs on it during a load).
wal_counters() { psql -At -F ' ' "$ADMIN_URL" -c "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"; }
# The writer's batches so far: messages in them, and their number (the
# node's batch-size histogram at /metrics).
batch_counters() {
    curl -fs "$NODE_URL/metrics" | awk '$1 == "sealchain_writer_batch_size_sum" {s = $2}
        $1 == "sealchain_writer_batch_size_count" {c = $2} END {print s + 0, c + 0}'
}

# load DB LABEL: replays the envelopes with wrk, stops the node and prints
# one JSON line.
load() {
    local db="$1" label="$2"
    local shared before_seq node0 nsys0 pg0 sh0 t0 node1 nsys1 pg1 sh1 t1 after_seq wal0 wal1 batches0 batches1
    shared="$(pg_shared_pids | tr '\n' ' ')"
    before_seq="$(stored "$db")"
    # Every load starts from a checkpoint: the first change to a page after
    # one logs the whole page, and a checkpoint that fell inside one load
    # and not the other would weigh on its Postgres figure alone.
    psql -q "$ADMIN_URL" -c "CHECKPOINT"
    wal0="$(wal_counters)"
    batches0="$(batch_counters)"
    # shellcheck disable=SC2086
    { nsys0="$(sys_ticks "$NODE_PID")"; node0="$(cpu_ticks "$NODE_PID")"; pg0="$(backend_ticks "$db")"; sh0="$(cpu_ticks $shared)"; t0="$(date +%s.%N)"; }
    # wrk is stopped once every envelope is stored, or when the count
    # stops moving.
    start_replay "$WORK/envelopes.jsonl" "$THREADS" "$CONNECTIONS" "$SECONDS_MAX" "$NODE_URL" \
        "$WORK/wrk-$label.txt"
    local wrk_pid=$REPLAY_PID last=-1 now still=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        sleep 0.5
        now="$(stored "$db")"
        [ "$now" -ge $((before_seq + MESSAGES)) ] && break
        if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; fi
        [ "$still" -ge 20 ] && break
        last="$now"
    done
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" || true
    # shellcheck disable=SC2086
    { t1="$(date +%s.%N)"; node1="$(cpu_ticks "$NODE_PID")"; nsys1="$(sys_ticks "$NODE_PID")"; pg1="$(backend_ticks "$db")"; sh1="$(cpu_ticks $shared)"; }
    after_seq="$(stored "$db")"
    batches1="$(batch_counters)"
    # The ingest's own duration: first to last receive time of the run.
    local span_ms
    span_ms="$(psql -At "$BASE_URL/$db" -c "SELECT max(received_at) - min(received_at) FROM messages \
        WHERE seq >= $before_seq")"
    local rss
    rss="$(awk '/VmRSS/ {print $2}' "/proc/$NODE_PID/status")"
    # A busy backend reports its WAL counters to pg_stat_wal at most once a
    # second, and the rest when it has been idle for 10 s or exits: the
    # writer's last second would be missing. So the node stops here, and
    # its backends' exit reports everything they wrote.
    stop_node
    for _ in $(seq 1 100); do
        [ -z "$(db_backends "$db")" ] && break
        sleep 0.05
    done
    wal1="$(wal_counters)"
    python3 - "$WORK/wrk-$label.txt" <<EOF
import json, re, sys
text = open(sys.argv[1]).read()
def latency(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
    if not m: return None
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
errors = 0
for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
    m = re.search(pattern, text)
    if m: errors += sum(int(g) for g in m.groups())
secs = max(${span_ms:-0}, 1) / 1000
print(json.dumps({
    "label": "$label", "accepted": $after_seq - $before_seq, "seconds": secs,
    "p50_ms": latency(50), "p99_ms": latency(99), "errors": errors,
    "node_cpu_s": ($node1 - $node0) / $TICK, "node_sys_s": ($nsys1 - $nsys0) / $TICK, "pg_cpu_s": $(ticks_since "$pg0" "$pg1") / $TICK,
    "pg_shared_cpu_s": ($sh1 - $sh0) / $TICK, "wall_s": $t1 - $t0, "node_rss_kb": $rss,
    "wal": [b - a for a, b in zip(map(int, "$wal0".split()), map(int, "$wal1".split()))],
    "batches": [b - a for a, b in zip(map(float, "$batches0".split()), map(float, "$batches1".split()))],
}))
EOF
}

say "machine: $CORES cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "Postgres: $(pg_settings "$ADMIN_URL")"
# The floor is measured before and after each load, and each load is
# divided by the mean of the two: the speed of a shared virtual machine's
# cores drifts (by 10-25 % within minutes, seen here), and a floor taken
# minutes before a load would carry that drift into its ratios.
floor() {
    say "measuring the crypto floor (one core)"
    "$CLI_BIN" --json bench --floor --messages 2000 >"$WORK/floor$1.json"
}
floor 0

for round in $(seq 1 "$ROUNDS"); do
    say "round $round of $ROUNDS"
    start_node "sealchain_bench_open_${round}_$$"
    if [ "$round" = 1 ]; then
        say "open policy: sealing $MESSAGES envelopes from $CLIENTS clients (before any timing)"
        "$CLI_BIN" --node "$NODE_URL" --no-pin bench --messages "$MESSAGES" --clients "$CLIENTS" \
            --save-envelopes "$WORK/envelopes.jsonl" >&2
    fi
    say "open policy: replaying them with wrk ($THREADS threads, $CONNECTIONS connections)"
    load "sealchain_bench_open_${round}_$$" "open-$round" >"$WORK/open-$round.json"
    drop_database "sealchain_bench_open_${round}_$$"
    floor "$((2 * round - 1))"

    say "allowlist policy: the same envelopes, every client registered"
    start_node "sealchain_bench_allow_${round}_$$" --client-policy allowlist --admin-token "$TOKEN"
    while read -r id; do
        curl -fs -o /dev/null -X POST "$NODE_URL/v1/clients" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/json' -d "{\"client_id\":\"$id\"}"
    done <"$WORK/envelopes.jsonl.clients"
    # The same node keys, so the saved envelopes are sealed to this node too.
    load "sealchain_bench_allow_${round}_$$" "allowlist-$round" >"$WORK/allowlist-$round.json"
    drop_database "sealchain_bench_allow_${round}_$$"
    floor "$((2 * round))"
done

say "sealchain bench --messages $CHECK_MESSAGES --concurrency 64 (receipts checked)"
start_node "sealchain_bench_check_$$"
"$CLI_BIN" --node "$NODE_URL" --no-pin --json bench --messages "$CHECK_MESSAGES" --concurrency 64 \
    --clients "$CLIENTS" >"$WORK/check.json" || true
STORAGE_DB="sealchain_bench_check_$$"
psql -At "$BASE_URL/$STORAGE_DB" -F ' ' -c "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1" >"$WORK/storage.txt"
MESSAGES_STORED="$(stored "$STORAGE_DB")"
stop_node

python3 - "$WORK" "$CORES" "$MESSAGES_STORED" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, cores, stored, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
loads = [(r, label) for r in range(1, rounds + 1) for label in ("open", "allowlist")]
floors = [json.load(open(f"{work}/floor{i}.json")) for i in range(len(loads) + 1)]
for i, floor in enumerate(floors):
    when = "before the first load" if i == 0 else f"after the {loads[i - 1][1]} load of round {loads[i - 1][0]}"
    print(f"floor        {floor['floor_us']:.1f} µs CPU per message on one core {when} (HPKE open "
          f"{floor['open_us']:.1f}, strict verify {floor['verify_us']:.1f}, receipt sign {floor['sign_us']:.1f}); "
          f"{floor['with_parsing_us']:.1f} µs with parsing")
runs = {}
for i, (round_, label) in enumerate(loads):
    f = (floors[i]["floor_us"] + floors[i + 1]["floor_us"]) / 2
    r = json.load(open(f"{work}/{label}-{round_}.json"))
    runs[round_, label] = r
    n = max(r["accepted"], 1)
    rate = r["accepted"] / r["seconds"]
    node_us = r["node_cpu_s"] * 1e6 / n
    pg_us = r["pg_cpu_s"] * 1e6 / n
    shared_us = r["pg_shared_cpu_s"] * 1e6 / n
    node_cores = r["node_cpu_s"] / r["seconds"]
    print(f"\n[{label}, round {round_}] wrk replay, {r['accepted']} accepted in {r['seconds']:.2f} s (first to last receive time): {rate:.0f} messages/s, "
          f"errors {r['errors']}, latency p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms")
    print(f"  floor         {f:.1f} µs, the mean of the floors before and after this load")
    sys_us = r.get("node_sys_s", 0) * 1e6 / n
    print(f"  node CPU      {node_us:.1f} µs per accepted message = {node_us / f:.2f} × floor, of which "
          f"{sys_us:.1f} µs in the kernel ({node_cores:.2f} cores busy on average, RSS {r['node_rss_kb'] / 1024:.0f} MB)")
    # What any node must do for a message is the floor with the parsing
    # (the envelope's JSON and base64, the message's schema, the leaf
    # hash), all of it in user space; its kernel time (the sockets, the
    # wake-ups) comes on top, whatever the rest costs.
    parsed = (floors[i]["with_parsing_us"] + floors[i + 1]["with_parsing_us"]) / 2
    print(f"  node at least {(parsed + sys_us) / f:.2f} × floor: the floor with the parsing ({parsed:.1f} µs) "
          f"and the node's kernel time, with nothing else")
    print(f"  Postgres CPU  {pg_us:.1f} µs per message = {pg_us / f:.2f} × floor in the bench database's backends; "
          f"+ {shared_us:.1f} µs ({shared_us / f:.2f} × floor) in the server's shared processes")
    records, fpi, wal = r["wal"]
    batched, batches = r["batches"]
    print(f"  writer        {batches:.0f} batches of {batched / max(batches, 1):.1f} messages on average")
    print(f"  WAL           {records / n:.2f} records, {fpi / n:.3f} full-page images, {wal / n:.0f} bytes per message")
    print(f"  floor bound   {cores * 1e6 / f:.0f} messages/s on {cores} cores; {node_cores * 1e6 / f:.0f} on the "
          f"{node_cores:.2f} cores the node had: accepted/s is {100 * rate * f / (node_cores * 1e6):.0f} % of it")
    r.update(floor_us=f, node_x=node_us / f, pg_x=pg_us / f, rate=rate)
print()
for round_ in range(1, rounds + 1):
    o, a = runs[round_, "open"], runs[round_, "allowlist"]
    a["rate_ratio"] = a["rate"] / o["rate"]
    print(f"allowlist / open, round {round_}: {100 * a['rate_ratio']:.0f} % of the rate, "
          f"{100 * (a['node_cpu_s'] / max(a['accepted'], 1)) / (o['node_cpu_s'] / max(o['accepted'], 1)):.0f} % of the node CPU per message")
if rounds > 1:
    # One load on a shared machine can fall in a slow spell (its CPU per
    # message 15-30 % above its neighbours'); the median of the rounds is
    # the figure that one such spell does not move.
    def spread(values, fmt):
        return f"median {fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"
    ratio = lambda v: f"{v:.2f} ×"
    print(f"\nover {rounds} rounds ({2 * rounds} loads):")
    print(f"  node CPU      {spread([r['node_x'] for r in runs.values()], ratio)} the floor")
    print(f"  Postgres CPU  {spread([r['pg_x'] for r in runs.values()], ratio)} the floor; "
          f"{sum(r['pg_x'] <= 0.4 for r in runs.values())} of {2 * rounds} loads at or under 0.4 ×")
    print(f"  allowlist     {spread([runs[k, 'allowlist']['rate_ratio'] for k in range(1, rounds + 1)], lambda v: f'{100 * v:.0f} %')} "
          f"of open's rate")
try:
    c = json.load(open(f"{work}/check.json"))
    l = c["latency_ms"]
    print(f"\nsealchain bench --messages {c['messages']} --concurrency {c['concurrency']}: {c['accepted']} accepted, "
          f"{c['accepted_per_second']:.0f} messages/s, p50 {l['p50']:.2f} ms p99 {l['p99']:.2f} ms max {l['max']:.2f} ms, "
          f"errors {c['errors']} {c['errors_by_code']}, bad receipts {c['bad_receipts']}")
except (OSError, ValueError, KeyError) as e:
    print(f"\nsealchain bench failed: {e}")
print(f"\nstorage after {stored} messages (table / indexes, bytes per message):")
total = 0
for line in open(f"{work}/storage.txt"):
    name, table, index = line.split()
    table, index = int(table), int(index)
    total += table + index
    if stored:
        print(f"  {name:<12} {table / stored:8.1f} {index / stored:8.1f}")
if stored:
    print(f"  {'total':<12} {total / stored:8.1f} bytes per message")
EOF
