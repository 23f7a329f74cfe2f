# mk/stress.mk: the threaded and crash tests, many times in a row.
#
#   make stress        runs each of STRESS_TESTS STRESS_RUNS times (default
#                      50), a fresh seed each run; stops at the first
#                      failure and prints the seed to replay it with
#                      CALYPSO_SEED. CI runs it with STRESS_RUNS=10.
#
# A test that fails one run in five is a failing test: these are the tests
# whose outcome depends on thread scheduling or on where a crash lands
# (test_powerloss: where a simulated power loss lands relative to the
# background thread's syncs of sealed files).

STRESS_RUNS  ?= 50
STRESS_TESTS := test_concurrency test_merge test_cursor test_durability test_lock test_crash \
                test_batch test_txn test_get_many test_scan_get test_ns test_reader \
                test_powerloss

.PHONY: stress

stress: deps $(STRESS_TESTS:%=$(BUILD)/%)
	@set -e; for i in $$(seq 1 $(STRESS_RUNS)); do \
	  for t in $(STRESS_TESTS); do \
	    seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	    if ! CALYPSO_SEED=$$seed $(BUILD)/$$t > $(BUILD)/stress-$$t.log 2>&1; then \
	      echo "stress: $$t failed on run $$i (CALYPSO_SEED=$$seed); its output:"; \
	      tail -40 $(BUILD)/stress-$$t.log; exit 1; \
	    fi; \
	  done; \
	  echo "stress: run $$i of $(STRESS_RUNS) passed"; \
	done; \
	echo "$(STRESS_RUNS) passed, 0 failed"
