#!/usr/bin/env bash
# Runs every test family against the real build and prints, last, one
# line "N passed, M failed" summing them.  SANITIZE=1 builds and runs
# everything under AddressSanitizer + UndefinedBehaviorSanitizer; any
# sanitizer report (including leaks at exit) counts as a failure.
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
jobs=$(nproc 2>/dev/null || echo 2)

if [ "${SANITIZE:-0}" = 1 ]; then
	build=build-san
	export POP3SERVER_BIN=$PWD/build-san/bin/pop3server
	san_dir=$(mktemp -d)
	export ASAN_OPTIONS="log_path=$san_dir/asan:detect_leaks=1:abort_on_error=0"
	export UBSAN_OPTIONS="log_path=$san_dir/ubsan:print_stacktrace=1"
	make_args="SANITIZE=1"
else
	build=build
	export POP3SERVER_BIN=$PWD/bin/pop3server
	san_dir=
	make_args=
fi

# Adds the counts of a family's "name: N passed, M failed" line; a
# family that printed no such line failed as a whole.
count() {
	local name=$1 log=$2 line
	line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -z "$line" ]; then
		echo "== $name: no result line (crashed?): counted as 1 failure"
		failed=$((failed + 1))
		return
	fi
	set -- $line
	passed=$((passed + $2))
	failed=$((failed + $4))
}

run() {
	local name=$1; shift
	local log
	log=$(mktemp)
	echo "== $name"
	"$@" 2>&1 | tee "$log"
	count "$name" "$log"
	rm -f "$log"
}

echo "== build"
if ! make -s -j"$jobs" $make_args all "$build/check_all"; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

run unit env CK_DEFAULT_TIMEOUT=30 "$build/check_all"
run protocol python3 tests/protocol/run.py
run mgmt python3 tests/mgmt/run.py
run filters python3 tests/filters/run.py
run hardening python3 tests/hardening/run.py
run ops python3 tests/ops/run.py
run e2e python3 tests/e2e/run.py
run conformance python3 tests/conformance/run.py

if [ -n "$san_dir" ]; then
	if ls "$san_dir"/* >/dev/null 2>&1; then
		echo "== sanitizer reports:"
		cat "$san_dir"/*
		failed=$((failed + 1))
	else
		echo "== sanitizers: no reports"
	fi
	rm -rf "$san_dir"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
