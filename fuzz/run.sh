#!/usr/bin/env bash
# Bounded fuzzing of internet-monitor's parsers with cargo-fuzz (libFuzzer + AddressSanitizer).
#
#   fuzz/run.sh [SECONDS]        # SECONDS of fuzzing per target, default 30
#
# Targets (fuzz/fuzz_targets/):
#   ookla_parse    the Speedtest CLI output parser (stdout, stderr, exit status -> Sample),
#                  with the sample's invariants asserted; seeded from tests/fixtures/*
#   query_string   the HTTP API's query-string parser and the time, count, duration,
#                  bandwidth, volume, rule-set and zone parsers behind its parameters; seeded
#                  from fuzz/seeds/
#   plan_record    the stored plan version's record decoder (a key and bytes -> a version that
#                  keeps the bounds and reads back the same, or an error); seeded from fuzz/seeds/
#   campaign_record the stored campaign's record decoder (a key and bytes -> a campaign that
#                  reads back the same, or an error); seeded from fuzz/seeds/
#   probe_record   the connectivity monitor's five record decoders (targets, minute rows,
#                  buckets, outages, runs: a key and bytes -> a value within bounds that reads
#                  back the same, or an error); seeded from fuzz/seeds/
#   remote_write_decode the remote write body decoder (snappy raw + protobuf -> a request that
#                  encodes and reads back the same, or an error); seeded from fuzz/seeds/
#
# What it does: installs cargo-fuzz if it is missing (`cargo install --locked cargo-fuzz`),
# writes the ookla_parse seeds into fuzz/corpus/ (git-ignored, grown by every run), builds the
# targets (into fuzz/target/), then fuzzes each
# target for SECONDS. Prints each target's executions and whether it crashed; exits 1 if any
# target crashed (the input is in fuzz/artifacts/TARGET/; reproduce with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-…`), 2 on a usage or
# build error.
#
# Wall time: 6 × (SECONDS + ~1 s) of fuzzing plus setup. Measured on the 2-core CI machine class,
# `fuzz/run.sh 15` from scratch took 4 min: ~40 s installing cargo-fuzz, ~3 min building the
# targets (libfuzzer-sys compiles libFuzzer's C++, so a C++ compiler is needed), 32 s fuzzing.
# With cargo-fuzz installed and fuzz/target/ warm, it is the fuzzing time alone.
#
# Toolchain: the default (stable) toolchain with RUSTC_BOOTSTRAP=1, since cargo-fuzz needs
# nightly-only flags; FUZZ_TOOLCHAIN=nightly uses `cargo +nightly` instead.
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS per target, default 30]" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
fuzz_dir="$PWD/fuzz"
targets=(ookla_parse query_string plan_record campaign_record probe_record remote_write_decode)

cargo=(cargo)
if [[ "${FUZZ_TOOLCHAIN:-}" == nightly ]]; then
  cargo=(cargo +nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "--- installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# ookla_parse seeds: each fixture in the target's input layout (see its header comment):
# flags (bit 0 store_ip), exit status as i32 LE, stdout length as u32 LE, stdout, stderr.
le32() {
  local n=$1
  local shift
  for shift in 0 8 16 24; do
    printf '%b' "\\x$(printf %02x $(((n >> shift) & 255)))"
  done
}
seed_dir="$fuzz_dir/corpus/ookla_parse"
mkdir -p "$seed_dir"
for rc_file in tests/fixtures/*.rc; do
  name="${rc_file%.rc}"
  rc="$(tr -dc 0-9 <"$rc_file")"
  for store_ip in 0 1; do
    {
      printf '%b' "\\x0$store_ip"
      le32 "${rc:-0}"
      le32 "$(wc -c <"$name.stdout")"
      cat "$name.stdout" "$name.stderr"
    } >"$seed_dir/fixture-$(basename "$name")-$store_ip"
  done
done

echo "--- building fuzz targets"
if ! "${cargo[@]}" fuzz build --fuzz-dir "$fuzz_dir"; then
  echo "fuzz build failed" >&2
  exit 2
fi

crashed=0
summary=()
for target in "${targets[@]}"; do
  echo "--- fuzzing $target for ${seconds}s"
  corpora=("$fuzz_dir/corpus/$target")
  mkdir -p "${corpora[0]}"
  [[ -d "$fuzz_dir/seeds/$target" ]] && corpora+=("$fuzz_dir/seeds/$target")
  args=(-max_total_time="$seconds" -print_final_stats=1)
  [[ -f "$fuzz_dir/dicts/$target.dict" ]] && args+=(-dict="$fuzz_dir/dicts/$target.dict")
  log="$(mktemp)"
  # Show the progress that matters, keep the full log for the counts.
  set +e
  "${cargo[@]}" fuzz run --fuzz-dir "$fuzz_dir" "$target" "${corpora[@]}" -- "${args[@]}" 2>&1 |
    tee "$log" |
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done |INFO: seed corpus|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written|Failing input|stat::)'
  status="${PIPESTATUS[0]}"
  set -e
  runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -n 1)"
  if [[ "$status" -ne 0 ]]; then
    crashed=1
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    summary+=("$target: CRASH (exit $status) ${artifact:+input $artifact}")
  else
    summary+=("$target: ${runs:-? runs}, no crash")
  fi
  rm -f "$log"
done

echo "--- fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
