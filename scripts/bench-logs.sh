#!/usr/bin/env bash
# The figures of docs/performance.md: a generated 1 GB mail_logs read by `cat` (the physical
# limit), by the line parser alone, by read_logs (records and lifecycles) and by `icidtrace log`
# end to end; then the correlation of 1M connections with a 1M-ICID log.
#
#   scripts/bench-logs.sh                 # 1G log, seed 1, 1M correlation, best of 3 runs
#   SIZE=256M N=100000 RUNS=1 scripts/bench-logs.sh
#
# Environment: SIZE (log size, K/M/G), SEED, N (connections and ICIDs), RUNS (runs per
# command; the best is reported), LOG (where the generated log is kept; made when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1G}
SEED=${SEED:-1}
N=${N:-1000000}
RUNS=${RUNS:-3}
LOG=${LOG:-${TMPDIR:-/tmp}/icidtrace-bench-$SIZE-seed$SEED.log}
. scripts/bench-common.sh

cargo build --release --quiet --bin icidtrace --example gen_maillog --example perf
BIN=target/release
if [ ! -s "$LOG" ]; then
  echo "generating $LOG ($SIZE, seed $SEED)"
  "$BIN/examples/gen_maillog" --size "$SIZE" --seed "$SEED" -o "$LOG"
fi
BYTES=$(stat -c %s "$LOG")
cat "$LOG" > /dev/null # the page cache holds it from here on

machine
echo "log: $LOG, $BYTES bytes, $(wc -l < "$LOG") lines"
echo

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

best cat cat "$LOG"
best parse "$BIN/examples/perf" parse "$LOG"
best read "$BIN/examples/perf" read "$LOG"
best log "$BIN/icidtrace" log "$LOG" --format json -o /dev/null
best corr "$BIN/examples/perf" correlate "$N"

echo "whole commands (best of $RUNS, wall clock):"
row cat "cat FILE > /dev/null"
row parse "perf parse FILE (read, then parsed)"
row read "perf read (read_logs)"
row log "icidtrace log FILE --format json -o /dev/null"
echo
echo "timed inside (best run):"
sed 's/^/  /' "$out/parse.out" "$out/read.out"
read -r s m < "$out/corr.time"
sed 's/^/  /' "$out/corr.out"
awk -v m="$m" -v s="$s" 'BEGIN{printf "  (whole run with setup: %.1f s, %.0f MiB peak RSS)\n", s, m/1024}'
