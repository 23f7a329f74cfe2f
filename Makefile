# calypso: plain GNU make.
#
# Knobs (set on the command line, e.g. `make CC=clang`):
#   CC        C compiler (default cc; gcc and clang both work)
#   OPT       optimisation flags for library and tests (default -O2 -g)
#   SAN       extra sanitizer flags, set by the asan/tsan targets
#   BUILD     output directory (default build; asan/tsan use build-asan, build-tsan)
#   PREFIX    install prefix (default /usr/local); DESTDIR is honoured
#   CALYPSO_SEED   seed for randomized tests (printed by each run)
#   BENCH_N   keys per benchmark workload (bench-art default 10000000)
#
# Main targets: all, test, demo, bench-art, amalgamation, check-amalgamation,
# check-release, asan, tsan, install, uninstall, clean.

CC      ?= cc
OPT     ?= -O2 -g
SAN     ?=
BUILD   ?= build
PREFIX  ?= /usr/local

WARN    := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes
CFLAGS_ALL := -std=c11 $(OPT) $(SAN) $(WARN) -I. -Isrc
LDLIBS_ALL := -lpthread -lm $(SAN)

# Debian packages the build and the tests need (installed by `make deps`).
DEB_PACKAGES := libxxhash-dev libcmocka-dev

# The amalgamation order: alloc and os first (everything uses them), then the
# key directory, then the engine's layers bottom-up.
AMALG_SRC := src/alloc.c src/os.c src/art.c src/record.c src/error.c src/dir.c src/guard.c src/watermark.c src/epoch.c \
             src/ids.c src/space.c src/files.c src/keylist.c src/ttl.c src/keydir.c src/scan.c src/recover.c \
             src/ns.c src/hint.c src/db.c src/commit.c src/write.c src/read.c \
             src/getmany.c src/batch.c src/view.c src/txn.c src/walk.c src/cursor.c \
             src/bg.c src/merge.c src/backup.c
SRC_HDRS  := $(wildcard src/*.h)

# The test layers over the syscall table and the allocator (fault injection,
# call counting, the power-loss simulator): linked into the unit tests and
# fuzzers only, never into calypso.c, libcalypso.a or libcy_modules.a.
TEST_HOOK_SRC := src/alloc_fault.c src/os_fault.c src/os_powerloss.c

# Tests: every tests/test_*.c is one cmocka binary. API_TESTS link only the
# amalgamation (libcalypso.a); the rest link the modules one by one, plus
# the test layers (TEST_HOOK_OBJ), so that they can reach internal test hooks.
TEST_SRC  := $(wildcard tests/test_*.c)
API_TESTS := $(BUILD)/test_api
TESTS     := $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))
UNIT_TESTS := $(filter-out $(API_TESTS),$(TESTS))
OBJ       := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(AMALG_SRC))
TEST_HOOK_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(TEST_HOOK_SRC))

# Programs and extra test steps come from fragments in mk/ (one per program
# or harness): each appends to PROGRAMS (built by `all`) and EXTRA_TESTS
# (phony targets that `make test` runs after the unit tests).
PROGRAMS    :=
EXTRA_TESTS :=
.DEFAULT_GOAL := all
include $(wildcard mk/*.mk)

.PHONY: all lib programs deps test run-tests demo amalgamation check-amalgamation \
        check-symbols check-release check-vendor asan tsan bench-art bench-engine install uninstall clean

all: deps lib programs

programs: $(PROGRAMS)

lib: $(BUILD)/libcalypso.a

deps:
	@missing=""; \
	[ -f /usr/include/xxhash.h ] || missing="$$missing libxxhash-dev"; \
	[ -f /usr/include/cmocka.h ] || missing="$$missing libcmocka-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# ---- amalgamation -----------------------------------------------------------
calypso.c: $(AMALG_SRC) $(SRC_HDRS) tools/amalgamate
	tools/amalgamate $@ $(AMALG_SRC)

amalgamation: calypso.c

check-amalgamation:
	@tmp=$$(mktemp -d) && tools/amalgamate $$tmp/calypso.c $(AMALG_SRC) && \
	if cmp -s $$tmp/calypso.c calypso.c; then rm -rf $$tmp; echo "calypso.c is fresh"; \
	else rm -rf $$tmp; echo "calypso.c is stale: run make amalgamation" >&2; exit 1; fi

# ---- library ----------------------------------------------------------------
$(BUILD)/calypso.o: calypso.c calypso.h | $(BUILD)
	$(CC) $(CFLAGS_ALL) -c calypso.c -o $@

$(BUILD)/libcalypso.a: $(BUILD)/calypso.o
	rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: src/%.c $(SRC_HDRS) calypso.h | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libcy_modules.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD) $(BUILD)/obj:
	mkdir -p $@

# ---- tests ------------------------------------------------------------------
$(API_TESTS): $(BUILD)/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libcalypso.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcalypso.a -lcmocka $(LDLIBS_ALL)

# The test layers are linked as objects, not from an archive: each installs
# itself from a constructor, which nothing references by name.
$(UNIT_TESTS): $(BUILD)/%: tests/%.c $(wildcard tests/*.h) $(TEST_HOOK_OBJ) $(BUILD)/libcy_modules.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(TEST_HOOK_OBJ) $(BUILD)/libcy_modules.a -lcmocka $(LDLIBS_ALL)

run-tests: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

test: deps check-amalgamation check-api-docs check-layers all run-tests check-symbols check-release check-vendor $(EXTRA_TESTS)
	@echo "make test: all tiers passed"

# Every symbol libcalypso.a defines globally must carry the calypso_ prefix.
check-symbols: $(BUILD)/libcalypso.a
	@bad=$$(nm -g --defined-only $(BUILD)/libcalypso.a | awk 'NF==3 {print $$3}' | grep -v '^calypso_' || true); \
	if [ -n "$$bad" ]; then echo "libcalypso.a exports symbols without the calypso_ prefix:" >&2; echo "$$bad" >&2; exit 1; fi; \
	echo "libcalypso.a exports calypso_* only"

# The release build carries no test machinery: calypso.c names none of the
# test layers' functions or counters (nor their door, cy_os_install and
# cy_alloc_install), libcalypso.a and libcy_modules.a (the modules that
# programs and benchmarks link) define or reference none of them, and the
# syscall table and the allocator in calypso.c do no atomic
# read-modify-write.
TEST_HOOK_NAMES := cy_os_fail_|cy_os_count|cy_os_powerloss_|cy_os_pl_|cy_os_calls|cy_os_fault|cy_os_enter|cy_alloc_fail|cy_alloc_count|cy_alloc_made|cy_alloc_should_fail|cy_alloc_fault|CY_TESTHOOK
check-release: calypso.c $(BUILD)/libcalypso.a $(BUILD)/libcy_modules.a
	@if grep -nE '$(TEST_HOOK_NAMES)|cy_os_install|cy_alloc_install|testhooks\.h' calypso.c; then \
	  echo "calypso.c carries test machinery (the lines above)" >&2; exit 1; fi
	@if nm $(BUILD)/libcalypso.a $(BUILD)/libcy_modules.a | grep -E '$(TEST_HOOK_NAMES)'; then \
	  echo "the release libraries define or reference test machinery (the symbols above)" >&2; exit 1; fi
	@if awk '/^\/\* >> src\/(os|alloc)\.c \*\//{on=1; next} /^\/\* >> /{on=0} on' calypso.c | \
	    grep -nE '__atomic_(add|sub|and|or|xor|nand|fetch|exchange|compare)|__sync_|atomic_fetch|stdatomic'; then \
	  echo "the syscall table or the allocator in calypso.c does atomic read-modify-writes" >&2; exit 1; fi
	@echo "release build: no fault counters, no power-loss simulator"

# calypso.c must compile alone, strictly, under gcc and clang; and the two
# files alone, copied into an empty directory, must build and run the
# quickstart (vendoring is "copy two files").
check-vendor: calypso.c calypso.h examples/quickstart.c
	@for c in gcc clang; do \
	  command -v $$c >/dev/null || continue; \
	  $$c -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -c calypso.c -o /dev/null || exit 1; \
	  echo "calypso.c compiles alone under $$c"; \
	done
	@tmp=$$(mktemp -d) && cp calypso.c calypso.h examples/quickstart.c $$tmp/ && \
	  (cd $$tmp && cc -std=c11 -O2 quickstart.c calypso.c -lpthread -lm -o quickstart && \
	   ./quickstart $$tmp/db >/dev/null) && rm -rf $$tmp && \
	  echo "vendored calypso.c + calypso.h build and run the quickstart"

# No cycle among the engine's modules or local headers (tools/check-layers).
check-layers: ; @tools/check-layers src

# Every function in calypso.h documents its errors and thread-safety (tools/check-api-docs; its self-test first).
check-api-docs: ; @tools/check-api-docs --self-test && tools/check-api-docs calypso.h src

asan:
	$(MAKE) BUILD=build-asan SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" OPT="-O1 -g" run-tests

tsan:
	$(MAKE) BUILD=build-tsan SAN="-fsanitize=thread" OPT="-O1 -g" run-tests

# ---- benchmarks -------------------------------------------------------------
$(BUILD)/bench_art: bench/bench_art.c $(BUILD)/libcy_modules.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcy_modules.a $(LDLIBS_ALL)

bench-art: deps $(BUILD)/bench_art
	$(BUILD)/bench_art

$(BUILD)/bench_engine: bench/bench_engine.c $(BUILD)/libcalypso.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)

bench-engine: deps $(BUILD)/bench_engine
	BENCH_DIR=$(BUILD)/bench-engine $(BUILD)/bench_engine

# ---- demo -------------------------------------------------------------------
$(BUILD)/quickstart: examples/quickstart.c $(BUILD)/libcalypso.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)

demo: deps $(BUILD)/quickstart
	@rm -rf $(BUILD)/demo-db && $(BUILD)/quickstart $(BUILD)/demo-db

# ---- install ----------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 calypso.h $(DESTDIR)$(PREFIX)/include/calypso.h
	install -m 644 $(BUILD)/libcalypso.a $(DESTDIR)$(PREFIX)/lib/libcalypso.a
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|'$$(sed -n 's/^#define CALYPSO_VERSION "\(.*\)"/\1/p' calypso.h)'|' \
	  tools/calypso.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/calypso.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/calypso.h $(DESTDIR)$(PREFIX)/lib/libcalypso.a \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/calypso.pc

clean:
	rm -rf build build-asan build-tsan
