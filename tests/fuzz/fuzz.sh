#!/usr/bin/env bash
# Runs built harnesses (make fuzz-build first; fuzz.mk calls this).
#
#   fuzz.sh regress H...   replay every file of tests/fuzz/corpus/H and
#                          tests/fuzz/regress/H once, without fuzzing
#   fuzz.sh run H...       fuzz H for $FUZZ_SECONDS (default 30) on a
#                          copy of its corpus in build-fuzz/corpus/H
#
# Prints one "PASS|FAIL <mode> <harness> ..." line per harness and exits
# non-zero if any failed.  A crash leaves its input in
# build-fuzz/artifacts/H/ (crash-*, leak-*, timeout-*, oom-*): minimise
# it with `build-fuzz/fuzz_H -minimize_crash=1 -runs=10000 FILE`, then
# add it to tests/fuzz/regress/H/ once fixed.
set -u
cd "$(dirname "$0")/../.."

build=build-fuzz
mode=${1:-}
shift || true
if [ "$mode" != regress ] && [ "$mode" != run ] || [ $# -eq 0 ]; then
	echo "usage: $0 regress|run HARNESS..." >&2
	exit 2
fi
seconds=${FUZZ_SECONDS:-30}
mkdir -p "$build/logs"
status=0

for h in "$@"; do
	bin=$build/fuzz_$h
	log=$build/logs/$mode-$h.log
	if [ ! -x "$bin" ]; then
		echo "FAIL $mode $h: $bin is not built (make fuzz-build)"
		status=1
		continue
	fi
	dict=()
	if [ -f "tests/fuzz/dict/$h.dict" ]; then
		dict=(-dict="tests/fuzz/dict/$h.dict")
	fi

	if [ "$mode" = regress ]; then
		files=()
		for d in "tests/fuzz/corpus/$h" "tests/fuzz/regress/$h"; do
			[ -d "$d" ] || continue
			while IFS= read -r -d '' f; do
				files+=("$f")
			done < <(find "$d" -type f ! -name '.*' ! -name '*.md' \
			    -print0 | sort -z)
		done
		if [ "${#files[@]}" -eq 0 ]; then
			echo "FAIL regress $h: no inputs in tests/fuzz/corpus/$h"
			status=1
			continue
		fi
		# Files as arguments: libFuzzer runs each one once.
		if "$bin" "${files[@]}" >"$log" 2>&1; then
			echo "PASS regress $h (${#files[@]} inputs)"
		else
			echo "FAIL regress $h (log: $log)"
			grep -E 'ERROR|invariant|fuzz_[a-z0-9]+:|SUMMARY|Running:' \
			    "$log" | tail -n 15
			status=1
		fi
		continue
	fi

	corpus=$build/corpus/$h
	artifacts=$build/artifacts/$h
	rm -rf "$corpus"
	mkdir -p "$corpus" "$artifacts"
	# A copy: what the fuzzer adds never lands in the repository.
	for d in "tests/fuzz/corpus/$h" "tests/fuzz/regress/$h"; do
		[ -d "$d" ] || continue
		find "$d" -type f ! -name '.*' ! -name '*.md' \
		    -exec cp {} "$corpus/" \;
	done
	if "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$artifacts/" \
	    "${dict[@]}" "$corpus" >"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "PASS run $h (${seconds}s, ${execs:-?} runs)"
	else
		echo "FAIL run $h (log: $log)"
		grep -E 'ERROR|invariant|fuzz_[a-z0-9]+:|SUMMARY|Test unit written' \
		    "$log" | tail -n 15
		status=1
	fi
done
exit $status
