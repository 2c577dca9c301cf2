#!/usr/bin/env bash
# A short fuzz run of every target in fuzz/ (FUZZ_SECONDS each, 15 by default: about two
# minutes in all), failing on the first crash, hang or broken invariant.
#
# The fuzzer is libFuzzer through cargo-fuzz, installed here from crates.io if missing (about
# two minutes). cargo-fuzz asks rustc for unstable flags; a stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1, so no nightly is needed. The targets are built without a sanitizer by
# default (FUZZ_SANITIZER=address for AddressSanitizer): the crate forbids unsafe code, and
# the uninstrumented build runs several times faster. Debug assertions (overflow checks) are on.
#
# Each target starts from its committed seeds in fuzz/corpus/<target>/ and grows a corpus in a
# temporary directory that is thrown away. A crash leaves its input in
# fuzz/artifacts/<target>/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a -s none <target> fuzz/artifacts/<target>/<file>
# (from fuzz/), then keep it as a test in tests/fuzz_regressions.rs.
#
# Longer runs: FUZZ_SECONDS=600 scripts/fuzz-short.sh, or one target at a time as above.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${FUZZ_SECONDS:-15}"
sanitizer="${FUZZ_SANITIZER:-none}"
version=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$version"; then
  echo "fuzz-short: installing cargo-fuzz $version"
  cargo install cargo-fuzz --version "$version" --locked --quiet
fi
export RUSTC_BOOTSTRAP=1

flags=(-O -a -s "$sanitizer")
echo "fuzz-short: building the targets (sanitizer: $sanitizer)"
cargo fuzz build "${flags[@]}"

# Longest input per target: room for whole captures and logs where they are the input.
max_len() {
  case "$1" in
    capture_decode) echo 4096 ;;
    tcp_assembler) echo 8192 ;;
    tcp_flows | smtp_session) echo 16384 ;;
    analyze) echo 131072 ;;
    *) echo 65536 ;;
  esac
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target" "artifacts/$target"
  echo "fuzz-short: $target, $secs s"
  if ! cargo fuzz run "${flags[@]}" "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$secs" -seed=1 -timeout=10 -rss_limit_mb=2048 \
      -max_len="$(max_len "$target")" -print_final_stats=1 \
      >"$work/$target.log" 2>&1; then
    failed+=("$target")
    tail -n 60 "$work/$target.log"
    echo "fuzz-short: $target FAILED; the input is in fuzz/artifacts/$target/"
  else
    grep -E "^stat::number_of_executed_units|^Done" "$work/$target.log" || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-short: crash or hang in ${#failed[@]} of $(cargo fuzz list | wc -l) targets: ${failed[*]}"
  exit 1
fi
# Worded so it is not read as the test suite's closing count.
echo "fuzz-short: $(cargo fuzz list | wc -l) targets ran without a crash"
