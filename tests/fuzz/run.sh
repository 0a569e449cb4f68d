#!/usr/bin/env bash
# The fuzz test family: builds the libFuzzer harnesses, replays every
# corpus and regression input through each (one check per harness),
# then fuzzes each for a short smoke time (one check per harness;
# FUZZ_SECONDS, default 20).  The last line is always
#   fuzz: N passed, M failed
# and the exit status is 0 only when M is 0.  A missing clang or
# libFuzzer runtime fails every check: tests/deps.sh installs them
# (Debian: clang-14 and libclang-rt-14-dev).
set -u
cd "$(dirname "$0")/../.."

# The harnesses carry their own sanitizers and report through their
# logs: options meant for the daemon's sanitized build do not apply.
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

harnesses=(pop3 mgmt dotstuff users base64)
checks=$((2 * ${#harnesses[@]}))
export FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0

finish() {
	echo "fuzz: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

# The toolchain: clang must link a fuzzer with ASan and UBSan.
probe=$(mktemp -d)
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' >"$probe/probe.c"
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 ||
    ! "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined \
    "$probe/probe.c" -o "$probe/probe" >"$probe/log" 2>&1; then
	cat "$probe/log" 2>/dev/null
	rm -rf "$probe"
	echo "fuzz: clang with the libFuzzer runtime is missing" \
	    "(Debian packages clang-14 and libclang-rt-14-dev)"
	failed=$checks
	finish
fi
rm -rf "$probe"

# The top Makefile includes fuzz.mk; without that line, add it here.
make_cmd=(make --no-print-directory)
if ! grep -q 'tests/fuzz/fuzz.mk' Makefile; then
	make_cmd+=(-f Makefile -f tests/fuzz/fuzz.mk)
fi
echo "== fuzz: build"
if ! "${make_cmd[@]}" -s -j"$(nproc 2>/dev/null || echo 2)" fuzz-build; then
	echo "fuzz: the harnesses do not build"
	failed=$checks
	finish
fi

count() {
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
}

echo "== fuzz: replay of corpus and regression inputs"
for h in "${harnesses[@]}"; do
	count tests/fuzz/fuzz.sh regress "$h"
done
echo "== fuzz: ${FUZZ_SECONDS}s of fuzzing per harness"
for h in "${harnesses[@]}"; do
	count tests/fuzz/fuzz.sh run "$h"
done
finish
