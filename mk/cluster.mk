# mk/cluster.mk: calypsod shards behind twemproxy (Debian's nutcracker), the
# way past one machine (examples/cluster/, README "Scaling out").
#
#   make test-cluster     three shards and the proxy: commands through the
#                         proxy from redis-cli, redis-py and hiredis, where
#                         keys land, redis_auth, pipelining clients, a shard
#                         killed and restarted, a fourth shard added and the
#                         keys moved (tests/cluster/run.sh); part of
#                         `make test` (well under a minute)
#   make demo-cluster     examples/cluster/cluster.sh demo: starts three
#                         shards and the proxy, writes 10,000 keys through
#                         it, prints where they went, stops everything
#   make bench-cluster    redis-benchmark through the proxy against 1 and 3
#                         shards and against one calypsod directly, SET and
#                         GET at -P 1 and -P 16 (a benchmark, not a test;
#                         BENCH_CLUSTER_N requests per figure, default 200000)
#   make cluster-deps     installs Debian's nutcracker (and what
#                         calypsod-deps installs) when missing

CLUSTER_DEB := nutcracker

EXTRA_TESTS += test-cluster

.PHONY: test-cluster demo-cluster bench-cluster cluster-deps

cluster-deps: calypsod-deps
	@missing=""; \
	for p in $(CLUSTER_DEB); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(BUILD)/hiredis_cluster: tests/cluster/hiredis_cluster.c | calypsod-deps $(BUILD)
	$(CC) -std=c11 -O1 -g -Wall -Wextra -Werror $< -o $@ $$(pkg-config --cflags --libs hiredis)

test-cluster: cluster-deps $(BUILD)/calypsod $(BUILD)/hiredis_cluster
	PYTHONDONTWRITEBYTECODE=1 CALYPSOD=$(BUILD)/calypsod HIREDIS_CLUSTER=$(BUILD)/hiredis_cluster tests/cluster/run.sh

demo-cluster: cluster-deps $(BUILD)/calypsod
	CALYPSOD=$(BUILD)/calypsod examples/cluster/cluster.sh demo $(BUILD)/demo-cluster

BENCH_CLUSTER_N ?= 200000

bench-cluster: cluster-deps $(BUILD)/calypsod
	PYTHONDONTWRITEBYTECODE=1 CALYPSOD=$(BUILD)/calypsod BENCH_CLUSTER_N=$(BENCH_CLUSTER_N) BENCH_CLUSTER_DIR=$(BUILD)/bench-cluster \
	  /usr/bin/python3 tests/cluster/bench_cluster.py
