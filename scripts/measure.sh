# Helpers shared by the measuring scripts (bench.sh, growth.sh,
# classic-cpu.sh, replica-bench.sh, seed.sh); sourced, not run.

# Clock ticks per second, the unit of cpu_ticks.
TICK="$(getconf CLK_TCK)"

# utime + stime, in clock ticks, of the given pids (those still alive; a
# pid that has exited counts 0).
cpu_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        stat="${stat##*) }"
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# A TCP port on 127.0.0.1 that is free now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
