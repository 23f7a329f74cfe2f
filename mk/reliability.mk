# mk/reliability.mk: the reliability harness beyond the unit tests.
#
# tests/test_faults.c, test_powerloss.c and test_crash.c are ordinary test
# binaries (run by `make test` and by the asan and tsan tiers) in a bounded
# form. This fragment adds their long forms, the fuzzers and valgrind:
#
#   make crash-test   200 kill -9 cycles (CRASH_CYCLES), the power-loss test
#                     at 5x its seeds, every fault-injection variant, and
#                     3000 kill -9 plus 2000 power-loss cycles of batch commits,
#                     and READER_SECONDS (default 120) of readers checking
#                     their snapshots beside a writer process under load
#   make fuzz         each libFuzzer target for FUZZ_SECONDS (default 60) s;
#                     new inputs go to $(FUZZ_BUILD)/corpus/<target>, crashes
#                     to $(FUZZ_BUILD)/crash-<target>-*
#   make fuzz-quick   each target for FUZZ_QUICK_SECONDS (default 5) s; part
#                     of `make test`
#   make valgrind     the test binaries under memcheck: zero errors, zero
#                     definite or indirect leaks (VALGRIND_SKIP lists tests
#                     to leave out: by default test_merge, whose crash tests
#                     fork children that die mid-merge by design, leaving
#                     memory memcheck reports from the child, and whose walk
#                     test needs merges that valgrind slows past its window)
#   make fuzz-corpus  regenerates the seed corpus fuzz/corpus/ (committed)
#   make fuzz-deps    checks that clang can build libFuzzer targets and
#                     installs clang's runtime from Debian when it cannot (as
#                     root), or prints the apt-get command
#
# Knobs: CRASH_CYCLES, READER_SECONDS, FUZZ_SECONDS, FUZZ_QUICK_SECONDS, FUZZ_CC (clang),
# FUZZ_BUILD (build-fuzz), VALGRIND_BUILD (build-valgrind), VALGRIND_SKIP.
# The fuzz targets (fuzz/fuzz_*.c) link the src/ modules and the test
# layers (TEST_HOOK_SRC: allocation and syscall faults) compiled with
# clang -fsanitize=fuzzer-no-link,address,undefined into $(FUZZ_BUILD).

.DEFAULT_GOAL := all

CRASH_CYCLES       ?= 200
READER_SECONDS ?= 120
FUZZ_CC            ?= clang
FUZZ_BUILD         ?= build-fuzz
FUZZ_SECONDS       ?= 60
FUZZ_QUICK_SECONDS ?= 5
FUZZ_TARGETS       := open ops art
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS        := -std=c11 -O1 -g $(FUZZ_SAN) -Wall -Wextra -I. -Isrc
FUZZ_OBJ           := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(AMALG_SRC) $(TEST_HOOK_SRC))
FUZZ_BINS          := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

VALGRIND_BUILD ?= build-valgrind
VALGRIND_SKIP  ?= test_merge
VALGRIND_TESTS := $(filter-out $(VALGRIND_SKIP:%=$(VALGRIND_BUILD)/%), \
                    $(patsubst tests/%.c,$(VALGRIND_BUILD)/%,$(TEST_SRC)))
VALGRIND_RUN   := valgrind -q --error-exitcode=99 --leak-check=full \
                  --errors-for-leak-kinds=definite,indirect \
                  --show-leak-kinds=definite,indirect --child-silent-after-fork=yes

EXTRA_TESTS += fuzz-quick

.PHONY: crash-test fuzz fuzz-quick fuzz-deps fuzz-corpus valgrind valgrind-deps

# The reliability tests include tests/crash_util.h, which the generic test
# rule does not know about.
$(BUILD)/test_faults $(BUILD)/test_powerloss $(BUILD)/test_crash: tests/crash_util.h

crash-test: deps $(BUILD)/test_crash $(BUILD)/test_powerloss $(BUILD)/test_faults $(BUILD)/test_batch \
            $(BUILD)/test_reader $(BUILD)/calypso
	CALYPSO_CRASH_CYCLES=$(CRASH_CYCLES) $(BUILD)/test_crash
	CALYPSO_READER_SECONDS=$(READER_SECONDS) $(BUILD)/test_reader
	CALYPSO_BATCH_CYCLES=1000 $(BUILD)/test_batch
	CALYPSO_TEST_SCALE=500 $(BUILD)/test_powerloss
	CALYPSO_FAULTS=full $(BUILD)/test_faults

# ---- fuzzing ------------------------------------------------------------------
fuzz-deps:
	@tmp=$$(mktemp -d) && \
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > $$tmp/t.c; \
	if $(FUZZ_CC) -fsanitize=fuzzer,address $$tmp/t.c -o $$tmp/t >/dev/null 2>&1; then rm -rf $$tmp; exit 0; fi; \
	rm -rf $$tmp; \
	if command -v $(FUZZ_CC) >/dev/null; then \
	  pkgs="libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev"; \
	else pkgs="clang libclang-rt-dev"; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing:$$pkgs (libFuzzer's runtime)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || exit 1; \
	  if ! command -v $(FUZZ_CC) >/dev/null; then exit 1; fi; \
	  pkgs="libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || exit 1; \
	else \
	  echo "clang cannot build libFuzzer targets; run: sudo apt-get install -y $$pkgs" >&2; exit 1; \
	fi

$(FUZZ_BUILD)/obj/%.o: src/%.c $(SRC_HDRS) calypso.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_OBJ) | fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ -lpthread -lm

# Runs every target for $(1) seconds over its committed corpus plus what it
# found before; stops at the first target that finds a crash.
define fuzz_run
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  log=$(FUZZ_BUILD)/fuzz_$$t.log; \
	  if ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(1) \
	       -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	       $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t >$$log 2>&1; then \
	    echo "fuzz_$$t: $(1) s, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$log) runs, no failure"; \
	  else \
	    tail -60 $$log; echo "fuzz_$$t FAILED: the input is in $(FUZZ_BUILD)/crash-$$t-*; log in $$log" >&2; exit 1; \
	  fi; \
	done
endef

fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-quick: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_QUICK_SECONDS))

# ---- valgrind -----------------------------------------------------------------
valgrind-deps:
	@command -v valgrind >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing: valgrind"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; \
	else echo "valgrind is missing; run: sudo apt-get install -y valgrind" >&2; exit 1; fi

# Heavy randomized tests shrink under valgrind: CALYPSO_TEST_SCALE is a
# percentage that tests apply to their loop sizes.
# Exit status 99 is memcheck's (errors or leaks); anything else non-zero is
# the test's own verdict. Every binary runs; the target fails if any did.
valgrind: deps valgrind-deps
	$(MAKE) BUILD=$(VALGRIND_BUILD) OPT="-O1 -g" $(VALGRIND_TESTS)
	@mem=""; failed=""; for t in $(VALGRIND_TESTS); do \
	  echo "== valgrind $$t"; \
	  CALYPSO_TEST_SCALE=10 CALYPSO_CRASH_CYCLES=3 $(VALGRIND_RUN) $$t; rc=$$?; \
	  if [ $$rc = 99 ]; then mem="$$mem $$t"; elif [ $$rc != 0 ]; then failed="$$failed $$t"; fi; \
	done; \
	[ -z "$$failed" ] || echo "valgrind: tests that failed (not memory errors):$$failed" >&2; \
	[ -z "$$mem" ] || echo "valgrind: memory errors or leaks in:$$mem" >&2; \
	[ -z "$$mem$$failed" ] && echo "valgrind: no errors, no leaks"

# ---- seed corpus ------------------------------------------------------------------
# Regenerates fuzz/corpus/ from real databases (the result is committed).
$(BUILD)/mkcorpus: fuzz/mkcorpus.c fuzz/fuzz_util.h $(BUILD)/libcalypso.a
	$(CC) -std=c11 -O1 -g -I. $< -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)

fuzz-corpus: $(BUILD)/mkcorpus
	rm -rf fuzz/corpus && mkdir -p fuzz/corpus/open fuzz/corpus/ops fuzz/corpus/art
	$(BUILD)/mkcorpus fuzz/corpus
