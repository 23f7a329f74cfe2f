# mk/bench.mk: the benchmark of calypso against the engines a user would
# pick instead (bench/: harness*.c, one adapter per engine in adapters/).
#
#   make bench         full run: N = 1,000,000, median of 3 runs (~30 min);
#                      results in bench/results/ (table, CSV, charts and the
#                      README section)
#   make bench-quick   N = 100,000, about 3.5 minutes; bench/results/quick/
#   make bench-deps    installs the peers' Debian packages when missing (as
#                      root), or prints the apt-get command
#
# Knobs: BENCH_N (keys; default 1000000, quick 100000), BENCH_N_LARGE (keys
# of the "large" group: fillrandom, reads, multi-get, close and open,
# overwrite at e.g. 10000000; default 0: not run), BENCH_REPS (runs
# per figure, default 3), BENCH_DIR (where databases live while measured;
# default $(BUILD)/bench-tmp, on the real disk, never tmpfs), BENCH_ENGINES
# and BENCH_GROUPS (comma lists: `$(BUILD)/bench/harness list` names the
# engines; groups are main, latency, durable, value1k, value16k, large),
# BENCH_ARGS (more harness options, e.g. --durable-secs 1).
#
# BENCH_N_LARGE is off in `make bench` because of its time: every engine's
# fill must complete, and at 10M keys that is about 20 s for calypso and the
# hash engines but minutes for the trees and SQLite (SQLite ~34k puts/s at
# 1M: ~5 min per run at 10M), so all nine engines x 3 runs come to roughly
# an hour (an estimate from the 1M rates). For the 10M rows in a few minutes:
#   BENCH_N_LARGE=10000000 BENCH_GROUPS=large BENCH_REPS=1 \
#     BENCH_ENGINES=calypso,lmdb,tkrzw-hash,kc-hash make bench
# (the report then covers only that group: write it elsewhere with
# BENCH_ARGS="--results DIR" so bench/results keeps the full run).
#
# Adding an engine: write bench/adapters/NAME.c (defining
# bench_adapters_NAME[]) and add one line "NAME=-llib[,-llib...]" below.

BENCH_ENGINE_LINES :=
BENCH_ENGINE_LINES += lmdb=-llmdb
BENCH_ENGINE_LINES += leveldb=-lleveldb
BENCH_ENGINE_LINES += rocksdb=-lrocksdb
BENCH_ENGINE_LINES += sqlite=-lsqlite3
BENCH_ENGINE_LINES += tkrzw=-ltkrzw
BENCH_ENGINE_LINES += kyoto=-lkyotocabinet
# calypso joins (first) once the engine behind calypso.h is in the build.
ifneq ($(filter src/db.c,$(AMALG_SRC)),)
BENCH_ENGINE_LINES := calypso=$(BUILD)/libcalypso.a $(BENCH_ENGINE_LINES)
endif

# Debian packages the peers need: header or program to look for = package.
BENCH_DEB := /usr/include/lmdb.h=liblmdb-dev /usr/include/leveldb/c.h=libleveldb-dev \
             /usr/include/rocksdb/c.h=librocksdb-dev /usr/include/sqlite3.h=libsqlite3-dev \
             /usr/include/tkrzw_langc.h=libtkrzw-dev /usr/include/kclangc.h=libkyotocabinet-dev \
             /usr/bin/gnuplot=gnuplot-nox

bench_comma := ,
BENCH_NAMES := $(foreach e,$(BENCH_ENGINE_LINES),$(firstword $(subst =, ,$(e))))
BENCH_LIBS  := $(foreach e,$(BENCH_ENGINE_LINES),$(subst $(bench_comma), ,$(word 2,$(subst =, ,$(e)))))
BENCH_SRC   := bench/harness.c bench/harness_run.c bench/harness_driver.c bench/harness_report.c \
               $(BENCH_NAMES:%=bench/adapters/%.c)
BENCH_DEFS   = -D'BENCH_ADAPTER_FILES(X)=$(foreach n,$(BENCH_NAMES),X($(n)))' \
               -D'BENCH_CFLAGS="$(CFLAGS_ALL)"' \
               -D'BENCH_COMMIT="$(shell git rev-parse --short HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- src calypso.h 2>/dev/null || echo +changes)"'
BENCH_BIN   := $(BUILD)/bench/harness
BENCH_DIR   ?= $(BUILD)/bench-tmp
BENCH_OPTS   = --dir $(BENCH_DIR) $(if $(BENCH_N),--n $(BENCH_N)) \
               $(if $(BENCH_N_LARGE),--n-large $(BENCH_N_LARGE)) \
               $(if $(BENCH_REPS),--reps $(BENCH_REPS)) \
               $(if $(BENCH_ENGINES),--engines $(BENCH_ENGINES)) \
               $(if $(BENCH_GROUPS),--groups $(BENCH_GROUPS)) $(BENCH_ARGS)

.PHONY: bench bench-quick bench-deps

bench-deps:
	@missing=""; \
	for e in $(BENCH_DEB); do [ -e "$${e%%=*}" ] || missing="$$missing $${e#*=}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "the benchmark needs:$$missing; run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(BENCH_BIN): $(BENCH_SRC) bench/harness.h calypso.h mk/bench.mk $(filter %.a,$(BENCH_LIBS)) | bench-deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(BENCH_DEFS) $(BENCH_SRC) -o $@ $(BENCH_LIBS) $(LDLIBS_ALL) -lm

bench: deps $(BENCH_BIN)
	$(BENCH_BIN) --results bench/results $(BENCH_OPTS)

bench-quick: deps $(BENCH_BIN)
	$(BENCH_BIN) --quick --results bench/results/quick $(BENCH_OPTS)
