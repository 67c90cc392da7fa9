#!/usr/bin/env bash
# Runs every fuzz target of shared/fuzz for SECONDS each (default 30), one
# after another, on one core each, with the seed corpus kept in the repo:
#
#     scripts/fuzz.sh          # 30 s per target (what CI runs)
#     scripts/fuzz.sh 300      # 5 minutes per target
#     scripts/fuzz.sh 60 message note   # only these targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). New inputs found go to a scratch directory; with FUZZ_MERGE=1
# those that add coverage are merged into the repo's corpus
# (shared/fuzz/corpus/<target>) at the end. A crash leaves its input under
# shared/fuzz/artifacts/ and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/../shared/fuzz"
seconds="${1:-30}"
shift || true
targets="${*:-$(cargo +nightly fuzz list)}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${seconds}s" >&2
    # The fuzzer's own status decides (pipefail: the grep never fails the
    # pipeline); a crash leaves its input in artifacts/ and stops the run.
    status=0
    cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=70000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
        | { grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+== ERROR|SUMMARY|Done|thread .* panicked)" || true; } \
        || status=$?
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target failed (exit $status); the input is in shared/fuzz/artifacts/$target/" >&2
        exit 1
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        cargo +nightly fuzz run "$target" "corpus/$target" "$scratch/$target" -- -merge=1 -max_len=70000 2>&1 \
            | grep -E "MERGE-OUTER: [0-9]+ new files" || true
    fi
done
