# mk/calypsod.mk: calypsod, the Redis-protocol daemon (programs/calypsod/).
#
#   make                  builds $(BUILD)/calypsod with the other programs
#   make test-calypsod    the client tests (tests/server/run.sh), part of
#                         `make test` (about a minute)
#   make calypsod-deps    installs what those tests need when it is missing
#                         (as root; else prints the commands): Debian's
#                         redis-tools, redis-server, python3-redis,
#                         libhiredis-dev, tmux, nodejs and npm, and the npm
#                         packages of tests/server/node (ioredis, redis) from
#                         its package-lock.json
#   make bench-server     redis-benchmark against calypsod and redis-server
#                         (a benchmark, not a test; BENCH_SERVER_N requests
#                         per figure, default 1000000)
#   make install          also installs calypsod into $(PREFIX)/bin
#
# The fuzz target for the request parser, fuzz/fuzz_resp.c, joins
# `make fuzz` and `make fuzz-quick` (mk/reliability.mk) through the
# fuzz-resp and fuzz-resp-quick prerequisites below.
#
# The daemon uses the public API alone: compiled with -I. (calypso.h), not
# -Isrc, linked against libcalypso.a.

CALYPSOD_SRC    := $(sort $(wildcard programs/calypsod/*.c))
CALYPSOD_HDR    := $(wildcard programs/calypsod/*.h)
CALYPSOD_CFLAGS := -std=c11 $(OPT) $(SAN) $(WARN) -D_GNU_SOURCE -I.

CALYPSOD_DEB  := redis-tools redis-server python3-redis libhiredis-dev tmux
CALYPSOD_NODE := tests/server/node

PROGRAMS    += $(BUILD)/calypsod
EXTRA_TESTS += test-calypsod

.PHONY: test-calypsod calypsod-deps bench-server install-calypsod uninstall-calypsod \
        fuzz-resp fuzz-resp-quick

$(BUILD)/calypsod: $(CALYPSOD_SRC) $(CALYPSOD_HDR) calypso.h $(BUILD)/libcalypso.a
	$(CC) $(CALYPSOD_CFLAGS) $(CALYPSOD_SRC) -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)

# ---- tests --------------------------------------------------------------------
calypsod-deps:
	@missing=""; \
	for p in $(CALYPSOD_DEB); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi; \
	if [ ! -d $(CALYPSOD_NODE)/node_modules/ioredis ] || [ ! -d $(CALYPSOD_NODE)/node_modules/redis ]; then \
	  echo "installing the npm packages of $(CALYPSOD_NODE) (npm ci)"; \
	  (cd $(CALYPSOD_NODE) && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	fi

$(BUILD)/hiredis_client: tests/server/hiredis_client.c | calypsod-deps $(BUILD)
	$(CC) -std=c11 -O1 -g -Wall -Wextra -Werror $< -o $@ $$(pkg-config --cflags --libs hiredis)

test-calypsod: calypsod-deps $(BUILD)/calypsod $(BUILD)/hiredis_client
	CALYPSOD=$(BUILD)/calypsod HIREDIS_CLIENT=$(BUILD)/hiredis_client tests/server/run.sh

# ---- fuzzing the request parser ---------------------------------------------------
FUZZ_CC            ?= clang
FUZZ_BUILD         ?= build-fuzz
FUZZ_SECONDS       ?= 60
FUZZ_QUICK_SECONDS ?= 5
CALYPSOD_FUZZ_FLAGS := -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined \
                       -fno-sanitize-recover=all -fno-omit-frame-pointer -Wall -Wextra -Iprograms/calypsod

$(FUZZ_BUILD)/fuzz_resp: fuzz/fuzz_resp.c programs/calypsod/resp.c programs/calypsod/resp.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CALYPSOD_FUZZ_FLAGS) fuzz/fuzz_resp.c programs/calypsod/resp.c -o $@

define calypsod_fuzz_run
	@mkdir -p $(FUZZ_BUILD)/corpus/resp; \
	log=$(FUZZ_BUILD)/fuzz_resp.log; \
	if $(FUZZ_BUILD)/fuzz_resp -max_total_time=$(1) -print_final_stats=1 \
	     -artifact_prefix=$(FUZZ_BUILD)/crash-resp- $(FUZZ_BUILD)/corpus/resp fuzz/corpus/resp >$$log 2>&1; then \
	  echo "fuzz_resp: $(1) s, $$(sed -n 's/^stat::number_of_executed_units: *//p' $$log) runs, no failure"; \
	else \
	  tail -60 $$log; echo "fuzz_resp FAILED: the input is in $(FUZZ_BUILD)/crash-resp-*; log in $$log" >&2; exit 1; \
	fi
endef

fuzz-resp: $(FUZZ_BUILD)/fuzz_resp
	$(call calypsod_fuzz_run,$(FUZZ_SECONDS))

fuzz-resp-quick: $(FUZZ_BUILD)/fuzz_resp
	$(call calypsod_fuzz_run,$(FUZZ_QUICK_SECONDS))

fuzz: fuzz-resp
fuzz-quick: fuzz-resp-quick

# ---- benchmark ------------------------------------------------------------------
BENCH_SERVER_N ?= 1000000

bench-server: calypsod-deps $(BUILD)/calypsod
	CALYPSOD=$(BUILD)/calypsod BENCH_SERVER_N=$(BENCH_SERVER_N) BENCH_SERVER_DIR=$(BUILD)/bench-server \
	  /usr/bin/python3 tests/server/bench_server.py

# ---- install ------------------------------------------------------------------------
install: install-calypsod
uninstall: uninstall-calypsod

install-calypsod: $(BUILD)/calypsod
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/calypsod $(DESTDIR)$(PREFIX)/bin/calypsod

uninstall-calypsod:
	rm -f $(DESTDIR)$(PREFIX)/bin/calypsod
