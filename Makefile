# pop3server build.  `make help` lists the targets.

CC       ?= cc
CSTD     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wcast-qual \
            -Wwrite-strings -Wformat=2 -Wimplicit-fallthrough -Wvla -Wundef
WERROR   ?= -Werror
OPT      ?= -O2 -g
BUILD    ?= build
LDLIBS   += -lcrypt

ifeq ($(SANITIZE),1)
BUILD    := build-san
OPT      := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
BINDIR   := $(BUILD)/bin
else
BINDIR   := bin
endif

CFLAGS   += $(CSTD) $(WARN) $(WERROR) $(OPT)
CPPFLAGS += -Iinclude -MMD -MP

MAIN_SRCS := src/main.c src/admin_monitor.c
LIB_SRCS  := $(filter-out $(MAIN_SRCS),$(wildcard src/*.c))
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libpop3d.a

UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%.o)
SUITES    := $(patsubst tests/unit/check_%.c,%,$(wildcard tests/unit/check_*.c))

PROGRAMS  := $(BINDIR)/pop3server $(if $(wildcard src/admin_monitor.c),$(BINDIR)/admin_monitor)

DEPS := $(LIB_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(BUILD)/main.d $(BUILD)/admin_monitor.d

.PHONY: all run test check unit protocol e2e conformance sanitize asan headers format clean help deps \
        install uninstall lint valgrind

PREFIX   ?= /usr/local
DESTDIR  ?=
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/pop3server

all: $(PROGRAMS)

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(AR) rcs $@ $^

$(BINDIR)/pop3server: $(BUILD)/main.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BINDIR)/admin_monitor: $(BUILD)/admin_monitor.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Unit tests (Check): one binary, every suite found in tests/unit/check_*.c.
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

$(BUILD)/unit/suites.h: $(wildcard tests/unit/check_*.c)
	@mkdir -p $(@D)
	@printf '%s\n' $(foreach s,$(SUITES),'SUITE($(s))') > $@

$(BUILD)/unit/%.o: tests/unit/%.c $(BUILD)/unit/suites.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -I$(BUILD)/unit -Itests/unit $(CHECK_CFLAGS) $(CFLAGS) -c $< -o $@

# --wrap: check_maildir counts how often the library reads a folder and
# how many entries it reads, and plays another reader renaming a file
# between the library's calls, or a file system without hard links;
# check_users makes a save's mkstemp fail and looks at its lock while it
# syncs; check_conn makes the timer heap's realloc fail.
UNIT_WRAPS = -Wl,--wrap=opendir,--wrap=closedir,--wrap=readdir64
UNIT_WRAPS += -Wl,--wrap=link,--wrap=fstatat64,--wrap=mkstemp64
UNIT_WRAPS += -Wl,--wrap=fsync,--wrap=realloc
$(BUILD)/check_all: $(UNIT_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $(UNIT_WRAPS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@

# Installs what the tests need (Debian packages) when it is missing.
deps:
	@tests/deps.sh

unit: $(BUILD)/check_all
	$(BUILD)/check_all

protocol: all
	python3 tests/protocol/run.py

e2e: all
	python3 tests/e2e/run.py

# Answers compared with a private Dovecot's (installed when missing; root).
conformance: all
	python3 tests/conformance/run.py

# The unit suites in one process under valgrind memcheck, then a POP3
# session set against a server under valgrind: no error, no leak.
valgrind: all $(BUILD)/check_all
	CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite $(BUILD)/check_all
	tests/valgrind.sh

# The whole suite; the last line it prints is "N passed, M failed".
test: deps
	@tests/run_all.sh

check: test

sanitize asan: deps
	@SANITIZE=1 tests/run_all.sh

# The demo: a copy of mail/ and demo users in run/ (ignored by git).
run: all
	@tests/demo.sh

# Static analysis; no finding is allowed.  cppcheck suppressions, and why:
#  variableScope      style(9) declares locals at the top of a function
#  redundantContinue  `while (...) continue;` is the KNF empty loop body
#  missingIncludeSystem  system headers are not cppcheck's business
# clang-tidy's check list and its reasons are in .clang-tidy.
LINT_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_XOPEN_SOURCE=700 -D_FILE_OFFSET_BITS=64 -Iinclude

lint:
	cppcheck -q --error-exitcode=1 --std=c11 -Iinclude \
	    --enable=warning,style,performance,portability \
	    --suppress=variableScope --suppress=redundantContinue \
	    --suppress=missingIncludeSystem --inline-suppr src/
	clang-tidy --quiet src/*.c -- $(LINT_CFLAGS)

# Paths are quoted (a DESTDIR may hold spaces), and uninstall removes
# the files install put there and the doc folders it leaves empty,
# nothing else: DOCDIR, man8 and man1 may be shared with others.
EXAMPLES := $(notdir $(wildcard docs/examples/*))
DOCS     := README.md $(notdir $(wildcard docs/*.md))

# The texts (man pages, unit file, docs) name the default install's
# paths: each is installed naming this install's, and the README's
# links follow the docs into DOCDIR.  A path's \, & and | are escaped
# for sed's replacement.
sed_path = $(subst |,\|,$(subst &,\&,$(subst \,\\,$(1))))
INSTALL_SED := s|/usr/local/share/doc/pop3server/|$(call sed_path,$(DOCDIR))/|g; \
    s|/usr/local/share/man/|$(call sed_path,$(MANDIR))/|g; \
    s|/usr/local/sbin/|$(call sed_path,$(PREFIX))/sbin/|g; \
    s|/usr/local/bin/|$(call sed_path,$(PREFIX))/bin/|g
README_SED := ; s|](docs/|](|g; s|^bin/||; s|man -l docs/\([a-z0-9_]*\)\.\([18]\)|man \2 \1|g
define install_text
for f in $(1); do sed '$(INSTALL_SED)$(3)' "$$f" > "$(DESTDIR)$(2)/$${f##*/}" && \
    chmod 0644 "$(DESTDIR)$(2)/$${f##*/}" || exit 1; done
endef

install: all
	install -D -m 0755 $(BINDIR)/pop3server "$(DESTDIR)$(PREFIX)/sbin/pop3server"
	install -D -m 0755 $(BINDIR)/admin_monitor "$(DESTDIR)$(PREFIX)/bin/admin_monitor"
	install -d "$(DESTDIR)$(MANDIR)/man8" "$(DESTDIR)$(MANDIR)/man1" \
	    "$(DESTDIR)$(DOCDIR)/examples"
	$(call install_text,docs/pop3server.8,$(MANDIR)/man8)
	$(call install_text,docs/admin_monitor.1,$(MANDIR)/man1)
	$(call install_text,docs/examples/*,$(DOCDIR)/examples)
	$(call install_text,docs/*.md,$(DOCDIR))
	$(call install_text,README.md,$(DOCDIR),$(README_SED))

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/sbin/pop3server" \
	    "$(DESTDIR)$(PREFIX)/bin/admin_monitor" \
	    "$(DESTDIR)$(MANDIR)/man8/pop3server.8" \
	    "$(DESTDIR)$(MANDIR)/man1/admin_monitor.1"
	rm -f $(foreach f,$(EXAMPLES),"$(DESTDIR)$(DOCDIR)/examples/$(f)") \
	    $(foreach f,$(DOCS),"$(DESTDIR)$(DOCDIR)/$(f)")
	rmdir "$(DESTDIR)$(DOCDIR)/examples" "$(DESTDIR)$(DOCDIR)" 2>/dev/null || true

headers:
	@for h in include/*.h; do \
	    printf '#include "%s"\ntypedef int not_empty;\n' $$(basename $$h) | \
	    $(CC) $(filter-out -MMD -MP,$(CPPFLAGS)) $(CFLAGS) -x c -fsyntax-only - || exit 1; done

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build build-san bin run

help:
	@echo 'make            build bin/pop3server and bin/admin_monitor'
	@echo 'make run        run the demo server on port 1110 (see README)'
	@echo 'make test       install test tools if missing, run every test'
	@echo 'make unit       unit tests only (Check)'
	@echo 'make protocol   black-box POP3 tests only (also: make e2e)'
	@echo 'make conformance  the same commands to us and to Dovecot, compared'
	@echo 'make valgrind   unit tests and a session set under memcheck'
	@echo 'make asan       the whole suite under ASan + UBSan'
	@echo 'make headers    compile every header on its own'
	@echo 'make lint       cppcheck and clang-tidy, no finding allowed'
	@echo 'make install    install to $$(DESTDIR)$$(PREFIX) (default /usr/local)'
	@echo 'make uninstall  remove what make install put there'
	@echo 'make clean      remove build outputs'

-include $(DEPS)

-include bench/bench.mk
-include tests/fuzz/fuzz.mk
