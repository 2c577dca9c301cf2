#!/usr/bin/env bash
# The capture figures of docs/performance.md: generated captures (with their mail_logs) read by
# `cat` and by libpcap (`tcpdump -r FILE -w /dev/null`, the physical limits), by icidtrace
# (capture alone, and with the log), and by tshark (conversations, and the SMTP dissector),
# side by side on the same files; wall time, throughput, peak RSS and the ratios.
#
#   scripts/bench-captures.sh                       # 100M 1G 4G, 10000 concurrent, best of 3
#   SIZES="100M" RUNS=1 scripts/bench-captures.sh
#
# Environment: SIZES (capture sizes, K/M/G), CONCURRENT (sessions open at once), SEED, RUNS
# (runs per command; the best is reported), TSHARK_MAX (largest size tshark is run on, as a
# number of bytes, default 1.1e9: tshark holds every packet in memory), CPU (the core the
# single-core runs are pinned to, default 0), DIR (where generated inputs are kept; made when
# missing). Needs tcpdump, tshark, GNU time and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"100M 1G 4G"}
CONCURRENT=${CONCURRENT:-10000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
TSHARK_MAX=${TSHARK_MAX:-1100000000}
CPU=${CPU:-0}
DIR=${DIR:-${TMPDIR:-/tmp}}
. scripts/bench-common.sh
ROW_WIDTH=62
for tool in tcpdump tshark taskset; do
  command -v "$tool" > /dev/null || { echo "bench-captures: needs $tool" >&2; exit 2; }
done

cargo build --release --quiet --bin icidtrace --example gen_capture
BIN=target/release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ONE=(taskset -c "$CPU")

machine
echo "icidtrace $($BIN/icidtrace --version | head -1); $(tcpdump --version 2>&1 | grep -m1 libpcap);" \
  "$(tshark --version 2> /dev/null | head -1)"
echo

for size in $SIZES; do
  in="$DIR/icidtrace-bench-capture-$size-c$CONCURRENT-seed$SEED"
  if [ ! -s "$in/capture.pcap" ]; then
    echo "generating $in ($size, $CONCURRENT concurrent, seed $SEED)"
    "$BIN/examples/gen_capture" --size "$size" --concurrent "$CONCURRENT" --seed "$SEED" -o "$in" \
      2> "$in.gen.txt"
  fi
  pcap=$in/capture.pcap
  BYTES=$(stat -c %s "$pcap")
  PACKETS=$(capinfos -c -M "$pcap" 2> /dev/null | awk -F: '/Number of packets/{gsub(/ /,"",$2); print $2}')
  cat "$pcap" > /dev/null # the page cache holds it from here on (when it fits)

  best cat cat "$pcap"
  best libpcap "${ONE[@]}" tcpdump -r "$pcap" -w /dev/null
  best ict "${ONE[@]}" "$BIN/icidtrace" analyze -q "$pcap" -o /dev/null
  best ictlog "${ONE[@]}" "$BIN/icidtrace" analyze -q "$pcap" --log "$in/mail_logs" -o /dev/null
  best ictl "${ONE[@]}" "$BIN/icidtrace" analyze -q "$pcap" --format jsonl -o /dev/null
  best ict2 "$BIN/icidtrace" analyze -q "$pcap" -o /dev/null
  ran_tshark=0
  if [ "$BYTES" -le "$TSHARK_MAX" ]; then
    ran_tshark=1
    RUNS_SAVED=$RUNS RUNS=1
    best tconv "${ONE[@]}" tshark -r "$pcap" -q -z conv,tcp
    best tsmtp "${ONE[@]}" tshark -r "$pcap" -Y smtp -T fields -e smtp.req.command
    RUNS=$RUNS_SAVED
  fi

  echo "$size: $pcap, $BYTES bytes, ${PACKETS:-?} packets"
  sed 's/^/  /' "$in.gen.txt" 2> /dev/null || true
  echo "  (best of $RUNS, wall clock; tshark once; 'one core' runs pinned with taskset -c $CPU)"
  row cat "cat FILE > /dev/null"
  row libpcap "tcpdump -r FILE -w /dev/null (one core)"
  row ict "icidtrace analyze FILE (one core)"
  row ictlog "icidtrace analyze FILE --log mail_logs (one core)"
  row ictl "icidtrace analyze FILE --format jsonl (one core)"
  row ict2 "icidtrace analyze FILE (two cores: read-ahead)"
  if [ "$ran_tshark" = 1 ]; then
    row tconv "tshark -r FILE -q -z conv,tcp (one core)"
    row tsmtp "tshark -r FILE -Y smtp -T fields -e smtp.req.command (one core)"
  fi
  t() { cut -d' ' -f1 < "$out/$1.time"; }
  awk -v i="$(t ict)" -v l="$(t libpcap)" -v il="$(t ictlog)" -v i2="$(t ict2)" \
    'BEGIN{printf "  icidtrace / libpcap read: %.2fx (with the log %.2fx; two cores %.2fx)\n", i/l, il/l, i2/l}'
  if [ "$ran_tshark" = 1 ]; then
    awk -v i="$(t ict)" -v c="$(t tconv)" -v s="$(t tsmtp)" \
      'BEGIN{printf "  tshark / icidtrace: conv,tcp %.0fx, SMTP dissector %.0fx\n", c/i, s/i}'
  fi
  echo
done
