# Shared by the bench-*.sh scripts (sourced): GNU time, the machine line, best-of-N runs.
# Needs: RUNS (runs per command) and $out (a scratch directory) set by the caller.

TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "$(basename "$0"): needs GNU time at $TIME (apt-get install time)" >&2; exit 2; }

machine() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(free -g | awk '/^Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# best NAME CMD...: runs CMD $RUNS times under GNU time; keeps the fastest run's wall time,
# the largest peak RSS, and the fastest run's standard output (in $out/NAME.out); standard
# error goes to $out/NAME.err.
best() {
  local name=$1
  shift
  local best_s="" rss=0 i s m
  for ((i = 0; i < RUNS; i++)); do
    "$TIME" -f "%e %M" -o "$out/time" "$@" > "$out/run.out" 2> "$out/$name.err"
    read -r s m < "$out/time"
    if [ -z "$best_s" ] || awk "BEGIN{exit !($s < $best_s)}"; then
      best_s=$s
      cp "$out/run.out" "$out/$name.out"
    fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best_s $rss" > "$out/$name.time"
}

# row NAME LABEL: the best wall time of NAME, its throughput over $BYTES, its peak RSS; labels
# padded to $ROW_WIDTH (default 46).
row() {
  local s m
  read -r s m < "$out/$1.time"
  awk -v l="$2" -v w="${ROW_WIDTH:-46}" -v s="$s" -v m="$m" -v b="$BYTES" \
    'BEGIN{r = s > 0 ? sprintf("%8.0f", b/1e6/s) : "       -"
           printf "  %-" w "s %7.2f s %s MB/s %8.0f MiB peak RSS\n", l, s, r, m/1024}'
}
