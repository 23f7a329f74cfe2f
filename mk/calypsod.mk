# mk/calypsod.mk: calypsod, the Redis-protocol daemon (programs/calypsod/).
#
#   make                  builds $(BUILD)/calypsod with the other programs
#   make test-calypsod    the client tests (tests/server/), part of `make test`
#   make bench-server     redis-benchmark against calypsod and redis-server
#   make calypsod-deps    installs what the tests need: Debian packages
#                         (redis-tools, redis-server, python3-redis,
#                         libhiredis-dev, tmux) and the npm packages of
#                         tests/server/node (ioredis, redis)
#
# The daemon uses the public API alone: compiled with -I. (calypso.h), not
# -Isrc, linked against libcalypso.a.

CALYPSOD_SRC    := $(sort $(wildcard programs/calypsod/*.c))
CALYPSOD_HDR    := $(wildcard programs/calypsod/*.h)
CALYPSOD_CFLAGS := -std=c11 $(OPT) $(SAN) $(WARN) -D_GNU_SOURCE -I.

PROGRAMS    += $(BUILD)/calypsod
EXTRA_TESTS += test-calypsod

$(BUILD)/calypsod: $(CALYPSOD_SRC) $(CALYPSOD_HDR) calypso.h $(BUILD)/libcalypso.a
	$(CC) $(CALYPSOD_CFLAGS) $(CALYPSOD_SRC) -o $@ $(BUILD)/libcalypso.a $(LDLIBS_ALL)
