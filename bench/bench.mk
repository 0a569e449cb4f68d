# The benchmark (bench/): `make bench-tools` builds the load generator
# and the plain socket server into build/bench/; `make bench` runs every
# scenario against bin/pop3server and a private Dovecot (bench/run.sh,
# docs/performance.md).  Included from the Makefile with -include.

BENCH_DIR    := build/bench
BENCH_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -pedantic \
                -D_POSIX_C_SOURCE=200809L -D_GNU_SOURCE

.PHONY: bench bench-tools bench-smoke

bench-tools: $(BENCH_DIR)/loadgen $(BENCH_DIR)/plainserver

$(BENCH_DIR)/loadgen: bench/loadgen.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) $< -o $@

$(BENCH_DIR)/plainserver: bench/plainserver.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) $< -o $@

bench: all bench-tools
	@bench/run.sh

bench-smoke: all bench-tools
	@bench/smoke.sh
