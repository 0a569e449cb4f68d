# libFuzzer harnesses (tests/fuzz/README.md).  Included by the top
# Makefile; needs clang and its fuzzer runtime (Debian: clang-14 and
# libclang-rt-14-dev).
#
#   make fuzz-build               build the harnesses into build-fuzz/
#   make fuzz-regress             replay corpus + regress inputs once each
#   make fuzz [FUZZ_SECONDS=30]   fuzz each harness (on a copy of its corpus)
#   make fuzz-run-pop3 ...        fuzz one harness; fuzz-regress-pop3 likewise
#   make fuzz-clean               remove build-fuzz/

# Including this file must not change the Makefile's default goal.
fuzz_saved_goal := $(.DEFAULT_GOAL)

# Fallbacks for `make -f tests/fuzz/fuzz.mk`; the top Makefile's win.
CSTD ?= -std=c11 -D_POSIX_C_SOURCE=200809L -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64
WARN ?= -Wall -Wextra

FUZZ_CC        ?= clang
FUZZ_SECONDS   ?= 30
FUZZ_BUILD     := build-fuzz
FUZZ_HARNESSES := pop3 mgmt dotstuff users base64
FUZZ_SAN       := -fsanitize=fuzzer,address,undefined \
                  -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS     = $(CSTD) $(WARN) $(WERROR) -O1 -g $(FUZZ_SAN)
FUZZ_CPPFLAGS  := -Iinclude -Itests/fuzz -MMD -MP

# The project's library sources, as the daemon has them (no main()s).
FUZZ_LIB_SRCS  := $(filter-out src/main.c src/admin_monitor.c,\
                  $(wildcard src/*.c))
FUZZ_LIB_OBJS  := $(FUZZ_LIB_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS      := $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS      := $(FUZZ_LIB_OBJS) $(FUZZ_BUILD)/obj/fuzz_session.o \
                  $(FUZZ_HARNESSES:%=$(FUZZ_BUILD)/obj/fuzz_%.o)

.PHONY: fuzz fuzz-build fuzz-regress fuzz-clean
# Objects made by pattern rules are kept (make would delete them).
.SECONDARY: $(FUZZ_OBJS)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

# The session harnesses share the in-process driver (users: its tempdir).
$(FUZZ_BUILD)/fuzz_pop3 $(FUZZ_BUILD)/fuzz_mgmt $(FUZZ_BUILD)/fuzz_users: \
    $(FUZZ_BUILD)/obj/fuzz_session.o

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/fuzz_%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) $(filter %.o,$^) -lcrypt -o $@

fuzz-regress: fuzz-build
	@tests/fuzz/fuzz.sh regress $(FUZZ_HARNESSES)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz.sh run $(FUZZ_HARNESSES)

fuzz-regress-%: $(FUZZ_BUILD)/fuzz_%
	@tests/fuzz/fuzz.sh regress $*

fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz.sh run $*

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(wildcard $(FUZZ_BUILD)/obj/*.d)

.DEFAULT_GOAL := $(fuzz_saved_goal)
